"""A dataset's elements as stored, for types h5py cannot convert to numpy
(tagged opaque types, the time class), and the stored chunks of a dataset
whose filter this libhdf5 lacks (PyTables' blosc, 32001, written by pandas
HDFStore with complib='blosc'): shared by compare.py and compare_h5.py."""
import h5py
import numpy as np


def raw(d):
    """The data of dataset `d` read with the file's own type as the memory
    type: ("raw", bytes)."""
    tid = d.id.get_type()
    space = d.id.get_space()
    null = space.get_simple_extent_type() == h5py.h5s.NULL
    n = 0 if null else space.get_simple_extent_npoints()
    buf = np.zeros(n * tid.get_size(), dtype="u1")
    if n:
        d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, buf, mtype=tid)
    return ("raw", buf.tobytes())


def stored_chunks(d):
    """The chunks of dataset `d` as stored (filter mask and bytes, by
    logical offset): ("chunks", [...]). Chunks are copied as stored, so a
    filter no reader here decodes is compared in its encoded form."""
    n = d.id.get_num_chunks()
    out = []
    for i in range(n):
        info = d.id.get_chunk_info(i)
        mask, data = d.id.read_direct_chunk(info.chunk_offset)
        out.append((info.chunk_offset, mask, bytes(data)))
    return ("chunks", sorted(out))


def filter_missing(d):
    """Whether a filter of dataset `d`'s pipeline is not available in this
    libhdf5 (asked of libhdf5, not read from an error message)."""
    if d.chunks is None:
        return False
    p = d.id.get_create_plist()
    return any(not h5py.h5z.filter_avail(p.get_filter(i)[0])
               for i in range(p.get_nfilters()))


def read(d, sel=()):
    """d[sel], or when a filter of a chunked dataset is not available
    here, its chunks as stored, or when h5py has no conversion for the
    type, the raw bytes of the whole dataset."""
    if filter_missing(d):
        return stored_chunks(d)
    try:
        return d[sel]
    except (OSError, TypeError) as e:
        if "conversion path" not in str(e) and "NumPy equivalent" not in str(e):
            raise
        return raw(d)


def dtype(d):
    """d.dtype, or for a type numpy has no form for (the time class, also
    inside a compound), the file type itself (TypeIDs compare with
    H5Tequal)."""
    try:
        return d.dtype
    except TypeError:
        return d.id.get_type()

"""A dataset's elements as stored, for types h5py cannot convert to numpy
(tagged opaque types, the time class): shared by compare.py and
compare_h5.py."""
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


def read(d, sel=()):
    """d[sel], or when h5py has no conversion for the type, the raw bytes
    of the whole dataset."""
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

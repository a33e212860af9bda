#!/usr/bin/env python3
"""Write mdci_latest.h5 next to this script: a file closed with a metadata
cache image (H5Pset_mdc_image_config, libhdf5 >= 1.10, libver latest): the
superblock extension holds a cache image message (type 24) naming an
`MDCI` block that carries the serialized metadata cache, the root group's
object header among it (nothing valid sits at the root address itself).

    python3 testdata/unsupported/generate_mdci.py           # mdci_latest.h5
    python3 testdata/unsupported/generate_mdci.py objects   # mdci_objects.h5
    python3 testdata/unsupported/generate_mdci.py dense     # mdci_dense*.h5
    python3 testdata/unsupported/generate_mdci.py big PATH  # 65 MiB, for a test
    python3 testdata/unsupported/generate_mdci.py stale PATH  # stale entries, for a test
    python3 testdata/unsupported/generate_mdci.py killed PATH # reopened r+, flushed, killed
    python3 testdata/unsupported/generate_mdci.py zeros PATH  # a group and zero data

h5py has no call for H5Pset_mdc_image_config: it is made through ctypes
on the libhdf5 h5py loaded (HDF5 2.0), which also writes two groups. h5py
reads the file (libhdf5 loads the image on open).

`objects` writes mdci_objects.h5 the same way but through h5py's
high-level calls on a file id made with that property list: datasets
(contiguous, chunked with deflate: a fixed array index), variable-length
strings (global heap), attributes, a soft link and nested groups, all of
whose metadata ends up in the image. Not in it: an extensible array
index, dense attributes or dense groups: HDF5 2.0 (h5py) fails to read a
cache image holding their flush dependencies ("non-parent entry has
children"), so h5py could not tell what the file holds. `dense` writes
those in mdci_dense.h5, with a twin written without an image
(mdci_dense_plain.h5) for h5py to read instead. generate_mdci_110.c
writes mdci_110.h5 with the Debian libhdf5 1.10.

The image block's layout is libhdf5's (H5Cimage.c), not in the file
format specification; h5salvage reads it (src/format/cache_image.rs,
tests/cache_image.rs).
"""

import ctypes
import glob
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class ImageConfig(ctypes.Structure):
    # H5AC_cache_image_config_t
    _fields_ = [("version", ctypes.c_int), ("generate_image", ctypes.c_bool),
                ("save_resize_status", ctypes.c_bool), ("entry_ageout", ctypes.c_int)]


def libhdf5():
    """The libhdf5 h5py loaded (the same copy, so its ids are h5py's)."""
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs")
    lib = ctypes.CDLL(sorted(glob.glob(os.path.join(libs, "libhdf5-*.so*")))[0])
    lib.H5open()
    return lib


def create(lib, path, image=True):
    """h5py's File for a new file at `path`, closed with a cache image
    (unless `image` is false)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V112, h5py.h5f.LIBVER_LATEST)
    if image:
        cfg = ImageConfig(1, True, False, -1)
        assert lib.H5Pset_mdc_image_config(ctypes.c_int64(fapl.id), ctypes.byref(cfg)) >= 0
    return h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fapl=fapl))


def dense(lib):
    """mdci_dense.h5: extensible array and v2 B-tree chunk indexes, dense
    attributes and a dense group (fractal heaps, v2 B-trees), whose cache
    image HDF5 2.0 cannot read back; mdci_dense_plain.h5: the same
    content closed without an image, for h5py to read instead."""
    for name, image in (("mdci_dense.h5", True), ("mdci_dense_plain.h5", False)):
        path = os.path.join(HERE, name)
        with create(lib, path, image) as f:
            f.create_dataset("growing", data=np.arange(30, dtype="<i2"), chunks=(8,),
                             maxshape=(None,))
            f.create_dataset("btree2", data=np.arange(400, dtype="<i4").reshape(20, 20),
                             chunks=(4, 4), maxshape=(None, None))
            m = f.create_group("many_attrs")
            for i in range(20):
                m.attrs[f"a{i:02d}"] = np.arange(i + 1, dtype="<i8")
            links = f.create_group("many_links")
            for i in range(20):
                links.create_group(f"g{i:02d}").attrs["i"] = np.int64(i)
        print(path, os.path.getsize(path))


def big(lib, path):
    """A file above the size h5salvage maps instead of reading (64 MiB),
    with a cache image: written by tests/cache_image.rs, not kept."""
    with create(lib, path) as f:
        f["big"] = (np.arange(65 << 20, dtype=np.uint32) % 251).astype(np.uint8)
        f.create_group("g").attrs["x"] = np.int32(7)


def stale(lib, path):
    """A file written without an image, then opened again and changed with
    the image configured: the entries it changed are newer in the image
    than at their own addresses (stale there). Written by
    tests/cache_image.rs, not kept."""
    with h5py.File(path, "w", libver=("v112", "latest")) as f:
        f.attrs["a"] = np.int64(1)
        f["d"] = np.arange(10, dtype="<i4")
        f["d"].attrs["u"] = np.int64(1)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V112, h5py.h5f.LIBVER_LATEST)
    cfg = ImageConfig(1, True, False, -1)
    assert lib.H5Pset_mdc_image_config(ctypes.c_int64(fapl.id), ctypes.byref(cfg)) >= 0
    with h5py.File(h5py.h5f.open(path.encode(), h5py.h5f.ACC_RDWR, fapl=fapl)) as f:
        f.attrs["a"] = np.int64(2)
        f.attrs["b"] = np.int64(3)
        f["d"].attrs["u"] = np.int64(2)
        f.create_group("added").attrs["x"] = np.int64(4)


def killed(lib, path):
    """A file closed with an image, then opened r+ (without an image
    configured), an attribute changed, flushed (the dataset only), and the writer killed: the
    superblock still names the image, whose copy of the header holds the
    old value (1); the header at its own address holds the new one (2) and
    the superblock's open-for-write flag is set. Written by
    tests/cache_image.rs, not kept."""
    with create(lib, path) as f:
        f["d"] = np.arange(100, dtype="<i4")
        f["d"].attrs["v"] = np.int64(1)
    pid = os.fork()
    if pid == 0:
        f = h5py.File(path, "r+")
        d = f["d"]
        d.attrs["v"] = np.int64(2)
        d.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status


def zeros(lib, path):
    """A group and a 4 KiB contiguous dataset of zeros, closed with an
    image. Written by tests/cache_image.rs, not kept."""
    with create(lib, path) as f:
        f.create_group("grp")
        f.create_dataset("zeros", data=np.zeros(4096, dtype="u1"))


def objects(lib):
    path = os.path.join(HERE, "mdci_objects.h5")
    with create(lib, path) as f:
        f.attrs["title"] = "cache image"
        f.attrs["version"] = np.int32(3)
        f["contiguous"] = np.arange(100, dtype="<f8").reshape(10, 10)
        d = f.create_dataset("chunked", data=np.arange(5000, dtype="<i4"),
                             chunks=(500,), compression="gzip")
        d.attrs["units"] = "m"
        f["strings"] = np.array(["alpha", "beta", "a longer string"], dtype=h5py.string_dtype())
        g = f.create_group("group/nested")
        g["values"] = np.linspace(0, 1, 7)
        for i in range(5):
            g.attrs[f"a{i}"] = np.arange(i + 1, dtype="<i8")
        f["soft"] = h5py.SoftLink("/group/nested/values")
    print(path, os.path.getsize(path))
    with h5py.File(path, "r") as f:
        f.visit(print)


def main():
    lib = libhdf5()
    if sys.argv[1:] == ["objects"]:
        objects(lib)
        return
    if sys.argv[1:] == ["dense"]:
        dense(lib)
        return
    if sys.argv[1:2] == ["big"]:
        big(lib, sys.argv[2])
        return
    if sys.argv[1:2] == ["zeros"]:
        zeros(lib, sys.argv[2])
        return
    if sys.argv[1:2] == ["killed"]:
        killed(lib, sys.argv[2])
        return
    if sys.argv[1:2] == ["stale"]:
        stale(lib, sys.argv[2])
        return
    path = os.path.join(HERE, "mdci_latest.h5")
    hid = ctypes.c_int64
    for fn in ("H5Pcreate", "H5Fcreate", "H5Gcreate2"):
        getattr(lib, fn).restype = hid
    fapl = lib.H5Pcreate(hid.in_dll(lib, "H5P_CLS_FILE_ACCESS_ID_g"))
    # H5F_LIBVER_V112 .. H5F_LIBVER_LATEST: a cache image needs the 1.10+ superblock.
    assert lib.H5Pset_libver_bounds(hid(fapl), 3, 5) >= 0
    cfg = ImageConfig(1, True, False, -1)
    assert lib.H5Pset_mdc_image_config(hid(fapl), ctypes.byref(cfg)) >= 0
    fid = lib.H5Fcreate(path.encode(), ctypes.c_uint(2), hid(0), hid(fapl))  # H5F_ACC_TRUNC
    assert fid >= 0
    for name in (b"alpha", b"beta"):
        g = lib.H5Gcreate2(hid(fid), name, hid(0), hid(0), hid(0))
        lib.H5Gclose(hid(g))
    assert lib.H5Fclose(hid(fid)) >= 0
    lib.H5Pclose(hid(fapl))
    print(path, os.path.getsize(path))
    with h5py.File(path, "r") as f:
        print(list(f))


if __name__ == "__main__":
    main()

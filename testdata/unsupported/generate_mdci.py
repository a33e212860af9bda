#!/usr/bin/env python3
"""Write mdci_latest.h5 next to this script: a file closed with a metadata
cache image (H5Pset_mdc_image_config, libhdf5 >= 1.10, libver latest): the
superblock extension holds a cache image message (type 24) naming an
`MDCI` block that carries the serialized metadata cache, the root group's
object header among it (nothing valid sits at the root address itself).

    python3 testdata/unsupported/generate_mdci.py

h5py has no call for H5Pset_mdc_image_config: it is made through ctypes
on the libhdf5 h5py loaded (HDF5 2.0), which also writes two groups. h5py
reads the file (libhdf5 loads the image on open).

Not handled by h5salvage yet: the image block's layout is libhdf5's
(H5Cimage.c), not in the file format specification; `scan` takes the file
for damaged (root header lost, the rest carved).
"""

import ctypes
import glob
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class ImageConfig(ctypes.Structure):
    # H5AC_cache_image_config_t
    _fields_ = [("version", ctypes.c_int), ("generate_image", ctypes.c_bool),
                ("save_resize_status", ctypes.c_bool), ("entry_ageout", ctypes.c_int)]


def main():
    path = os.path.join(HERE, "mdci_latest.h5")
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs")
    lib = ctypes.CDLL(sorted(glob.glob(os.path.join(libs, "libhdf5-*.so*")))[0])
    lib.H5open()
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

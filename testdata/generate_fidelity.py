#!/usr/bin/env python3
"""Write the writer-fidelity fixtures into testdata/fidelity/.

    python3 testdata/generate_fidelity.py      (from any working directory)

What both of h5salvage's writers must keep beyond values and types
(tests/writer_fidelity.rs, compared by tests/py/compare_h5.py):

* native_latest.h5 (h5py, libver latest): a file the native writer takes.
  A 512-byte user block of text before the superblock; non-ASCII names with
  the UTF-8 character set on a group, a dataset, a soft link and an
  external link, and a non-ASCII dataset name with the ASCII set (h5py's
  `create_dataset`); attribute names with the UTF-8 set (through the low-level
  API: h5py writes attribute names as ASCII) and one non-ASCII name with
  the ASCII set; a group with `track_order=True` and no attribute (the
  flags are only in its object header's flags); a dataset with header
  times (`track_times`, frozen to 1700000000 for reproducible bytes)
  beside objects without.
* libhdf5_latest.h5 (h5py): the same with a 1024-byte user block and an
  object reference dataset, which the native writer does not take: the
  libhdf5 backend writes it.
* long_soft_link.h5 (the Debian libhdf5 1.10 through ctypes: h5py 3.16's
  HDF5 2.0 cuts a soft link target to its low 16 bits of length, 1.10 does
  not in a symbol-table group): soft links whose targets are 70000 bytes in
  the root and in `/g` (old-style groups keep them in the local heap; a
  link message has a 2-byte length, spec IV.A.2.g), and a short one.
"""
import ctypes
import ctypes.util
import glob
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fidelity")
sys.path.insert(0, HERE)
from generate import freeze_ohdr_times  # noqa: E402

USERBLOCK_TEXT = b"H5SALVAGE FIDELITY USERBLOCK -- bytes before the superblock. "


def h5py_lib():
    """The libhdf5 h5py loaded, for calls h5py has no binding for."""
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs")
    found = sorted(glob.glob(os.path.join(libs, "libhdf5-*.so*")))
    lib = ctypes.CDLL(found[0] if found else "libhdf5.so")
    hid = ctypes.c_int64
    lib.H5Pcreate.restype = hid
    lib.H5Pcreate.argtypes = [hid]
    lib.H5Pset_char_encoding.argtypes = [hid, ctypes.c_int]
    lib.H5Acreate2.restype = hid
    lib.H5Acreate2.argtypes = [hid, ctypes.c_char_p, hid, hid, hid, hid]
    lib.H5Awrite.argtypes = [hid, hid, ctypes.c_void_p]
    lib.H5Aclose.argtypes = [hid]
    lib.H5Pclose.argtypes = [hid]
    return lib


def utf8_attr(obj, name, value):
    """An attribute whose name has the UTF-8 character set (h5py writes
    attribute names as ASCII and has no acpl: H5Acreate2 through ctypes)."""
    lib = h5py_lib()
    hid = ctypes.c_int64
    acpl = lib.H5Pcreate(hid.in_dll(lib, "H5P_CLS_ATTRIBUTE_CREATE_ID_g"))
    assert lib.H5Pset_char_encoding(acpl, 1) >= 0  # H5T_CSET_UTF8
    value = np.ascontiguousarray(value)
    tid = h5py.h5t.py_create(value.dtype)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    aid = lib.H5Acreate2(obj.id.id, name.encode(), tid.id, space.id, acpl, 0)
    assert aid >= 0
    assert lib.H5Awrite(aid, tid.id, value.ctypes.data) >= 0
    lib.H5Aclose(aid)
    lib.H5Pclose(acpl)


def content(f):
    g = f.create_group("grüße")  # h5py: UTF-8 link name
    g.create_dataset("données", data=np.arange(6, dtype="<i4"), track_times=False)
    f.create_group("plain")  # ASCII name, h5py's UTF-8 lcpl all the same
    utf8_attr(g, "température", np.float64(21.5))
    utf8_attr(g, "unit", np.int32(7))
    g.attrs["ascii_名前"] = np.int16(3)  # h5py: ASCII character set
    f["λ_soft"] = h5py.SoftLink("/grüße/données")
    f["外部"] = h5py.ExternalLink("other.h5", "/x")
    t = f.create_group("tracked_no_attrs", track_order=True)
    t.create_group("b")
    t.create_group("ä")  # put back in creation order by renaming: keeps UTF-8
    t.create_group("a")
    f.create_group("untracked_no_attrs")
    f.create_dataset("timed", data=np.arange(3, dtype="<f8"), track_times=True)
    f.create_dataset("untimed", data=np.arange(3, dtype="<f8"), track_times=False)


def userblock(path, size):
    fill = (USERBLOCK_TEXT * (size // len(USERBLOCK_TEXT) + 1))[:size]
    with open(path, "r+b") as fh:
        fh.write(fill)


def make(name, size, reference):
    path = os.path.join(OUT, name)
    with h5py.File(path, "w", libver="latest", userblock_size=size) as f:
        content(f)
        if reference:
            f.create_dataset("ref", data=f["grüße"].ref, dtype=h5py.ref_dtype, track_times=False)
    freeze_ohdr_times(path)
    userblock(path, size)


def make_long_soft_link(name):
    """libhdf5 1.10 through ctypes (see the module's docstring)."""
    so = "/usr/lib/x86_64-linux-gnu/libhdf5_serial.so"
    if not os.path.exists(so):
        so = ctypes.util.find_library("hdf5_serial") or ctypes.util.find_library("hdf5")
    lib = ctypes.CDLL(so)
    lib.H5open()
    hid = ctypes.c_int64
    lib.H5Fcreate.restype = hid
    lib.H5Gcreate2.restype = hid
    lib.H5Gcreate2.argtypes = [hid, ctypes.c_char_p, hid, hid, hid]
    lib.H5Lcreate_soft.argtypes = [ctypes.c_char_p, hid, ctypes.c_char_p, hid, hid]
    lib.H5Gclose.argtypes = [hid]
    lib.H5Fclose.argtypes = [hid]
    major, minor, rel = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
    lib.H5get_libversion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(rel))
    assert (major.value, minor.value) < (2, 0), "needs a libhdf5 before 2.0"
    path = os.path.join(OUT, name)
    fid = lib.H5Fcreate(path.encode(), 2, 0, 0)  # H5F_ACC_TRUNC, default lists
    gid = lib.H5Gcreate2(fid, b"g", 0, 0, 0)
    long_target = b"/" + b"a" * 69999
    assert lib.H5Lcreate_soft(long_target, fid, b"long", 0, 0) >= 0
    assert lib.H5Lcreate_soft(long_target + b"/b", gid, b"long", 0, 0) >= 0
    assert lib.H5Lcreate_soft(b"/g", fid, b"short", 0, 0) >= 0
    lib.H5Gclose(gid)
    lib.H5Fclose(fid)
    with h5py.File(path, "r") as f:
        assert len(f.get("long", getlink=True).path) == 70000


def main():
    os.makedirs(OUT, exist_ok=True)
    make("native_latest.h5", 512, reference=False)
    make("libhdf5_latest.h5", 1024, reference=True)
    make_long_soft_link("long_soft_link.h5")
    for n in sorted(os.listdir(OUT)):
        print("%-24s %8d bytes" % (n, os.path.getsize(os.path.join(OUT, n))))


if __name__ == "__main__":
    main()

"""Builds the healthy h5py files tests/carve_base.rs damages at test time.

usage:
  carve_base.py worker OUT --libver earliest|latest --userblock N --configs K
      a worker file (testdata/killed_worker.py's init group and configs),
      closed cleanly, with an N-byte user block filled with text (as MATLAB
      v7.3 files and `userblock_size=` writers have one);
  carve_base.py groups OUT
      default libver: 12 groups of three contiguous float64 datasets (no
      zero bytes in their data), so that symbol tables and raw data share
      4 KiB pages; prints a JSON list of {path, offset, nbytes} (absolute
      offset of each dataset's contiguous data);
  carve_base.py zeros OUT
      a healthy file whose data is legitimately zero over whole pages;
  carve_base.py sizes OUT --offsets O --lengths L --libver X --userblock N
      a small file written with O-byte offsets and L-byte lengths (libhdf5
      then writes a version 2 or 3 superblock), groups, contiguous and
      chunked (gzip) datasets, attributes.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import killed_worker as kw  # noqa: E402

TEXT = b"MATLAB 7.3 MAT-file style user block, written by a test -- not HDF5 -- "


def worker(out, libver, userblock, configs):
    f = kw.create_file(out, libver, userblock=userblock)
    kw.write_init(f)
    for i in range(configs):
        kw.write_config(f, i)
    f.close()
    if userblock:
        fill = (TEXT * (userblock // len(TEXT) + 1))[:userblock]
        with open(out, "r+b") as fh:
            fh.write(fill)


def groups(out):
    f = kw.create_file(out, "earliest")
    for i in range(12):
        g = kw.new_group(f, "g%02d" % i)
        g.attrs["i"] = np.int32(i)
        for j in range(3):
            data = np.arange(1, 301, dtype="<f8") + 1000 * i + j
            g.create_dataset("d%d" % j, data=data, track_times=False)
    f.close()
    res = []
    with h5py.File(out, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                res.append({"path": "/" + name, "offset": obj.id.get_offset(),
                            "nbytes": obj.id.get_storage_size()})
        f.visititems(visit)
    print(json.dumps(res))


def zeros(out):
    f = kw.create_file(out, "earliest")
    f.create_dataset("zeros", data=np.zeros(3 * 4096, dtype="<f8"), track_times=False)
    f.create_dataset("ones", data=np.ones(100, dtype="<f8"), track_times=False)
    f.close()


def sizes(out, offsets, lengths, libver, userblock):
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    low, high = kw.LIBVERS[libver]
    fapl.set_libver_bounds(getattr(h5py.h5f, "LIBVER_" + low), getattr(h5py.h5f, "LIBVER_" + high))
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fcpl.set_sizes(offsets, lengths)
    if userblock:
        fcpl.set_userblock(userblock)
    fid = h5py.h5f.create(os.fsencode(out), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    f = h5py.File(fid)
    f.attrs["sizes"] = np.array([offsets, lengths], dtype="i4")
    for i in range(3):
        g = kw.new_group(f, "g%d" % i)
        g.attrs["i"] = np.int32(i)
        g.create_dataset("d", data=np.arange(1, 301, dtype="<f8") * (i + 1), track_times=False)
        g.create_dataset("c", data=np.arange(64, dtype="<f8").reshape(8, 8) + i, chunks=(4, 4),
                         compression="gzip", track_times=False)
    f.create_dataset("top", data=np.arange(1, 50, dtype="<i4"), track_times=False)
    f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["worker", "groups", "zeros", "sizes"])
    ap.add_argument("out")
    ap.add_argument("--libver", default="earliest")
    ap.add_argument("--userblock", type=int, default=0)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--offsets", type=int, default=8)
    ap.add_argument("--lengths", type=int, default=8)
    a = ap.parse_args()
    if a.what == "worker":
        worker(a.out, a.libver, a.userblock, a.configs)
    elif a.what == "sizes":
        sizes(a.out, a.offsets, a.lengths, a.libver, a.userblock)
    elif a.what == "groups":
        groups(a.out)
    else:
        zeros(a.out)


if __name__ == "__main__":
    main()

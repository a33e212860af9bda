"""Compares objects of two HDF5 files value by value, via h5py.

usage: same_values.py A B [--pair PATH_IN_A PATH_IN_B]...

Without --pair, A's root is compared with B's root. Each pair is compared
recursively: every group, dataset and attribute under PATH_IN_A must be in
B under PATH_IN_B with the same dtype (member names and order included),
shape and values. Attributes named h5salvage_* are ignored. B may hold
more than A. Prints {"compared": N, "mismatches": [...]}; exit 1 on any
mismatch.
"""
import argparse
import json

import h5py
import numpy as np


def key(x):
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "O":
            return ("O", x.shape, [v.decode() if isinstance(v, bytes) else v for v in x.ravel().tolist()])
        return (x.dtype.descr, x.shape, x.tobytes())
    if isinstance(x, np.generic):
        return (x.dtype.descr, x.tobytes())
    if isinstance(x, bytes):
        return x.decode()
    return x


def attrs(obj):
    return {k: key(obj.attrs[k]) for k in obj.attrs if not k.startswith("h5salvage_")}


def compare(a, b, pa, pb, out):
    oa, ob = a[pa], b.get(pb)
    out["compared"] += 1
    if ob is None:
        out["mismatches"].append("%s: missing (%s)" % (pa, pb))
        return
    if type(oa) is not type(ob):
        out["mismatches"].append("%s: kind differs" % pa)
        return
    if attrs(oa) != attrs(ob):
        out["mismatches"].append("%s: attributes differ" % pa)
    if isinstance(oa, h5py.Dataset):
        if oa.dtype != ob.dtype or oa.shape != ob.shape:
            out["mismatches"].append("%s: dtype/shape differ" % pa)
        elif key(np.asarray(oa[()])) != key(np.asarray(ob[()])):
            out["mismatches"].append("%s: values differ" % pa)
        return
    for name in oa:
        link = oa.get(name, getlink=True)
        if isinstance(link, h5py.HardLink):
            compare(a, b, pa.rstrip("/") + "/" + name, pb.rstrip("/") + "/" + name, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pair", nargs=2, action="append", default=[])
    args = ap.parse_args()
    out = {"compared": 0, "mismatches": []}
    with h5py.File(args.a, "r") as a, h5py.File(args.b, "r") as b:
        for pa, pb in args.pair or [("/", "/")]:
            compare(a, b, pa, pb, out)
    print(json.dumps(out))
    raise SystemExit(1 if out["mismatches"] else 0)


if __name__ == "__main__":
    main()

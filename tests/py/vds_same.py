"""Compare the virtual datasets of ORIG and OUT with h5py.

usage: vds_same.py ORIG OUT

Every dataset of ORIG must be in OUT, virtual where it is, with the same
mappings (source file and dataset names, virtual and source selection
types and bounds), the same shape, maximum shape, dtype, fill value and
the same values as h5py reads them (source files are found as h5py finds
them: beside each file). Prints mismatches and exits 1 if there was any.
"""
import sys

import h5py
import numpy as np


def selection(space):
    """Type and, for hyperslabs, the regular form or the block list."""
    t = space.get_select_type()
    if t != h5py.h5s.SEL_HYPERSLABS:
        return (t,)
    if space.is_regular_hyperslab():
        return (t, space.get_regular_hyperslab())
    return (t, space.get_select_hyper_blocklist().tolist())


def mappings(d):
    return [(m.file_name, m.dset_name, selection(m.vspace), selection(m.src_space))
            for m in d.virtual_sources()]


def main():
    a = h5py.File(sys.argv[1], "r", locking=False)
    b = h5py.File(sys.argv[2], "r", locking=False)
    bad = []
    virtual = 0
    for k in a:
        x, y = a[k], b.get(k)
        if y is None:
            bad.append(f"{k}: missing")
            continue
        for prop in ("is_virtual", "shape", "maxshape", "dtype", "fillvalue"):
            if getattr(x, prop) != getattr(y, prop):
                bad.append(f"{k}: {prop} {getattr(x, prop)!r} vs {getattr(y, prop)!r}")
        if x.is_virtual and y.is_virtual:
            virtual += 1
            if mappings(x) != mappings(y):
                bad.append(f"{k}: mappings {mappings(x)} vs {mappings(y)}")
        if not np.array_equal(x[()], y[()]):
            bad.append(f"{k}: values {x[()]} vs {y[()]}")
        if dict(x.attrs) != {n: v for n, v in y.attrs.items() if not n.startswith("h5salvage")}:
            bad.append(f"{k}: attributes")
    for line in bad:
        print(line)
    print(f"{virtual} virtual datasets compared; {len(bad)} mismatches")
    sys.exit(1 if bad or virtual == 0 else 0)


main()

"""Compare every array and table of ORIG and OUT as PyTables reads them.

usage: tables_same.py ORIG OUT [PARTIAL_PATH]...

PyTables decodes its own filters (bzip2, blosc) that h5py cannot without
plugins. Every leaf of ORIG must be in OUT with the same filters, dtype,
shape and values; a leaf named in PARTIAL_PATH must carry
h5salvage_status = partial instead of equal values (its missing chunks
read as the fill value). A leaf PyTables cannot read from ORIG (a damaged
input) must be marked (any h5salvage_status) or missing in OUT. Prints
mismatches; exits 1 if there was any.
"""
import sys

import h5py
import numpy as np
import tables


def same_values(a, b):
    """Arrays equal, or lists (VLArray rows) of equal arrays."""
    if isinstance(a, list) or isinstance(b, list):
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def main():
    partial = set(sys.argv[3:])
    bad = []
    n = 0
    with tables.open_file(sys.argv[1]) as a, tables.open_file(sys.argv[2]) as b:
        for leaf in a.walk_nodes("/", "Leaf"):
            p = leaf._v_pathname
            other = b.get_node(p) if p in b else None
            if other is None:
                bad.append(f"{p}: missing")
                continue
            n += 1
            if str(leaf.filters) != str(other.filters):
                bad.append(f"{p}: filters {leaf.filters} vs {other.filters}")
            if leaf.dtype != other.dtype or leaf.shape != other.shape:
                bad.append(f"{p}: dtype/shape {leaf.dtype} {leaf.shape} vs {other.dtype} {other.shape}")
                continue
            with h5py.File(sys.argv[2], "r", locking=False) as f:
                status = f[p].attrs.get("h5salvage_status")
            if isinstance(status, bytes):
                status = status.decode()
            if p in partial:
                if status != "partial":
                    bad.append(f"{p}: not marked partial ({status!r})")
                continue
            try:
                want = leaf.read()
            except Exception as e:  # the input's own bytes are damaged
                if status is None:
                    bad.append(f"{p}: unreadable in ORIG ({e}) but not marked")
                continue
            if status is not None:
                bad.append(f"{p}: marked {status!r}")
            if not same_values(want, other.read()):
                bad.append(f"{p}: values differ")
    for line in bad:
        print(line)
    print(f"{n} leaves compared; {len(bad)} mismatches")
    sys.exit(1 if bad or n == 0 else 0)


main()

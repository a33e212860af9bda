"""What an HDF5 region reference selects, in a comparable form (shared by
compare.py and compare_h5.py).

Two region references are equal when they name the same dataset path, the
same selection (type, number of points, bounds, block or point list) and
read the same data through h5py.
"""
import h5py
import numpy as np


def _plain(a):
    a = np.asarray(a)
    if a.dtype.kind == "O" or (a.dtype.names and "O" in str(a.dtype)):
        return ("objects", a.shape, repr(a.tolist()))
    return (a.dtype.str, a.shape, a.tobytes())


def region_key(ref, f):
    """`ref` dereferenced in file `f` (the file it was read from)."""
    if not ref:
        return ("regionref", None)
    d = f[ref]
    space = h5py.h5r.get_region(ref, d.id)
    kind = space.get_select_type()
    n = space.get_select_npoints()
    key = ["regionref", d.name, int(kind), int(n)]
    if n:
        key.append(tuple(tuple(int(v) for v in b) for b in space.get_select_bounds()))
    if kind == h5py.h5s.SEL_HYPERSLABS:
        key.append(np.asarray(space.get_select_hyper_blocklist()).tolist())
    elif kind == h5py.h5s.SEL_POINTS:
        key.append(np.asarray(space.get_select_elem_pointlist()).tolist())
    key.append(_plain(d[ref]))
    return tuple(key)

"""What an HDF5 region reference selects, in a comparable form (shared by
compare.py and compare_h5.py).

Two region references are equal when they name the same target and the same
selection (type, number of points, bounds, block or point list) and, when
both keys carry it, read the same data through h5py. Targets are the same
when their paths are equal, or when one was carved into /lost+found under
the same name (salvage moves an object whose parent group was lost; a
reference follows the object, not its path).
"""
import h5py
import numpy as np


def _plain(a):
    a = np.asarray(a)
    if a.dtype.kind == "O" or (a.dtype.names and "O" in str(a.dtype)):
        return ("objects", a.shape, repr(a.tolist()))
    return (a.dtype.str, a.shape, a.tobytes())


def _same_target(p, q):
    if p == q:
        return True
    carved = [x for x in (p, q) if x.startswith("/lost+found/")]
    return bool(carved) and p.rsplit("/", 1)[-1] == q.rsplit("/", 1)[-1]


class RegionKey:
    def __init__(self, target=None, selection=None, data=None):
        self.target, self.selection, self.data = target, selection, data

    def __eq__(self, other):
        if not isinstance(other, RegionKey) or self.selection != other.selection:
            return False
        if (self.target is None) != (other.target is None):
            return False
        if self.target is not None and not _same_target(self.target, other.target):
            return False
        return self.data is None or other.data is None or self.data == other.data

    def __repr__(self):
        return "RegionKey(%r, %r, data=%r)" % (self.target, self.selection, self.data)


def region_key(ref, f, data=True):
    """`ref` dereferenced in file `f` (the file it was read from); `data`:
    also read what it selects."""
    if not ref:
        return RegionKey()
    d = f[ref]
    space = h5py.h5r.get_region(ref, d.id)
    kind = space.get_select_type()
    n = space.get_select_npoints()
    key = [int(kind), int(n)]
    if n:
        key.append(tuple(tuple(int(v) for v in b) for b in space.get_select_bounds()))
    if kind == h5py.h5s.SEL_HYPERSLABS:
        key.append(np.asarray(space.get_select_hyper_blocklist()).tolist())
    elif kind == h5py.h5s.SEL_POINTS:
        key.append(np.asarray(space.get_select_elem_pointlist()).tolist())
    return RegionKey(d.name, tuple(key), _plain(d[ref]) if data else None)

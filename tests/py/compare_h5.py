"""Compare a file written by h5salvage's Writer with its source, via h5py.

usage: compare_h5.py ORIG OUT [--skip PATH]... [--exact-times] [--marks]

Every group and dataset of ORIG reached by a hard link (first path only) and
not under a skipped path must exist in OUT with the same kind, attribute
names and values (dtype with its member order, and bytes), the same listing
order of attributes and group members (creation order where the source
tracks it), the kind of every link (soft and external ones with their
targets), and for datasets the same dtype, shape,
maxshape, layout, chunks, filters (compression, options, shuffle,
fletcher32), space allocation time, fill write time, fill value and data. A dataset or attribute whose datatype is
a committed (named) datatype must refer to the committed datatype at the
same path in OUT (not carry a copy), and one with a copy must not. Fixed-size data is compared byte for byte
(tobytes); variable-length and reference data element by element (references
by the path of their target). Region references are compared by target
path, selection and the data they select (h5regions.py).
Also kept exactly: the character set of every link name and attribute
name, each group's (and the root's) link and attribute creation-order flags
(tracked, indexed) and each dataset's attribute flags, also where there is
no attribute or member to order, and the user block (its size and bytes).
Object header times (access, modification, change, birth) are never
invented: an output object that stores times must store the input's; with
--exact-times an input object's times must also be kept (the libhdf5
backend cannot set them and stores none).
With --marks (two outputs of h5salvage compared, e.g. the native and the
libhdf5 backend's), h5salvage_* attributes count like any other: names,
order and values must agree on both sides, and header times where both
sides store them.
Prints one line per mismatch and exits 1 if there was any.
"""
import sys

import h5py
import numpy as np

from h5raw import dtype, read
from h5regions import region_key


def has_objects(dt):
    """The dtype holds Python objects (vlen, references) anywhere: its
    bytes are pointers, compared element by element instead."""
    if dt.kind == "O":
        return True
    if dt.names:
        return any(has_objects(dt[n]) for n in dt.names)
    if dt.subdtype is not None:
        return has_objects(dt.subdtype[0])
    return False


def norm(x, f):
    # RegionReference first: it may be a subclass of Reference.
    if isinstance(x, h5py.RegionReference):
        return region_key(x, f)
    if isinstance(x, h5py.Reference):
        return ("ref", canonical_path(f, f[x]) if x else None)
    if isinstance(x, np.ndarray):
        if has_objects(x.dtype):
            return ("objarr", x.shape, [norm(y, f) for y in x.reshape(-1)])
        return ("arr", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, np.void) and x.dtype.names:
        return ("rec", tuple(norm(x[n], f) for n in x.dtype.names))
    if isinstance(x, np.void) and has_objects(x.dtype):
        return norm(np.asarray(x), f)
    if isinstance(x, np.generic):
        return ("scalar", x.dtype.str, x.tobytes())
    if isinstance(x, h5py.Empty):
        return ("empty", str(x.dtype))
    return x


_PATHS = {}


def canonical_path(f, obj):
    """The smallest of the paths (hard links only) that reach `obj`. The
    name libhdf5 gives a dereferenced object is the first path its native
    link iteration meets, which depends on how each group stores its links
    (symbol table, compact, dense name hash), not on what the file holds."""
    key = f.id.fileno
    if key not in _PATHS:
        paths = {}

        def rec(g, prefix, seen):
            for name in g:
                link = g.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    continue
                child = g[name]
                addr = h5py.h5o.get_info(child.id).addr
                path = prefix + "/" + name
                if addr not in paths or path < paths[addr]:
                    paths[addr] = path
                if isinstance(child, h5py.Group) and addr not in seen:
                    rec(child, path, seen | {addr})

        paths[h5py.h5o.get_info(f.id).addr] = "/"
        rec(f, "", {h5py.h5o.get_info(f.id).addr})
        _PATHS[key] = paths
    return _PATHS[key].get(h5py.h5o.get_info(obj.id).addr, obj.name)


def data_of(d, f):
    x = read(d)
    return x if isinstance(x, tuple) else norm(x, f)


def prop(d, name):
    """A dataset property (the dtype through h5raw.dtype)."""
    return dtype(d) if name == "dtype" else getattr(d, name)


def objects(f, skip):
    out = []

    def rec(g):
        for name in g:
            link = g.get(name, getlink=True)
            path = (g.name.rstrip("/") + "/" + name)
            if not isinstance(link, h5py.HardLink) or any(path == s or path.startswith(s + "/") for s in skip):
                continue
            obj = g.get(name)
            if obj is None:
                continue
            key = obj.id.addr if hasattr(obj.id, "addr") else path
            if key in seen:
                continue
            seen.add(key)
            out.append(path)
            if isinstance(obj, h5py.Group):
                rec(obj)

    seen = set()
    out.append("/")
    rec(f)
    return out


def link_of(g, name):
    """The kind of link `name` in `g` and, for soft and external links,
    its target."""
    link = g.get(name, getlink=True)
    if isinstance(link, h5py.SoftLink):
        return ("soft", link.path)
    if isinstance(link, h5py.ExternalLink):
        return ("external", link.filename, link.path)
    return (type(link).__name__,)


def committed_types(f):
    """Header address -> path of every committed datatype reached by a
    hard link."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Datatype):
            out.setdefault(h5py.h5o.get_info(obj.id).addr, "/" + name)

    f.visititems(visit)
    return out


def type_source(tid, types):
    """The path of the committed datatype `tid` refers to; None when it is
    a copy; "anonymous" when committed without a path."""
    if not tid.committed():
        return None
    return types.get(h5py.h5o.get_info(tid).addr, "anonymous")


def link_cset(g, name):
    return g.id.links.get_info(name.encode()).cset


def attr_cset(obj, name):
    return h5py.h5a.get_info(obj.id, name=name.encode()).cset


def order_flags(obj):
    """(link flags, attribute flags) of a group, (None, attribute flags)
    of a dataset; None for a committed datatype (no creation list)."""
    if isinstance(obj, h5py.Datatype):
        return None
    pl = obj.id.get_create_plist()
    links = pl.get_link_creation_order() if isinstance(obj, h5py.Group) else None
    return (links, pl.get_attr_creation_order())


def times(obj):
    i = h5py.h5o.get_info(obj.id)
    return (i.atime, i.mtime, i.ctime, i.btime)


def user_block(path, f):
    n = f.userblock_size
    with open(path, "rb") as fh:
        return n, fh.read(n)


def main():
    orig, outp = sys.argv[1], sys.argv[2]
    skip = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--skip"]
    exact_times = "--exact-times" in sys.argv
    marks = "--marks" in sys.argv[3:]
    a, b = h5py.File(orig, "r", locking=False), h5py.File(outp, "r", locking=False)
    bad = []
    count = {"groups": 0, "datasets": 0, "attributes": 0}
    types_a, types_b = committed_types(a), committed_types(b)

    def err(path, msg):
        bad.append(f"{path}: {msg}")

    ux, uy = user_block(orig, a), user_block(outp, b)
    if ux != uy:
        err("/", f"user block {ux[0]} bytes {ux[1][:40]!r} vs {uy[0]} bytes {uy[1][:40]!r}")

    for path in objects(a, skip):
        x = a[path]
        if path not in b:
            err(path, "missing in output")
            continue
        y = b[path]
        if type(x) is not type(y):
            err(path, f"kind {type(x).__name__} vs {type(y).__name__}")
            continue
        # Listing order: by name, or by creation order where the source
        # tracked it (h5py lists in creation order then).
        names_x = list(x.attrs.keys())
        names_y = [k for k in y.attrs.keys() if marks or not k.startswith("h5salvage_")]
        if names_x != names_y:
            err(path, f"attribute names (in listing order) {names_x} vs {names_y}")
        # libhdf5's count (H5Oget_info num_attrs, from a version-2 header's
        # attribute info message) must agree with the listing.
        listed = len(list(y.attrs.keys()))
        if len(y.attrs) != listed:
            err(path, f"output counts {len(y.attrs)} attributes, lists {listed}")
        ox, oy = order_flags(x), order_flags(y)
        if ox != oy:
            err(path, f"creation order flags (links, attributes) {ox} vs {oy}")
        hx, hy = times(x), times(y)
        # Two outputs (--marks): one writer may store none (libhdf5 cannot
        # write given times); where both store times they must agree.
        if hx != hy and (exact_times or (any(hy) and (not marks or any(hx)))):
            err(path, f"header times {hx} vs {hy}")
        if isinstance(x, h5py.Group):
            # Members missing on either side are reported on their own.
            kx = [k for k in x.keys() if k in y]
            ky = [k for k in y.keys() if k in x]
            if kx != ky:
                err(path, f"members (in listing order) {kx} vs {ky}")
            for k in kx:
                lx, ly = link_of(x, k), link_of(y, k)
                if lx != ly:
                    err(path, f"link {k}: {str(lx)[:200]} vs {str(ly)[:200]}")
                cx, cy = link_cset(x, k), link_cset(y, k)
                if cx != cy:
                    err(path, f"link {k}: name character set {cx} vs {cy}")
        for n in names_x:
            if n not in y.attrs:
                continue
            count["attributes"] += 1
            cx, cy = attr_cset(x, n), attr_cset(y, n)
            if cx != cy:
                err(path, f"@{n}: name character set {cx} vs {cy}")
            ax, ay = x.attrs.get_id(n), y.attrs.get_id(n)
            tx, ty = type_source(ax.get_type(), types_a), type_source(ay.get_type(), types_b)
            if tx != ty:
                err(path, f"@{n}: committed datatype {tx} vs {ty}")
            if ax.dtype != ay.dtype:
                err(path, f"@{n}: dtype {ax.dtype} vs {ay.dtype}")
                continue
            if ax.shape != ay.shape:
                err(path, f"@{n}: shape {ax.shape} vs {ay.shape}")
                continue
            vx, vy = norm(x.attrs[n], a), norm(y.attrs[n], b)
            if vx != vy:
                err(path, f"@{n}: value {vx!r} vs {vy!r}")
        if isinstance(x, h5py.Group):
            count["groups"] += 1
            continue
        if isinstance(x, h5py.Datatype):
            if x.dtype != y.dtype:
                err(path, f"committed dtype {x.dtype} vs {y.dtype}")
            continue
        count["datasets"] += 1
        tx, ty = type_source(x.id.get_type(), types_a), type_source(y.id.get_type(), types_b)
        if tx != ty:
            err(path, f"committed datatype {tx} vs {ty}")
        for p in ("dtype", "shape", "maxshape", "chunks", "compression",
                  "compression_opts", "shuffle", "fletcher32"):
            px, py = prop(x, p), prop(y, p)
            if px != py:
                err(path, f"{p} {px!r} vs {py!r}")
        cx, cy = x.id.get_create_plist(), y.id.get_create_plist()
        if cx.get_layout() != cy.get_layout():
            err(path, f"layout {cx.get_layout()} vs {cy.get_layout()}")
        # Space allocation time and fill write time decide what unwritten
        # parts read as (early allocation with filters fills every chunk).
        for what, get in (("allocation time", "get_alloc_time"), ("fill time", "get_fill_time")):
            vx, vy = getattr(cx, get)(), getattr(cy, get)()
            if vx != vy:
                err(path, f"{what} {vx} vs {vy}")
        if cx.fill_value_defined() != cy.fill_value_defined():
            err(path, f"fill value defined {cx.fill_value_defined()} vs {cy.fill_value_defined()}")
        if isinstance(prop(x, "dtype"), np.dtype) and not has_objects(x.dtype):
            fx, fy = norm(x.fillvalue, a), norm(y.fillvalue, b)
            if fx != fy:
                err(path, f"fillvalue {fx!r} vs {fy!r}")
        if x.shape is None:
            continue
        dx, dy = data_of(x, a), data_of(y, b)
        if dx != dy:
            err(path, f"data differ: {str(dx)[:200]} vs {str(dy)[:200]}")
    for line in bad:
        print(line)
    print(f"compared {count['groups']} groups, {count['datasets']} datasets, "
          f"{count['attributes']} attributes; {len(bad)} mismatches")
    sys.exit(1 if bad else 0)


main()

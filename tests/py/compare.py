#!/usr/bin/env python3
"""Compare a salvaged file with the healthy original, with h5py.

usage: compare.py ORIGINAL SALVAGED [--strict]

Every dataset and attribute in SALVAGED must equal the original bit for bit,
except datasets marked h5salvage_unverified (which may differ: counted as
"unverified", without --strict) and those marked h5salvage_status =
"partial": of those, only what was
written must equal the original (the chunks the file holds, or the leading
elements of a contiguous dataset named by h5salvage_missing). --strict also
requires that every object of ORIGINAL is in SALVAGED and nothing is partial
(a salvage of a healthy file).

Prints a JSON summary; exit status 0 when nothing is wrong, 1 otherwise.
"""
import json
import sys

import h5py
import numpy as np

from h5raw import dtype, read
from h5regions import region_key


def has_objects(dt):
    if dt.kind == "O":
        return True
    if dt.names:
        return any(has_objects(dt[n]) for n in dt.names)
    if dt.subdtype is not None:
        return has_objects(dt.subdtype[0])
    return False


def same_array(a, b, fa, fb, degraded=False):
    """`a` read from file `fa` equals `b` read from `fb` (references are
    dereferenced in their own file). `degraded`: `b` is marked
    h5salvage_degraded, so a reference may have been written null."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if has_objects(a.dtype) or has_objects(b.dtype):
        return [norm(x, fa, degraded) for x in a.ravel()] == \
            [norm(x, fb, degraded) for x in b.ravel()]
    if a.dtype != b.dtype:
        return False
    return a.tobytes() == b.tobytes()


def norm(x, f, degraded=False):
    """A comparable form of one element (read from file `f`) that may hold
    objects; with `degraded`, whether a reference is null is not compared
    (a degraded object's references to what was lost are written null)."""
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    if isinstance(x, np.void) and x.dtype.names:
        return tuple(norm(x[n], f, degraded) for n in x.dtype.names)
    if isinstance(x, np.ndarray):
        if has_objects(x.dtype):
            return ("objarr", x.shape, [norm(y, f, degraded) for y in x.ravel()])
        return ("arr", x.dtype.str, x.tobytes())
    if isinstance(x, h5py.RegionReference):
        # Target and selection; what it selects is the target's data, which
        # is compared (or excused) as the target itself.
        return region_key(x, f, data=False)
    if isinstance(x, h5py.Reference):
        return ("ref",) if degraded else ("ref", bool(x))
    return repr(x)


def same_data(o, s):
    """Datasets `o` and `s` hold the same values (as stored, for types
    h5py cannot convert)."""
    vo, vs = read(o), read(s)
    if isinstance(vo, tuple) or isinstance(vs, tuple):
        return vo == vs
    return same_array(vo, vs, o.file, s.file)


def fill_of(d):
    """A dataset's fill value as h5py reads it, or the error it raises."""
    try:
        return ("value", d.fillvalue)
    except Exception as e:
        return ("error", type(e).__name__)


def attrs_of(obj):
    out = {}
    for k in obj.attrs:
        if k.startswith("h5salvage"):
            continue
        try:
            out[k] = obj.attrs[k]
        except Exception as e:  # an attribute h5py cannot read
            out[k] = ("unreadable", str(e))
    return out


def listing(f):
    objs = {}

    def visit(name, obj):
        objs["/" + name] = obj

    f.visititems(visit)
    objs["/"] = f
    return objs


def partial_ok(path, o, s, res, strict=False):
    """A partial dataset: what it holds must equal the original, unless it
    is also marked h5salvage_unverified (raw data over other bytes: not
    claimed to be the original's; counted as "unverified", without
    --strict)."""
    if "h5salvage_unverified" in s.attrs and not strict:
        probe = {"wrong": [], "partial_ok": 0}
        try:
            partial_ok(path, o, s, probe, strict=True)
        except Exception:  # noqa: BLE001 (a type h5py cannot read: not claimed either)
            probe["wrong"].append(path)
        res["unverified" if probe["wrong"] else "partial_ok"] += 1
        return
    missing = s.attrs.get("h5salvage_missing", "")
    if isinstance(missing, bytes):
        missing = missing.decode()
    degraded = "h5salvage_degraded" in s.attrs
    if s.chunks is not None:
        n = s.id.get_num_chunks()
        for i in range(n):
            info = s.id.get_chunk_info(i)
            sel = tuple(
                slice(off, min(off + c, dim))
                for off, c, dim in zip(info.chunk_offset, s.chunks, s.shape)
            )
            if not same_array(o[sel], s[sel], o.file, s.file, degraded):
                res["wrong"].append("%s chunk %s" % (path, info.chunk_offset))
                return
        res["partial_ok"] += 1
        return
    # Contiguous: "elements N.." names the first element not written.
    n = 0
    for line in missing.splitlines():
        if line.startswith("elements "):
            n = int(line.split()[1].rstrip("."))
    if n == 0:
        # Nothing written: nothing to compare (and h5py cannot read an
        # unwritten vlen-of-compound-with-strings dataset at all).
        res["partial_ok"] += 1
        return
    flat_o = np.asarray(o[()]).ravel()[:n]
    flat_s = np.asarray(s[()]).ravel()[:n]
    if same_array(flat_o, flat_s, o.file, s.file, degraded):
        res["partial_ok"] += 1
    else:
        res["wrong"].append(path + " (prefix)")


def group_key(g):
    """A lookup key for a group: its attribute names and member names."""
    return (tuple(sorted(k for k in g.attrs if not k.startswith("h5salvage"))),
            tuple(sorted(g.keys())))


def group_matches(o, s):
    """Everything the salvaged group `s` holds equals the original `o`
    (members that are partial compare only what they hold)."""
    for k, v in attrs_of(s).items():
        if k not in o.attrs or not same_array(o.attrs[k], v, o.file, s.file):
            return False
    for name in s.keys():
        child = s.get(name)  # None for a dangling soft link
        if child is None or name not in o or not isinstance(child, h5py.Dataset):
            continue
        oc = o.get(name)
        if not isinstance(oc, h5py.Dataset) or dtype(oc) != dtype(child) or oc.shape != child.shape:
            return False
        if child.attrs.get("h5salvage_status") in (b"partial", "partial") \
                or "h5salvage_unverified" in child.attrs:
            continue
        if not same_data(oc, child):
            return False
    return True


def match_lost_found(lo, fs, res):
    """Each /lost+found/X group must equal some original group."""
    lf = fs.get("lost+found")
    if lf is None:
        return
    candidates = {}
    for path, o in lo.items():
        if isinstance(o, h5py.Group):
            candidates.setdefault(tuple(sorted(o.keys())), []).append(o)
    for name in lf.keys():
        g = lf.get(name)
        if not isinstance(g, h5py.Group):
            continue
        pool = [o for key, os_ in candidates.items() if set(g.keys()) <= set(key) for o in os_]
        if any(group_matches(o, g) for o in pool):
            res["lost_found_matched"] += 1
            # Unverified members were not compared (group_matches).
            res["lost_found_datasets"] += sum(
                1 for m in g.keys() if isinstance(g.get(m), h5py.Dataset)
                and "h5salvage_unverified" not in g.get(m).attrs)
            continue
        # No original group holds all of it: name each member and attribute
        # that equals nothing of the same name in any original group.
        everything = [o for os_ in candidates.values() for o in os_]
        degraded = g.attrs.get("h5salvage_degraded", "")
        if isinstance(degraded, bytes):
            degraded = degraded.decode()
        for k, v in attrs_of(g).items():
            if "@" + k in degraded:
                continue  # declared degraded (a reference whose target was lost)
            if not any(k in o.attrs and same_array(o.attrs[k], v, o.file, g.file)
                       for o in everything):
                res["wrong"].append("/lost+found/%s attribute %s" % (name, k))
        for m in g.keys():
            child = g.get(m)
            if not isinstance(child, h5py.Dataset):
                continue
            if child.attrs.get("h5salvage_status") in (b"partial", "partial") \
                    or "h5salvage_unverified" in child.attrs:
                continue
            ok = False
            for o in everything:
                oc = o.get(m)
                if isinstance(oc, h5py.Dataset) and dtype(oc) == dtype(child) \
                        and oc.shape == child.shape and same_data(oc, child):
                    ok = True
                    break
            if ok:
                res["lost_found_datasets"] += 1
            else:
                res["wrong"].append("/lost+found/%s/%s" % (name, m))


def main():
    orig_path, salv_path = sys.argv[1], sys.argv[2]
    strict = "--strict" in sys.argv[3:]
    res = {"datasets": 0, "equal": 0, "partial_ok": 0, "unverified": 0, "groups": 0,
           "attributes": 0, "lost_found_matched": 0, "lost_found_datasets": 0,
           "wrong": [], "missing": [], "extra": []}
    with h5py.File(orig_path, "r", locking=False) as fo, \
            h5py.File(salv_path, "r", locking=False) as fs:
        lo, ls = listing(fo), listing(fs)
        for path, s in ls.items():
            if path.startswith("/lost+found"):
                continue
            if path not in lo:
                res["extra"].append(path)
                continue
            o = lo[path]
            if isinstance(s, h5py.Dataset) != isinstance(o, h5py.Dataset):
                res["wrong"].append(path + " (kind)")
                continue
            # Attributes: those present must be equal.
            ao, as_ = attrs_of(o), attrs_of(s)
            degraded = s.attrs.get("h5salvage_degraded", "")
            if isinstance(degraded, bytes):
                degraded = degraded.decode()
            for k, v in as_.items():
                res["attributes"] += 1
                if "@" + k in degraded:
                    continue  # declared degraded (e.g. a reference whose target was lost)
                if k not in ao or not same_array(ao[k], v, fo, fs):
                    res["wrong"].append("%s attribute %s" % (path, k))
            if strict and set(ao) != set(as_):
                res["missing"].append("%s attributes %s" % (path, sorted(set(ao) - set(as_))))
            if isinstance(s, h5py.Group):
                res["groups"] += 1
                continue
            if isinstance(s, h5py.Datatype):
                if s.dtype != o.dtype:
                    res["wrong"].append(path + " (committed datatype)")
                continue
            res["datasets"] += 1
            if dtype(s) != dtype(o) or s.shape != o.shape:
                res["wrong"].append("%s (dtype/shape %s %s vs %s %s)" % (
                    path, dtype(s), s.shape, dtype(o), o.shape))
                continue
            for prop in ("chunks", "compression", "compression_opts", "shuffle",
                         "fletcher32", "maxshape"):
                if getattr(s, prop) != getattr(o, prop):
                    res["wrong"].append("%s (%s %r vs %r)" % (
                        path, prop, getattr(s, prop), getattr(o, prop)))
            status = s.attrs.get("h5salvage_status")
            if status in (b"partial", "partial"):
                if strict:
                    res["wrong"].append(path + " (partial)")
                partial_ok(path, o, s, res, strict)
                continue
            fill_o, fill_s = fill_of(o), fill_of(s)
            if fill_o[0] != fill_s[0] or (
                    fill_o[0] == "value" and not same_array(fill_o[1], fill_s[1], fo, fs)):
                res["wrong"].append("%s (fill value %r vs %r)" % (path, fill_s, fill_o))
            try:
                equal = same_data(o, s)
            except Exception as e:
                res["wrong"].append("%s (read: %s)" % (path, e))
                continue
            if equal:
                res["equal"] += 1
            elif "h5salvage_unverified" in s.attrs and not strict:
                # Named as unverified (data in an all-zero page range of a
                # damaged file, over another object's bytes): not claimed
                # to be the original's.
                res["unverified"] += 1
            else:
                res["wrong"].append(path)
        match_lost_found(lo, fs, res)
        # Every object marked partial says what is missing.
        def unsaid(name, obj):
            st = obj.attrs.get("h5salvage_status")
            if st in (b"partial", "partial") and "h5salvage_missing" not in obj.attrs:
                res["wrong"].append("/%s (partial without h5salvage_missing)" % name)
        fs.visititems(unsaid)
        if strict:
            for path, o in lo.items():
                if path not in ls and not isinstance(o, h5py.Datatype):
                    res["missing"].append(path)
    json.dump(res, sys.stdout, indent=1)
    print()
    bad = res["wrong"] or (strict and (res["missing"] or res["extra"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

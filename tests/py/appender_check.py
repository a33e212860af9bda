#!/usr/bin/env python3
"""Check a salvaged killed appender row by row against the formula of
testdata/killed_appender.py.

Usage: appender_check.py SALVAGED.h5 META.json ORACLE.json

For every dataset the writer appended to (``/series0``, ...):
* at its path, every row is read with h5py and is either
  - ``at_path``: equal to the formula for (dataset, that row index),
  - missing: all zeros (fill value: an unallocated chunk), or
  - ``wrong``: anything else (a row at a wrong position, a damaged row);
* under ``/lost+found`` (every dataset, recursively), rows equal to the
  formula are found by value (aligned on the element size when the
  dataset's type is the series' element type, at every byte otherwise)
  and counted in ``lost_found`` (distinct rows not already at the path);
* ``on_disk``: the rows the oracle found in the killed file's bytes;
  ``proven_missing``: rows the oracle found, at or below META's
  ``rows_flushed`` (their position was in an index on disk at the last
  flush), that are not at the path; ``beyond_disk``: rows at the path the
  oracle did not find (should be none: nothing is invented).

Prints one JSON object: {"datasets": {name: {"shape", "partial",
"inferred", "at_path", "wrong", "wrong_rows" (first 10), "lost_found",
"on_disk", "recovered", "proven_missing", "beyond_disk"}},
"lost_found_datasets": N}.  Exit status 0 whatever the counts (the test
asserts on them); 2 when a file cannot be read.
"""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testdata"))
import appender_oracle as ao  # noqa: E402


def rows_at_path(lay, d, ds):
    """(set of correct row indexes, list of wrong ones)"""
    data = ds[()]
    n = data.shape[0] if data.ndim else 0
    good, wrong = set(), []
    if n == 0:
        return good, wrong
    if lay.table:
        if data.dtype.names is None or "x" not in data.dtype.names:
            return good, list(range(n))
        x = np.asarray(data["x"], dtype="<f8").reshape(n, lay.ncols)
        rowf = np.asarray(data["row"])
        zero = (rowf == 0) & np.all(x == 0, axis=1)
        exp = lay.expected(d, np.arange(n))
        ok = np.all(x == exp, axis=1) & (rowf == np.arange(n))
    else:
        x = data.reshape(n, lay.ncols)
        zero = np.all(x == 0, axis=1)
        exp = lay.expected(d, np.arange(n))
        ok = (x.dtype == lay.dtype) & np.all(x == exp, axis=1)
    good = set(np.nonzero(ok)[0].tolist())
    wrong = np.nonzero(~ok & ~zero)[0].tolist()
    return good, wrong


def lost_found_rows(lay, f):
    """{ds: set(rows)} found by value under /lost+found, and the number of
    datasets there."""
    found, count = {}, 0
    lf = f.get("lost+found")
    if lf is None:
        return found, 0
    items = []
    lf.visititems(lambda name, o: items.append(o) if isinstance(o, h5py.Dataset) else None)
    for o in items:
        count += 1
        try:
            data = o[()]
        except Exception:  # noqa: BLE001 (a type h5py cannot read: no rows)
            continue
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiuV":
            continue
        same = (data.dtype == lay.record) if lay.table else (data.dtype == lay.dtype)
        buf = np.ascontiguousarray(data).tobytes()
        for d, r, _ in ao.rows_in_buffer(lay, buf, aligned=bool(same)):
            found.setdefault(d, set()).add(r)
    return found, count


def attr_text(v):
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [attr_text(x) for x in v.tolist()]
    return str(v)


def main():
    out, meta_path, oracle_path = sys.argv[1:4]
    meta = json.load(open(meta_path))
    oracle = json.load(open(oracle_path))
    lay = ao.Layout(meta)
    try:
        f = h5py.File(out, "r")
    except OSError as e:
        print("cannot open %s: %s" % (out, e), file=sys.stderr)
        sys.exit(2)
    lf, lf_count = lost_found_rows(lay, f)
    res = {"datasets": {}, "lost_found_datasets": lf_count}
    for d, name in enumerate(meta["datasets"]):
        on_disk = set()
        for a, b in oracle["datasets"][name]["rows"]:
            on_disk.update(range(a, b))
        ds = f.get(name)
        good, wrong = (set(), [])
        shape, partial, inferred = None, False, None
        if isinstance(ds, h5py.Dataset):
            good, wrong = rows_at_path(lay, d, ds)
            shape = list(ds.shape)
            partial = attr_text(ds.attrs.get("h5salvage_status")) == "partial"
            inferred = attr_text(ds.attrs.get("h5salvage_inferred"))
        in_lf = lf.get(d, set()) - good
        proven = {r for r in on_disk if r < meta["rows_flushed"]}
        res["datasets"][name] = {
            "shape": shape,
            "partial": partial,
            "inferred": inferred,
            "at_path": len(good),
            "wrong": len(wrong),
            "wrong_rows": wrong[:10],
            "lost_found": len(in_lf),
            "on_disk": len(on_disk),
            "recovered": len((good | in_lf) & on_disk),
            "proven_missing": len(proven - good),
            "beyond_disk": len(good - on_disk),
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main()

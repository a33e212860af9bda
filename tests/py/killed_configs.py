#!/usr/bin/env python3
"""Check a salvaged killed-worker file against what killed_worker.py wrote.

Usage: killed_configs.py SALVAGED.h5 REPORT.jsonl

Every config group in the output (`/config_NNNN`, or a
`/lost+found/group_at_0x...` holding `metrics`, whose first `iter` value is
10 x its index) is compared value by value with the data the worker computes
for that index: `params`, `metrics`, `flags`, `log` and `trace` (one that
is lost or marked partial is counted in "incomplete" by name, not compared)
and the attributes present. Prints one JSON line:
{"completed", "named", "lost_found", "wrong": [paths], "incomplete": {name: n}}.
"""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testdata"))
import killed_worker  # noqa: E402


def expected(i):
    """The same values as killed_worker.write_config, recomputed."""
    f = h5py.File("expected-%d" % i, "w", driver="core", backing_store=False)
    g = killed_worker.write_config(f, i)
    out = {n: g[n][()] for n in g}
    attrs = dict(g.attrs)
    f.close()
    return out, attrs


def main():
    out, report = sys.argv[1], sys.argv[2]
    completed = {json.loads(line)["index"] for line in open(report)}
    f = h5py.File(out, "r")
    res = {"completed": len(completed), "named": 0, "lost_found": 0, "wrong": [], "incomplete": {}}

    def check(g, i):
        if i not in completed:
            res["wrong"].append(g.name + " (never completed)")
            return
        data, attrs = expected(i)
        for name, want in data.items():
            if name not in g or "h5salvage_status" in g[name].attrs:
                # Lost or marked partial (said, not wrong): counted by name.
                res["incomplete"][name] = res["incomplete"].get(name, 0) + 1
                continue
            got = g[name][()]
            if got.dtype.kind == "O":
                text = lambda a: [x.decode() if isinstance(x, bytes) else x for x in a]  # noqa: E731
                same = text(got) == text(want)
            else:
                same = got.dtype == want.dtype and np.array_equal(got, want)
            if not same:
                res["wrong"].append("%s/%s" % (g.name, name))
        for k, v in g.attrs.items():
            if k.startswith("h5salvage"):
                continue
            w = attrs.get(k)
            if isinstance(v, bytes) or isinstance(w, bytes) or isinstance(v, str):
                same = v == w
            else:
                same = np.array_equal(v, w)
            if not same:
                res["wrong"].append("%s @%s" % (g.name, k))

    for k, g in f.items():
        if k.startswith("config_"):
            res["named"] += 1
            check(g, int(k[len("config_"):]))
    lf = f.get("lost+found")
    for k, g in (lf.items() if lf is not None else []):
        if isinstance(g, h5py.Group) and "metrics" in g:
            res["lost_found"] += 1
            check(g, int(g["metrics"][0]["iter"]) // 10)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

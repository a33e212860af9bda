#!/usr/bin/env python3
"""What h5py (its bundled libhdf5) gives back of a killed appender
(testdata/killed_appender.py): the rows at each dataset's path that equal
the writer's formula, read one chunk's rows at a time (a slice that fails
to read gives nothing, the others still count).

Usage: appender_h5py.py FILE META.json

Prints one JSON object: {"open": null or the error h5py gave opening the
file, "datasets": {name: rows equal to the formula, or the error text when
the dataset cannot be opened}}.  Exit status 0 whatever it finds.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import appender_oracle as ao  # noqa: E402


def main():
    path, meta_path = sys.argv[1:3]
    meta = json.load(open(meta_path))
    lay = ao.Layout(meta)
    res = {"open": None, "datasets": {}}
    import h5py

    try:
        f = h5py.File(path, "r", locking=False)
    except Exception as e:  # noqa: BLE001 (what libhdf5 says is the result)
        res["open"] = str(e)[:200]
        print(json.dumps(res))
        return
    step = meta["chunk_rows"]
    for d, name in enumerate(meta["datasets"]):
        try:
            ds = f[name]
            n = ds.shape[0]
        except Exception as e:  # noqa: BLE001
            res["datasets"][name] = str(e)[:200]
            continue
        good = 0
        for a in range(0, n, step):
            b = min(n, a + step)
            try:
                x = ds[a:b]
            except Exception:  # noqa: BLE001 (an unreadable chunk gives nothing)
                continue
            if lay.table:
                ok = np.all(np.asarray(x["x"]).reshape(b - a, lay.ncols)
                            == lay.expected(d, np.arange(a, b)), axis=1)
                ok &= np.asarray(x["row"]) == np.arange(a, b)
            else:
                ok = np.all(np.asarray(x).reshape(b - a, lay.ncols)
                            == lay.expected(d, np.arange(a, b)), axis=1)
            good += int(ok.sum())
        res["datasets"][name] = good
    print(json.dumps(res))


if __name__ == "__main__":
    main()

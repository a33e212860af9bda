#!/usr/bin/env python3
"""Extract what one input contributed to a file, as a file compare.py can
check against that input's healthy reference.

usage: merge_view.py SRC OUT salvage
       merge_view.py SRC OUT merge INPUT STEM

salvage: SRC is the salvage of one input: its root groups except init,
         and /lost+found/*.
merge:   SRC is a merge output: the root groups whose h5salvage_source is
         INPUT, and /lost+found/STEM/*.
Copies go to OUT (h5py copy: stored chunks and attributes as they are),
unnamed groups under /lost+found. Prints a JSON summary (groups copied).
"""
import json
import sys

import h5py


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def main():
    src, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    source = sys.argv[4] if mode == "merge" else None
    stem = sys.argv[5] if mode == "merge" else None
    n = 0
    with h5py.File(src, "r", locking=False) as f, h5py.File(out, "w") as o:
        for name in f.keys():
            if name == "lost+found":
                continue
            g = f[name]
            if mode == "salvage":
                if name == "init" or not isinstance(g, h5py.Group):
                    continue
            elif text(g.attrs.get("h5salvage_source")) != source:
                continue
            f.copy(g, o, name=name)
            n += 1
        lf = f.get("lost+found")
        base = lf if mode == "salvage" else (lf.get(stem) if lf is not None else None)
        if base is not None:
            lo = o.require_group("lost+found")
            for name in base.keys():
                f.copy(base[name], lo, name=name)
                n += 1
    json.dump({"copied": n}, sys.stdout)
    print()


if __name__ == "__main__":
    main()

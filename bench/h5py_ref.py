#!/usr/bin/env python3
"""h5py reference workloads for bench/run.

    h5py_ref.py walk FILE           visititems: every object's shape, dtype and attributes
    h5py_ref.py copy IN OUT         out.copy(f[k], k) for every root member
    h5py_ref.py merge OUT IN...     h5_out.copy(h5_in[key], key) for every key of every input;
                                    a key already in OUT (e.g. `init`) is skipped: first wins
    h5py_ref.py merge-tolerant OUT IN...
                                    the same, but an input h5py cannot open and a key it cannot
                                    copy are skipped (what a careful user of h5py would write for
                                    a directory holding damaged workers)
"""
import sys

import h5py


def walk(path):
    n = 0
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            nonlocal n
            n += 1
            if isinstance(obj, h5py.Dataset):
                obj.shape, obj.dtype
            for _k, _v in obj.attrs.items():
                pass
        for _k, _v in f.attrs.items():
            pass
        f.visititems(visit)
    print(n, "objects")


def copy(src, dst):
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as out:
        for k in f:
            out.copy(f[k], k)


def merge(dst, srcs):
    with h5py.File(dst, "w") as out:
        for src in srcs:
            with h5py.File(src, "r") as f:
                for k in f:
                    if k not in out:
                        out.copy(f[k], k)


def merge_tolerant(dst, srcs):
    with h5py.File(dst, "w") as out:
        for src in srcs:
            try:
                f = h5py.File(src, "r")
            except Exception:  # noqa: BLE001 - damaged input: skipped
                continue
            with f:
                try:
                    keys = list(f)
                except Exception:  # noqa: BLE001
                    continue
                for k in keys:
                    if k in out:
                        continue
                    try:
                        out.copy(f[k], k)
                    except Exception:  # noqa: BLE001
                        if k in out:
                            del out[k]


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "walk":
        walk(args[0])
    elif cmd == "copy":
        copy(args[0], args[1])
    elif cmd == "merge":
        merge(args[0], args[1:])
    elif cmd == "merge-tolerant":
        merge_tolerant(args[0], args[1:])
    else:
        sys.exit(__doc__)

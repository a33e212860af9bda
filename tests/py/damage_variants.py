#!/usr/bin/env python3
"""Write the damaged variants sweep_damage.py makes of a healthy file.

usage: damage_variants.py ORIGINAL OUTDIR [--only KIND[,KIND]]

KIND: trunc, zero, flip (see sweep_damage.py). Each variant goes to
OUTDIR/<stem>.<variant>.h5; the names are printed, one per line.
"""
import os
import sys

from sweep_damage import variants


def main():
    orig, out = sys.argv[1:3]
    kinds = {"trunc", "zero", "flip"}
    if "--only" in sys.argv:
        kinds = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    with open(orig, "rb") as f:
        data = f.read()
    stem = os.path.splitext(os.path.basename(orig))[0]
    os.makedirs(out, exist_ok=True)
    for name, b in variants(data, kinds):
        p = os.path.join(out, "%s.%s.h5" % (stem, name))
        with open(p, "wb") as f:
            f.write(b)
        print(p)


if __name__ == "__main__":
    main()

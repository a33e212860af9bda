#!/usr/bin/env python3
"""A data-heavy HDF5 file, like simulation output: DATASETS float32
datasets of ROWS x 1024 in 256 x 1024 (1 MiB) gzip chunks, plus one
contiguous float32 dataset of CONTIG MiB (issue 15's data-heavy case).

    gen_data.py OUT [--datasets 4] [--rows 32768] [--contig-mib 64] [--level 4]
                    [--kind grid|smooth]

--kind grid (the default): smooth fields with a little noise, rounded to
a 1/1024 grid (gzip gets about 2:1; nearly all literals, the slowest
kind to inflate). --kind smooth: the same fields at full float32
precision with no noise, stored with shuffle + gzip, as netCDF-4 and
most simulation codes write them (about 1.75:1; long matches, inflates
about 2.5x faster per output byte). Deterministic (fixed seed).
"""

import argparse

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--contig-mib", type=int, default=64)
    ap.add_argument("--level", type=int, default=4)
    ap.add_argument("--kind", choices=("grid", "smooth"), default="grid")
    a = ap.parse_args()
    cols = 1024
    block = 256
    rng = np.random.default_rng(15)
    x = np.linspace(0, 8 * np.pi, cols, dtype=np.float32)
    with h5py.File(a.out, "w") as f:
        for d in range(a.datasets):
            ds = f.create_dataset("field_%02d" % d, (a.rows, cols), dtype="f4",
                                  chunks=(block, cols), compression="gzip",
                                  compression_opts=a.level, shuffle=a.kind == "smooth")
            for r0 in range(0, a.rows, block):
                n = min(block, a.rows - r0)
                t = (np.arange(r0, r0 + n, dtype=np.float32) / 997.0 + d)[:, None]
                v = np.sin(x[None, :] + t) * np.cos(0.5 * t)
                if a.kind == "smooth":
                    ds[r0:r0 + n] = v.astype(np.float32)
                    continue
                v += rng.standard_normal((n, cols)).astype(np.float32) * 0.01
                # Values on a 1/1024 grid: about 2:1 with gzip.
                ds[r0:r0 + n] = (np.round(v * 1024) / 1024).astype(np.float32)
        n = a.contig_mib * (1 << 20) // 4
        c = f.create_dataset("contiguous", (n,), dtype="f4")
        step = 1 << 22
        for i in range(0, n, step):
            m = min(step, n - i)
            c[i:i + m] = np.sin(np.arange(i, i + m, dtype=np.float64) / 1000.0).astype(np.float32)
        f.attrs["description"] = "h5salvage bench: data-heavy file"


if __name__ == "__main__":
    main()

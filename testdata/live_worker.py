#!/usr/bin/env python3
"""A worker file for the reliability tests: big, or still open.

Usage:
    python3 testdata/live_worker.py OUT.h5 [--configs N] [--prefix P]
        [--pad-mib M] [--hold]

Writes ``init`` and N config groups (the content of ``killed_worker.py``),
then, with ``--pad-mib``, a group ``padding`` holding a contiguous float64
dataset of M MiB (values 0, 1, 2, ...) so that the file is larger than
h5salvage's in-memory threshold (64 MiB) and gets memory-mapped.

With ``--hold`` the file is flushed, ``ready`` is printed and the process
waits for a line on stdin before closing the file: meanwhile libhdf5 holds
its lock on the file (a writer that is still running).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import killed_worker as kw  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--configs", type=int, default=5)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--pad-mib", type=int, default=0)
    ap.add_argument("--hold", action="store_true")
    args = ap.parse_args()
    f = kw.create_file(args.out, "earliest")
    kw.write_init(f)
    for i in range(args.configs):
        kw.write_config(f, i, args.prefix)
    if args.pad_mib:
        g = kw.new_group(f, "padding")
        n = args.pad_mib * (1 << 20) // 8
        g.create_dataset("values", data=np.arange(n, dtype="<f8"), track_times=False)
    if args.hold:
        f.flush()
        print("ready", flush=True)
        sys.stdin.readline()
    f.close()


if __name__ == "__main__":
    main()

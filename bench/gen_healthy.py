#!/usr/bin/env python3
"""Healthy worker file whose config groups start at a given index, so that the
files of a merge benchmark do not all hold the same names. Same content as
testdata/killed_worker.py (its functions are imported), closed normally.

    gen_healthy.py OUT.h5 --libver earliest|latest --configs N [--start S]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata"))
from killed_worker import create_file, write_config, write_init  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--libver", default="earliest")
ap.add_argument("--configs", type=int, default=1000)
ap.add_argument("--start", type=int, default=0)
a = ap.parse_args()
f = create_file(a.out, a.libver)
write_init(f)
for i in range(a.start, a.start + a.configs):
    write_config(f, i)
f.close()

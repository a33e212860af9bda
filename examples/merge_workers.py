#!/usr/bin/env python3
"""Merge the results of parallel workers into one file.

The script a parallel run already has: every worker wrote its configs as
root groups of its own ``worker_<pid>.h5``; this copies each root group
except ``init`` into ``results.h5`` with h5py. What changed: a file h5py
refuses (truncated, killed with the file open, first page lost) used to be
renamed ``.corrupted`` and its results lost; now it goes through
``h5salvage.salvage`` and what it held is copied like the rest. Only a file
with nothing recoverable in it is still renamed.

    python3 merge_workers.py [DIRECTORY]
"""

import glob
import os
import sys

import h5py

import h5salvage


def copy_groups(src, results, lost_found_name):
    """Copy every root group except ``init`` that results does not hold yet.
    A salvaged file's ``/lost+found`` (groups whose names were lost) goes
    under ``/lost+found/<worker>`` so that workers do not collide."""
    copied = 0
    for name in src:
        if name == "init":
            continue
        dest = name
        if name == "lost+found":
            dest = f"lost+found/{lost_found_name}"
        if dest in results:
            continue
        src.copy(src[name], results, name=dest)
        copied += 1
    return copied


def salvaged_copy(path, directory):
    """The salvaged version of a file h5py refuses (made once, kept in
    ``salvaged/``), or None if nothing in it can be recovered."""
    out_dir = os.path.join(directory, "salvaged")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, os.path.basename(path))
    if not os.path.exists(out):
        try:
            report = h5salvage.salvage(path, out)
        except h5salvage.NothingRecoverable:
            return None
        print(
            f"{path}: salvaged {report['recovered']} objects"
            f" ({report['partial']} partial, {report['lost']} lost) into {out}"
        )
    return out


def main(directory="."):
    results_path = os.path.join(directory, "results.h5")
    with h5py.File(results_path, "a") as results:
        for path in sorted(glob.glob(os.path.join(directory, "worker_*.h5"))):
            stem = os.path.splitext(os.path.basename(path))[0]
            try:
                with h5py.File(path, "r") as src:
                    n = copy_groups(src, results, stem)
                print(f"{path}: {n} groups copied")
                continue
            except OSError as e:
                print(f"{path}: h5py cannot read it ({e})")
            saved = salvaged_copy(path, directory)
            if saved is None:
                # Before h5salvage, every unreadable file ended here.
                os.rename(path, path + ".corrupted")
                print(f"{path}: nothing recoverable, renamed .corrupted")
                continue
            with h5py.File(saved, "r") as src:
                n = copy_groups(src, results, stem)
            print(f"{path}: {n} groups copied from the salvaged file")


if __name__ == "__main__":
    main(*sys.argv[1:])

#!/usr/bin/env python3
"""Imitate an optimisation worker writing an HDF5 file, meant to be killed.

Usage:
    python3 testdata/killed_worker.py OUT.h5 --libver earliest|latest --configs N
        [--flush-every K] [--report REPORT.jsonl] [--kill-self-after M]
        [--prefix P]

The worker writes a group ``init`` (attributes + a dataset) and then groups
``config_0000``, ``config_0001``, ... in a loop (``--prefix worker_3_`` names
them ``worker_3_config_0000``, ...; the content does not change).  Every
config group holds the
same kind of content (see ``write_config``): float/int/string attributes, a
contiguous float64 dataset, a chunked+gzip dataset, a compact dataset, a
variable-length string dataset and a compound dataset.  All values are a
deterministic function of the config index.

After each completed config a line is emitted (to REPORT, appended and
flushed, or to stdout, flushed):
    {"config": "config_0007", "index": 7, "flushed": true}
``flushed`` is true when ``f.flush()`` was called right after this config
(``--flush-every K``: after every K-th completed config).  Without
``--flush-every`` the file is never flushed explicitly.

The test harness is expected to SIGKILL the process.  With
``--kill-self-after M`` the process sends itself SIGKILL right after the M-th
config has been completed and reported (so tests are deterministic, no
timing involved).  Without it, the file is closed normally after N configs.

``generate.py`` imports ``create_file``, ``write_init`` and ``write_config``
from this module to build the checked-in worker_*.h5 fixtures, so the
fixture content and the killed-file content are the same.
"""

import argparse
import json
import os
import signal
import sys

import h5py
import numpy as np

# libver name -> (low, high) bounds, as h5py.File(libver=(low, high)) would set them
LIBVERS = {
    "earliest": ("EARLIEST", "LATEST"),
    "v108": ("V18", "LATEST"),
    "v110": ("V110", "LATEST"),
    "latest": ("LATEST", "LATEST"),
}

METRICS_DTYPE = np.dtype([("iter", "<i4"), ("loss", "<f8"), ("accepted", "u1"), ("tag", "S6")])
VSTR = h5py.string_dtype("utf-8")


def create_file(path, libver="earliest", userblock=0, track_order=False):
    """Create an HDF5 file with low-level calls so that the root group does
    not carry timestamps (obj_track_times=False) -> reproducible bytes."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    low, high = LIBVERS[libver]
    fapl.set_libver_bounds(getattr(h5py.h5f, "LIBVER_" + low), getattr(h5py.h5f, "LIBVER_" + high))
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    if userblock:
        fcpl.set_userblock(userblock)
    if track_order:
        fcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
        fcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    fid = h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def new_group(parent, name, track_order=False):
    """Create a group without timestamps (h5py's create_group has no
    track_times switch)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if track_order:
        gcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
        gcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl)
    return parent[name]


def create_compact(parent, name, data):
    """Dataset with H5D_COMPACT layout (raw data inside the object header)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return parent.create_dataset(name, data=data, dcpl=dcpl, track_times=False)


def write_init(f, n_params=16):
    g = new_group(f, "init")
    g.attrs["seed"] = np.int64(12345)
    g.attrs["n_params"] = np.int32(n_params)
    g.attrs["objective"] = "rosenbrock"  # variable-length utf-8 string
    g.attrs["bounds"] = np.array([[-5.0, 5.0]] * 4)
    g.attrs["worker"] = np.bytes_(b"worker-07")  # fixed-length string
    x0 = np.linspace(-1.0, 1.0, n_params)
    g.create_dataset("x0", data=x0, track_times=False)
    return g


def write_config(f, i, prefix=""):
    rng = np.random.default_rng(1000 + i)
    g = new_group(f, prefix + "config_%04d" % i)
    g.attrs["loss"] = float(rng.random() * 100.0)
    g.attrs["learning_rate"] = np.float32(10.0 ** -(1 + i % 4))
    g.attrs["step"] = np.int64(i)
    g.attrs["n_evals"] = np.int32(50 + i % 7)
    g.attrs["status"] = "ok" if i % 5 else "restarted"
    g.attrs["optimizer"] = np.bytes_(b"cma-es")
    # contiguous float64
    g.create_dataset("params", data=rng.standard_normal(32), track_times=False)
    # chunked + gzip
    trace = np.cumsum(rng.standard_normal(200)).astype("<f4")
    g.create_dataset("trace", data=trace, chunks=(50,), compression="gzip",
                     compression_opts=4, track_times=False)
    # compact
    create_compact(g, "flags", np.arange(8, dtype="i1") * (i % 3))
    # vlen strings
    log = np.array(["config %d start" % i, "evaluated %d points" % (50 + i % 7),
                    "done ✓" if i % 2 else "done"], dtype=object)
    g.create_dataset("log", data=log, dtype=VSTR, track_times=False)
    # compound
    m = np.zeros(5, dtype=METRICS_DTYPE)
    m["iter"] = np.arange(5) + 10 * i
    m["loss"] = rng.random(5)
    m["accepted"] = rng.integers(0, 2, 5)
    m["tag"] = [b"a%d" % k for k in range(5)]
    g.create_dataset("metrics", data=m, track_times=False)
    return g


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--libver", choices=sorted(LIBVERS), default="earliest")
    ap.add_argument("--configs", type=int, default=10)
    ap.add_argument("--flush-every", type=int, default=0)
    ap.add_argument("--report", default=None)
    ap.add_argument("--kill-self-after", type=int, default=None)
    ap.add_argument("--prefix", default="", help="prefix of the config group names")
    args = ap.parse_args(argv)

    report = open(args.report, "a") if args.report else sys.stdout
    f = create_file(args.out, args.libver)
    write_init(f)
    if args.flush_every:
        f.flush()
    for i in range(args.configs):
        write_config(f, i, args.prefix)
        flushed = False
        if args.flush_every and (i + 1) % args.flush_every == 0:
            f.flush()
            flushed = True
        report.write(json.dumps({"config": args.prefix + "config_%04d" % i, "index": i, "flushed": flushed}) + "\n")
        report.flush()
        if args.kill_self_after is not None and i + 1 >= args.kill_self_after:
            os.kill(os.getpid(), signal.SIGKILL)
    f.close()
    if report is not sys.stdout:
        report.close()


if __name__ == "__main__":
    main()

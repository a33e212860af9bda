#!/usr/bin/env python3
"""The ecosystem's writers killed with SIGKILL part-way, for tests/eco_killed.rs.

usage:
    killed_eco.py anndata OUT.h5ad [--gzip] [--kill-at-bytes B] [--rows R]
    killed_eco.py pandas OUT.h5 [--appends N] [--kill-after K | --kill-at-bytes B] [--no-flush]

anndata: an AnnData whose X is R x 1000 float32 (dense, contiguous; with
--gzip chunked and gzip-compressed as `write_h5ad(compression="gzip")`
writes it), obs/var dataframes with a categorical and a string column,
written by `write_h5ad`. Values are a formula of the position (X[i, j] =
(i * 7 + j) % 1009 / 8), so the killed and the whole file hold the same
bytes where both hold them. With --kill-at-bytes a child process writes
and this one SIGKILLs it as soon as the file has reached B bytes (polled
every millisecond); prints {"killed": true, "size": ...}. Without it the
file is written whole (the original the killed one is compared with).

pandas: an HDFStore `append` loop (format='table', a data column, zlib),
N appends of 500 rows to the key "log" and of 100 rows to "stats", the
store flushed after each append (`store.flush()`), as a long run logs its
progress. With --kill-after K the process SIGKILLs itself right after
the K-th append was flushed (deterministic); prints one JSON line per
flushed append: {"append": k, "log_rows": n, "stats_rows": m}. With
--no-flush nothing is flushed (the usual loop: PyTables and libhdf5 write
when their buffers and caches fill).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np


def anndata_write(out, rows, gzip):
    import anndata as ad
    import pandas as pd
    cols = 1000
    x = ((np.arange(rows)[:, None] * 7 + np.arange(cols)[None, :]) % 1009 / 8).astype(np.float32)
    obs = pd.DataFrame({
        "kind": pd.Categorical(["a", "b", "c", "d"] * (rows // 4) + ["a"] * (rows % 4)),
        "name": ["c%d" % i for i in range(rows)],
    }, index=["cell%06d" % i for i in range(rows)])
    var = pd.DataFrame({"gene": ["g%d" % j for j in range(cols)]},
                       index=["v%05d" % j for j in range(cols)])
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.uns["note"] = "killed_eco"
    a.write_h5ad(out, compression="gzip" if gzip else None)


def killed_at_bytes(args):
    """Runs this script's writer without --kill-at-bytes in a child and
    SIGKILLs it once the file has reached args.kill_at_bytes bytes."""
    if os.path.exists(args.out):
        os.remove(args.out)
    cmd = [sys.executable, __file__, args.writer, args.out, "--rows", str(args.rows),
           "--appends", str(args.appends)]
    if args.gzip:
        cmd.append("--gzip")
    if args.no_flush:
        cmd.append("--no-flush")
    child = subprocess.Popen(cmd)
    deadline = time.time() + 600
    size = 0
    while child.poll() is None and time.time() < deadline:
        size = os.path.getsize(args.out) if os.path.exists(args.out) else 0
        if size >= args.kill_at_bytes:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    rc = child.wait()
    print(json.dumps({"killed": rc == -signal.SIGKILL, "size": os.path.getsize(args.out)}))
    sys.exit(0 if rc == -signal.SIGKILL else 1)


def pandas_rows(part, n, seed):
    """Rows of one append: a formula of (part, row)."""
    import pandas as pd
    k = np.arange(part * n, (part + 1) * n)
    return pd.DataFrame({
        "step": k,
        "loss": 1.0 / (k + 1),
        "tag": ["s%d" % (v % 13) for v in k],
        "seed": np.full(n, seed, np.int32),
    }, index=pd.RangeIndex(part * n, (part + 1) * n))


def pandas_loop(args):
    import pandas as pd
    if os.path.exists(args.out):
        os.remove(args.out)
    st = pd.HDFStore(args.out, "w", complevel=5, complib="zlib")
    for k in range(args.appends):
        st.append("log", pandas_rows(k, 500, 1), format="table", data_columns=["step"],
                  min_itemsize={"tag": 8}, index=False)
        st.append("stats", pandas_rows(k, 100, 2), format="table", index=False)
        if not args.no_flush:
            st.flush()
        print(json.dumps({"append": k + 1, "log_rows": (k + 1) * 500,
                          "stats_rows": (k + 1) * 100}), flush=True)
        if args.kill_after and k + 1 == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    st.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("writer", choices=["anndata", "pandas"])
    p.add_argument("out")
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--rows", type=int, default=8000)
    p.add_argument("--kill-at-bytes", type=int, default=0)
    p.add_argument("--appends", type=int, default=40)
    p.add_argument("--kill-after", type=int, default=0)
    p.add_argument("--no-flush", action="store_true")
    args = p.parse_args()
    if args.kill_at_bytes:
        killed_at_bytes(args)
    elif args.writer == "anndata":
        anndata_write(args.out, args.rows, args.gzip)
    else:
        pandas_loop(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Imitate a simulation appending rows to resizable datasets, killed with
its file open (SIGKILL, nothing closed, nothing flushed since the last
``--flush-every`` step).

Usage:
    python3 testdata/killed_appender.py OUT --writer {h5py,h5py-swmr,netcdf4,pytables}
        [--libver {earliest,latest}] [--filter {gzip,none,shuffle-gzip,shuffle-gzip-fletcher32}]
        [--rank {1,2,3}] [--cols N[,M]] [--dtype {f8,f4,i4}] [--datasets {1,2}]
        [--chunk-rows C] [--rows-per-step K] [--flush-every F]
        [--kill-after-steps N] [--meta META.json]
        [--mdc-kib M] [--chunk-cache-kib C] [--max-rows R] [--flush-after-create]
        [--unlimited {first,all}] [--nc-chunking {explicit,default}] [--time-variable]

``--mdc-kib`` / ``--chunk-cache-kib`` shrink libhdf5's metadata and chunk
caches (h5py writers) so index nodes and chunks reach the file as they would
in a run a hundred times longer: a 2 MB test file then holds what a 200 MB
one does (a header and index root from the last flush, newer index blocks
and chunks past them).

What it writes (all at the root of OUT):
  * ``--datasets D`` datasets ``series0``, ``series1``, ... , each of shape
    ``(rows,) + cols`` growing along the first axis (maxshape None / the
    unlimited netCDF dimension ``time``), chunks ``(C,) + cols``
    (netCDF4 with ``--nc-chunking default``: no ``chunksizes``, netCDF-C
    chooses them, as netCDF4-python's and xarray's defaults do)
    (``--unlimited all``, h5py writers: every dimension's maxshape is None,
    so libver latest indexes the chunks with a version-2 B-tree); for
    ``--writer pytables`` tables ``series0``, ... whose records are
    ``(row: int64, x: float64[cols])`` (PyTables' own layout);
  * ``K`` rows per step to every dataset, in turn (series0 then series1);
  * netCDF4 with ``--time-variable``: a coordinate variable ``time``
    (float64, default chunking) gets ``row + 1`` for each row appended,
    after the series of the step (as a model writing its time axis does);
  * ``f.flush()`` after every F-th step (never without ``--flush-every``);
  * after step N it SIGKILLs itself (``os.kill(os.getpid(), SIGKILL)``):
    no close, no flush.  Without ``--kill-after-steps`` it closes the file
    normally after ``--steps`` steps (a healthy reference file).

Before the first step META (default ``OUT.json``) is written (atomically)
with every parameter plus ``rows_written`` (= N x K, per dataset) and
``rows_flushed`` (rows at the last flush, 0 if none): the killed file plus
META is all a checker needs, because every value is a function of
(dataset, row, column) that encodes the row index (see ``value``).  A
value is never 0, so a row read back as zeros is a row never written (the
fill value of an unallocated chunk).

``tests/py/appender_oracle.py`` finds the rows physically present in the
killed file from its bytes alone; ``tests/py/appender_check.py`` compares a
salvaged file with the formula row by row.
"""

import argparse
import json
import os
import signal
import sys

import numpy as np

FILTERS = ("gzip", "none", "shuffle-gzip", "shuffle-gzip-fletcher32")
WRITERS = ("h5py", "h5py-swmr", "netcdf4", "pytables")
DEFAULT_COLS = {1: (), 2: (50,), 3: (30, 40)}


# ---------------------------------------------------------------- values

def value(dtype, ds, row, col):
    """The value of element ``col`` (flat index within the row) of row
    ``row`` of dataset ``ds``.  Exact in its dtype and never 0; ``decode``
    recovers (ds, row) from any single element.

    f8: ((ds+1) * 2^24 + row) * 2^16 + col   (row < 2^24, col < 2^16)
    f4: ((ds+1) * 2^20 + row) * 4 + col % 4  (row < 2^20)
    i4: ((ds+1) * 2^22 + row) * 2^6 + col % 64 (row < 2^22)
    Works on numpy arrays (broadcasting) as well as on scalars.
    """
    dt = np.dtype(dtype)
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    if dt.kind == "f" and dt.itemsize == 8:
        return (((ds + 1) << 24) + row) * (1 << 16) + col
    if dt.kind == "f" and dt.itemsize == 4:
        return (((ds + 1) << 20) + row) * 4 + col % 4
    if dt.kind == "i" and dt.itemsize == 4:
        return (((ds + 1) << 22) + row) * 64 + col % 64
    raise ValueError("unsupported dtype %s" % dt)


def decode(dtype, values):
    """(ds, row, colpart) of each element in ``values`` (numpy array of
    ``dtype``), or -1 where the element cannot be one ``value`` makes."""
    dt = np.dtype(dtype)
    v = np.asarray(values)
    if dt.kind == "f":
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (v >= 0) & (v == np.floor(v)) & (v < 2.0**52)
        n = np.where(ok, v, 0).astype(np.int64)
    else:
        ok = v >= 0
        n = np.where(ok, v, 0).astype(np.int64)
    if dt.kind == "f" and dt.itemsize == 8:
        colbits, rowbits = 16, 24
    elif dt.kind == "f" and dt.itemsize == 4:
        colbits, rowbits = 2, 20
    else:
        colbits, rowbits = 6, 22
    col = n & ((1 << colbits) - 1)
    row = (n >> colbits) & ((1 << rowbits) - 1)
    ds = (n >> (colbits + rowbits)) - 1
    ok &= (ds >= 0) & (ds < 8)
    return np.where(ok, ds, -1), np.where(ok, row, -1), np.where(ok, col, -1)


def colpart(dtype, col):
    """What ``decode`` gives back as the column part for flat column ``col``."""
    dt = np.dtype(dtype)
    col = np.asarray(col, dtype=np.int64)
    if dt.kind == "f" and dt.itemsize == 8:
        return col
    if dt.kind == "f" and dt.itemsize == 4:
        return col % 4
    return col % 64


def rows_block(dtype, ds, start, n, cols):
    """Rows start..start+n of dataset ds, shape (n,) + cols, in ``dtype``."""
    ncols = int(np.prod(cols)) if cols else 1
    r = np.arange(start, start + n, dtype=np.int64)[:, None]
    c = np.arange(ncols, dtype=np.int64)[None, :]
    return value(dtype, ds, r, c).astype(dtype).reshape((n,) + tuple(cols))


def table_dtype(cols):
    """The record of a PyTables series: (row int64, x float64[cols])."""
    return np.dtype([("row", "<i8"), ("x", "<f8", tuple(cols) if cols else ())])


def table_block(ds, start, n, cols):
    rec = np.zeros(n, dtype=table_dtype(cols))
    rec["row"] = np.arange(start, start + n)
    rec["x"] = rows_block("<f8", ds, start, n, cols)
    return rec


# ---------------------------------------------------------------- writers

def h5py_writer(args, swmr):
    import h5py

    bounds = ("latest", "latest") if swmr or args.libver == "latest" else ("earliest", "latest")
    kw = {"rdcc_nbytes": args.chunk_cache_kib * 1024} if args.chunk_cache_kib else {}
    f = h5py.File(args.out, "w", libver=bounds, **kw)
    if args.mdc_kib:
        small_metadata_cache(f.id, args.mdc_kib)
    comp = {}
    if args.filter == "gzip":
        comp = dict(compression="gzip", compression_opts=4)
    elif args.filter == "shuffle-gzip":
        comp = dict(compression="gzip", compression_opts=4, shuffle=True)
    elif args.filter == "shuffle-gzip-fletcher32":
        comp = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
    dsets = []
    trailing = (None,) * len(args.cols) if args.unlimited == "all" else args.cols
    for d in range(args.datasets):
        dsets.append(f.create_dataset(
            "series%d" % d, shape=(0,) + args.cols, maxshape=(args.max_rows,) + trailing,
            chunks=(args.chunk_rows,) + args.cols, dtype=args.dtype, **comp))
    if swmr:
        f.swmr_mode = True
    if args.flush_after_create:
        f.flush()

    def append(d, start, n):
        ds = dsets[d]
        ds.resize((start + n,) + args.cols)
        ds[start:start + n] = rows_block(args.dtype, d, start, n, args.cols)

    def flush():
        if swmr:
            for ds in dsets:
                ds.flush()
        f.flush()

    return append, flush, f.close


def small_metadata_cache(fid, kib):
    """A fixed metadata cache of ``kib`` KiB (no resizing): index nodes
    leave it (are written to the file) as they would in a run with many
    more chunks or datasets."""
    c = fid.get_mdc_config()
    c.set_initial_size = True
    c.initial_size = c.min_size = c.max_size = kib * 1024
    c.incr_mode = 0  # H5C_incr__off
    c.flash_incr_mode = 0  # H5C_flash_incr__off
    c.decr_mode = 0  # H5C_decr__off
    c.apply_max_increment = c.apply_max_decrement = False
    fid.set_mdc_config(c)


def netcdf4_writer(args):
    import netCDF4

    f = netCDF4.Dataset(args.out, "w", format="NETCDF4")
    f.createDimension("time", None)
    dims = ["time"]
    for i, n in enumerate(args.cols):
        f.createDimension("d%d" % i, n)
        dims.append("d%d" % i)
    comp = {}
    if args.filter == "gzip":
        comp = dict(zlib=True, complevel=4, shuffle=False)
    elif args.filter == "shuffle-gzip":
        comp = dict(zlib=True, complevel=4, shuffle=True)
    elif args.filter == "shuffle-gzip-fletcher32":
        comp = dict(zlib=True, complevel=4, shuffle=True, fletcher32=True)
    else:
        comp = dict(zlib=False, shuffle=False)
    if args.nc_chunking == "explicit":
        comp["chunksizes"] = (args.chunk_rows,) + args.cols
    vs = []
    for d in range(args.datasets):
        vs.append(f.createVariable("series%d" % d, np.dtype(args.dtype), tuple(dims), **comp))
    tv = f.createVariable("time", "f8", ("time",)) if args.time_variable else None
    if args.chunk_cache_kib:
        for v in vs:
            v.set_var_chunk_cache(size=args.chunk_cache_kib * 1024)
    # The chunk rows netCDF-C chose (META records what the file holds).
    args.chunk_rows = vs[0].chunking()[0]

    def append(d, start, n):
        vs[d][start:start + n] = rows_block(args.dtype, d, start, n, args.cols)
        if tv is not None and d == args.datasets - 1:
            tv[start:start + n] = time_values(start, n)

    return append, f.sync, f.close


def time_values(start, n):
    """The netCDF ``time`` coordinate of rows start..start+n (never 0)."""
    return np.arange(start + 1, start + n + 1, dtype="<f8")


def pytables_writer(args):
    import tables

    if args.filter == "none":
        filt = tables.Filters(complevel=0)
    elif args.filter == "gzip":
        filt = tables.Filters(complevel=4, complib="zlib", shuffle=False)
    elif args.filter == "shuffle-gzip":
        filt = tables.Filters(complevel=4, complib="zlib", shuffle=True)
    else:
        filt = tables.Filters(complevel=4, complib="zlib", shuffle=True, fletcher32=True)
    f = tables.open_file(args.out, "w")
    desc = {"row": tables.Int64Col(pos=0),
            "x": tables.Float64Col(shape=args.cols, pos=1)}
    ts = [f.create_table("/", "series%d" % d, desc, filters=filt,
                         chunkshape=(args.chunk_rows,)) for d in range(args.datasets)]

    def append(d, start, n):
        ts[d].append(table_block(d, start, n, args.cols))

    return append, f.flush, f.close


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--writer", choices=WRITERS, default="h5py")
    p.add_argument("--libver", choices=("earliest", "latest"), default="earliest")
    p.add_argument("--filter", choices=FILTERS, default="gzip")
    p.add_argument("--rank", type=int, choices=(1, 2, 3), default=2)
    p.add_argument("--cols", help="trailing dims, e.g. 50 or 30,40 (default by rank)")
    p.add_argument("--dtype", choices=("f8", "f4", "i4"), default=None,
                   help="element type (default f8; f4 for netcdf4; PyTables: f8 records)")
    p.add_argument("--datasets", type=int, choices=(1, 2), default=1)
    p.add_argument("--chunk-rows", type=int, default=64)
    p.add_argument("--rows-per-step", type=int, default=10)
    p.add_argument("--flush-every", type=int, default=0)
    p.add_argument("--kill-after-steps", type=int, default=None)
    p.add_argument("--steps", type=int, default=None,
                   help="steps before a normal close (without --kill-after-steps)")
    p.add_argument("--meta", default=None)
    p.add_argument("--mdc-kib", type=int, default=0,
                   help="h5py writers: fixed metadata cache of this size (index nodes are "
                   "evicted to the file as in a much longer run)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="h5py writers: a fixed maximum number of rows instead of unlimited "
                   "(libver latest then indexes chunks with a fixed array)")
    p.add_argument("--flush-after-create", action="store_true",
                   help="h5py writers: flush once right after creating the datasets")
    p.add_argument("--chunk-cache-kib", type=int, default=0,
                   help="h5py and netcdf4 writers: chunk cache size (rdcc_nbytes; "
                   "netCDF4 set_var_chunk_cache of each series)")
    p.add_argument("--unlimited", choices=("first", "all"), default="first",
                   help="h5py writers: which dimensions are unlimited (all: libver latest "
                   "then indexes chunks with a version-2 B-tree)")
    p.add_argument("--nc-chunking", choices=("explicit", "default"), default="explicit",
                   help="netcdf4: explicit chunksizes (C,) + cols, or netCDF-C's default")
    p.add_argument("--time-variable", action="store_true",
                   help="netcdf4: a float64 coordinate variable time, written every step")
    a = p.parse_args(argv)
    if a.cols is None:
        a.cols = DEFAULT_COLS[a.rank]
    else:
        a.cols = tuple(int(x) for x in a.cols.split(",") if x)
        if len(a.cols) != a.rank - 1:
            p.error("--cols gives %d dims, --rank %d needs %d" % (len(a.cols), a.rank, a.rank - 1))
    if a.dtype is None:
        a.dtype = "f4" if a.writer == "netcdf4" else "f8"
    if a.writer == "pytables":
        a.dtype = "f8"
    a.dtype = "<" + a.dtype
    if a.kill_after_steps is None and a.steps is None:
        p.error("give --kill-after-steps or --steps")
    if int(np.prod(a.cols or (1,))) >= 1 << 16:
        p.error("too many columns for the value formula")
    a.meta = a.meta or a.out + ".json"
    return a


def rows_flushed(args):
    """Rows per dataset at the last flush before the kill."""
    n = args.kill_after_steps if args.kill_after_steps is not None else args.steps
    if not args.flush_every:
        return 0
    return (n // args.flush_every) * args.flush_every * args.rows_per_step


def write_meta(args):
    n = args.kill_after_steps if args.kill_after_steps is not None else args.steps
    meta = {
        "writer": args.writer, "libver": args.libver, "filter": args.filter,
        "rank": args.rank, "cols": list(args.cols), "dtype": args.dtype,
        "record_dtype": (table_dtype(args.cols).descr if args.writer == "pytables" else None),
        "datasets": ["series%d" % d for d in range(args.datasets)],
        "chunk_rows": args.chunk_rows, "rows_per_step": args.rows_per_step,
        "flush_every": args.flush_every, "steps": n,
        "mdc_kib": args.mdc_kib, "chunk_cache_kib": args.chunk_cache_kib,
        "max_rows": args.max_rows, "flush_after_create": args.flush_after_create,
        "unlimited": args.unlimited,
        "nc_chunking": args.nc_chunking, "time_variable": args.time_variable,
        "killed": args.kill_after_steps is not None,
        "rows_written": n * args.rows_per_step,
        "rows_flushed": rows_flushed(args),
    }
    tmp = args.meta + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(meta, fh, indent=1)
    os.replace(tmp, args.meta)


def main(argv):
    args = parse_args(argv)
    if args.writer in ("h5py", "h5py-swmr"):
        append, flush, close = h5py_writer(args, args.writer == "h5py-swmr")
    elif args.writer == "netcdf4":
        append, flush, close = netcdf4_writer(args)
    else:
        append, flush, close = pytables_writer(args)
    write_meta(args)
    n = args.kill_after_steps if args.kill_after_steps is not None else args.steps
    k = args.rows_per_step
    for step in range(n):
        for d in range(args.datasets):
            append(d, step * k, k)
        if args.flush_every and (step + 1) % args.flush_every == 0:
            flush()
    if args.kill_after_steps is not None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    close()


if __name__ == "__main__":
    main(sys.argv[1:])

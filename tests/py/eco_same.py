#!/usr/bin/env python3
"""Read ORIGINAL and SALVAGED with the library that wrote them, as its user
would, and compare what it gives.

usage: eco_same.py ORIGINAL SALVAGED

By extension: .h5ad with anndata.read_h5ad (X, obs, var, obsm, varm,
layers, uns, raw); .mat with hdf5storage.loadmat; .nc with
xarray.open_dataset (the root and every group, `identical`: values,
coordinates, attributes, encodings decoded the same way); an .h5 holding
pandas HDFStore keys with pandas.read_hdf (each key, frames equal with
dtypes, index and column order). Prints one line per difference; exit
status 1 if there was any.
"""
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
bad = []


def same(a, b, where):
    """Two values a library returned are equal: arrays by dtype, shape and
    values (NaN equal to NaN), mappings key by key, frames with pandas'
    own check."""
    import pandas as pd
    import scipy.sparse as sp
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or list(a) != list(b):
            bad.append(f"{where}: keys {list(a)} vs {list(b) if isinstance(b, dict) else b!r}")
            return
        for k in a:
            same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, pd.DataFrame) or isinstance(a, pd.Series):
        try:
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b, check_exact=True)
            else:
                pd.testing.assert_series_equal(a, b, check_exact=True)
        except AssertionError as e:
            bad.append(f"{where}: {str(e)[:300]}")
    elif sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)) or a.format != b.format \
                or a.dtype != b.dtype or a.shape != b.shape or (a != b).nnz:
            bad.append(f"{where}: sparse matrices differ")
    elif isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            bad.append(f"{where}: {a!r} vs {b!r}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    else:
        x, y = np.asarray(a), np.asarray(b)
        if x.dtype != y.dtype or x.shape != y.shape:
            bad.append(f"{where}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        elif x.dtype.kind == "O":
            for i, (p, q) in enumerate(zip(x.ravel(), y.ravel())):
                same(p, q, f"{where}[{i}]")
        elif x.tobytes() != y.tobytes():
            bad.append(f"{where}: values differ")


def anndata_same(orig, out):
    import anndata as ad
    a, b = ad.read_h5ad(orig), ad.read_h5ad(out)
    same(a.X, b.X, "X")
    same(a.obs, b.obs, "obs")
    same(a.var, b.var, "var")
    for part in ("obsm", "varm", "layers", "obsp", "varp"):
        same(dict(getattr(a, part)), dict(getattr(b, part)), part)
    same(a.uns, b.uns, "uns")
    if (a.raw is None) != (b.raw is None):
        bad.append("raw: present in one only")
    elif a.raw is not None:
        same(a.raw.X, b.raw.X, "raw/X")
        same(a.raw.var, b.raw.var, "raw/var")


def pandas_same(orig, out):
    import pandas as pd
    with pd.HDFStore(orig, "r") as x, pd.HDFStore(out, "r") as y:
        kx, ky = sorted(x.keys()), sorted(y.keys())
        if kx != ky:
            bad.append(f"keys {kx} vs {ky}")
        read = 0
        for k in kx:
            try:
                want = x.get(k)
            except Exception:  # a group pandas lists but cannot read ("/")
                continue
            read += 1
            if k not in ky:
                continue
            same(want, y.get(k), k)
            sx, sy = x.get_storer(k), y.get_storer(k)
            if sx.format_type != sy.format_type:
                bad.append(f"{k}: format differs")
            # A query on a data column reads through the table's index.
            if sx.format_type == "table" and "i" in (sx.data_columns or []):
                same(x.select(k, "i > 0"), y.select(k, "i > 0"), k + "[i > 0]")
        if not read:
            bad.append("no key pandas can read in the original")


def without_marks(d):
    """An xarray Dataset without h5salvage's own attributes (the root's
    provenance marks)."""
    d.attrs = {k: v for k, v in d.attrs.items() if not k.startswith("h5salvage_")}
    return d


def xarray_same(orig, out):
    import h5py
    import xarray as xr
    groups = [None]
    with h5py.File(orig, "r") as f:
        f.visit(lambda n: groups.append(n) if isinstance(f[n], h5py.Group) else None)
    for g in groups:
        with xr.open_dataset(orig, group=g) as a, xr.open_dataset(out, group=g) as b:
            a.load()
            without_marks(b.load())
            if not a.identical(b):
                bad.append(f"group {g or '/'}: xarray datasets not identical:\n{a}\n{b}")
            for n in a.variables:
                if n in b.variables and a[n].encoding.get("dtype") != b[n].encoding.get("dtype"):
                    bad.append(f"{g}/{n}: encoding dtype differs")


def matlab_same(orig, out):
    import tempfile
    import hdf5storage
    # loadmat takes a name without .mat as NAME.mat (scipy's rule).
    with tempfile.TemporaryDirectory() as d:
        link = os.path.join(d, "out.mat")
        os.symlink(os.path.abspath(out), link)
        same(hdf5storage.loadmat(orig), hdf5storage.loadmat(link), "mat")


def main():
    orig, out = sys.argv[1:3]
    ext = os.path.splitext(orig)[1]
    if ext == ".h5ad":
        anndata_same(orig, out)
    elif ext == ".mat":
        matlab_same(orig, out)
    elif ext == ".nc":
        xarray_same(orig, out)
    else:
        pandas_same(orig, out)
    for b in bad:
        print(b)
    print(f"{len(bad)} differences")
    sys.exit(1 if bad else 0)


main()

#!/usr/bin/env python3
"""Healthy files with writers and features the checked-in fixtures lack,
made at test time for the adversarial sweep (tests/sweep.rs).

usage: sweep.py OUTDIR [NAME ...]

Writes into OUTDIR (every file is small, a few hundred KiB at most):

* corners_{earliest,latest}.h5 (h5py): null and scalar dataspaces, 0-size
  contiguous / chunked / maxshape datasets, fixed strings (ASCII/UTF-8,
  null-terminated, null-padded, space-padded), opaque with tags, nested
  compounds with arrays of compounds, enums over 1/2/4/8-byte and
  big-endian bases, bitfields, big-endian compounds, scale-offset and
  n-bit filters, fletcher32 alone, compact layout of several types,
  track_order groups/attributes, soft and external links, very long link
  and attribute names, dense attributes, object and region references
  (also inside compounds), fill values, alloc-time early with fill-time
  never, empty (h5py.Empty) attributes, array-of-array types, vlen of
  enum, non-ASCII names.
* space_{paged,aligned,earliest}.h5 (h5py): paged file space with
  persistent free-space managers; alignment and a metadata block size at
  libver (earliest, v108); earliest. Each with timestamps left on, a v1
  header with continuation blocks, dense attributes from the first, a
  rank-6 chunked dataset, soft-link chains, an absolute external link, a
  committed type used by an attribute, a deleted dataset.
* h5netcdf_invalid.h5 (h5netcdf, invalid_netcdf=True): complex, bool,
  enum, vlen strings, groups, dimension scales.
* netcdf4_types.nc (netCDF4-python): user-defined compound, enum, vlen
  types, nested groups, string variables, fill values, endian='big',
  contiguous storage, shuffle+zlib+fletcher32.
* pytables_misc.h5 (PyTables): enum and string columns, VLArrays
  (objects/strings/unicode), an indexed column, pickled attributes.
"""
import os
import sys

import h5py
import numpy as np

OUT = sys.argv[1]
WANT = set(sys.argv[2:])


def want(name):
    return not WANT or name in WANT


def ds(g, name, **kw):
    kw.setdefault("track_times", False)
    return g.create_dataset(name, **kw)


def fixed_str(size, cset, pad):
    t = h5py.h5t.C_S1.copy()
    t.set_size(size)
    t.set_cset(cset)
    t.set_strpad(pad)
    return t


def lowlevel(g, name, tid, shape, data, dcpl=None, mtype=None):
    sp = h5py.h5s.create(h5py.h5s.NULL) if shape is None else (
        h5py.h5s.create(h5py.h5s.SCALAR) if shape == () else h5py.h5s.create_simple(shape))
    d = h5py.h5d.create(g.id, name.encode(), tid, sp, dcpl=dcpl)
    if data is not None:
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, data, mtype=mtype or tid)
    return d


def corners(libver):
    path = os.path.join(OUT, "corners_%s.h5" % libver)
    f = h5py.File(path, "w", libver=libver)
    rng = np.random.default_rng(5)
    sp = f.create_group("spaces")
    ds(sp, "null_f8", data=h5py.Empty("<f8"))
    ds(sp, "scalar_i2", data=np.int16(-3))
    ds(sp, "scalar_str", data=np.bytes_(b"scalar"))
    ds(sp, "scalar_vlen", data="héllo", dtype=h5py.string_dtype())
    ds(sp, "empty_contig", shape=(0,), dtype="<i4")
    ds(sp, "empty_chunked", shape=(0, 5), chunks=(4, 5), maxshape=(None, 5), dtype="<f4")
    ds(sp, "empty_chunked_gzip", shape=(0,), chunks=(16,), maxshape=(None,), dtype="<i8",
       compression="gzip")
    ds(sp, "maxshape_unlim_2d", data=np.arange(12).reshape(3, 4), chunks=(2, 2),
       maxshape=(None, None))
    ds(sp, "chunk_bigger", data=np.arange(5, dtype="u2"), chunks=(100,), maxshape=(None,))
    ds(sp, "zero_rows_fill", shape=(0, 3), maxshape=(10, 3), chunks=(2, 3), dtype="i4",
       fillvalue=9)
    ds(sp, "three_d_edges", data=rng.integers(0, 100, (5, 7, 3)).astype("i1"), chunks=(2, 3, 2))
    sp.attrs["empty_attr"] = h5py.Empty("<i4")
    sp.attrs.create("zero_len_attr", np.zeros((0,), "<f4"))

    st = f.create_group("strings")
    for cset, cname in ((h5py.h5t.CSET_ASCII, "ascii"), (h5py.h5t.CSET_UTF8, "utf8")):
        for pad, pname in ((h5py.h5t.STR_NULLTERM, "nullterm"), (h5py.h5t.STR_NULLPAD, "nullpad"),
                           (h5py.h5t.STR_SPACEPAD, "spacepad")):
            t = fixed_str(7, cset, pad)
            raw = [b"ab", b"", b"abcdefg", "é1".encode() if cset else b"x y"]
            data = np.array(raw, dtype="S7")
            lowlevel(st, "%s_%s" % (cname, pname), t, (4,), data)
            a = h5py.h5a.create(st.id, ("a_%s_%s" % (cname, pname)).encode(), t,
                                h5py.h5s.create_simple((4,)))
            a.write(data, mtype=t)
    ds(st, "vlen_ascii_compact", data=np.array([b"a", b"bc"], dtype=object),
       dtype=h5py.string_dtype("ascii"))
    ds(st, "vlen_2d", data=np.array([["x", "yy"], ["", "zzz"]], dtype=object),
       dtype=h5py.string_dtype(), chunks=(1, 2), compression="gzip")

    ty = f.create_group("types")
    for tag in (b"", b"tag one", b"x" * 200):
        t = h5py.h5t.create(h5py.h5t.OPAQUE, 3)
        if tag:
            t.set_tag(tag)
        lowlevel(ty, "opaque_%d" % len(tag), t, (4,), np.frombuffer(bytes(range(12)), "u1"))
    inner = np.dtype([("a", "<u1"), ("b", ">f4")])
    mid = np.dtype([("p", inner, (2,)), ("q", ">i8"), ("r", "S3")])
    outer = np.dtype([("m", mid), ("arr", "<f8", (2, 2)), ("e", "u1")])
    d = np.zeros(3, outer)
    d["m"]["p"]["a"] = rng.integers(0, 255, (3, 2))
    d["m"]["p"]["b"] = rng.random((3, 2))
    d["m"]["q"] = [-1, 2**40, 7]
    d["m"]["r"] = [b"ab", b"abc", b""]
    d["arr"] = rng.random((3, 2, 2))
    ds(ty, "nested_compound", data=d)
    ds(ty, "nested_compound_chunked", data=d, chunks=(2,), compression="gzip", shuffle=True)
    ty.attrs.create("nested_compound_attr", d)
    for base in ("u1", "i1", "<u2", ">i2", "<u4", ">u4", "<i8", ">u8"):
        et = h5py.enum_dtype({"A": 0, "B": 1, "C": 100}, basetype=base)
        name = "enum_" + base.replace("<", "le").replace(">", "be")
        ds(ty, name, data=np.array([0, 100, 1, 0], dtype=base), dtype=et)
    for bt, n in ((h5py.h5t.STD_B8LE, 1), (h5py.h5t.STD_B32BE, 4), (h5py.h5t.STD_B64LE, 8)):
        lowlevel(ty, "bitfield_%d" % n, bt, (3,), np.frombuffer(bytes(range(3 * n)), "u1"))
    bec = np.dtype([("x", ">f8"), ("y", ">i2"), ("z", ">c8")])
    ds(ty, "be_compound", data=np.array([(1.5, -2, 1 + 2j), (0, 3, -1j)], dtype=bec))
    ds(ty, "be_f2", data=np.arange(5, dtype=">f2"))
    aa = h5py.h5t.array_create(h5py.h5t.array_create(h5py.h5t.STD_I16LE, (4,)), (3,))
    lowlevel(ty, "array_of_array", aa, (2,), np.arange(24, dtype="<i2"))
    ve = h5py.vlen_dtype(h5py.enum_dtype({"lo": 0, "hi": 9}, basetype="i1"))
    v = np.empty(3, object)
    v[0] = np.array([0, 9], "i1")
    v[1] = np.array([], "i1")
    v[2] = np.array([9], "i1")
    ds(ty, "vlen_enum", data=v, dtype=ve)
    ds(ty, "u8_max", data=np.array([2**64 - 1, 0], "<u8"))
    ds(ty, "f8_nan_inf", data=np.array([np.nan, -np.inf, -0.0, 5e-324]))
    ds(ty, "bool", data=np.array([True, False]))
    ds(ty, "complex128_be", data=np.array([1 + 1j], ">c16"))
    # Integers of custom precision and a big-endian base.
    t = h5py.h5t.STD_U32BE.copy()
    t.set_precision(20)
    t.set_offset(3)
    lowlevel(ty, "u20_off3_be", t, (4,), np.array([1, 2, 3, 4], ">u4") << 3, mtype=t)

    fl = f.create_group("filters")
    x = np.arange(400, dtype="<i4").reshape(20, 20) * 3 - 500
    ds(fl, "scaleoffset_int", data=x, chunks=(5, 20), scaleoffset=0)
    ds(fl, "scaleoffset_float", data=np.linspace(0, 1, 100).astype("<f4"), chunks=(25,),
       scaleoffset=3)
    ds(fl, "fletcher_only", data=np.arange(100.0), chunks=(30,), fletcher32=True)
    ds(fl, "shuffle_only", data=np.arange(100, dtype="<i8"), chunks=(30,), shuffle=True)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((8,))
    dcpl.set_filter(h5py.h5z.FILTER_NBIT, h5py.h5z.FLAG_OPTIONAL)
    t = h5py.h5t.STD_I32LE.copy()
    t.set_precision(20)
    lowlevel(fl, "nbit_i20", t, (30,), np.arange(-15, 15, dtype="<i4"), dcpl=dcpl,
             mtype=h5py.h5t.NATIVE_INT32)
    ds(fl, "gzip_fill_partial", shape=(40,), chunks=(10,), compression=1, dtype="<f4",
       fillvalue=-1.5)[10:20] = 3.0
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((4,))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    lowlevel(fl, "alloc_early_fill_never", h5py.h5t.STD_I16LE, (10,), None, dcpl=dcpl)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_fill_value(np.array(7, "<i4"))
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    lowlevel(fl, "contig_fill_alloc", h5py.h5t.STD_I32LE, (6,), None, dcpl=dcpl)

    co = f.create_group("compact")
    for name, data in (("i1", np.arange(10, dtype="i1")),
                       ("str", np.array([b"a", b"bb"], "S4")),
                       ("vlen", np.array(["x", "yy"], dtype=object)),
                       ("cmpd", np.zeros(2, [("a", "<i2"), ("b", ">f4")]))):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dt = h5py.string_dtype() if name == "vlen" else data.dtype
        tid = h5py.h5t.py_create(dt, logical=True)
        d = h5py.h5d.create(co.id, name.encode(), tid, h5py.h5s.create_simple(data.shape),
                            dcpl=dcpl)
        h5py.Dataset(d)[...] = data
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    lowlevel(co, "scalar", h5py.h5t.IEEE_F64BE, (), np.array(2.5, ">f8"), dcpl=dcpl)

    ln = f.create_group("links", track_order=True)
    for i, name in enumerate(("zz", "aa", "mm")):
        ds(ln, name, data=np.arange(i + 1))
        ln.attrs[name] = i
    ln["soft_abs"] = h5py.SoftLink("/types/bool")
    ln["soft_rel"] = h5py.SoftLink("zz")
    ln["soft_dangling"] = h5py.SoftLink("/nowhere/at/all")
    ln["ext"] = h5py.ExternalLink("other_file.h5", "/some/path")
    ln["hard_to_types"] = f["types"]
    long = "L" * 2000
    ds(ln, long, data=[1, 2])
    ln.attrs["A" * 1000] = 1
    ln["é ü 日本"] = np.arange(3)
    ln["with.dots and spaces"] = 1.0
    ln.attrs["attr with spaces/and slash"] = "x"
    dense = f.create_group("dense_attrs", track_order=True)
    for i in range(60):
        dense.attrs["a%02d" % (59 - i)] = np.arange(i % 5)
    dense.attrs["big"] = np.arange(20000, dtype="<i4")  # > 64 KiB: dense storage
    many = f.create_group("many_links")
    for i in range(70):
        many.create_group("g%03d" % i)

    rf = f.create_group("refs")
    tgt = ds(rf, "target", data=np.arange(100).reshape(10, 10))
    ds(rf, "objrefs", data=[f["types"].ref, tgt.ref, f.ref, h5py.Reference()],
       dtype=h5py.ref_dtype)
    ds(rf, "regrefs", data=[tgt.regionref[1:3, 2:8:2], tgt.regionref[()],
                            h5py.RegionReference()], dtype=h5py.regionref_dtype)
    rc = np.dtype([("id", "<i4"), ("r", h5py.ref_dtype)])
    ds(rf, "ref_in_compound", data=np.array([(1, tgt.ref), (2, f["strings"].ref)], rc))
    rf.attrs["ref_attr"] = tgt.ref
    rf.attrs.create("regref_attr", [tgt.regionref[0:1, 0:1]], dtype=h5py.regionref_dtype)
    ds(rf, "chunked_refs", data=[tgt.ref] * 9, dtype=h5py.ref_dtype, chunks=(4,),
       maxshape=(None,))

    f.attrs["root_vlen_list"] = np.array(["a", "", "ccc"], dtype=h5py.string_dtype())
    f.attrs["root_scalar_bytes"] = np.bytes_(b"\x00\x01bin")
    f.close()


def file_space(name, **kw):
    """Allocation and storage settings: paged file space with persistent
    free-space managers, alignment, timestamps left on, a v1 header with
    continuation blocks (many attributes), groups dense from the first
    attribute, a rank-6 chunked dataset, link chains, a committed type used by
    an attribute; a dataset deleted so that free space exists."""
    path = os.path.join(OUT, name + ".h5")
    f = h5py.File(path, "w", **kw)
    rng = np.random.default_rng(9)
    f.create_dataset("timed", data=np.arange(10))  # track_times left on
    g = f.create_group("timed_group")
    g.attrs["x"] = 1
    many = f.create_dataset("many_attrs", data=[1, 2, 3])
    for i in range(40):
        many.attrs["attr%02d" % i] = np.arange(i + 1, dtype="<i2")
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    if kw.get("libver") != "earliest":
        gcpl.set_attr_phase_change(0, 0)
    dense = h5py.Group(h5py.h5g.create(f.id, b"dense_from_start", gcpl=gcpl))
    dense.create_dataset("only", data=[7])
    dense.attrs["only_attr"] = "v"
    ds(f, "rank6", data=rng.integers(0, 9, (2, 3, 1, 4, 2, 3)).astype("u1"),
       chunks=(1, 2, 1, 3, 2, 2), compression="gzip")
    f["soft1"] = h5py.SoftLink("/soft2")
    f["soft2"] = h5py.SoftLink("/timed")
    f["ext_abs"] = h5py.ExternalLink("/nonexistent/abs.h5", "/x")
    f["point_t"] = np.dtype([("x", "<f4"), ("y", "<f4")])
    tid = f["point_t"].id
    a = h5py.h5a.create(f.id, b"committed_attr", tid, h5py.h5s.create_simple((2,)))
    a.write(np.array([(1, 2), (3, 4)], f["point_t"].dtype))
    f.create_dataset("committed_ds", data=np.zeros(3, f["point_t"].dtype), dtype=f["point_t"])
    f.create_dataset("gone", data=np.arange(5000))
    del f["gone"]
    f.create_dataset("after_gone", data=np.arange(300.0), chunks=(50,), compression="gzip")
    f.close()


def h5netcdf_file():
    import h5netcdf
    path = os.path.join(OUT, "h5netcdf_invalid.h5")
    with h5netcdf.File(path, "w", invalid_netcdf=True) as f:
        f.dimensions = {"x": 4, "t": None}
        v = f.create_variable("x", ("x",), float)
        v[:] = np.arange(4) * 0.5
        f.resize_dimension("t", 3)
        c = f.create_variable("cplx", ("t", "x"), np.complex64, chunks=(1, 4), compression="gzip")
        c[:] = (np.arange(12) + 1j * np.arange(12)).reshape(3, 4)
        b = f.create_variable("flags", ("x",), bool)
        b[:] = [True, False, True, True]
        s = f.create_variable("names", ("x",), dtype=h5py.string_dtype())
        s[:] = np.array(["a", "bb", "", "dddd"], object)
        s.attrs["units"] = "none"
        g = f.create_group("sub")
        g.dimensions = {"y": 2}
        y = g.create_variable("y", ("y",), "i2")
        y[:] = [1, 2]
        w = g.create_variable("w", ("x", "y"), ">f4", fillvalue=-9.0)
        w[:2, :] = [[1, 2], [3, 4]]
        w.attrs["complex_attr"] = np.complex128(1 + 2j)
        f.attrs["bool_attr"] = np.bool_(True)
        f.attrs["list_attr"] = [1, 2, 3]
        try:
            et = f.create_enumtype(np.uint8, "cloud", {"clear": 0, "cloudy": 1})
            e = f.create_variable("cloud_var", ("x",), et, fillvalue=0)
            e[:] = [0, 1, 1, 0]
        except Exception as exc:  # older h5netcdf: no user types
            print("h5netcdf enum skipped:", exc, file=sys.stderr)


def netcdf4_file():
    import netCDF4
    path = os.path.join(OUT, "netcdf4_types.nc")
    f = netCDF4.Dataset(path, "w", format="NETCDF4")
    f.createDimension("n", 5)
    f.createDimension("u", None)
    cmp = np.dtype([("lat", "<f4"), ("lon", "<f4"), ("id", "<i2")], align=False)
    ct = f.createCompoundType(cmp, "station")
    et = f.createEnumType(np.uint8, "weather", {"sun": 0, "rain": 1, "snow": 7})
    vt = f.createVLType(np.int32, "ragged")
    v = f.createVariable("stations", ct, ("n",))
    a = np.zeros(5, cmp)
    a["lat"] = np.arange(5)
    a["id"] = -np.arange(5)
    v[:] = a
    v = f.createVariable("weather_var", et, ("n",), fill_value=7)
    v[:3] = np.array([0, 1, 7], np.uint8)
    v = f.createVariable("ragged_var", vt, ("n",))
    for i in range(5):
        v[i] = np.arange(i, dtype=np.int32)
    v = f.createVariable("strs", str, ("n",))
    for i in range(5):
        v[i] = "s" * i + "é"
    v = f.createVariable("big", "f8", ("u", "n"), endian="big", zlib=True, shuffle=True,
                         fletcher32=True, fill_value=-1.0)
    v[0:3, :] = np.arange(15.0).reshape(3, 5)
    v = f.createVariable("contig", "i8", ("n",), contiguous=True, fill_value=42)
    v[1:3] = [1, 2]
    v = f.createVariable("chars", "S1", ("n",))
    v[:] = np.array(list(b"abcde"), "S1")
    v = f.createVariable("scalar", "f4")
    v.assignValue(3.5)
    g = f.createGroup("g1").createGroup("g2").createGroup("g3")
    g.createDimension("k", 2)
    w = g.createVariable("w", "u2", ("k", "n"), fill_value=5)
    w[0, :] = np.arange(5)
    w.setncattr("vec", np.array([1.0, 2.0], ">f8"))
    w.setncattr_string("strattr", ["a", "bc"])
    f.setncattr("title", "sweep")
    f.setncattr("ints", np.arange(3, dtype="i1"))
    f.close()


def pytables_file():
    import tables
    path = os.path.join(OUT, "pytables_misc.h5")
    with tables.open_file(path, "w") as h:
        enum = tables.Enum(["red", "green", "blue"])

        class Row(tables.IsDescription):
            name = tables.StringCol(8, pos=0)
            color = tables.EnumCol(enum, "red", base="uint16", pos=1)
            val = tables.Float64Col(pos=2)
            vec = tables.Int8Col(shape=(3,), pos=3)
            t = tables.Time64Col(pos=4)

        t = h.create_table("/", "table", Row)
        r = t.row
        for i in range(50):
            r["name"] = b"n%d" % i
            r["color"] = enum[["red", "green", "blue"][i % 3]]
            r["val"] = i / 3
            r["vec"] = [i, -i, 0]
            r["t"] = 1.7e9 + i
            r.append()
        t.flush()
        t.cols.val.create_index()
        vl = h.create_vlarray("/", "vl_obj", tables.ObjectAtom())
        vl.append({"a": 1})
        vl.append([1, 2, 3])
        vs = h.create_vlarray("/", "vl_str", tables.VLStringAtom())
        vs.append(b"abc")
        vs.append(b"")
        vu = h.create_vlarray("/", "vl_uni", tables.VLUnicodeAtom())
        vu.append("héllo")
        g = h.create_group("/", "grp", "a group")
        g._v_attrs.pickled = {"x": [1, 2]}
        g._v_attrs.arr = np.arange(4)
        h.create_array(g, "scalar_arr", 5)
        h.create_array(g, "str_arr", np.array([b"a", b"bc"]))
        ea = h.create_earray(g, "earray", tables.Float32Atom(), (0, 4), expectedrows=10)
        ea.append(np.ones((3, 4), "f4"))


def anndata_obj(n_obs, n_vars, seed, sparse):
    """An AnnData as single-cell users build it: X (dense or CSR), obs/var
    dataframes with categorical, string, bool, int and float columns, obsm /
    varm arrays, a layer, nested uns (scalars, strings, arrays, string
    arrays) and raw."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    if sparse:
        x = sp.random(n_obs, n_vars, density=0.1, format="csr", dtype=np.float32,
                      random_state=seed)
    else:
        x = rng.random((n_obs, n_vars), dtype=np.float32)
    obs = pd.DataFrame({
        "cell_type": pd.Categorical(rng.choice(["T cell", "B cell", "NK", "mono"], n_obs)),
        "batch": pd.Categorical(rng.choice(["b1", "b2"], n_obs), ordered=True),
        "donor": ["donor_%d_é" % (i % 7) for i in range(n_obs)],
        "is_doublet": rng.random(n_obs) < 0.1,
        "n_genes": rng.integers(100, 5000, n_obs),
        "pct_mito": rng.random(n_obs),
    }, index=["cell%05d" % i for i in range(n_obs)])
    var = pd.DataFrame({
        "gene_symbol": ["G%d" % i for i in range(n_vars)],
        "highly_variable": rng.random(n_vars) < 0.3,
        "chrom": pd.Categorical(rng.choice(["chr1", "chr2", "chrX"], n_vars)),
        "mean": rng.random(n_vars).astype(np.float32),
    }, index=["ENSG%08d" % i for i in range(n_vars)])
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.obsm["X_pca"] = rng.random((n_obs, 10), dtype=np.float32)
    a.obsm["X_umap"] = rng.random((n_obs, 2))
    a.varm["PCs"] = rng.random((n_vars, 10))
    a.layers["counts"] = (x * 10).astype(np.float32) if not sparse else (x * 10).tocsr()
    a.uns["neighbors"] = {"params": {"n_neighbors": 15, "method": "umap", "metric": "cosine"},
                          "connectivities_key": "connectivities"}
    a.uns["cell_type_colors"] = np.array(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"],
                                         dtype=object)
    a.uns["pi"] = 3.14159
    a.uns["n"] = np.int64(42)
    a.uns["flag"] = True
    a.uns["title"] = "sweep é"
    a.uns["hist"] = np.arange(20, dtype=np.int32)
    a.raw = a
    return a


def anndata_files():
    """anndata_dense.h5ad, anndata_csr.h5ad, anndata_gzip.h5ad."""
    for name, sparse, comp in (("anndata_dense", False, None), ("anndata_csr", True, None),
                               ("anndata_gzip", True, "gzip")):
        if want(name):
            a = anndata_obj(300, 120, 11, sparse)
            if comp:
                a.X = a.X.toarray()
            a.write_h5ad(os.path.join(OUT, name + ".h5ad"), compression=comp)


def pandas_frame(n, seed):
    import pandas as pd
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "i": rng.integers(-1000, 1000, n),
        "f": rng.random(n),
        "f32": rng.random(n).astype(np.float32),
        "b": rng.random(n) < 0.5,
        "s": ["row %d é" % i for i in range(n)],
        "when": pd.date_range("2026-01-01", periods=n, freq="37min"),
        "cat": pd.Categorical(rng.choice(["x", "y", "z"], n)),
    })


def pandas_file():
    """pandas_store.h5: HDFStore with format='fixed' frames and series
    (a MultiIndex, datetimes) and format='table' (data_columns, zlib and
    blosc compression, several appends, string columns with
    min_itemsize)."""
    import pandas as pd
    path = os.path.join(OUT, "pandas_store.h5")
    df = pandas_frame(200, 3)
    with pd.HDFStore(path, "w") as st:
        st.put("fixed/frame", df.drop(columns=["cat"]), format="fixed")
        st.put("fixed/series", pd.Series(np.arange(50.0), name="s"), format="fixed")
        mi = pd.MultiIndex.from_product([["a", "b", "c"], range(10)], names=["k", "n"])
        st.put("fixed/multi", pd.DataFrame({"v": np.arange(30)}, index=mi), format="fixed")
        # Only the first table keeps the column indexes (PyTables' index
        # files are large; one is enough).
        for key, kw in (("table/zlib", dict(complevel=5, complib="zlib")),
                        ("table/blosc", dict(complevel=5, complib="blosc:lz4", index=False)),
                        ("table/plain", dict(index=False))):
            for part in range(4):
                chunk = df.iloc[part * 50:(part + 1) * 50]
                st.append(key, chunk, format="table", data_columns=["i", "s", "when"],
                          min_itemsize={"s": 24}, **kw)
        st.put("table/multi", pd.DataFrame({"v": np.arange(30.0)}, index=mi), format="table")


def xarray_files():
    """xarray_netcdf4.nc (engine='netcdf4') and xarray_h5netcdf.nc
    (engine='h5netcdf'): an unlimited time dimension with units/calendar,
    zlib and chunk sizes, _FillValue, scale_factor/add_offset packing to
    int16, string coordinates, a second dataset in a group."""
    import pandas as pd
    import xarray as xr
    rng = np.random.default_rng(21)
    t = pd.date_range("2026-01-01", periods=24, freq="h")
    temp = 15 + 8 * rng.random((24, 6, 8))
    temp[0, 0, 0] = np.nan
    dsx = xr.Dataset(
        {"temp": (("time", "lat", "lon"), temp, {"units": "degC", "long_name": "temperature"}),
         "precip": (("time", "station"), rng.random((24, 3)).astype(np.float32)),
         "flag": (("time",), (np.arange(24) % 3).astype(np.int8))},
        coords={"time": t, "lat": np.linspace(-30, 30, 6), "lon": np.linspace(0, 350, 8),
                "station": ["Bergen", "Zürich", "Nairobi"]},
        attrs={"title": "sweep xarray", "history": "made by testdata/sweep.py"})
    enc = {"temp": {"zlib": True, "complevel": 4, "chunksizes": (6, 6, 8), "dtype": "int16",
                    "scale_factor": 0.01, "add_offset": 15.0, "_FillValue": -32767},
           "precip": {"zlib": True, "_FillValue": -1.0},
           "time": {"units": "hours since 2026-01-01", "calendar": "proleptic_gregorian",
                    "dtype": "i8"}}
    sub = xr.Dataset({"wind": (("time", "lat"), rng.random((24, 6)))}, coords={"time": t})
    for engine in ("netcdf4", "h5netcdf"):
        name = "xarray_" + engine
        if not want(name):
            continue
        path = os.path.join(OUT, name + ".nc")
        dsx.to_netcdf(path, engine=engine, encoding=enc, unlimited_dims=["time"])
        sub.to_netcdf(path, mode="a", engine=engine, group="sub/level2",
                      encoding={"time": enc["time"]})


def matlab_file():
    """matlab_v73.mat (hdf5storage, MATLAB v7.3): a 512-byte user block,
    MATLAB_class attributes, a struct, a cell array through `#refs#`
    object references, char and logical arrays."""
    import hdf5storage
    rng = np.random.default_rng(4)
    data = {
        "A": rng.random((5, 7)),
        "n": np.int32(7),
        "name": "sweep é",
        "mask": rng.random(6) < 0.5,
        "cells": np.array([np.arange(3.0), "text", np.int16(2)], dtype=object),
        "s": {"x": np.arange(4, dtype=np.uint8), "label": "struct field"},
        "z": np.array([1 + 2j, 3 - 4j]),
    }
    hdf5storage.savemat(os.path.join(OUT, "matlab_v73.mat"), data, format="7.3",
                        store_python_metadata=False)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for lv in ("earliest", "latest"):
        if want("corners_" + lv):
            corners(lv)
    for name, kw in (("space_paged", dict(libver="latest", fs_strategy="page",
                                          fs_persist=True, fs_page_size=4096)),
                     ("space_aligned", dict(libver=("earliest", "v108"), alignment_threshold=64,
                                            alignment_interval=512, meta_block_size=8192)),
                     ("space_earliest", dict(libver="earliest"))):
        if want(name):
            file_space(name, **kw)
    if want("h5netcdf_invalid"):
        h5netcdf_file()
    if want("netcdf4_types"):
        netcdf4_file()
    if want("pytables_misc"):
        pytables_file()
    anndata_files()
    if want("pandas_store"):
        pandas_file()
    xarray_files()
    if want("matlab_v73"):
        matlab_file()

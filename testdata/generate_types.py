#!/usr/bin/env python3
"""Write the type-fidelity fixtures into testdata/types/.

    python3 testdata/generate_types.py      (from any working directory)

Each file is written by the real writer named in its name (h5py, PyTables,
netCDF4-python) and must come out of `h5salvage salvage` identical as h5py
sees it: values, dtypes with their member order, shapes, attributes,
references (by target), and the listing order of members and attributes.

* nested_vlen_{earliest,latest}.h5 (h5py): compounds holding arrays of
  variable-length sequences of compounds, variable-length sequences of
  compounds with vlen string members, vlen of vlen, vlen of object
  references; each as a contiguous dataset, a chunked (gzip) dataset and an
  attribute.
* member_order_{earliest,latest}.h5 (h5py): compounds whose members are
  declared out of byte-offset order (also nested, in an array, in an
  attribute, in a committed datatype, and with an enum member).
* pytables.h5 (PyTables): tables with columns positioned out of offset
  order (and a nested column).
* netcdf4.nc (netCDF4-python): dimensions (one unlimited), coordinate
  variables, a subgroup, attributes of several types, zlib: dimension
  scales with DIMENSION_LIST / REFERENCE_LIST, creation order tracked.
* track_order_{earliest,latest}.h5 (h5py): groups and attributes with
  track_order=True, created in non-alphabetical order.
* committed_{earliest,latest}.h5 (h5py): committed (named) datatypes
  (compound, enum, vlen string, in a subgroup, one with an attribute)
  shared by several datasets (contiguous, chunked, compact) and attributes;
  the output must keep them committed and the datasets referring to them.
* pytables_arrays.h5 (PyTables): a table with array columns (float 2x3,
  string [2]): PyTables' default libver writes them as array datatypes of
  datatype version 2, with the permutation indices of the old format.
* sohm_latest.h5 (h5py, the file created through ctypes): dataspaces,
  datatypes, fill values, filter pipelines and attributes shared file-wide
  through the shared-object-header-message table (SMTB, fractal heaps);
  h5py has no call for H5Pset_shared_mesg_*, so they are made through
  ctypes on the libhdf5 h5py loaded, and h5py then writes the datasets.
* link_order_{earliest,latest}.h5 (h5py): track_order=True groups where
  soft links, external links, second hard links, committed datatypes and
  datasets holding references are created between plain members.
"""

import ctypes
import glob
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "types")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import killed_worker as kw  # noqa: E402

POINT = np.dtype([("i", "<i4"), ("x", "<f8")])
VPOINT = h5py.vlen_dtype(POINT)


def ds(parent, name, **kw_):
    kw_.setdefault("track_times", False)
    return parent.create_dataset(name, **kw_)


def points(rng, n):
    a = np.zeros(n, POINT)
    a["i"] = rng.integers(-1000, 1000, n)
    a["x"] = rng.random(n)
    return a


def nested_vlen(name, libver):
    rng = np.random.default_rng(11)
    f = kw.create_file(os.path.join(OUT, name), libver)
    # compound { vlen<compound{i4, f8}>[2], i4 }
    t1 = np.dtype([("pair", VPOINT, (2,)), ("tag", "<i4")])
    a1 = np.empty(5, t1)
    for k in range(5):
        a1[k]["pair"][0] = points(rng, k)
        a1[k]["pair"][1] = points(rng, k + 2)
        a1[k]["tag"] = 10 * k
    ds(f, "array_of_vlen", data=a1)
    ds(f, "array_of_vlen_chunked", data=a1, chunks=(2,), compression="gzip")
    f.attrs.create("array_of_vlen", a1)
    # vlen<compound{vlen str, i4}>
    inner = np.dtype([("s", h5py.string_dtype()), ("n", "<i4")])
    a2 = np.empty(4, h5py.vlen_dtype(inner))
    for k in range(4):
        v = np.zeros(k + 1, inner)
        for j in range(k + 1):
            v[j] = ("name %d.%d" % (k, j), j)
        a2[k] = v
    ds(f, "vlen_of_compound_with_string", data=a2)
    ds(f, "vlen_of_compound_with_string_chunked", data=a2, chunks=(3,))
    f["array_of_vlen"].attrs.create("vlen_of_compound_with_string", a2)
    # vlen<vlen<i4>>
    vv = h5py.vlen_dtype(h5py.vlen_dtype("<i4"))
    a3 = np.empty(3, vv)
    for k in range(3):
        inner_v = np.empty(k + 1, object)
        for j in range(k + 1):
            inner_v[j] = np.arange(j + k, dtype="<i4")
        a3[k] = inner_v
    ds(f, "vlen_of_vlen", data=a3)
    ds(f, "vlen_of_vlen_chunked", data=a3, chunks=(2,))
    f.attrs.create("vlen_of_vlen", a3)
    # vlen<object reference>
    vr = h5py.vlen_dtype(h5py.ref_dtype)
    a4 = np.empty(3, vr)
    targets = [f["array_of_vlen"], f["vlen_of_vlen"], f]
    for k in range(3):
        a4[k] = np.array([t.ref for t in targets[: k + 1]], dtype=h5py.ref_dtype)
    ds(f, "vlen_of_refs", data=a4)
    ds(f, "vlen_of_refs_chunked", data=a4, chunks=(2,))
    f["vlen_of_vlen"].attrs.create("vlen_of_refs", a4)
    f.close()


def member_order(name, libver):
    f = kw.create_file(os.path.join(OUT, name), libver)
    # Declared order b, a, c; offsets 8, 0, 12.
    rev = np.dtype({"names": ["b", "a", "c"], "formats": ["<i4", "<f8", "<i2"],
                    "offsets": [8, 0, 12], "itemsize": 16})
    data = np.zeros(6, rev)
    data["a"] = np.linspace(0, 1, 6)
    data["b"] = np.arange(6) * 7
    data["c"] = -np.arange(6)
    ds(f, "reversed", data=data)
    ds(f, "reversed_chunked", data=data, chunks=(4,))
    f.attrs.create("reversed", data[:2])
    # Nested: outer members z (offset 16), inner (offset 0, itself reversed).
    nest = np.dtype({"names": ["z", "inner"], "formats": ["<u2", rev],
                     "offsets": [16, 0], "itemsize": 18})
    n = np.zeros(3, nest)
    n["z"] = [1, 2, 3]
    n["inner"] = data[:3]
    ds(f, "nested", data=n)
    # In an array member and with an enum member.
    en = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2}, basetype="u1")
    arr = np.dtype({"names": ["colour", "vals"], "formats": [en, (rev, (2,))],
                    "offsets": [32, 0], "itemsize": 33})
    m = np.zeros(2, arr)
    m["colour"] = [2, 1]
    m["vals"][0] = data[:2]
    m["vals"][1] = data[2:4]
    ds(f, "enum_and_array", data=m)
    # With a vlen string member declared first but stored last.
    vs = np.dtype({"names": ["label", "v"], "formats": [h5py.string_dtype(), "<i8"],
                   "offsets": [8, 0], "itemsize": 8 + 8})
    w = np.zeros(2, vs)
    w["label"] = ["first", "second"]
    w["v"] = [5, 6]
    ds(f, "vlen_member", data=w)
    f["committed"] = rev
    ds(f, "uses_committed", data=data[:2], dtype=f["committed"])
    f.close()


def pytables(name):
    import tables

    class Inner(tables.IsDescription):
        q = tables.Int16Col(pos=1)
        p = tables.Float32Col(pos=0)

    class Row(tables.IsDescription):
        zeta = tables.Int32Col(pos=0)
        alpha = tables.Float64Col(pos=2)
        mid = tables.StringCol(6, pos=1)
        nested = Inner

    path = os.path.join(OUT, name)
    with tables.open_file(path, "w") as h:
        t = h.create_table("/", "table", Row, "out of order", chunkshape=(4,))
        r = t.row
        for k in range(7):
            r["zeta"] = k
            r["alpha"] = k / 3
            r["mid"] = b"m%d" % k
            r["nested/p"] = k * 1.5
            r["nested/q"] = -k
            r.append()
        t.flush()
        # A table from a numpy dtype with explicit, reversed offsets.
        rev = np.dtype({"names": ["b", "a"], "formats": ["<i4", "<f8"],
                        "offsets": [8, 0], "itemsize": 12})
        d = np.zeros(4, rev)
        d["a"] = [0.5, 1.5, 2.5, 3.5]
        d["b"] = [4, 3, 2, 1]
        h.create_table("/", "from_numpy", d, chunkshape=(4,))


def pytables_arrays(name):
    import tables

    class Row(tables.IsDescription):
        v = tables.Float64Col(shape=(2, 3), pos=0)
        n = tables.Int16Col(pos=1)
        s = tables.StringCol(4, shape=(2,), pos=2)

    with tables.open_file(os.path.join(OUT, name), "w") as h:
        t = h.create_table("/", "t", Row, chunkshape=(4,))
        r = t.row
        for i in range(7):
            r["v"] = np.arange(6).reshape(2, 3) * i / 3
            r["n"] = -i
            r["s"] = [b"a%d" % i, b"b"]
            r.append()
        t.flush()


def netcdf4(name):
    import netCDF4

    path = os.path.join(OUT, name)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title = "h5salvage fixture"
        nc.version = np.int32(3)
        nc.setncattr("resolution", np.float64(0.25))
        nc.createDimension("time", None)
        nc.createDimension("lat", 4)
        nc.createDimension("lon", 5)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "hours since 2000-01-01"
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat[:] = np.linspace(-30, 30, 4)
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon[:] = np.linspace(0, 40, 5)
        temp = nc.createVariable("temp", "f4", ("time", "lat", "lon"), zlib=True,
                                 fill_value=-999.0)
        temp.units = "K"
        temp.valid_range = np.array([100, 400], "f4")
        t[:] = [0.0, 6.0, 12.0]
        temp[:] = np.arange(3 * 4 * 5, dtype="f4").reshape(3, 4, 5)
        counts = nc.createVariable("counts", "i2", ("lat",))
        counts[:] = [1, 2, 3, 4]
        g = nc.createGroup("forecast")
        g.createDimension("step", 2)
        s = g.createVariable("step", "i4", ("step",))
        s[:] = [1, 2]
        p = g.createVariable("precip", "f8", ("step", "lat"), zlib=True)
        p[:] = np.arange(8, dtype="f8").reshape(2, 4)
        p.comment = "uses the parent's lat"
        names = g.createVariable("names", str, ("step",))
        names[0] = "first"
        names[1] = "second"


def track_order(name, libver):
    f = kw.create_file(os.path.join(OUT, name), libver, track_order=True)
    for n in ["zulu", "alpha", "mike", "bravo"]:
        f.attrs[n] = np.int32(len(n))
    kw.new_group(f, "ordered", track_order=True)
    g = f["ordered"]
    for k, n in enumerate(["zz", "b", "x", "a", "m"]):
        if k % 2:
            kw.new_group(g, n, track_order=True)
        else:
            ds(g, n, data=np.arange(k + 1), track_order=True)
    for n in ["second", "first", "third"]:
        g.attrs[n] = n
        g["zz"].attrs[n] = n
    # Many links and attributes: dense storage, creation-order index.
    kw.new_group(f, "dense", track_order=True)
    d = f["dense"]
    for k in range(20):
        ds(d, "n%02d" % (19 - k), data=np.int16(k))
        d.attrs["a%02d" % (19 - k)] = k
    # A group without creation order, next to the others.
    kw.new_group(f, "plain")
    for n in ["c", "a", "b"]:
        ds(f["plain"], n, data=np.int8(1))
    f.close()


def committed(name, libver):
    f = kw.create_file(os.path.join(OUT, name), libver)
    pair = np.dtype({"names": ["b", "a"], "formats": ["<i4", "<f8"],
                     "offsets": [8, 0], "itemsize": 12})
    f["pair"] = pair
    f["colour"] = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2}, basetype="u1")
    kw.new_group(f, "types")
    f["types/text"] = h5py.string_dtype()
    f["types/text"].attrs["about"] = "a committed type with an attribute"
    data = np.zeros(5, pair)
    data["a"] = np.linspace(0, 2, 5)
    data["b"] = np.arange(5) * 3
    ds(f, "pairs", data=data, dtype=f["pair"])
    ds(f, "pairs_chunked", data=data, dtype=f["pair"], chunks=(2,), compression="gzip")
    kw.create_compact(f, "pairs_compact", data[:2])
    ds(f, "colours", data=np.array([2, 0, 1], "u1"), dtype=f["colour"])
    ds(f, "texts", data=np.array(["one", "two", "three"], object), dtype=f["types/text"])
    f.attrs.create("pair_attr", data[:2], dtype=f["pair"])
    f["pairs"].attrs.create("colour_attr", np.array([1, 2], "u1"), dtype=f["colour"])
    f["types"].attrs.create("text_attr", "hello", dtype=f["types/text"])
    f.attrs.create("plain_pair", data[:1])  # same type, not committed
    f.close()


def link_order(name, libver):
    path = os.path.join(OUT, name)
    f = kw.create_file(path, libver, track_order=True)
    g = kw.new_group(f, "g", track_order=True)
    ds(g, "zeta", data=np.arange(3))
    g["soft"] = h5py.SoftLink("/g/zeta")
    ds(g, "alpha", data=np.arange(4))
    g["ext"] = h5py.ExternalLink("other.h5", "/x")
    g["second"] = g["zeta"]  # a second hard link
    g["refs"] = np.array([g["alpha"].ref, g["zeta"].ref], h5py.ref_dtype)
    g["dangling"] = h5py.SoftLink("/nowhere")
    g["mtype"] = np.dtype("<i2")
    ds(g, "beta", data=np.arange(2, dtype="<i2"), dtype=g["mtype"])
    kw.new_group(g, "sub", track_order=True)
    g["sub"].attrs["r"] = g["beta"].ref
    g["sub"]["back"] = h5py.SoftLink("/g")
    ds(g["sub"], "a", data=np.int8(1))
    # Dense storage (many links) with the same mix.
    d = kw.new_group(f, "dense", track_order=True)
    for k in range(12):
        ds(d, "n%02d" % (11 - k), data=np.int16(k))
        if k % 3 == 0:
            d["s%02d" % k] = h5py.SoftLink("/dense/n%02d" % (11 - k))
        if k % 4 == 1:
            d["h%02d" % k] = d["n%02d" % (11 - k)]
    f["top_soft"] = h5py.SoftLink("/g")
    ds(f, "top", data=np.arange(2))
    f.close()


def sohm(name):
    path = os.path.join(OUT, name)
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs")
    found = sorted(glob.glob(os.path.join(libs, "libhdf5-*.so*")))
    lib = ctypes.CDLL(found[0] if found else "libhdf5.so")
    lib.H5open()
    hid = ctypes.c_int64
    for fn in ("H5Pcreate", "H5Fcreate"):
        getattr(lib, fn).restype = hid
    fcpl = lib.H5Pcreate(hid.in_dll(lib, "H5P_CLS_FILE_CREATE_ID_g"))
    assert lib.H5Pset_shared_mesg_nindexes(hid(fcpl), ctypes.c_uint(2)) >= 0
    # H5O_SHMESG_SDSPACE_FLAG 0x2, DTYPE 0x8, FILL 0x20, PLINE 0x800, ATTR 0x1000.
    assert lib.H5Pset_shared_mesg_index(hid(fcpl), 0, ctypes.c_uint(0x2 | 0x8), 1) >= 0
    assert lib.H5Pset_shared_mesg_index(hid(fcpl), 1, ctypes.c_uint(0x20 | 0x800 | 0x1000), 1) >= 0
    fid = lib.H5Fcreate(path.encode(), ctypes.c_uint(2), hid(fcpl), hid(0))  # H5F_ACC_TRUNC
    assert fid >= 0
    lib.H5Fclose(hid(fid))
    lib.H5Pclose(hid(fcpl))
    dt = np.dtype([("a", "<i4"), ("b", "<f8")])
    with h5py.File(path, "a") as f:
        for i in range(3):
            data = np.zeros((5, 3), dt)
            data["a"] = np.arange(15).reshape(5, 3) + i
            d = ds(f, "d%d" % i, data=data, chunks=(2, 3), compression="gzip",
                   fillvalue=np.array((1, 2.0), dt))
            d.attrs["same"] = np.arange(10.0)
        ds(f, "plain", data=np.arange(6))


def main():
    os.makedirs(OUT, exist_ok=True)
    for libver in ("earliest", "latest"):
        nested_vlen("nested_vlen_%s.h5" % libver, libver)
        member_order("member_order_%s.h5" % libver, libver)
        track_order("track_order_%s.h5" % libver, libver)
        committed("committed_%s.h5" % libver, libver)
        link_order("link_order_%s.h5" % libver, libver)
    pytables("pytables.h5")
    pytables_arrays("pytables_arrays.h5")
    sohm("sohm_latest.h5")
    netcdf4("netcdf4.nc")
    for n in sorted(os.listdir(OUT)):
        print("%-32s %8d bytes" % (n, os.path.getsize(os.path.join(OUT, n))))


if __name__ == "__main__":
    main()

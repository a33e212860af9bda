"""Writes a small HDF5 file with datatypes and filters the shared fixtures
lack, for tests/write_roundtrip.rs: non-byte-aligned integers, a 24-bit
float, big-endian compounds with trailing padding, arrays of vlen strings,
vlen sequences of compounds, compound fill values, space-padded strings,
opaque tags, and the lzf / scaleoffset / nbit filters.

usage: odd_types.py OUT
"""
import sys

import h5py
import numpy as np

f = h5py.File(sys.argv[1], "w", libver="earliest")

# 12-bit integer at bit offset 4 in a 2-byte big-endian container.
t = h5py.h5t.STD_I16BE.copy()
t.set_precision(12)
t.set_offset(4)
sp = h5py.h5s.create_simple((6,))
d = h5py.h5d.create(f.id, b"int12_be", t, sp)
d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(6, dtype=">i2") * 16, mtype=h5py.h5t.STD_I16BE)

# A 24-bit float: sign 23, exponent 16..22 (7 bits), mantissa 0..15.
ft = h5py.h5t.IEEE_F32LE.copy()
ft.set_fields(23, 16, 7, 0, 16)
ft.set_precision(24)
ft.set_offset(0)
ft.set_size(3)
ft.set_ebias(63)
d = h5py.h5d.create(f.id, b"float24", ft, sp)
raw = np.frombuffer(bytes(range(18)), dtype="u1")
d.write(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=ft)

# Big-endian compound with trailing padding and a space-padded string.
sp_str = h5py.h5t.C_S1.copy()
sp_str.set_size(5)
sp_str.set_strpad(h5py.h5t.STR_SPACEPAD)
ct = h5py.h5t.create(h5py.h5t.COMPOUND, 24)
ct.insert(b"a", 0, h5py.h5t.STD_I32BE)
ct.insert(b"b", 8, h5py.h5t.IEEE_F64BE)
ct.insert(b"s", 16, sp_str)
d = h5py.h5d.create(f.id, b"compound_be_padded", ct, h5py.h5s.create_simple((3,)))
d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.frombuffer(bytes(range(72)), dtype="u1"), mtype=ct)

# An array of vlen strings as the element type.
vs = h5py.string_dtype()
arr = np.empty((3,), dtype=np.dtype((vs, (2,))))
for i in range(3):
    arr[i] = [f"s{i}a", "é" * i]
at = h5py.h5t.array_create(h5py.h5t.py_create(vs, logical=True), (2,))
d = h5py.Dataset(h5py.h5d.create(f.id, b"vlen_str_array", at, h5py.h5s.create_simple((3,))))
d[...] = arr

# A compound holding vlen parts at several offsets, after and before fixed ones.
cdt = np.dtype([("x", "<i2"), ("name", vs), ("vals", h5py.vlen_dtype(np.dtype("<i4"))), ("z", "<f4")])
c = np.empty((3,), dtype=cdt)
for i in range(3):
    c[i] = (i, f"name{i}" * i, np.arange(i, dtype="<i4"), i / 2)
f.create_dataset("compound_vlen_mixed", data=c)
f.attrs.create("compound_vlen_attr", c)

# A vlen sequence of compounds.
pt = np.dtype([("p", "<i2"), ("q", "<f8")])
vc = np.empty((2,), dtype=object)
vc[0] = np.array([(1, 1.5), (2, 2.5)], dtype=pt)
vc[1] = np.array([], dtype=pt)
f.create_dataset("vlen_of_compound", data=vc, dtype=h5py.vlen_dtype(pt))

# Opaque with a tag; enum over a big-endian base.
f.create_dataset("opaque_tagged", data=np.frombuffer(b"abcdefgh" * 2, dtype="V4"))
et = h5py.enum_dtype({"RED": 1, "GREEN": 256}, basetype=">i2")
f.create_dataset("enum_be", data=np.array([1, 256, 1], dtype=">i2"), dtype=et)

# Compound fill value on a chunked, partially written dataset.
fdt = np.dtype([("a", "<i4"), ("b", "<f4")])
fv = np.array((-7, 0.25), dtype=fdt)
d = f.create_dataset("compound_fill", shape=(20,), chunks=(5,), dtype=fdt, fillvalue=fv)
d[0:5] = np.array([(i, i) for i in range(5)], dtype=fdt)

# Filters: lzf (h5py's own), scaleoffset, nbit; a resizable 2-D gzip one.
f.create_dataset("lzf", data=np.arange(100, dtype="<i4").reshape(10, 10), chunks=(4, 4), compression="lzf")
f.create_dataset("scaleoffset", data=np.arange(50, dtype="<i4"), chunks=(10,), scaleoffset=0)
dn = f.create_dataset("gzip9_rows", data=np.arange(60.0).reshape(10, 6), chunks=(3, 6), maxshape=(None, 6), compression=9, shuffle=True, fletcher32=True)
f.close()

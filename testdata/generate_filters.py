#!/usr/bin/env python3
"""Fixtures from the wider HDF5 ecosystem that must salvage whole:

    python3 testdata/generate_filters.py      (from any working directory)

Writes, next to this script (each file a few KiB):

* ``lzf_earliest.h5`` / ``lzf_latest.h5`` (h5py): lzf-compressed chunked
  numbers (edge chunks), lzf + shuffle, and lzf-compressed vlen strings.
* ``pytables_zlib_fletcher.h5`` (PyTables): a Table, a CArray and an EArray
  with ``Filters(complevel=5, complib='zlib', fletcher32=True)``; PyTables
  puts Fletcher-32 *before* deflate in the pipeline.
* ``repack_fletcher_first.h5`` (h5py, then ``h5repack -f FLET -f GZIP=5``):
  the same order written by h5repack.
* ``resized_earliest.h5`` / ``resized_latest.h5`` (h5py): chunked datasets
  written, then resized smaller (1-D, 2-D), one grown back.
* ``beyond_extent_earliest.h5`` / ``beyond_extent_latest.h5`` (h5py, then
  the dataspace rewritten smaller): chunks listed beyond the current extent
  (v1 B-tree; extensible array, v2 B-tree, fixed array), as converters that
  do not prune leave them.  h5py reads only the extent.
* ``custom_float_earliest.h5`` (h5py low level): a float datatype with a
  custom precision and offset (28 bits at bit 4).
* ``vlen_fill_earliest.h5`` / ``vlen_fill_latest.h5`` (h5py low level):
  a chunked UTF-8 and a contiguous ASCII vlen string dataset whose fill
  values hold variable-length data, every element written.
* ``trailing_bytes.h5`` (h5py): a healthy file followed by two newlines,
  which hold no HDF5 structure (what a text tool appending to the file leaves).
* ``huge_attrs_latest.h5`` (h5py, libver latest): attributes above 64 KiB
  ("huge" fractal-heap objects) on a group (among 10 small ones) and on a
  dataset.
* ``plugins/pytables_bzip2_blosc.h5`` (PyTables): CArrays behind bzip2
  (with and without shuffle) and blosc (lz4, zstd, blosclz), and a Table
  behind Fletcher-32 + bzip2 (in a folder of its own: h5py cannot read
  these filters without plugins, so the h5py round trips skip it).
* ``plugins/blosc_CODEC.h5`` (PyTables, CODEC one of blosclz, lz4, lz4hc,
  zlib, zstd): behind ``complib='blosc:CODEC'``, CArrays with byte shuffle,
  bit shuffle and none (edge chunks), two of many blocks and a short last
  block (complevel 1; byte and bit shuffle), one of incompressible bytes, a Table, an EArray and
  a VLArray (variable-length rows).
* ``plugins/blosc2_copied.h5`` (PyTables): CArrays behind blosc2 (filter
  32026, 1-D and 2-D), which h5salvage copies through unverified.

Deterministic for one h5py/PyTables/HDF5 version (no times stored where the
writers let us switch them off).  Needs h5py, numpy, PyTables and h5repack.
"""

import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import killed_worker as kw  # noqa: E402

VSTR = h5py.string_dtype("utf-8")


def ds(parent, name, **kw_):
    kw_.setdefault("track_times", False)
    return parent.create_dataset(name, **kw_)


def make_lzf(name, libver):
    f = kw.create_file(os.path.join(HERE, name), libver)
    ds(f, "lzf_f8", data=np.arange(600, dtype="<f8").reshape(60, 10) / 7,
       chunks=(16, 4), compression="lzf")
    ds(f, "lzf_shuffle_i4", data=(np.arange(1000, dtype="<i4") * 37) % 1001,
       chunks=(300,), compression="lzf", shuffle=True)
    # Random bytes do not compress: lzf fails and the chunk is stored raw
    # with the filter's bit set in its mask.
    rng = np.random.default_rng(11)
    ds(f, "lzf_incompressible", data=rng.integers(0, 255, 512, dtype="u1"),
       chunks=(256,), compression="lzf")
    words = np.array(["alpha", "", "gamma ray", "δέλτα", "e" * 70, "zeta"] * 5,
                     dtype=object).reshape(10, 3)
    ds(f, "lzf_vlen_str", data=words, dtype=VSTR, chunks=(4, 2), compression="lzf")
    f.close()


def make_pytables(name):
    import tables

    path = os.path.join(HERE, name)
    filt = tables.Filters(complevel=5, complib="zlib", fletcher32=True)

    class Row(tables.IsDescription):
        idx = tables.Int32Col(pos=0)
        x = tables.Float64Col(pos=1)
        label = tables.StringCol(8, pos=2)

    with tables.open_file(path, "w") as h:
        g = h.create_group("/", "g")
        t = h.create_table(g, "table", Row, filters=filt, chunkshape=(16,))
        r = t.row
        for i in range(50):
            r["idx"] = i
            r["x"] = i * 0.25
            r["label"] = ("row%d" % i).encode()
            r.append()
        t.flush()
        h.create_carray(g, "carray", obj=np.arange(300, dtype="<i8").reshape(30, 10),
                        filters=filt, chunkshape=(8, 10))
        e = h.create_earray("/", "earray", tables.Float32Atom(), shape=(0, 4),
                            filters=filt, chunkshape=(16, 4))
        e.append(np.arange(37 * 4, dtype="<f4").reshape(37, 4))


def make_repack(name):
    src = os.path.join(HERE, "_repack_src.h5")
    f = kw.create_file(src, "earliest")
    ds(f, "data", data=np.arange(2000, dtype="<i4").reshape(40, 50) * 3, chunks=(16, 16))
    ds(f, "floats", data=np.linspace(0, 1, 700).astype("<f8"), chunks=(128,))
    f.close()
    dst = os.path.join(HERE, name)
    subprocess.run(["h5repack", "-f", "FLET", "-f", "GZIP=5", src, dst], check=True)
    os.remove(src)


def make_resized(name, libver):
    f = kw.create_file(os.path.join(HERE, name), libver)
    a = ds(f, "shrunk_1d", data=np.arange(100, dtype="<i4"), chunks=(10,), maxshape=(None,))
    a.resize((35,))
    b = ds(f, "shrunk_2d", data=np.arange(20 * 12, dtype="<f4").reshape(20, 12),
           chunks=(4, 5), maxshape=(None, None), compression="gzip")
    b.resize((9, 7))
    c = ds(f, "shrunk_fixed_max", data=np.arange(64, dtype="<i2"), chunks=(8,),
           maxshape=(64,))
    c.resize((20,))
    d = ds(f, "shrunk_then_grown", data=np.arange(40, dtype="<u2"), chunks=(8,),
           maxshape=(None,), fillvalue=7)
    d.resize((12,))
    d.resize((30,))
    f.close()


def shrink_dataspace(path, old, new):
    """Rewrites a dataset's current dimensions in place (``old`` dims +
    maxdims bytes -> ``new``), leaving its chunks in the index: what a
    converter that rewrites the dataspace without pruning chunks leaves
    (libhdf5's own H5Dset_extent prunes them).  A version-2 object header's
    checksum is recomputed."""
    import generate  # lookup3

    with open(path, "rb") as fh:
        buf = bytearray(fh.read())
    assert buf.count(old) == 1, (path, buf.count(old))
    at = buf.find(old)
    buf[at:at + len(new)] = new
    pos = buf.rfind(b"OHDR", 0, at)
    if pos >= 0 and buf[pos + 4] == 2:
        flags = buf[pos + 5]
        q = pos + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        n = 1 << (flags & 3)
        end = q + n + int.from_bytes(buf[q:q + n], "little")
        assert at < end
        buf[end:end + 4] = struct.pack("<I", generate.lookup3(bytes(buf[pos:end])))
    with open(path, "wb") as fh:
        fh.write(buf)


def make_beyond_extent(name, libver):
    path = os.path.join(HERE, name)
    f = kw.create_file(path, libver)
    unlim = 2 ** 64 - 1
    ds(f, "unlimited_1d", data=np.arange(100, dtype="<i4"), chunks=(10,), maxshape=(None,))
    ds(f, "unlimited_2d", data=np.arange(40 * 30, dtype="<f4").reshape(40, 30),
       chunks=(8, 8), maxshape=(None, None), compression="gzip")
    ds(f, "fixed_max", data=np.arange(64, dtype="<i2"), chunks=(8,), maxshape=(64,))
    f.close()
    shrink_dataspace(path, struct.pack("<QQ", 100, unlim), struct.pack("<QQ", 35, unlim))
    shrink_dataspace(path, struct.pack("<QQQQ", 40, 30, unlim, unlim),
                     struct.pack("<QQQQ", 21, 13, unlim, unlim))
    shrink_dataspace(path, struct.pack("<QQ", 64, 64), struct.pack("<QQ", 20, 64))


def make_custom_float(name):
    """A float whose datatype has a custom precision and offset (28 bits at
    bit 4 of a 32-bit container; what H5Tset_precision writers and the
    n-bit filter's users declare): h5py converts it to float32."""
    f = kw.create_file(os.path.join(HERE, name), "earliest")
    ft = h5py.h5t.IEEE_F32LE.copy()
    ft.set_fields(27, 19, 8, 4, 15)  # sign bit, exponent at 19 (8), mantissa at 4 (15)
    ft.set_precision(28)
    ft.set_offset(4)
    space = h5py.h5s.create_simple((6,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    d = h5py.h5d.create(f.id, b"custom_float", ft, space, dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL,
            np.array([1.5, -2.25, 3.0, 0.0, 100.0, -0.125], dtype="<f4"))
    f.close()


def make_vlen_fill(name, libver):
    """Fill values that hold variable-length data (their bytes point into
    the global heap): a chunked UTF-8 and a contiguous ASCII vlen string
    dataset, every element written (h5py cannot read unwritten elements of
    such a dataset without write intent)."""
    f = kw.create_file(os.path.join(HERE, name), libver)
    ascii_t = h5py.string_dtype("ascii")
    for dsname, dt, fill, chunked in [
        ("vlen_utf8", VSTR, "remplissage é", True),
        ("vlen_ascii", ascii_t, "fill me", False),
    ]:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_obj_track_times(False)
        if chunked:
            dcpl.set_chunk((2,))
        dcpl.set_fill_value(np.array(fill, dtype=dt))
        space = h5py.h5s.create_simple((3,))
        h5py.h5d.create(f.id, dsname.encode(), h5py.h5t.py_create(dt, logical=True),
                        space, dcpl=dcpl)
        f[dsname][...] = np.array(["a", "bb", "ccc"], dtype=object)
    f.close()


def make_trailing(name):
    path = os.path.join(HERE, name)
    f = kw.create_file(path, "earliest")
    ds(f, "data", data=np.arange(50, dtype="<i4"))
    f.attrs["note"] = "two newlines follow the end of this file"
    f.close()
    with open(path, "ab") as fh:
        fh.write(b"\n\n")


def make_huge_attrs(name):
    f = kw.create_file(os.path.join(HERE, name), "latest")
    rng = np.random.default_rng(5)
    f.attrs["root_small"] = 1.5
    g = kw.new_group(f, "g")
    for i in range(10):
        g.attrs["small_%02d" % i] = i
    g.attrs["huge_i4"] = rng.integers(-1000, 1000, 17000, dtype="<i4")  # 68 KB
    d = ds(f, "d", data=np.arange(10, dtype="<i4"))
    d.attrs["huge_text"] = np.bytes_(b"netCDF-like provenance " * 2900)  # 67 KB
    d.attrs["small"] = "x"
    f.close()


def make_pytables_bzip2_blosc(name):
    """PyTables arrays and a table behind bzip2 (filter 307, decoded and
    verified: bzip2 carries block and stream CRCs) and the blosc family
    (filter 32001: copied through as stored, unverified). h5py cannot read
    either without plugins: PyTables is the oracle."""
    import tables

    path = os.path.join(HERE, name)
    data = (np.arange(2000, dtype="<i8").reshape(200, 10) * 7919) % 100003
    with tables.open_file(path, "w") as h:
        for lib, shuffle in [("bzip2", False), ("bzip2", True), ("blosc:lz4", True),
                             ("blosc:zstd", False), ("blosc:blosclz", True)]:
            filt = tables.Filters(complevel=5, complib=lib, shuffle=shuffle)
            h.create_carray("/", lib.replace(":", "_") + ("_shuffle" if shuffle else ""),
                            obj=data, filters=filt, chunkshape=(64, 10))

        class Row(tables.IsDescription):
            idx = tables.Int32Col(pos=0)
            x = tables.Float64Col(pos=1)

        t = h.create_table("/", "table_bzip2", Row, chunkshape=(16,),
                           filters=tables.Filters(complevel=9, complib="bzip2",
                                                  fletcher32=True))
        r = t.row
        for i in range(45):
            r["idx"] = i
            r["x"] = i / 3
            r.append()
        t.flush()


def make_blosc(name, codec):
    """PyTables leaves behind blosc (filter 32001) with one codec, in the
    layouts c-blosc writes: byte and bit shuffle, split and unsplit blocks,
    several blocks with a short last one, streams and whole buffers stored
    as is (incompressible bytes). PyTables is the oracle."""
    import tables

    path = os.path.join(HERE, name)
    lib = "blosc:" + codec
    ints = (np.arange(4000, dtype="<i4").reshape(200, 20) // 3 * 17) % 5003
    rng = np.random.default_rng(11)
    with tables.open_file(path, "w") as h:
        for label, kw in [("shuffle", dict(shuffle=True)),
                          ("bitshuffle", dict(shuffle=False, bitshuffle=True)),
                          ("noshuffle", dict(shuffle=False))]:
            h.create_carray("/", "ints_" + label, obj=ints, chunkshape=(64, 20),
                            filters=tables.Filters(complevel=5, complib=lib, **kw))
        h.create_carray("/", "floats_bitshuffle", obj=np.sin(np.arange(1500) / 50.0),
                        chunkshape=(500,),
                        filters=tables.Filters(complevel=9, complib=lib, shuffle=False,
                                               bitshuffle=True))
        # 100 KB chunks at complevel 1: many blocks, the last one short.
        h.create_carray("/", "blocks", obj=(np.arange(70000, dtype="<i2") // 64) % 500,
                        chunkshape=(50000,),
                        filters=tables.Filters(complevel=1, complib=lib, shuffle=True))
        # The same bit-shuffled, the short last block's element count not a
        # multiple of 8 (c-blosc leaves such a block unshuffled).
        h.create_carray("/", "blocks_bitshuffle",
                        obj=(np.arange(70000, dtype="<i2") // 64) % 500, chunkshape=(50001,),
                        filters=tables.Filters(complevel=1, complib=lib, shuffle=False,
                                               bitshuffle=True))
        h.create_carray("/", "random", obj=rng.integers(0, 256, 6000, dtype="u1"),
                        chunkshape=(4000,), filters=tables.Filters(complevel=5, complib=lib))

        class Row(tables.IsDescription):
            idx = tables.Int32Col(pos=0)
            x = tables.Float64Col(pos=1)
            tag = tables.StringCol(8, pos=2)

        t = h.create_table("/", "table", Row, chunkshape=(32,),
                           filters=tables.Filters(complevel=5, complib=lib))
        r = t.row
        for i in range(150):
            r["idx"] = i
            r["x"] = i / 3
            r["tag"] = b"row%d" % (i % 13)
            r.append()
        t.flush()
        e = h.create_earray("/", "earray", tables.Float32Atom(), (0, 8), chunkshape=(16, 8),
                            filters=tables.Filters(complevel=5, complib=lib, shuffle=True))
        for k in range(3):
            e.append(np.arange(240, dtype="<f4").reshape(30, 8) * (k + 1))
        v = h.create_vlarray("/", "vlarray", tables.Int32Atom(), chunkshape=16,
                             filters=tables.Filters(complevel=5, complib=lib))
        for i in range(40):
            v.append(np.arange(i % 9, dtype="<i4") * i)


def make_blosc2(name):
    """PyTables' blosc2 (filter 32026: each chunk a blosc2 frame, b2nd for
    more than one dimension), which h5salvage does not decode: copied
    through as stored and named unverified, PyTables reading the same
    values from the output."""
    import tables

    path = os.path.join(HERE, name)
    with tables.open_file(path, "w") as h:
        h.create_carray("/", "lz4_1d", obj=np.arange(4000, dtype="<i4") // 3, chunkshape=(1000,),
                        filters=tables.Filters(5, complib="blosc2:lz4", shuffle=True))
        h.create_carray("/", "zstd_2d", obj=np.arange(4000, dtype="<i4").reshape(40, 100) // 3,
                        chunkshape=(10, 100),
                        filters=tables.Filters(5, complib="blosc2:zstd", bitshuffle=True))


BLOSC_CODECS = ["blosclz", "lz4", "lz4hc", "zlib", "zstd"]

FIXTURES = [
    ("lzf_earliest.h5", lambda n: make_lzf(n, "earliest")),
    ("lzf_latest.h5", lambda n: make_lzf(n, "latest")),
    ("pytables_zlib_fletcher.h5", make_pytables),
    ("repack_fletcher_first.h5", make_repack),
    ("resized_earliest.h5", lambda n: make_resized(n, "earliest")),
    ("resized_latest.h5", lambda n: make_resized(n, "latest")),
    ("trailing_bytes.h5", make_trailing),
    ("vlen_fill_earliest.h5", lambda n: make_vlen_fill(n, "earliest")),
    ("vlen_fill_latest.h5", lambda n: make_vlen_fill(n, "latest")),
    ("custom_float_earliest.h5", make_custom_float),
    ("beyond_extent_earliest.h5", lambda n: make_beyond_extent(n, "earliest")),
    ("beyond_extent_latest.h5", lambda n: make_beyond_extent(n, "latest")),
    ("huge_attrs_latest.h5", make_huge_attrs),
    ("plugins/pytables_bzip2_blosc.h5", make_pytables_bzip2_blosc),
    ("plugins/blosc2_copied.h5", make_blosc2),
] + [("plugins/blosc_%s.h5" % c, lambda n, c=c: make_blosc(n, c)) for c in BLOSC_CODECS]


def main():
    only = set(sys.argv[1:])
    for name, fn in FIXTURES:
        if only and name not in only:
            continue
        path = os.path.join(HERE, name)
        if os.path.exists(path):
            os.remove(path)
        fn(name)
        print("%-28s %8d bytes" % (name, os.path.getsize(path)))


if __name__ == "__main__":
    assert shutil.which("h5repack"), "h5repack (hdf5-tools) is needed"
    main()

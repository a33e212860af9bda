#!/usr/bin/env python3
"""Writes seed inputs for the filters and vlen fuzz targets from the
fixtures in testdata/ (real chunks with their pipelines; real vlen slots
with the file that holds their heap), in the layouts the targets document.
Usage: fuzz/seeds.py OUTDIR (makes OUTDIR/filters and OUTDIR/vlen)."""
import os
import struct
import sys

import h5py

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
out = sys.argv[1]
IDS = {1: 0, 2: 1, 3: 2, 32000: 3, 32001: 5}


def filter_seeds():
    d = os.path.join(out, "filters")
    os.makedirs(d, exist_ok=True)
    n = 0
    for name in ["lzf_latest.h5", "filters_earliest.h5", "pytables_zlib_fletcher.h5",
                 "repack_fletcher_first.h5", "plugins/blosc_blosclz.h5", "plugins/blosc_lz4.h5",
                 "plugins/blosc_zlib.h5", "plugins/blosc_zstd.h5"]:
        with h5py.File(os.path.join(root, name), "r") as f:
            dsets = []
            f.visititems(lambda k, o: dsets.append(o) if isinstance(o, h5py.Dataset) and o.chunks else None)
            for ds in dsets:
                p = ds.id.get_create_plist()
                fl = [p.get_filter(i) for i in range(p.get_nfilters())]
                if len(fl) > 3 or any(x[0] not in IDS for x in fl):
                    continue
                if ds.dtype.itemsize > 255:
                    continue
                chunk_len = ds.dtype.itemsize
                for c in ds.chunks:
                    chunk_len *= c
                if chunk_len > 0xFFFF:
                    continue
                mask, stored = ds.id.read_direct_chunk((0,) * ds.ndim)
                head = bytes([len(fl)])
                for fid, _, cd, *_ in fl:
                    head += bytes([IDS[fid], (cd[0] if cd else 0) & 0xFF])
                head += bytes([mask & 0xFF, ds.dtype.itemsize]) + struct.pack("<H", chunk_len)
                with open(os.path.join(d, f"{name.replace('/', '_')}.{ds.name.strip('/').replace('/', '_')}"), "wb") as w:
                    w.write(head + stored)
                n += 1
    return n


def vlen_seeds():
    # A vlen string (class 9, type 1) of 1-byte chars and a sequence of
    # int32, each slot pointing at object 1 of the first global heap
    # collection of a fixture appended after the slots.
    d = os.path.join(out, "vlen")
    os.makedirs(d, exist_ok=True)
    u8 = bytes([0x10, 0, 0, 0]) + struct.pack("<I", 1) + struct.pack("<HH", 0, 8)
    i32 = bytes([0x10, 0x08, 0, 0]) + struct.pack("<I", 4) + struct.pack("<HH", 0, 32)
    types = {
        "str": bytes([0x19, 0x01, 0, 0]) + struct.pack("<I", 16) + u8,
        "seq_i32": bytes([0x19, 0x00, 0, 0]) + struct.pack("<I", 16) + i32,
    }
    n = 0
    for name in ["types/nested_vlen_earliest.h5", "vlen_fill_latest.h5"]:
        img = open(os.path.join(root, name), "rb").read()
        g = img.find(b"GCOL")
        if g < 0:
            continue
        size = struct.unpack_from("<Q", img, g + 16 + 8)[0]
        for tname, dt in types.items():
            head_len = 1 + len(dt) + 16
            slot = struct.pack("<IQI", min(size, 64), head_len + g, 1)
            with open(os.path.join(d, f"{os.path.basename(name)}.{tname}"), "wb") as w:
                w.write(bytes([0]) + dt + slot + img)
            n += 1
    return n


print(filter_seeds(), "filters seeds,", vlen_seeds(), "vlen seeds")

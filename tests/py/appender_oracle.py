#!/usr/bin/env python3
"""Which rows of a killed appender (testdata/killed_appender.py) are
physically in its file, from the file's bytes alone (no HDF5 parsing, no
h5salvage).

Usage: appender_oracle.py KILLED.h5 [META.json] > ORACLE.json

META (default KILLED.h5.json, written by the generator) gives the element
type, row shape, chunk rows and filters; nothing else is taken from it.

* Filtered chunks (gzip, shuffle+gzip+fletcher32): every position where a
  zlib header can start (78 01 / 78 5e / 78 9c / 78 da) is tried with
  Python's zlib; a stream that ends (complete, Adler-32 checked by zlib)
  and inflates to exactly one chunk's byte size is a chunk.  It is
  un-shuffled when the pipeline says so and its rows are read with
  ``rows_in_buffer``.  The next search starts where the stream ended.
* Unfiltered chunks: rows are searched directly in the bytes (every
  alignment), a row being ``cols`` consecutive elements equal to the
  formula for one (dataset, row).

A row counts as present when all its elements equal the formula (so a
stale copy of a chunk written before the row was appended does not count
for that row, and a row of zeros, never written, is not a row).

Rows an index record proves: every chunk address named by an on-disk
index record (version-1 B-tree chunk leaves ``TREE`` type 1, extensible
array index and data blocks ``EAIB``/``EADB``, version-2 B-tree chunk nodes
``BTLF``/``BTIN`` of types 10/11; parsed here by structure alone, 8-byte
addresses) is read (inflated when filtered) and the rows in
it that equal the formula are "indexed": their chunk is named by an index
record on disk, so a salvager that reads index records must put them at
their path.

Prints JSON: {"file", "size", "chunk_bytes", "chunks": [{"offset",
"stored", "inflated", "rows": [[dataset, first, last+1], ...]}],
"index_records": N, "datasets": {name: {"rows": [[first, last+1], ...],
"n_rows": N, "indexed_rows": [[first, last+1], ...], "n_indexed": N}}}.
"""
import json
import os
import re
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testdata"))
import killed_appender as ka  # noqa: E402

ZLIB_START = re.compile(rb"\x78[\x01\x5e\x9c\xda]")


class Layout:
    """Row layout of the series a META describes."""

    def __init__(self, meta):
        self.meta = meta
        self.cols = tuple(meta["cols"])
        self.ncols = int(np.prod(self.cols)) if self.cols else 1
        self.table = meta["writer"] == "pytables"
        self.dtype = np.dtype(meta["dtype"])
        if self.table:
            self.record = ka.table_dtype(self.cols)
            self.row_bytes = self.record.itemsize
        else:
            self.record = None
            self.row_bytes = self.ncols * self.dtype.itemsize
        self.chunk_bytes = meta["chunk_rows"] * self.row_bytes
        self.filtered = meta["filter"] != "none"
        self.shuffle = "shuffle" in meta["filter"]
        self.fletcher = "fletcher32" in meta["filter"]
        # shuffle works on the dataset's element size (a table: its record)
        self.type_size = self.row_bytes if self.table else self.dtype.itemsize

    def expected(self, ds, rows):
        """The values of rows ``rows`` (int array) of dataset ``ds``, as a
        (len(rows), ncols) array of the element type."""
        c = np.arange(self.ncols, dtype=np.int64)[None, :]
        return ka.value(self.x_dtype(), ds, np.asarray(rows)[:, None], c).astype(self.x_dtype())

    def x_dtype(self):
        return np.dtype("<f8") if self.table else self.dtype


def rows_in_table_buffer(lay, buf, aligned):
    """(ds, row, byte offset) of every record in ``buf`` whose fields equal
    the formula (records start at 0 mod the record size when ``aligned``,
    anywhere otherwise)."""
    out = []
    rec = lay.record
    for start in (range(1) if aligned else range(rec.itemsize)):
        n = (len(buf) - start) // rec.itemsize
        if n <= 0:
            continue
        arr = np.frombuffer(buf, dtype=rec, count=n, offset=start)
        x = arr["x"].reshape(n, lay.ncols)
        ds, row, colp = ka.decode("<f8", x[:, 0])
        idx = np.nonzero((ds >= 0) & (arr["row"] == row))[0]
        for d in np.unique(ds[idx]):
            sel = idx[ds[idx] == d]
            good = np.all(x[sel] == lay.expected(int(d), row[sel]), axis=1)
            for i in sel[good]:
                out.append((int(d), int(row[i]), start + int(i) * rec.itemsize))
    return out


def rows_in_buffer(lay, buf, aligned=False):
    """(ds, row, byte offset) of every row in ``buf`` whose elements equal
    the formula.  ``aligned``: rows start at multiples of the element size
    (an inflated chunk); otherwise every alignment is tried."""
    if lay.table:
        return rows_in_table_buffer(lay, buf, aligned)
    dt, isz, nc = lay.dtype, lay.dtype.itemsize, lay.ncols
    out = []
    for a in (range(1) if aligned else range(isz)):
        n = (len(buf) - a) // isz
        if n < nc:
            continue
        arr = np.frombuffer(buf, dtype=dt, count=n, offset=a)
        ds, row, colp = ka.decode(dt, arr)
        # A row starts with column 0 where the element before is not the
        # same row's (f4/i4 repeat their column part every 4/64 columns).
        start = (ds >= 0) & (colp == 0)
        if nc > 1:
            same_before = np.zeros(n, dtype=bool)
            same_before[1:] = (ds[1:] == ds[:-1]) & (row[1:] == row[:-1]) & (ds[1:] >= 0)
            start &= ~same_before
        idx = np.nonzero(start)[0]
        idx = idx[idx + nc <= n]
        for b in range(0, len(idx), 20000):
            sel = idx[b:b + 20000]
            win = arr[sel[:, None] + np.arange(nc)[None, :]]
            for d in np.unique(ds[sel]):
                m = ds[sel] == d
                exp = lay.expected(int(d), row[sel][m])
                good = np.all(win[m] == exp, axis=1)
                for i in sel[m][good]:
                    out.append((int(d), int(row[i]), a + int(i) * isz))
    return out


def unshuffle(buf, size):
    if size <= 1 or len(buf) % size:
        return buf
    a = np.frombuffer(buf, dtype=np.uint8).reshape(size, len(buf) // size)
    return a.T.tobytes()


def inflate_at(data, pos, chunk_bytes):
    """(inflated, stored length) if a complete zlib stream starting at
    ``pos`` inflates to exactly ``chunk_bytes``, else None."""
    limit = chunk_bytes + chunk_bytes // 8 + 1024
    src = data[pos:pos + limit]
    d = zlib.decompressobj()
    try:
        out = d.decompress(src, chunk_bytes + 1)
    except zlib.error:
        return None
    if not d.eof or len(out) != chunk_bytes:
        return None
    return out, len(src) - len(d.unused_data)


def filtered_chunks(lay, data):
    chunks = []
    mv = memoryview(data)
    pos = 0
    while True:
        m = ZLIB_START.search(data, pos)
        if m is None:
            break
        p = m.start()
        got = inflate_at(mv, p, lay.chunk_bytes)
        if got is None:
            pos = p + 1
            continue
        out, stored = got
        if lay.shuffle:
            out = unshuffle(out, lay.type_size)
        rows = rows_in_buffer(lay, out, aligned=True)
        chunks.append({"offset": p, "stored": stored + (4 if lay.fletcher else 0),
                       "inflated": len(out), "rows": ranges_of(rows)})
        pos = p + stored
    return chunks


def ranges_of(rows):
    """[[ds, first, last+1], ...] of (ds, row, _) triples."""
    out = []
    for d, r in sorted({(d, r) for d, r, _ in rows}):
        if out and out[-1][0] == d and out[-1][2] == r:
            out[-1][2] = r + 1
        else:
            out.append([d, r, r + 1])
    return out


def row_ranges(rows):
    out = []
    for r in sorted(rows):
        if out and out[-1][1] == r:
            out[-1][1] = r + 1
        else:
            out.append([r, r + 1])
    return out


U64 = struct.Struct("<Q")
UNDEF = (1 << 64) - 1


def tree_records(lay, data):
    """(chunk address, stored size) of every entry of every type-1 v1
    B-tree leaf (keys: u32 size, u32 mask, rank+1 u64 offsets)."""
    rank = 1 + len(lay.cols)
    key = 8 + 8 * (rank + 1)
    out = []
    for m in re.finditer(b"TREE", data):
        o = m.start()
        if o + 24 > len(data) or data[o + 4] != 1 or data[o + 5] != 0:
            continue
        n = struct.unpack_from("<H", data, o + 6)[0]
        p = o + 24
        if p + n * (key + 8) + key > len(data):
            continue
        for i in range(n):
            size = struct.unpack_from("<I", data, p)[0]
            addr = U64.unpack_from(data, p + key)[0]
            out.append((addr, size))
            p += key + 8
    return out


def ea_records(lay, data):
    """(chunk address, stored size or None) of the elements of every
    EAIB/EADB block, read while they look like elements (address inside the
    file or undefined; filtered: size up to twice a chunk, mask 0)."""
    out = []
    h = data.find(b"EAHD")
    if h < 0:
        return out
    client, esize, bits, ib_elts = data[h + 5], data[h + 6], data[h + 7], data[h + 8]
    for sig in (b"EAIB", b"EADB"):
        for m in re.finditer(sig, data):
            o = m.start()
            p = o + 6 + 8 + (0 if sig == b"EAIB" else (bits + 7) // 8)
            count = ib_elts if sig == b"EAIB" else 1 << 20
            while count and p + esize <= len(data):
                addr = U64.unpack_from(data, p)[0]
                size = None
                if client == 1:
                    slen = esize - 12
                    size = int.from_bytes(data[p + 8:p + 8 + slen], "little")
                    mask = struct.unpack_from("<I", data, p + 8 + slen)[0]
                    if addr != UNDEF and (mask != 0 or size == 0 or size > 2 * lay.chunk_bytes + 64):
                        break
                if addr != UNDEF:
                    if addr >= len(data):
                        break
                    out.append((addr, size))
                p += esize
                count -= 1
    return out


def v2_records(lay, data):
    """(chunk address, stored size or None) of the records of every
    BTLF/BTIN node of the chunk tree whose BTHD (type 10/11) is in the file,
    read while they look like records (address inside the file; filtered:
    size up to twice a chunk, mask 0; scaled offsets below 2^24 in the
    first dimension, 0 in the others: the rows span every column).  A node
    does not store its record count, so the reading stops at the first
    record that does not look like one."""
    out = []
    h = data.find(b"BTHD")
    if h < 0 or data[h + 5] not in (10, 11):
        return out
    btype = data[h + 5]
    node_size = struct.unpack_from("<I", data, h + 6)[0]
    rs = struct.unpack_from("<H", data, h + 10)[0]
    rank = 1 + len(lay.cols)
    size_len = rs - 8 - 8 * rank - 4 if btype == 11 else 0
    if rs == 0 or (btype == 11 and not 1 <= size_len <= 8):
        return out
    for sig in (b"BTLF", b"BTIN"):
        for m in re.finditer(sig, data):
            o = m.start()
            if o + 6 > len(data) or data[o + 4] != 0 or data[o + 5] != btype:
                continue
            p = o + 6
            for _ in range((node_size - 10) // rs):
                if p + rs > len(data):
                    break
                addr = U64.unpack_from(data, p)[0]
                q = p + 8
                size = None
                if btype == 11:
                    size = int.from_bytes(data[q:q + size_len], "little")
                    mask = struct.unpack_from("<I", data, q + size_len)[0]
                    q += size_len + 4
                    if mask != 0 or size == 0 or size > 2 * lay.chunk_bytes + 64:
                        break
                scaled = struct.unpack_from("<%dQ" % rank, data, q)
                if addr >= len(data) or scaled[0] >= 1 << 24 or any(scaled[1:]):
                    break
                out.append((addr, size))
                p += rs
    return out


def indexed_rows(lay, data):
    """{ds: set(rows)} in chunks an index record names, and the number of
    records."""
    recs = set(tree_records(lay, data)) | set(ea_records(lay, data)) | set(v2_records(lay, data))
    rows = {}
    for addr, size in recs:
        if lay.filtered:
            got = inflate_at(memoryview(data), addr, lay.chunk_bytes)
            if got is None:
                continue
            buf = got[0]
            if lay.shuffle:
                buf = unshuffle(buf, lay.type_size)
        else:
            buf = data[addr:addr + lay.chunk_bytes]
            if len(buf) != lay.chunk_bytes:
                continue
        for d, r, _ in rows_in_buffer(lay, buf, aligned=True):
            rows.setdefault(d, set()).add(r)
    return rows, len(recs)


def oracle(path, meta):
    lay = Layout(meta)
    with open(path, "rb") as fh:
        data = fh.read()
    if lay.filtered:
        chunks = filtered_chunks(lay, data)
        present = {}
        for c in chunks:
            for d, a, b in c["rows"]:
                present.setdefault(d, set()).update(range(a, b))
    else:
        chunks = []
        present = {}
        for d, r, _ in rows_in_buffer(lay, data):
            present.setdefault(d, set()).add(r)
    indexed, nrec = indexed_rows(lay, data)
    datasets = {}
    for d, name in enumerate(meta["datasets"]):
        rows = present.get(d, set())
        idx = indexed.get(d, set()) & rows
        datasets[name] = {"rows": row_ranges(rows), "n_rows": len(rows),
                          "indexed_rows": row_ranges(idx), "n_indexed": len(idx)}
    return {"file": path, "size": len(data), "chunk_bytes": lay.chunk_bytes,
            "chunks": chunks, "index_records": nrec, "datasets": datasets}


def main():
    path = sys.argv[1]
    meta_path = sys.argv[2] if len(sys.argv) > 2 else path + ".json"
    with open(meta_path) as fh:
        meta = json.load(fh)
    print(json.dumps(oracle(path, meta)))


if __name__ == "__main__":
    main()

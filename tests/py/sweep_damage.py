#!/usr/bin/env python3
"""Damage a healthy file in several ways and check h5salvage on each copy.

usage: sweep_damage.py H5SALVAGE ORIGINAL WORKDIR [--seconds N] [--only KIND[,KIND]]

Variants (KIND): `trunc` (truncated at 10, 30, 50, 70, 90 and 99 % of
its size), `cut` (a download cut at 25, 50, 75 and 95 %), `zero` (one 4 KiB page zeroed: the first, the second, the one
in the middle and the last), `flip` (one byte flipped, 0xFF, at 3 bytes
past each of up to 12 metadata signatures: OHDR, OCHK, TREE, SNOD, HEAP,
FRHP, FHDB, BTHD, BTLF, BTIN, FAHD, FADB, EAHD, EAIB, EADB, GCOL, and in
the middle of the superblock's fixed part).

For each variant: `scan` and `salvage` each killed after N seconds (a hang
is a failure), must exit with a documented code (scan: 0, 1, 3; salvage:
0, 1, 3); when salvage wrote a file, compare.py (non-strict) must pass:
every value not marked partial equals the original's.

A zeroed page that `scan` calls healthy (it hit only raw data) is listed
under "undetected" and not compared.

Prints one JSON object: {"variants": n, "undetected": [...], "failures": [...]} and exits 1 if
there was any failure.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIGS = [b"OHDR", b"OCHK", b"TREE", b"SNOD", b"HEAP", b"FRHP", b"FHDB", b"BTHD", b"BTLF",
        b"BTIN", b"FAHD", b"FADB", b"EAHD", b"EAIB", b"EADB", b"GCOL"]


def variants(data, kinds):
    n = len(data)
    if "trunc" in kinds:
        for pct in (10, 30, 50, 70, 90, 99):
            yield "trunc%d" % pct, data[: n * pct // 100]
    if "cut" in kinds:
        for pct in (25, 50, 75, 95):
            yield "cut%d" % pct, data[: n * pct // 100]
    if "zero" in kinds:
        pages = max(1, (n + 4095) // 4096)
        for p in sorted({0, 1, pages // 2, pages - 1}):
            if p * 4096 >= n:
                continue
            b = bytearray(data)
            end = min(n, (p + 1) * 4096)
            b[p * 4096:end] = bytes(end - p * 4096)
            yield "zero_page%d" % p, bytes(b)
    if "flip" in kinds:
        offs = []
        for sig in SIGS:
            i = data.find(sig, 1)
            while i >= 0 and len([o for o in offs if o[0] == sig]) < 2:
                offs.append((sig, i))
                i = data.find(sig, i + 1)
        offs = offs[:12]
        sb = data.find(b"\x89HDF\r\n\x1a\n")
        if sb >= 0:
            offs.append((b"SUPER", sb + 12))
        for sig, at in offs:
            pos = at + 3 if sig != b"SUPER" else at
            pos += 4  # past the signature: version / flags / first fields
            if pos >= n:
                continue
            b = bytearray(data)
            b[pos] ^= 0xFF
            yield "flip_%s_%#x" % (sig.decode(), pos), bytes(b)


def run(cmd, seconds):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=seconds)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", ""


def main():
    exe, orig, work = sys.argv[1:4]
    seconds = 60
    kinds = {"trunc", "zero", "flip"}
    args = sys.argv[4:]
    for i, a in enumerate(args):
        if a == "--seconds":
            seconds = int(args[i + 1])
        if a == "--only":
            kinds = set(args[i + 1].split(","))
    os.makedirs(work, exist_ok=True)
    data = open(orig, "rb").read()
    base = os.path.basename(orig)
    failures = []
    undetected = []
    count = 0
    for name, bad in variants(data, kinds):
        count += 1
        inp = os.path.join(work, "%s.%s" % (base, name))
        out = inp + ".out.h5"
        with open(inp, "wb") as fh:
            fh.write(bad)
        if os.path.exists(out):
            os.remove(out)
        rc, text = run([exe, "scan", inp], seconds)
        if rc not in (0, 1, 3):
            failures.append({"variant": name, "step": "scan", "rc": rc, "out": text[-600:]})
        # A zeroed page that hit only raw data (or a value without a
        # checksum) leaves a file no reader can tell from a healthy one
        # whose data is zero: only no panic, no hang, a documented code.
        undetectable = name.startswith("zero") and rc == 0
        rc, text = run([exe, "salvage", inp, "-o", out], seconds)
        if rc not in (0, 1, 3):
            failures.append({"variant": name, "step": "salvage", "rc": rc, "out": text[-600:]})
            continue
        if undetectable:
            undetected.append(name)
            continue
        if rc == 3 or not os.path.exists(out):
            if rc != 3:
                failures.append({"variant": name, "step": "salvage", "rc": rc,
                                 "out": "exit %s but no output" % rc})
            continue
        crc, ctext = run([sys.executable, os.path.join(HERE, "compare.py"), orig, out], seconds)
        if crc != 0:
            failures.append({"variant": name, "step": "compare", "rc": crc, "out": ctext[-1500:]})
        else:
            os.remove(inp)
            os.remove(out)
    json.dump({"file": base, "variants": count, "undetected": undetected, "failures": failures}, sys.stdout, indent=1)
    print()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Open ORIGINAL and SALVAGED with netCDF4-python and compare what it sees:
groups, dimensions (size, unlimited), variables (dimensions, dtype, values,
attributes in order), global attributes in order.

usage: netcdf_same.py ORIGINAL SALVAGED
Prints one line per difference; exit status 1 if there was any.
"""
import sys

import netCDF4
import numpy as np

bad = []


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        # Elements may be arrays themselves (vlen variables).
        return a.shape == b.shape and all(
            same_value(x, y) if isinstance(x, np.ndarray) or isinstance(y, np.ndarray) else x == y
            for x, y in zip(a.ravel(), b.ravel()))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def attrs(obj):
    # h5salvage's own marks are not the source's.
    return [(k, obj.getncattr(k)) for k in obj.ncattrs() if not k.startswith("h5salvage")]


def compare(x, y, where):
    ax, ay = attrs(x), attrs(y)
    if [k for k, _ in ax] != [k for k, _ in ay]:
        bad.append(f"{where}: attributes {[k for k, _ in ax]} vs {[k for k, _ in ay]}")
    else:
        for (k, vx), (_, vy) in zip(ax, ay):
            if not same_value(vx, vy):
                bad.append(f"{where}: attribute {k}: {vx!r} vs {vy!r}")
    dx = [(n, len(d), d.isunlimited()) for n, d in x.dimensions.items()]
    dy = [(n, len(d), d.isunlimited()) for n, d in y.dimensions.items()]
    if dx != dy:
        bad.append(f"{where}: dimensions {dx} vs {dy}")
    if list(x.variables) != list(y.variables):
        bad.append(f"{where}: variables {list(x.variables)} vs {list(y.variables)}")
    for n in x.variables:
        if n not in y.variables:
            continue
        vx, vy = x.variables[n], y.variables[n]
        w = f"{where}{n}"
        if vx.dimensions != vy.dimensions or vx.dtype != vy.dtype:
            bad.append(f"{w}: {vx.dimensions} {vx.dtype} vs {vy.dimensions} {vy.dtype}")
            continue
        compare_attrs = attrs(vx), attrs(vy)
        if [k for k, _ in compare_attrs[0]] != [k for k, _ in compare_attrs[1]]:
            bad.append(f"{w}: attributes {compare_attrs}")
        for (k, ax_), (_, ay_) in zip(*compare_attrs):
            if not same_value(ax_, ay_):
                bad.append(f"{w}: attribute {k}")
        if vx.filters() != vy.filters():
            bad.append(f"{w}: filters {vx.filters()} vs {vy.filters()}")
        if not same_value(vx[...], vy[...]):
            bad.append(f"{w}: values differ")
    if list(x.groups) != list(y.groups):
        bad.append(f"{where}: groups {list(x.groups)} vs {list(y.groups)}")
    for n in x.groups:
        if n in y.groups:
            compare(x.groups[n], y.groups[n], f"{where}{n}/")


def main():
    with netCDF4.Dataset(sys.argv[1]) as x, netCDF4.Dataset(sys.argv[2]) as y:
        compare(x, y, "/")
    for b in bad:
        print(b)
    print(f"{len(bad)} differences")
    sys.exit(1 if bad else 0)


main()

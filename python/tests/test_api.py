"""h5salvage's Python API on the repository's fixtures and damaged
variants, with the outputs read back by h5py in the same interpreter (h5py
bundles its own libhdf5; the wheel links another one statically)."""

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import h5py  # imported first on purpose: both libraries in one process
import numpy as np
import pytest

import h5salvage


def plain(v):
    """A value h5py returned, as nested lists/tuples of Python scalars
    (vlen members come back as arrays inside compound elements)."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OV":
            return ("array", str(v.dtype), v.shape, [plain(x) for x in v.ravel().tolist()])
        return ("array", str(v.dtype), v.shape, v.tobytes())  # bit for bit (NaN too)
    if isinstance(v, np.void):
        return tuple(plain(x) for x in v.item()) if v.dtype.names else v.tobytes()
    if isinstance(v, (list, tuple)):
        return type(v)(plain(x) for x in v)
    if isinstance(v, np.generic):
        return (str(v.dtype), v.tobytes())
    if isinstance(v, (h5py.Reference, h5py.RegionReference)):
        return ("ref", bool(v))
    return v


def walk(f):
    """{path: (kind, value, attrs, dtype)} of everything h5py sees."""
    out = {}

    def visit(name, obj):
        attrs = {k: plain(v) for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", plain(obj[()]), attrs, str(obj.dtype))
        else:
            out[name] = ("group", None, attrs, None)

    f.visititems(visit)
    return out


def test_scan_is_the_cli_json_document(testdata):
    path = testdata / "damaged" / "worker_truncated.h5"
    doc = h5salvage.scan(path)
    assert doc["verdict"] == "damaged"
    assert doc["superblock"]["eof_address"] == 71368
    assert doc["size"] == 42820
    exe = shutil.which("h5salvage")
    assert exe, "the console script is on PATH"
    cli = subprocess.run([exe, "scan", "--json", str(path)], capture_output=True, timeout=120)
    assert cli.returncode == 1
    assert json.loads(cli.stdout) == doc


def test_scan_modes_and_healthy_file(testdata):
    healthy = h5salvage.scan(testdata / "worker_earliest.h5")
    assert healthy["verdict"] == "healthy"
    paths = {o["path"] for o in healthy["objects"]}
    assert {"/", "/init", "/config_0000", "/config_0009"} <= paths
    lost = testdata / "damaged" / "worker_no_superblock.h5"
    assert h5salvage.scan(lost, carve=False)["objects"] == []
    carved = h5salvage.scan(lost)
    assert carved["carving"] is not None and len(carved["objects"]) > 10
    with pytest.raises(ValueError):
        h5salvage.scan(lost, carve="sometimes")


def test_scan_writes_the_map(testdata, tmp_path):
    svg = tmp_path / "map.svg"
    h5salvage.scan(testdata / "damaged" / "worker_truncated.h5", map=svg)
    text = svg.read_text()
    assert text.startswith("<svg") and "missing (past the end)" in text
    assert [p.name for p in tmp_path.iterdir()] == ["map.svg"]


def test_scan_of_a_missing_file_raises_oserror(tmp_path):
    with pytest.raises(h5salvage.Error) as e:
        h5salvage.scan(tmp_path / "nope.h5")
    assert isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOENT
    assert "nope.h5" in str(e.value)


@pytest.mark.parametrize(
    "name", ["rich_earliest.h5", "rich_latest.h5", "worker_latest.h5", "userblock512.h5"]
)
def test_healthy_files_come_back_identical(testdata, tmp_path, name):
    out = tmp_path / "out.h5"
    rep = h5salvage.salvage(testdata / name, out)
    assert rep["partial"] == 0 and rep["lost"] == 0, rep
    with h5py.File(testdata / name, "r") as a, h5py.File(out, "r") as b:
        want, got = walk(a), walk(b)
        for attrs in (dict(b.attrs),):
            assert "h5salvage_source" in attrs
        assert want.keys() == got.keys()
        for k in want:
            assert want[k] == got[k], k
        assert dict(a.attrs).keys() <= dict(b.attrs).keys()


def test_complex_class_is_written_as_the_class(testdata, tmp_path):
    """The wheel's HDF5 (2.x) writes the complex class itself: the same
    class, values and dtypes as the input, no substitution note (the
    command line's libhdf5 1.10 writes the {r, i} compound instead:
    tests/salvage.rs)."""
    src = testdata / "unsupported" / "complex_hdf5_2.h5"
    out = tmp_path / "out.h5"
    rep = h5salvage.salvage(src, out)
    assert (rep["recovered"], rep["partial"], rep["lost"], rep["attributes_lost"]) == (5, 0, 0, 0), rep
    assert not any(o.get("notes") for o in rep["objects"]), rep
    with h5py.File(src, "r") as a, h5py.File(out, "r") as b:
        assert walk(a) == {k: v for k, v in walk(b).items()}
        for k in ("c16", "c8"):
            assert b[k].id.get_type().get_class() == h5py.h5t.COMPLEX, k
            assert "h5salvage_type_note" not in b[k].attrs
        assert b.attrs["ca"].dtype == np.complex64
        assert (b.attrs["ca"] == a.attrs["ca"]).all()
        assert "h5salvage_type_note" not in b.attrs


def test_truncated_file_salvaged_values_match_the_original(testdata, tmp_path):
    out = tmp_path / "saved.h5"
    rep = h5salvage.salvage(testdata / "damaged" / "worker_truncated.h5", out, report=tmp_path / "r.json")
    assert rep["recovered"] > 0 and rep["partial"] + rep["lost"] > 0
    assert json.loads((tmp_path / "r.json").read_text()) == rep
    with h5py.File(testdata / "worker_earliest.h5", "r") as orig, h5py.File(out, "r") as saved:
        checked = 0
        for name, (kind, value, _, _) in walk(saved).items():
            obj = saved[name]
            if kind != "dataset" or obj.attrs.get("h5salvage_status") == "partial":
                continue
            if name.startswith("lost+found"):
                continue  # its original path is not known
            assert np.array_equal(obj[()], orig[name][()]), name
            checked += 1
        assert checked >= 5


@pytest.mark.parametrize("name", ["worker_no_superblock.h5", "worker_open_for_write.h5"])
def test_damaged_files_open_in_h5py_after_salvage(testdata, tmp_path, name):
    out = tmp_path / "saved.h5"
    rep = h5salvage.salvage(testdata / "damaged" / name, out)
    assert rep["recovered"] > 0
    with h5py.File(out, "r") as f:
        assert len(walk(f)) >= 10


def test_errors_are_exceptions_and_leave_nothing(testdata, tmp_path):
    out = tmp_path / "o.h5"
    for name in ["empty.h5", "not_hdf5.txt"]:
        with pytest.raises(h5salvage.NothingRecoverable) as e:
            h5salvage.salvage(testdata / name, out)
        assert "nothing recoverable" in str(e.value) and name in str(e.value)
        assert isinstance(e.value, OSError)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"keep me")
    with pytest.raises(h5salvage.OutputExists) as e:
        h5salvage.salvage(testdata / "worker_earliest.h5", out)
    assert isinstance(e.value, FileExistsError)
    assert "--force" in str(e.value)
    assert out.read_bytes() == b"keep me"
    h5salvage.salvage(testdata / "worker_earliest.h5", out, force=True)
    with h5py.File(out, "r") as f:
        assert "config_0003" in f
    with pytest.raises(h5salvage.Error) as e:
        h5salvage.salvage(tmp_path / "missing.h5", tmp_path / "x.h5")
    assert e.value.errno == errno.ENOENT


def test_merge_gathers_the_workers_and_resumes(workers, tmp_path):
    out = tmp_path / "results.h5"
    rep = h5salvage.merge(out, [workers])
    assert rep["written"] and rep["exit_code"] == 1
    verdicts = {Path(i["input"]).name: i["verdict"] for i in rep["inputs"]}
    assert verdicts["worker_1.h5"] == "complete"
    assert verdicts["worker_6.h5"] == "nothing"
    with h5py.File(out, "r") as f:
        assert "init" not in f
        assert {f"config_{i:04d}" for i in range(10)} <= set(f)
        with h5py.File(workers / "worker_1.h5", "r") as w:
            for g in w:
                if g != "init" and f[g].attrs.get("h5salvage_status") != "partial":
                    assert walk(f[g]) .keys() == walk(w[g]).keys()
    again = h5salvage.merge(out, workers)
    assert not again["written"]
    with pytest.raises(h5salvage.Error):
        h5salvage.merge(tmp_path / "r2.h5", [])


def test_merge_exclude(workers, tmp_path):
    out = tmp_path / "results.h5"
    h5salvage.merge(out, [workers / "worker_1.h5"], exclude=["config_0001"])
    with h5py.File(out, "r") as f:
        assert "init" in f and "config_0001" not in f and "config_0002" in f


def test_the_gil_is_released(tmp_path):
    big = tmp_path / "many.h5"
    with h5py.File(big, "w") as f:
        for i in range(2000):
            f.create_group(f"g{i:05d}").create_dataset("x", data=np.arange(4))
    done = threading.Event()
    errors = []

    def work():
        try:
            for k in range(3):
                h5salvage.salvage(big, tmp_path / f"o{k}.h5")
        except Exception as e:  # reported below
            errors.append(e)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    assert not errors, errors
    # With the GIL held by the salvage, this thread could not run at all.
    assert spins > 10_000, spins


def test_cli_entry_points(testdata, tmp_path):
    assert h5salvage.main(["scan", str(testdata / "worker_earliest.h5")]) == 0
    assert h5salvage.main(["scan", str(testdata / "empty.h5")]) == 3
    assert h5salvage.main(["frobnicate"]) == 2
    r = subprocess.run(
        [sys.executable, "-m", "h5salvage", "salvage", str(testdata / "damaged" / "worker_truncated.h5"),
         "-o", str(tmp_path / "s.h5")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1, r.stderr
    assert "recovered" in r.stdout


def test_the_wheel_carries_its_own_hdf5():
    native = Path(h5salvage._native.__file__)
    ldd = subprocess.run(["ldd", str(native)], capture_output=True, text=True)
    assert ldd.returncode == 0
    assert "libhdf5" not in ldd.stdout, ldd.stdout
    nm = subprocess.run(["nm", "-D", "--defined-only", str(native)], capture_output=True, text=True)
    exported = [l.split()[-1] for l in nm.stdout.splitlines()]
    # Only the module's init function: libhdf5's symbols stay private, so
    # h5py's libhdf5 in the same process never binds to them.
    assert not [s for s in exported if s.startswith("H5")], exported[:20]
    assert "PyInit__native" in exported

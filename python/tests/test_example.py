"""examples/merge_workers.py end to end on a directory of workers."""

import subprocess
import sys

import h5py

from conftest import ROOT


def test_merge_workers_example(workers):
    script = ROOT / "examples" / "merge_workers.py"
    r = subprocess.run(
        [sys.executable, str(script), str(workers)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
    names = sorted(p.name for p in workers.iterdir())
    # Only the file with nothing in it is renamed; damaged ones are salvaged.
    assert "worker_6.h5.corrupted" in names
    for i in range(1, 6):
        assert f"worker_{i}.h5" in names
    with h5py.File(workers / "results.h5", "r") as f:
        assert "init" not in f
        assert {f"config_{i:04d}" for i in range(10)} <= set(f)
        # What only a salvaged worker held (nameless groups) is kept apart.
        assert "lost+found" in f
        assert any(k.startswith("worker_") for k in f["lost+found"])
    print(r.stdout)
    assert "salvaged" in r.stdout
    # Re-running changes nothing and salvages nothing again.
    r2 = subprocess.run(
        [sys.executable, str(script), str(workers)], capture_output=True, text=True, timeout=300
    )
    assert r2.returncode == 0, r2.stderr

"""Fixtures of the Python package's tests.

The tests import h5py, numpy and h5salvage directly: a missing module is an
error, never a skip (CI must not pass having tested nothing).
"""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "testdata"


@pytest.fixture
def testdata():
    return TESTDATA


@pytest.fixture
def workers(tmp_path):
    """A directory of worker files as a killed parallel run leaves them:
    two healthy ones, a truncated one, one without its superblock, one a
    writer still had open, an empty one."""
    d = tmp_path / "runs"
    d.mkdir()
    shutil.copy(TESTDATA / "worker_earliest.h5", d / "worker_1.h5")
    shutil.copy(TESTDATA / "worker_latest.h5", d / "worker_2.h5")
    shutil.copy(TESTDATA / "damaged" / "worker_truncated.h5", d / "worker_3.h5")
    shutil.copy(TESTDATA / "damaged" / "worker_no_superblock.h5", d / "worker_4.h5")
    shutil.copy(TESTDATA / "damaged" / "worker_open_for_write.h5", d / "worker_5.h5")
    (d / "worker_6.h5").write_bytes(b"")
    return d

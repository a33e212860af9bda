"""Scan and salvage damaged HDF5 files from Python.

The same library as the ``h5salvage`` command (installed with this
package), called in-process::

    import h5salvage
    report = h5salvage.scan("worker_3.h5")          # like `scan --json`
    if report["verdict"] != "healthy":
        h5salvage.salvage("worker_3.h5", "worker_3.saved.h5")
    h5salvage.merge("results.h5", ["runs/"])           # like `merge --json`

Inputs are opened read-only and never modified; outputs are written to a
temporary file beside them and renamed when complete. The GIL is released
while the work runs, so other Python threads go on.
"""

import json as _json
import os as _os
import sys as _sys

from . import _native
from ._errors import Error, NothingRecoverable, OutputExists

__all__ = ["scan", "salvage", "merge", "main", "Error", "NothingRecoverable", "OutputExists"]
__version__ = _native.__version__


def _carve_mode(carve):
    if carve is True:
        return "auto"
    if carve is False:
        return "never"
    if carve == "only":
        return "only"
    raise ValueError(f'carve must be True, False or "only", not {carve!r}')


def _templates(template):
    if template is None:
        return []
    if isinstance(template, (str, bytes, _os.PathLike)):
        return [_os.fspath(template)]
    return [_os.fspath(t) for t in template]


def scan(path, carve=True, *, map=None, template=None, infer=True):
    """Scan one file: what it holds and what is broken.

    Returns the document ``h5salvage scan --json`` prints (``verdict``,
    ``superblock``, ``objects`` with their status and problems, ``summary``,
    ...). ``carve``: True searches the whole file for structures by
    signature when the walk from the superblock finds damage, False never
    does, ``"only"`` ignores the superblock's root. ``map``: a path where an
    SVG picture of the file's byte ranges is written (as ``scan --map``).
    ``template``: a healthy file (or a list of them) written by the same
    program, whose chunked datasets describe chunks no index lists (as
    ``--template``); ``infer=False`` never places such chunks by allocation
    order (as ``--no-infer``). Raises :class:`Error` if the file cannot be
    read.
    """
    text = _native.scan(
        _os.fspath(path),
        _carve_mode(carve),
        None if map is None else _os.fspath(map),
        _templates(template),
        bool(infer),
    )
    return _json.loads(text)


def salvage(
    path, output, *, force=False, carve=True, report=None, template=None, infer=True, wait_lock=300
):
    """Write everything recoverable from ``path`` into a new HDF5 file.

    Returns the account of every object (``recovered``, ``partial``,
    ``lost`` counts and ``objects`` with reasons), as ``salvage --json``.
    ``force`` replaces an existing ``output``; ``carve`` as in :func:`scan`;
    ``report``: also write the account to this path as JSON; ``template``
    and ``infer`` as in :func:`scan`; ``wait_lock``: seconds to wait for
    another run writing the same ``output`` (as ``--wait-lock``).

    Raises :class:`NothingRecoverable` (no output written),
    :class:`OutputExists`, or :class:`Error` (the input cannot be read, the
    output cannot be written; nothing is left behind).
    """
    text = _native.salvage(
        _os.fspath(path),
        _os.fspath(output),
        bool(force),
        _carve_mode(carve),
        _templates(template),
        bool(infer),
        float(wait_lock),
    )
    doc = _json.loads(text)
    if report is not None:
        with open(report, "w", encoding="utf-8") as f:
            _json.dump(doc, f, indent=2)
            f.write("\n")
    return doc


def merge(
    output,
    inputs,
    *,
    exclude=("init",),
    remove_merged=False,
    quarantine=None,
    jobs=0,
    include_open=False,
    wait_lock=300,
):
    """Merge the top-level groups of many worker files into ``output``.

    ``inputs``: files or directories (searched for ``*.h5`` and
    ``*.corrupted``). Groups already in ``output`` are kept (re-running
    resumes); damaged inputs are carved; nameless groups go to
    ``/lost+found/<input stem>/``. ``exclude``: root group names never
    copied. ``remove_merged`` deletes an input once each of its groups was
    read back equal from ``output``; ``quarantine`` moves inputs nothing
    could be recovered from into that directory; ``jobs``: inventory
    threads (0: one per core); ``include_open`` merges inputs another
    process still holds open for writing (skipped by default);
    ``wait_lock``: seconds to wait for another run writing ``output``.

    Returns the document ``merge --json`` prints, plus ``exit_code`` (what
    the command would exit with). Raises :class:`Error` when the merge
    cannot run or ``output`` cannot be written (it is then left as it was).
    """
    if isinstance(inputs, (str, bytes, _os.PathLike)):
        inputs = [inputs]
    if isinstance(exclude, str):
        exclude = [exclude]
    text = _native.merge(
        _os.fspath(output),
        [_os.fspath(p) for p in inputs],
        [str(e) for e in exclude],
        bool(remove_merged),
        None if quarantine is None else _os.fspath(quarantine),
        int(jobs),
        bool(include_open),
        float(wait_lock),
    )
    return _json.loads(text)


def main(argv=None):
    """Run the ``h5salvage`` command line with ``argv`` (default
    ``sys.argv[1:]``); returns its exit code."""
    args = list(_sys.argv[1:] if argv is None else argv)
    return _native.cli(["h5salvage"] + [_os.fspath(a) for a in args])


def _console():
    # The work runs without the GIL, where Python's KeyboardInterrupt cannot
    # reach it: let Ctrl-C end the process as it ends the Rust binary.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _sys.stdout.flush()
    _sys.exit(main())

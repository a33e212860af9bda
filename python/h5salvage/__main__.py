"""``python -m h5salvage ...``: the command line."""

from . import _console

_console()

"""The exceptions h5salvage raises (raised by the native module too)."""


class Error(OSError):
    """A scan, salvage or merge could not be done: the input cannot be read,
    the output cannot be written. ``str(e)`` is the message the command line
    prints; ``e.errno`` is set when the operating system gave one."""


class NothingRecoverable(Error):
    """Nothing readable in the input (empty, not HDF5, unreadable): no
    output was written."""


class OutputExists(Error, FileExistsError):
    """The output exists and ``force`` was not given."""

import os
from typing import Any, Dict, Iterable, Literal, Optional, Sequence, Union

from ._errors import Error as Error
from ._errors import NothingRecoverable as NothingRecoverable
from ._errors import OutputExists as OutputExists

_Path = Union[str, os.PathLike[str]]
_Carve = Union[bool, Literal["only"]]

__version__: str

_Templates = Union[_Path, Iterable[_Path], None]

def scan(
    path: _Path,
    carve: _Carve = True,
    *,
    map: Optional[_Path] = None,
    template: _Templates = None,
    infer: bool = True,
) -> Dict[str, Any]: ...
def salvage(
    path: _Path,
    output: _Path,
    *,
    force: bool = False,
    carve: _Carve = True,
    report: Optional[_Path] = None,
    template: _Templates = None,
    infer: bool = True,
    wait_lock: float = 300,
) -> Dict[str, Any]: ...
def merge(
    output: _Path,
    inputs: Union[_Path, Iterable[_Path]],
    *,
    exclude: Union[str, Sequence[str]] = ("init",),
    remove_merged: bool = False,
    quarantine: Optional[_Path] = None,
    jobs: int = 0,
    include_open: bool = False,
    wait_lock: float = 300,
) -> Dict[str, Any]: ...
def main(argv: Optional[Sequence[_Path]] = None) -> int: ...

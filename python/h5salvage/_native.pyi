import os
from typing import List, Optional

__version__: str

def scan(
    path: str,
    carve: str,
    map: Optional[str] = None,
    template: List[str] = ...,
    infer: bool = True,
) -> str: ...
def salvage(
    input: str,
    output: str,
    force: bool,
    carve: str,
    template: List[str] = ...,
    infer: bool = True,
    wait_lock: float = 300.0,
) -> str: ...
def merge(
    output: str,
    inputs: List[str],
    exclude: List[str],
    remove_merged: bool,
    quarantine: Optional[str],
    jobs: int,
    include_open: bool = False,
    wait_lock: float = 300.0,
) -> str: ...
def cli(argv: List[str]) -> int: ...

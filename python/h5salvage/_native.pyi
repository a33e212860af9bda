import os
from typing import List, Optional

__version__: str

def scan(path: str, carve: str, map: Optional[str] = None) -> str: ...
def salvage(input: str, output: str, force: bool, carve: str) -> str: ...
def merge(
    output: str,
    inputs: List[str],
    exclude: List[str],
    remove_merged: bool,
    quarantine: Optional[str],
    jobs: int,
) -> str: ...
def cli(argv: List[str]) -> int: ...

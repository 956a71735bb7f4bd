"""Notices every file the suite's own process opens or lists beside the repository (`../anything`): the repository
stands on its own, so a fresh clone runs the whole suite. conftest installs the hook and fails the run on a find."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile", "shutil.copytree"}
seen: list[str] = []


def outside(path: str) -> bool:
    """Beside the repository (its parent folder, not the repository itself); /tmp, the venv and the system are fine."""
    absolute = os.path.abspath(path)
    return absolute.startswith(str(ROOT.parent) + os.sep) and not (
        absolute == str(ROOT) or absolute.startswith(str(ROOT) + os.sep)
    )


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event in _EVENTS and args and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if outside(path):
            seen.append(path)


def install() -> None:
    sys.addaudithook(_hook)  # for the rest of the process: audit hooks cannot be removed

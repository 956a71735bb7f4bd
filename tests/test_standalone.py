"""The repository is the whole project: no code, test or benchmark reads a path outside it, and a copy of the
tracked files alone collects the whole suite (what `git clone` then `make test` does on a new machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import outside

ROOT = outside.ROOT
CLIMB = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
UP = re.compile(r"(?:\.\./)+[\w.-]*")


def tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def reaches_outside(path: Path, text: str) -> list[str]:
    """The places where a file names a folder beside the repository."""
    depth = len(path.relative_to(ROOT).parts)  # parents from the file up to the root
    found = [f"climbs {n} folders" for m in CLIMB.finditer(text) if (n := m.group(1).count(".parent")) > depth]
    # A relative path may climb within the repository (kustomize's ../../base), never past its root.
    found += [f"names {m.group(0)!r}" for m in UP.finditer(text) if m.group(0).count("../") >= depth]
    found += [f"names {m.group(0)!r}" for m in re.finditer(r"ROOT\.parent\b|\bshared/(?:bench|samples)\b", text)]
    return found


def test_no_file_names_a_path_outside_the_repository() -> None:
    mine = {Path(__file__), ROOT / "tests" / "outside.py"}  # they name such paths to look for them
    offenders = []
    for path in tracked():
        if path in mine or path.suffix not in {".py", ".lua", ".toml", ".yaml", ".yml", ".sh", ""}:
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {what}" for what in reaches_outside(path, text)]
    assert offenders == []


def test_the_check_finds_a_climb_out() -> None:
    probe = ROOT / "tests" / "probe.py"
    assert reaches_outside(probe, "Path(__file__).resolve().parent.parent.parent / 'x'")
    assert not reaches_outside(probe, "Path(__file__).resolve().parent.parent / 'x'")
    assert reaches_outside(probe, "SAMPLES = '../../shared/samples'")
    assert not reaches_outside(ROOT / "deploy" / "kubernetes" / "overlays" / "x" / "k.yaml", "- ../../base")


def test_the_suite_notices_a_read_beside_the_repository() -> None:
    """The hook conftest installs (the run fails if it saw anything at its end) sees an open beside the repository."""
    before = len(outside.seen)
    with pytest.raises(OSError):
        open(ROOT.parent / "not-the-repository" / "sample.json")
    assert outside.seen[before:] == [str(ROOT.parent / "not-the-repository" / "sample.json")]
    del outside.seen[before:]


@pytest.mark.slow
def test_a_copy_of_the_tracked_files_alone_collects_the_whole_suite(tmp_path: Path) -> None:
    clone = tmp_path / "clone" / "framewatch"
    for path in tracked():
        target = clone / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert re.search(r"\d+ tests? collected", ran.stdout), ran.stdout[-500:]

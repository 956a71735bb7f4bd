"""The import rules that keep the tree true to the architecture (README, "Layout") are import-linter contracts in
pyproject.toml; `make test` runs `lint-imports`, and these tests show the contracts hold and catch each kind of slip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "ingest", "workers", "framewatch")
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # the copy's packages before the installed ones
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_import_rules() -> None:
    ran = lint(ROOT)
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "0 broken" in ran.stdout


def test_the_contracts_catch_each_kind_of_slip(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    slips = {
        "schemas/slip.py": "from framewatch.runtime import metrics\n",
        "ingest/slip.py": "def f():\n    from workers.contract import Stage\n",
        "workers/fetch/slip.py": "from workers.moderate.stage import ModerateStage\n",
        "workers/deliver/slip.py": "import framewatch.providers.tencent.provider\n",
        "framewatch/admin/slip.py": "from ingest import callbacks\n",
    }
    for name, text in slips.items():
        (tmp_path / name).write_text(text)
    ran = lint(tmp_path)
    assert ran.returncode != 0
    assert "Contracts: 0 kept, 5 broken." in ran.stdout, ran.stdout[-3000:]

"""The import rules that keep the tree's layout true to the architecture (README, "Layout").

- `schemas/` imports nothing of the project: it is the contract between the stages.
- `ingest/` never imports `workers/`, nor the reverse.
- A worker stage never imports another stage: the topology routes messages between them.
- Workers never name a provider: they see neutral messages, and reach a provider's formats through the registry.
- The kernel (`framewatch/`) never imports the services, except the process wiring (`framewatch/wiring.py`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingest", "workers")
STAGES = ("fetch", "moderate", "deliver", "streams")
PROVIDER_PACKAGES = ("framewatch.providers.tencent", "framewatch.providers.alibaba")
WIRING = "framewatch.wiring"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module an import statement names, lazy imports inside functions included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from workers import fetch` imports workers.fetch
                yield node.lineno, f"{node.module}.{alias.name}"


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(root: Path) -> list[str]:
    found = []
    for top in ("schemas", "ingest", "workers", "framewatch"):
        for path in sorted((root / top).rglob("*.py")):
            source = module_name(root, path)
            reported = set()
            for line, target in imports(path):
                rule = broken_rule(source, target)
                if rule and (line, rule) not in reported:  # one report per statement and rule
                    reported.add((line, rule))
                    found.append(f"{path.relative_to(root)}:{line} imports {target}: {rule}")
    return found


def broken_rule(source: str, target: str) -> str | None:
    project = ("schemas", "ingest", "workers", "framewatch")
    if within(source, "schemas") and any(within(target, p) for p in project) and not within(target, "schemas"):
        return "schemas/ imports nothing of the project"
    for one, other in (("ingest", "workers"), ("workers", "ingest")):
        if within(source, one) and within(target, other):
            return f"{one}/ never imports {other}/"
    for stage in STAGES:
        if within(source, f"workers.{stage}"):
            for other in STAGES:
                if other != stage and within(target, f"workers.{other}"):
                    return "a worker stage never imports another stage"
    if within(source, "workers") and any(within(target, p) for p in PROVIDER_PACKAGES):
        return "workers never name a provider (use framewatch.providers.registry)"
    if within(source, "framewatch") and source != WIRING and any(within(target, s) for s in SERVICES):
        if not (source == "framewatch.cli" and within(target, WIRING)):
            return "the kernel never imports the services, except the process wiring"
    return None


def test_the_tree_keeps_its_import_rules() -> None:
    assert violations(ROOT) == []


def test_the_rules_catch_each_kind_of_slip(tmp_path: Path) -> None:
    """The check itself: a tree that breaks each rule once is reported once per rule."""
    files = {
        "schemas/messages.py": "from framewatch.runtime import metrics\n",
        "ingest/app.py": "def f():\n    from workers.runtime import Stage\n",
        "workers/fetch/stage.py": "from workers.moderate.stage import ModerateStage\n",
        "workers/deliver/plan.py": "import framewatch.providers.tencent.provider\n",
        "framewatch/admin/api.py": "from ingest import callbacks\n",
        "framewatch/wiring.py": "from ingest.app import add_callback_routes\nfrom workers.service import Workers\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(tmp_path)
    assert len(found) == 5, found
    assert not any(line.startswith("framewatch/wiring.py") for line in found)
    for fragment in ("schemas/", "ingest/ never", "another stage", "never name a provider", "the kernel never"):
        assert any(fragment in line for line in found), fragment

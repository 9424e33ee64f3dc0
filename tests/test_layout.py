"""The layering the design promises: core imports nothing above it, and modules
stay small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE_CORE = ("xinfang.sync", "xinfang.plugins", "xinfang.cli", "xinfang.app", "xinfang.demo")
PACKAGES = ("core", "sync", "plugins", "cli", "demo", "web")
MAX_LINES = 420


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            found.add("relative import above core")
    return found


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_core_imports_nothing_from_the_layers_above_it(path):
    above = sorted(name for name in imported(path)
                   if name.startswith(ABOVE_CORE) or name == "relative import above core")
    assert not above, f"core/{path.name} imports {above}"


@pytest.mark.parametrize("path", [p for folder in PACKAGES for p in modules(folder)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_grows_past_about_four_hundred_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"

"""domain/ stays pure: standard library and domain imports only, no clock, no random ids."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN_CALLS = {"now", "utcnow", "today", "uuid1", "uuid4", "time", "monotonic", "perf_counter"}
FORBIDDEN_MODULES = {
    "random",
    "secrets",
    "os",
    "socket",
    "subprocess",
    "pathlib",
    "io",
    "time",
    "threading",
    "asyncio",
    "logging",
    "sqlite3",
    "urllib",
}


def sources() -> list[Path]:
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, DOMAIN
    return files


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports (domain.x)"
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(DOMAIN)))
def test_domain_imports_only_stdlib_and_domain(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for module in imported_modules(tree):
        top = module.split(".")[0]
        assert top == "domain" or top in sys.stdlib_module_names, f"{path.name} imports {module}"
        assert top not in FORBIDDEN_MODULES, f"{path.name} imports {module} (I/O, clock or random)"


def dotted(node: ast.AST) -> str:
    """``datetime.now`` for the expression ``datetime.now`` (code only, never docstrings)."""
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def forbidden_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
            found.append(dotted(node))
        if isinstance(node, ast.Name) and node.id in {"uuid4", "random", "utcnow", "now"}:
            found.append(node.id)
    return found


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(DOMAIN)))
def test_domain_reads_no_clock_and_makes_no_ids(path: Path) -> None:
    assert forbidden_uses(ast.parse(path.read_text(), str(path))) == []


def test_the_check_catches_a_forbidden_import() -> None:
    code = "import sqlalchemy\nx = datetime.now()\ny = time.time()\nz = uuid.uuid4()"
    tree = ast.parse(code)
    assert "sqlalchemy" in imported_modules(tree)
    assert forbidden_uses(tree) == ["datetime.now", "time.time", "uuid.uuid4"]

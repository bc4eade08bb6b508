"""The layers of `src/salesflow`, from the lowest: a module imports only from its own layer or lower ones, the
routes reach the data only through services, and no two packages import each other (directly or round a ring).

Every `from salesflow… import` counts, at module top or inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "salesflow"

LAYERS: list[set[str]] = [
    {"__init__", "config", "errors", "models", "metrics", "formatting", "observability"},  # used everywhere
    {"heartbeat", "sandbox"},  # small tools: a lease kept alive, disposable processes
    {"clients"},  # SMTP, the circuit breaker
    {"data", "state"},  # the data-source port and its adapters (Java, embedded), the cache; our own records
    {"integration"},  # Java's tokens, and the Java-compatible demo API on the embedded store
    {"services"},  # the pipelines
    {"jobs"},  # the job runtime and the scheduler
    {"resources", "background", "worker"},  # a process's wiring
    {"api", "cli"},  # entry points
]
# Routes answer through services: never a table, a repository, the cache or a client of their own.
ROUTES = "salesflow.api.routes"
NOT_FOR_ROUTES = ("salesflow.state", "salesflow.data", "salesflow.clients")


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    top = package(module)
    return next(i for i, packages in enumerate(LAYERS) if top in packages)


def imports() -> Iterator[tuple[str, str]]:
    """(importing module, imported module) for every import of our own modules."""
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("salesflow", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("salesflow."):
                yield module, node.module
            elif isinstance(node, ast.ImportFrom) and node.module == "salesflow":  # a module or `__version__`
                for alias in node.names:
                    is_module = (SRC / alias.name).is_dir() or (SRC / f"{alias.name}.py").is_file()
                    yield module, f"salesflow.{alias.name}" if is_module else "salesflow"


def test_every_package_has_a_layer() -> None:
    packages = {package(m) for pair in imports() for m in pair}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [f"{a} -> {b}" for a, b in imports() if layer(b) > layer(a)]
    assert upward == []


def test_routes_go_through_services() -> None:
    leaks = [f"{a} -> {b}" for a, b in imports() if a.startswith(ROUTES) and b.startswith(NOT_FOR_ROUTES)]
    assert leaks == []


def test_no_packages_import_each_other_round_a_ring() -> None:
    edges: dict[str, set[str]] = {}
    for a, b in imports():
        if package(a) != package(b):
            edges.setdefault(package(a), set()).add(package(b))

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for after in edges.get(todo.pop(), set()) - seen:
                seen.add(after)
                todo.append(after)
        return seen

    # Within a layer an import may go either way, never both: a ring makes the order of the layer arbitrary.
    rings = sorted(name for name in edges if name in reachable(name))
    assert rings == []


@pytest.mark.parametrize("module", ["salesflow.metrics", "salesflow.api.routes.alerts"])
def test_the_checks_see_the_modules_they_judge(module: str) -> None:
    assert any(a == module for a, _ in imports())

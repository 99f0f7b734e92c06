"""The layout's rules, read from the code: who may import whom.

Every module of ``linkmon`` and ``probes`` is parsed (``ast``, nothing is imported) and every
import in it counts, at any depth (also inside a function or under ``TYPE_CHECKING``: a
dependency either way). The rules:

* the state machine (``linkmon.state`` and what it is made of) knows no alerts, storage,
  metrics, web or command line: it states facts, the edges act on them;
* the probe engine never imports linkmon;
* no cycle between linkmon's packages and top-level modules: the data flows one way.

The command-line modules are checked as far as they exist: ``linkmon.cli``, ``linkmon.status``,
``linkmon.history``, ``linkmon.commands`` (and typer, rich).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("linkmon", "probes")
STATE = ("linkmon.state", "linkmon.topology")  # the pure core and what it is made of
FORBIDDEN_TO_STATE = (
    "linkmon.alerts",
    "linkmon.storage",
    "linkmon.metrics",
    "linkmon.web",
    "linkmon.webconfig",
    "linkmon.cli",
    "linkmon.commands",
    "linkmon.status",
    "linkmon.history",
    "typer",
    "rich",
)


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> Iterator[str]:
    """The modules ``name`` imports, absolute; ``from X import y`` names ``X.y`` when that is
    a module of ours, else ``X``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in MODULES else base


def unit(module: str) -> str:
    """The package or top-level module of linkmon a module belongs to (``linkmon.alerts``,
    ``linkmon.monitor``); other modules stand for themselves."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "linkmon" else module


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_module_is_read() -> None:
    assert {"linkmon.state", "linkmon.monitor", "linkmon.alerts.outbox", "probes.icmp"} <= set(
        MODULES
    )


def test_the_state_machine_knows_no_edge() -> None:
    found = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if within(name, STATE)
        for target in imports(name, path)
        if within(target, FORBIDDEN_TO_STATE)
    )
    assert found == []


def test_the_probe_engine_never_imports_linkmon() -> None:
    found = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if within(name, ("probes",))
        for target in imports(name, path)
        if within(target, ("linkmon",))
    )
    assert found == []


def test_no_cycle_between_linkmons_packages_and_modules() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if not within(name, ("linkmon",)) or name == "linkmon":
            continue
        here = unit(name)
        graph.setdefault(here, set()).update(
            unit(target)
            for target in imports(name, path)
            if within(target, ("linkmon",)) and target != "linkmon" and unit(target) != here
        )
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cycles: list[list[str]]) -> None:
    assert _cycles(graph) == cycles


def test_relative_imports_resolve_to_our_modules() -> None:
    targets = set(imports("linkmon.monitor", MODULES["linkmon.monitor"]))
    assert {"linkmon.alerts.outbox", "linkmon.state", "linkmon.storage", "probes"} <= targets

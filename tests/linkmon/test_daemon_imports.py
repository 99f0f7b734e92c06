"""The daemon apart from the CLI: a running `linkmon run` never loads typer or rich.

Two checks, because each sees what the other cannot:

- The import graph, read with :mod:`ast` from ``linkmon.daemon``: every import statement of
  every module of linkmon and probes it reaches, those inside functions included (a lazy
  import runs sooner or later). It catches a CLI module pulled in on a code path no test
  happens to run, but it does not look inside third-party packages.
- The real process: `linkmon run` started through the console script, as systemd starts it,
  with ``PYTHONPROFILEIMPORTTIME=1``. The interpreter then writes a line to stderr for every
  module the process imports, for the whole of its life, so the daemon's log is the complete
  record of what entered its ``sys.modules`` — modules that third-party libraries import, and
  modules imported late (first request, first alert, reload, shutdown), included. Nothing is
  added to the product for the test (no debug endpoint). The same record of a CLI command
  shows typer and rich, so an empty answer is not the method failing.
"""

from __future__ import annotations

import ast
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.daemon import LINKMON, free_port, running_linkmon
from tests.support.receiver import running_receiver
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
OWN = frozenset({"linkmon", "probes"})
CLI_LIBRARIES = frozenset({"typer", "rich"})


def module_file(name: str) -> Path | None:
    """The source file of one of our own modules, or None (third-party, or not a module)."""
    if name.split(".")[0] not in OWN:
        return None
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def _at_import_time(tree: ast.Module) -> Iterator[ast.AST]:
    """The nodes that run when the module is imported: not the bodies of its functions."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))


def imports_of(name: str, whole: bool) -> set[str]:
    """What module ``name`` imports: in all its code, or (``whole`` false) at import time."""
    file = module_file(name)
    assert file is not None, name
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree) if whole else _at_import_time(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if module_file(f"{module}.{alias.name}") is not None
            )
    return found - {"__future__"}


def reachable(*roots: str) -> set[str]:
    """Every module importing ``roots`` can load, by our own modules' import statements.

    A package reached only because a module inside it is imported runs its ``__init__`` at
    import time alone; a module reached by an import statement counts with all its code.
    """
    whole: set[str] = set()
    as_parent: set[str] = set()
    todo = [(root, True) for root in roots]
    while todo:
        name, entire = todo.pop()
        if name in whole or (not entire and name in as_parent):
            continue
        (whole if entire else as_parent).add(name)
        if module_file(name) is None:
            continue
        parts = name.split(".")
        todo.extend((".".join(parts[:n]), False) for n in range(1, len(parts)))
        todo.extend((module, True) for module in imports_of(name, entire))
    return whole | as_parent


def _cli(modules: set[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m.split(".")[0] in CLI_LIBRARIES or m.startswith(("linkmon.commands", "linkmon.lab"))
    )


def test_nothing_the_daemon_imports_leads_to_the_cli() -> None:
    modules = reachable("linkmon.daemon")
    # the walk sees the daemon's own world: its web server, the status document, the probes
    assert {"uvicorn", "linkmon.web", "linkmon.api.status", "probes.icmp"} <= modules
    assert _cli(modules) == []


def test_linkmon_run_reaches_the_daemon_without_the_cli_app() -> None:
    modules = reachable("linkmon.commands.run")
    assert "linkmon.daemon" in modules
    assert sorted(m for m in modules if m.startswith("linkmon.commands")) == [
        "linkmon.commands",
        "linkmon.commands.common",
        "linkmon.commands.run",
    ]
    assert sorted(m for m in modules if m.split(".")[0] in CLI_LIBRARIES) == []


def test_linkmon_status_reads_the_document_without_the_daemons_code() -> None:
    """A client of the HTTP API: the document's schema and summary rules, not its builder."""
    modules = reachable("linkmon.commands.status")
    assert {"linkmon.api.openapi", "linkmon.api.summary"} <= modules
    daemon_side = {
        "linkmon.api.status",
        "linkmon.config",
        "linkmon.daemon",
        "linkmon.monitor",
        "linkmon.state",
        "linkmon.storage",
    }
    assert sorted(modules & daemon_side) == []


def imported(log: str) -> set[str]:
    """Module names from ``PYTHONPROFILEIMPORTTIME`` lines (``import time: 12 | 34 | name``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in log.splitlines()
        if line.startswith("import time:") and "|" in line and "imported package" not in line
    }


def test_the_record_of_a_cli_command_shows_typer_and_rich() -> None:
    done = subprocess.run(
        [LINKMON, "check-config", "-c", str(ROOT / "config" / "nunukan.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert imported(done.stderr) >= CLI_LIBRARIES


def test_a_running_daemon_never_loads_typer_or_rich(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        socket.socket() as target,
        running_receiver(tmp_path / "received.jsonl") as receiver,
    ):
        target.bind(("127.0.0.1", 0))
        target.listen(16)
        config = tmp_path / "linkmon.yml"
        config.write_text(f"""
agent: {{name: loop-agent, timezone: Asia/Makassar}}
server: {{listen: "127.0.0.1:{port}", enable_reload: true}}
storage: {{path: {tmp_path / "linkmon.db"}}}
defaults:
  {{interval: 500ms, timeout: 400ms, icmp: {{count: 3, spacing: 20ms}}, down_after: 2, up_after: 1}}
sites:
  - {{id: pusat-dc, kind: pusat}}
  - {{id: kab-a, kind: kabupaten}}
  - {{id: kec-b, kind: kecamatan, parent: kab-a}}
links:
  - {{id: kab-a--dc, from: kab-a, to: pusat-dc, network: vpn,
     probes: [{{kind: tcp, target: "127.0.0.1:{target.getsockname()[1]}"}}]}}
  - {{id: kec-b--kab, from: kec-b, to: kab-a, network: m2m,
     probes: [{{kind: tcp, target: "127.0.0.1:{free_port()}"}}]}}
alerting:
  receivers: [{{name: oncall, kind: webhook, url: "{receiver.url}"}}]
""")
        with running_linkmon(config, url, env={"PYTHONPROFILEIMPORTTIME": "1"}) as daemon:
            wait_until(
                lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 20, "ready"
            )
            wait_until(receiver.delivered, 20, "the alert for kec-b--kab at the receiver")
            states = {link["id"]: link["state"] for link in daemon.status()["links"]}
            assert states == {"kab-a--dc": "up", "kec-b--kab": "down"}
            for path in ("/api/v1/openapi.json", "/", "/metrics", "/healthz"):
                assert httpx.get(url + path, timeout=5).status_code == 200, path
            assert httpx.post(url + "/-/reload", timeout=10).status_code == 200
            daemon.stop()
            assert daemon.process.returncode == 0, daemon.output()[-2000:]
            modules = imported(daemon.output())
    # the record is complete: what the daemon loaded at start, on request and to alert
    assert {"linkmon.daemon", "linkmon.api.status", "uvicorn", "httpx"} <= modules
    assert sorted(m for m in modules if m.split(".")[0] in CLI_LIBRARIES) == []

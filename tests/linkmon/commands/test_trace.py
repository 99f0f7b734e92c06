"""`linkmon trace`: the path now beside the last good one the daemon's book holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from linkmon.commands.trace import trace_command
from linkmon.pathchange import PathReport
from linkmon.paths import PathBook
from probes.trace import Hop, Reply, TraceResult
from tests.support.krayan import make_config


@pytest.fixture()
def trace_app() -> typer.Typer:
    app = typer.Typer()
    app.command("trace")(trace_command)
    app.command("other")(lambda: None)
    return app


@pytest.mark.root
def test_trace_command_shows_the_path_beside_the_last_good_one(
    tmp_path: Path, trace_app: typer.Typer
) -> None:
    make_config(tmp_path, target="127.0.0.1", language="id")
    book = PathBook(tmp_path / "state.db")
    good = TraceResult(
        "127.0.0.1",
        "icmp",
        None,
        "127.0.0.1",
        (Hop(1, "127.0.0.1", 0.0001, Reply.ECHO_REPLY),),
        True,
        "",
        1_795_000_000.0,
        0.001,
        1,
    )
    book.record(PathReport("kec-krayan--dc", "check", good, None, None))
    book.close()
    runner = CliRunner()
    done = runner.invoke(trace_app, ["trace", "kec-krayan--dc", "-c", str(tmp_path / "config.yml")])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == (
        "Trace kec-krayan--dc (Kecamatan Krayan – Data Center Ditjen Dukcapil, "
        "vpn): icmp ke 127.0.0.1 dari 127.0.0.1"
    )
    assert "jalur baik terakhir" in lines[1] and "WITA" in lines[1]
    assert lines[2].split()[:2] == ["1", "127.0.0.1"] and lines[2].endswith("127.0.0.1")
    assert lines[-1] == "Sampai di 127.0.0.1 pada hop 1; sama dengan jalur baik terakhir."
    done = runner.invoke(
        trace_app,
        ["trace", "kec-krayan--kab", "-c", str(tmp_path / "config.yml"), "--json", "--port", "1"],
    )
    doc = json.loads(done.output)
    assert done.exit_code == 0 and doc["trace"]["mode"] == "tcp" and doc["good"] is None
    assert (
        doc["trace"]["hops"][0]["reply"] == "reset"
        and doc["where"] == "sampai di 127.0.0.1 pada hop 1"
    )


def test_trace_command_refuses_bad_input(tmp_path: Path, trace_app: typer.Typer) -> None:
    make_config(tmp_path, target="127.0.0.1")
    config = str(tmp_path / "config.yml")
    cases = {
        ("kec-nowhere",): "unknown link 'kec-nowhere'; links: kec-krayan--dc",
        ("kec-krayan--dc", "--mode", "gre"): "--mode must be one of icmp, udp, tcp",
        ("kec-krayan--dc", "--max-hops", "99"): "trace max_hops must be 1-64",
        ("kec-krayan--dc", "--lang", "jv"): "--lang must be one of id, en",
    }
    for args, message in cases.items():
        done = CliRunner().invoke(trace_app, ["trace", *args, "-c", config])
        assert done.exit_code == 2 and message in done.output, (args, done.output)

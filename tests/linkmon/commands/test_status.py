"""`linkmon status` against a real HTTP server on loopback serving a known status document.

The command runs as a real process (``python -m linkmon.commands.status``), so exit codes,
stdout, stderr and terminal detection are what Nagios or a NOC officer would see. Durations
count up to the document's ``generated_at``, so the reviewed snapshots stay valid on any day.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from linkmon.commands.status import select_site
from tests.support.status_fixture import Reply, all_up, nunukan_status, serve_status

SNAPSHOTS = Path(__file__).with_name("snapshots")
ANSI = re.compile(r"\x1b\[")


def run_status(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linkmon.commands.status", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(env),
    )


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(extra or {})
    return env


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, Any]]]:
    """A stand-in daemon and the reply it gives; tests change ``reply["now"]``."""
    reply: dict[str, Any] = {"now": Reply.json(nunukan_status())}
    with serve_status(lambda _headers: reply["now"]) as url:
        yield url, reply


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the tree --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["id", "en"])
def test_tree_matches_reviewed_snapshot(served: tuple[str, dict[str, Any]], lang: str) -> None:
    url, _ = served
    result = run_status("--url", url, "--lang", lang)
    snapshot = SNAPSHOTS / f"status-nunukan.{lang}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(result.stdout, encoding="utf-8")
    assert result.stderr == ""
    assert result.stdout == snapshot.read_text(encoding="utf-8")
    assert result.returncode == 2


def test_tree_answers_the_noc_questions(served: tuple[str, dict[str, Any]]) -> None:
    """What is down, since when in the office's clock, why, and who can still serve."""
    url, _ = served
    out = run_status("--url", url).stdout
    assert "turun sejak 08:12 WITA (3 j 5 m) · jalur putus (tidak ada balasan ping)" in out
    assert "link di atasnya turun: kec-krayan--kab" in out
    assert "Kecamatan Lumbis Ogong (kec-lumbis-ogong) · LAYANAN TERBATAS · hanya melalui DRC" in out
    assert "Kantor dapat melayani online: 14 dari 22" in out
    assert "pemeliharaan sampai 13:00 WITA" in out
    lines = out.splitlines()
    # pusat first, then the kabupaten with its uplinks before its kecamatan
    assert lines.index("Pusat") < next(
        i for i, line in enumerate(lines) if line.startswith("Disdukcapil Kabupaten Nunukan")
    )
    kab = next(i for i, line in enumerate(lines) if "kab-nunukan--dc" in line)
    assert kab < next(i for i, line in enumerate(lines) if "kec-nunukan--kab" in line)


def test_english_on_request(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    out = run_status("--url", url, "--lang", "en").stdout
    assert "down since 08:12 WITA (3 h 5 m) · path down (no ping replies)" in out
    assert "Offices able to serve online: 14 of 22" in out


def test_language_follows_the_agent(served: tuple[str, dict[str, Any]]) -> None:
    url, reply = served
    doc = nunukan_status()
    doc["agent"]["language"] = "en"
    reply["now"] = Reply.json(doc)
    assert "Status: DOWN" in run_status("--url", url).stdout


# -- exit codes -------------------------------------------------------------------------------


def _degraded() -> dict[str, Any]:
    doc = all_up(nunukan_status())
    link = next(link for link in doc["links"] if link["id"] == "kec-sebatik-utara--kab")
    link.update(state="degraded", cause="loss", loss=0.24)
    doc["summary"]["state"] = "degraded"
    doc["summary"]["links"].update(up=len(doc["links"]) - 1, degraded=1)
    return doc


def _unknown() -> dict[str, Any]:
    doc = all_up(nunukan_status())
    link = next(link for link in doc["links"] if link["id"] == "kec-sei-menggaris--kab")
    link.update(state="unknown", rtt_seconds=None, loss=None)
    doc["summary"]["state"] = "unknown"
    doc["summary"]["links"].update(up=len(doc["links"]) - 1, unknown=1)
    return doc


@pytest.mark.parametrize(
    ("make", "code", "word"),
    [
        (lambda: all_up(nunukan_status()), 0, "OK"),
        (_degraded, 1, "WARNING"),
        (nunukan_status, 2, "CRITICAL"),
        (_unknown, 3, "UNKNOWN"),
    ],
    ids=["all-up", "degraded", "down", "unknown"],
)
def test_exit_code_follows_the_state(
    served: tuple[str, dict[str, Any]], make: Any, code: int, word: str
) -> None:
    url, reply = served
    reply["now"] = Reply.json(make())
    assert run_status("--url", url).returncode == code
    nagios = run_status("--url", url, "--nagios")
    assert nagios.returncode == code
    assert nagios.stdout.startswith(f"LINKMON {word}: ")


def test_daemon_unreachable_is_3_with_the_url_and_the_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_status("--url", url)
    assert result.returncode == 3
    assert result.stdout == ""
    assert f"{url}/api/v1/status" in result.stderr
    assert "Connection refused" in result.stderr
    assert result.stderr.startswith("linkmon status: cannot read linkmon status from ")


def test_unreachable_as_nagios_is_one_unknown_line() -> None:
    result = run_status("--url", f"http://127.0.0.1:{closed_port()}", "--nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("LINKMON UNKNOWN: cannot read linkmon status from ")
    assert result.stdout.count("\n") == 1


def test_password_in_the_url_is_sent_but_never_shown(served: tuple[str, dict[str, Any]]) -> None:
    url, reply = served
    seen: list[str] = []

    def check(headers: Mapping[str, str]) -> Reply:
        seen.append(headers.get("Authorization", ""))
        return Reply.json(nunukan_status())

    reply["now"] = Reply(status=401, body=b"unauthorized", content_type="text/plain")
    host = url.removeprefix("http://")
    refused = run_status("--url", f"http://noc:s3cret@{host}")
    assert refused.returncode == 3
    assert "HTTP 401" in refused.stderr and "s3cret" not in refused.stderr
    assert "noc:***@" in refused.stderr

    with serve_status(check) as other:
        ok = run_status("--url", other.replace("http://", "http://noc:s3cret@"), "--json")
    assert ok.returncode == 2
    assert seen == ["Basic " + base64.b64encode(b"noc:s3cret").decode()]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Reply(status=500, body=b"Internal Server Error", content_type="text/plain"),
            "HTTP 500 Internal Server Error",
        ),
        (Reply(body=b"<html>not json</html>", content_type="text/html"), "the answer is not JSON"),
        (Reply(body=b'{"hello": "world"}'), "not a linkmon status document: agent: missing"),
        (Reply(body=b"[1, 2]"), "not a linkmon status document: the document: expected object"),
    ],
    ids=["http-500", "invalid-json", "other-json", "json-list"],
)
def test_bad_answers_are_3_with_a_clear_message(
    served: tuple[str, dict[str, Any]], reply: Reply, message: str
) -> None:
    url, current = served
    current["now"] = reply
    result = run_status("--url", url)
    assert result.returncode == 3
    assert message in result.stderr
    assert f"{url}/api/v1/status" in result.stderr


def test_status_document_of_the_wrong_shape_is_3_naming_the_field(
    served: tuple[str, dict[str, Any]],
) -> None:
    url, reply = served
    doc = nunukan_status()
    del doc["links"][3]["since"]
    doc["sites"][5]["service"]["state"] = "sleeping"
    doc["summary"]["offices_online"] = "14"
    reply["now"] = Reply.json(doc)
    result = run_status("--url", url)
    assert result.returncode == 3
    assert "summary.offices_online: expected integer, got str" in result.stderr
    assert "sites[5].service.state: 'sleeping' is not one of available" in result.stderr
    assert "links[3].since: missing" in result.stderr


def test_unknown_site_is_3_naming_the_known_ones(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    result = run_status("--url", url, "--site", "kec-atlantis")
    assert result.returncode == 3
    assert "no site 'kec-atlantis'" in result.stderr and "kec-krayan" in result.stderr


def test_bad_language_is_refused() -> None:
    result = run_status("--lang", "jv")
    assert result.returncode == 3
    assert "--lang must be one of id, en" in result.stderr


# -- --json, --site, --nagios -----------------------------------------------------------------


def test_json_is_the_api_document(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    result = run_status("--url", url, "--json")
    assert json.loads(result.stdout) == nunukan_status()
    assert result.returncode == 2


def test_json_for_one_site(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    result = run_status("--url", url, "--json", "--site", "kec-lumbis-ogong")
    doc = json.loads(result.stdout)
    assert [s["id"] for s in doc["sites"]] == ["kec-lumbis-ogong"]
    assert [link["id"] for link in doc["links"]] == [
        "kec-lumbis-ogong--kab",
        "kec-lumbis-ogong--drc",
    ]
    assert [o["link"] for o in doc["outages"]] == ["kec-lumbis-ogong--kab"]
    assert doc["maintenance"] == []
    assert doc["summary"] == {
        "state": "down",
        "links": {"up": 1, "degraded": 0, "down": 1, "unknown": 0, "unreachable": 0},
        "offices_online": 1,
        "offices_total": 1,
    }
    assert result.returncode == 2


NAGIOS = re.compile(
    r"^LINKMON (OK|WARNING|CRITICAL|UNKNOWN): ([^|\n]+) \| "
    r"((?:'[a-z_]+'=\d+;;;0;\d+ ?)+)\n$"
)


def test_nagios_line(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    result = run_status("--url", url, "--nagios")
    match = NAGIOS.match(result.stdout)
    assert match, result.stdout
    assert match.group(1) == "CRITICAL" and result.returncode == 2
    assert (
        "3 dari 24 link turun (kec-krayan--kab, kec-lumbis-ogong--kab, kec-tulin-onsoi--kab)"
        in match.group(2)
    )
    assert "1 dalam pemeliharaan" in match.group(2)
    perf = dict(re.findall(r"'([a-z_]+)'=(\d+;;;0;\d+)", match.group(3)))
    assert perf == {
        "links_up": "14;;;0;24",
        "links_degraded": "1;;;0;24",
        "links_down": "4;;;0;24",
        "links_unknown": "1;;;0;24",
        "links_unreachable": "4;;;0;24",
        "offices_online": "14;;;0;22",
    }


def test_nagios_check_per_office(served: tuple[str, dict[str, Any]]) -> None:
    """One Nagios service per office: planned work is OK, a cut-off office is CRITICAL."""
    url, _ = served
    maintenance = run_status("--url", url, "--nagios", "--site", "kec-sembakung")
    assert maintenance.returncode == 0
    assert maintenance.stdout.startswith("LINKMON OK: 1 dalam pemeliharaan")
    behind = run_status("--url", url, "--nagios", "--site", "kec-krayan-barat", "--lang", "en")
    assert behind.returncode == 2
    assert "1 of 1 links unreachable (kec-krayan-barat--kab)" in behind.stdout


# -- colour -----------------------------------------------------------------------------------


def _on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run with stdout on a pseudo-terminal, as a NOC officer's shell would."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkmon.commands.status", *args],
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(primary)
    proc.wait(timeout=10)
    return out


def test_colour_on_a_terminal_none_with_no_color_or_in_a_pipe(
    served: tuple[str, dict[str, Any]],
) -> None:
    url, _ = served
    coloured = _on_a_terminal(["--url", url], _env({"TERM": "xterm-256color"}))
    assert ANSI.search(coloured.decode()), "a terminal gets colour"
    plain = _on_a_terminal(["--url", url], _env({"TERM": "xterm-256color", "NO_COLOR": "1"}))
    assert "TURUN" in plain.decode() and not ANSI.search(plain.decode())
    assert "\x1b" not in run_status("--url", url, env={"TERM": "xterm-256color"}).stdout


# -- --watch ----------------------------------------------------------------------------------


def test_watch_redraws_until_ctrl_c(served: tuple[str, dict[str, Any]]) -> None:
    url, reply = served
    reply["now"] = Reply.json(all_up(nunukan_status()))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkmon.commands.status",
            "--url",
            url,
            "--watch",
            "--interval",
            "0.2",
            "--site",
            "kec-krayan",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        # a shell's background job ignores SIGINT and children inherit that: undo it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("Status: NAIK"):
                reply["now"] = Reply.json(nunukan_status())
            if line.startswith("Status: TURUN"):
                break
        assert any(line.startswith("Status: TURUN") for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 2, "exits with the code of the last picture"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- one site (in-process) --------------------------------------------------------------------


def test_an_office_serving_via_the_drc_only_is_degraded() -> None:
    """DC uplink down, DRC up: the kecamatan's own link is fine but service is degraded."""
    doc = all_up(nunukan_status())
    dc = next(link for link in doc["links"] if link["id"] == "kab-nunukan--dc")
    dc.update(state="down", cause="path_down")
    for site in doc["sites"]:
        if site["service"] is not None:
            site["service"] = {"state": "degraded", "via": ["kab-nunukan--drc"], "reason": "drc"}
    office = select_site(doc, "kec-nunukan")
    assert [link["state"] for link in office["links"]] == ["up"]
    assert office["summary"]["state"] == "degraded"
    assert select_site(doc, "kab-nunukan")["summary"]["state"] == "down"


def test_kabupaten_selection_keeps_its_uplinks_and_offices() -> None:
    doc = nunukan_status()
    kab = select_site(doc, "kab-nunukan")
    assert len(kab["sites"]) == 22 and len(kab["links"]) == 24
    assert kab["summary"] == {**doc["summary"]}
    windowless = copy.deepcopy(doc)
    windowless["maintenance"] = []
    assert select_site(windowless, "kec-nunukan")["maintenance"] == []

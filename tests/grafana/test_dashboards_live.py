"""Every PromQL expression of every dashboard panel, run on a real Prometheus scraping linkmon.

No Grafana needed: ``tests/support/promql.py`` resolves each dashboard's ``label_values()``
variables through Prometheus' label API and fills in ``$agent``, ``$link``, ``$__rate_interval``
... as Grafana would, then every query goes through Prometheus' HTTP API. Each must parse, and
each must return data (for at least one value of a single-value variable such as ``$link``;
outage panels after a link was cut). The alert and recording rules are loaded too: every rule
must evaluate without error, recording rules must produce series, and the cut must make
LinkDown pending for the cut link but not for the link behind it.

Two sources of metrics, same checks:
- ``stand_in``: the STAND-IN exporter of tests/support/fake_linkmon.py, not linkmon. It keeps
  the dashboards honest while the daemon is being built; it proves nothing about the daemon.
- ``linkmon``: the real ``linkmon run -c FILE`` on loopback targets (ICMP to 127.0.0.x, TCP
  listeners, a TLS health endpoint); the cut closes a listener.
- ``lab``: two real agents on the namespace lab (the Nunukan hub and pusat-dc); the cut is a
  real interface going down on the hub's uplink.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from tests.support import promql
from tests.support.daemon import free_port
from tests.support.fake_linkmon import nunukan_and_pusat
from tests.support.linkmon_metrics import KNOWN_SERIES
from tests.support.prometheus import (
    PrometheusError,
    PrometheusServer,
    ScrapeTarget,
    running_prometheus,
)
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
SCRAPE = 1.0
SINGLE_VALUE_OPTIONS = 10  # a single-value variable is tried with up to this many of its values


@dataclass(frozen=True)
class Scenario:
    """Agents to scrape, and an outage to cause: ``cut()`` takes ``cut_link`` down, which must
    leave ``unreachable_link`` (it depends on the cut link) unreachable rather than down."""

    targets: list[ScrapeTarget]
    cut: Callable[[], None]
    cut_link: str
    unreachable_link: str
    kabupaten: str


@pytest.fixture
def stand_in_scenario() -> Iterator[Scenario]:
    """STAND-IN exporters shaped like linkmon agents; replaced by ``linkmon`` once it runs."""
    agents = nunukan_and_pusat()
    try:
        targets = [ScrapeTarget(agent.start(), {"agent": agent.name}) for agent in agents]
        yield Scenario(
            targets,
            cut=lambda: agents[0].cut("kec-lumbis--kab-nunukan"),
            cut_link="kec-lumbis--kab-nunukan",
            unreachable_link="kec-lumbis-ogong--kec-lumbis",
            kabupaten="kab-nunukan",
        )
    finally:
        for agent in agents:
            agent.stop()


@pytest.fixture
def linkmon_scenario(tmp_path: Path) -> Iterator[Scenario]:
    """The real daemon probing loopback targets; the cut closes the Lumbis TCP listener."""
    try:
        importlib.import_module("linkmon.daemon")
    except ImportError as exc:
        pytest.skip(
            f"linkmon.daemon cannot be imported yet ({exc}); the stand_in case runs the "
            "same checks against tests/support/fake_linkmon.py meanwhile"
        )
    with contextlib.ExitStack() as stack:
        dc_service = stack.enter_context(_listener())
        lumbis_service = stack.enter_context(_listener())
        https_port = stack.enter_context(_https_health_server())
        listen = f"127.0.0.1:{free_port()}"
        config = tmp_path / "linkmon.yml"
        settings = _daemon_config(
            listen,
            tmp_path / "linkmon.db",
            dc_tcp=dc_service.getsockname()[1],
            lumbis_tcp=lumbis_service.getsockname()[1],
            https=https_port,
            dead_receiver=free_port(),
        )
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
        log = tmp_path / "linkmon.log"
        daemon = stack.enter_context(_running_daemon(config, log))
        wait_until(lambda: _ready(listen, daemon, log), 20, "linkmon /readyz")
        yield Scenario(
            [ScrapeTarget(listen, {"agent": "lab-kab-nunukan"})],
            cut=lumbis_service.close,
            cut_link="kec-lumbis--kab-nunukan",
            unreachable_link="kec-lumbis-ogong--kec-lumbis",
            kabupaten="kab-nunukan",
        )


@pytest.fixture
def lab_scenario(tmp_path: Path) -> Iterator[Scenario]:
    """Two real agents on the namespace lab: one in the Nunukan hub (config/lab-nunukan.yml)
    and one at pusat-dc probing the kecamatan through the hub (config/lab-pusat.yml). The cut
    takes the hub's uplink to the DC down: down for both agents, the kecamatan links behind
    it unreachable for the pusat agent."""
    import os

    from tests.support.daemon import lab_config, linkmon_in_lab
    from tests.support.labs import shipped_lab

    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(shipped_lab(f"g{os.getpid() % 100_000}"))
        targets = []
        for site, name in (("kab-nunukan", "lab-nunukan.yml"), ("pusat-dc", "lab-pusat.yml")):
            workdir = tmp_path / site
            workdir.mkdir()
            config = lab_config(ROOT / "config" / name, workdir)
            daemon = stack.enter_context(linkmon_in_lab(lab, site, config))
            wait_until(partial(_answers_ready, daemon.url), 20, f"linkmon in {site} ready")
            agent = yaml.safe_load(config.read_text())["agent"]["name"]
            targets.append(ScrapeTarget(daemon.url.removeprefix("http://"), {"agent": agent}))
        yield Scenario(
            targets,
            cut=lambda: lab.cut("kab-nunukan--dc"),
            cut_link="kab-nunukan--dc",
            unreachable_link="kec-krayan--kab",
            kabupaten="kab-nunukan",
        )


def _answers_ready(url: str) -> bool:
    return httpx.get(url + "/readyz", timeout=2).status_code == 200


@contextlib.contextmanager
def _running_daemon(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("linkmon")), "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _daemon_config(
    listen: str, storage: Path, *, dc_tcp: int, lumbis_tcp: int, https: int, dead_receiver: int
) -> dict[str, Any]:
    """Kabupaten Nunukan in miniature, on loopback: uplinks to DC and DRC, three kecamatan, the
    last one relayed behind Lumbis; the alert receiver never answers (alerts stay queued)."""

    def link(link_id: str, to: str, network: str, *probes: dict[str, Any], **extra: Any) -> Any:
        from_site = link_id.split("--")[0]
        return {
            "id": link_id,
            "from": from_site,
            "to": to,
            "network": network,
            "probes": list(probes),
            **extra,
        }

    kab = "kab-nunukan"
    return {
        "agent": {"name": "lab-kab-nunukan", "timezone": "Asia/Makassar", "language": "id"},
        "server": {"listen": listen},
        "storage": {"path": str(storage)},
        "defaults": {
            "interval": "1s",
            "timeout": "500ms",
            "icmp": {"count": 2, "spacing": "50ms", "size": 16},
            "down_after": 2,
            "up_after": 1,
        },
        "sites": [
            {"id": "pusat-dc", "kind": "pusat", "name": "Data Center Ditjen Dukcapil"},
            {"id": "pusat-drc", "kind": "drc", "name": "DRC Batam"},
            {"id": kab, "kind": "kabupaten", "name": "Disdukcapil Kabupaten Nunukan"},
            *(
                {"id": site, "kind": "kecamatan", "parent": kab, "name": name}
                for site, name in (
                    ("kec-krayan", "Kecamatan Krayan"),
                    ("kec-lumbis", "Kecamatan Lumbis"),
                    ("kec-lumbis-ogong", "Kecamatan Lumbis Ogong"),
                )
            ),
        ],
        "links": [
            link(
                f"{kab}--dc",
                "pusat-dc",
                "vpn",
                {"kind": "icmp", "target": "127.0.0.1"},
                {"kind": "tcp", "target": f"127.0.0.1:{dc_tcp}"},
                {"kind": "http", "url": f"https://127.0.0.1:{https}/health", "verify_tls": False},
            ),
            link(f"{kab}--drc", "pusat-drc", "vpn", {"kind": "icmp", "target": "127.0.0.2"}),
            link("kec-krayan--kab-nunukan", kab, "m2m", {"kind": "icmp", "target": "127.0.0.3"}),
            link(
                "kec-lumbis--kab-nunukan",
                kab,
                "jip",
                {"kind": "tcp", "target": f"127.0.0.1:{lumbis_tcp}"},
            ),
            link(
                "kec-lumbis-ogong--kec-lumbis",
                "kec-lumbis",
                "jip",
                {"kind": "tcp", "target": f"127.0.0.1:{lumbis_tcp}"},
                depends_on=["kec-lumbis--kab-nunukan"],
            ),
        ],
        "alerting": {
            "receivers": [
                {
                    "name": "oncall",
                    "kind": "webhook",
                    "url": f"http://127.0.0.1:{dead_receiver}/hook",
                },
            ],
        },
    }


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: one line per probe would drown the test output."""


@contextlib.contextmanager
def _https_health_server() -> Iterator[int]:
    """A kabupaten-style HTTPS health endpoint with a throw-away CA; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="https-health", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _ready(listen: str, daemon: subprocess.Popen[bytes], log: Path) -> bool:
    if daemon.poll() is not None:
        raise RuntimeError(f"linkmon exited with {daemon.returncode}:\n{log.read_text()}")
    try:
        return httpx.get(f"http://{listen}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "source",
    [
        "stand_in",
        pytest.param("linkmon", marks=pytest.mark.lab),
        pytest.param("lab", marks=[pytest.mark.lab, pytest.mark.root]),
    ],
)
def test_every_dashboard_query_and_rule_on_real_prometheus(
    source: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    scenario: Scenario = request.getfixturevalue(f"{source}_scenario")
    with running_prometheus(
        tmp_path / "prometheus", scenario.targets, RULE_FILES, interval=SCRAPE
    ) as prometheus:
        started = time.time()
        prometheus.wait_for(
            f'count(up{{job="linkmon"}} == 1) == {len(scenario.targets)}', 20, "every agent up"
        )
        time.sleep(3 * SCRAPE)  # some history before the outage
        scenario.cut()
        prometheus.wait_for(
            f'linkmon_link_state{{link="{scenario.cut_link}",state="down"}} == 1',
            30,
            f"{scenario.cut_link} down in Prometheus",
        )
        time.sleep(5 * SCRAPE)  # rate windows ($__rate_interval = 4 scrapes) see the failures
        end = time.time()
        time_range = promql.TimeRange(end - started, scrape_interval=SCRAPE)

        checked, problems = 0, []
        for path in DASHBOARDS:
            count, found = _check_dashboard(prometheus, path, time_range, end)
            checked += count
            problems += found
        problems += _check_exported_names(prometheus)
        problems += _check_outage_table(prometheus, scenario, time_range, end)
        problems += _check_rules(prometheus, scenario)

    assert checked >= 50, f"only {checked} queries found: did the dashboards lose panels?"
    assert not problems, "\n".join(problems)


def _check_dashboard(
    prometheus: PrometheusServer, path: Path, time_range: promql.TimeRange, end: float
) -> tuple[int, list[str]]:
    """Run every panel query of one dashboard; return how many ran and what went wrong."""
    dashboard = json.loads(path.read_text())
    variables = promql.variables(dashboard)
    selected: dict[str, promql.Selection] = {}
    options: dict[str, list[str]] = {}
    problems: list[str] = []
    single_valued: list[str] = []
    for variable in variables.values():
        if variable.type == "datasource":
            continue
        assert variable.query is not None, f"{path.name}: ${variable.name} has no query"
        wanted = promql.parse_label_values(variable.query)
        match = wanted.match and promql.interpolate(
            wanted.match, variables, selected, options=options, time=time_range
        )
        values = prometheus.label_values(wanted.label, match, end - time_range.seconds, end)
        if not values:
            problems.append(f"{path.name}: variable ${variable.name} ({variable.query}) is empty")
            return 0, problems
        options[variable.name] = values
        if variable.multi or variable.include_all:
            selected[variable.name] = promql.ALL
        else:
            selected[variable.name] = values[0]
            single_valued.append(variable.name)

    # Every combination of single-value variables (in practice: each link) gets a turn; a
    # query passes when it finds data for at least one.
    combinations: list[dict[str, promql.Selection]] = [dict(selected)]
    for name in single_valued:
        combinations = [
            {**combo, name: value}
            for combo in combinations
            for value in options[name][:SINGLE_VALUE_OPTIONS]
        ]
    found_data: dict[str, bool] = {}
    for combo in combinations:
        for resolved in promql.resolve(dashboard, combo, options=options, time=time_range):
            where = f"{path.name}: {resolved.where}"
            try:
                series = _run(prometheus, resolved, time_range, end)
            except PrometheusError as exc:
                if where not in found_data:  # once per query, not once per link
                    problems.append(f"{where}: Prometheus refused it: {exc}\n    {resolved.expr}")
                found_data[where] = True
                continue
            found_data[where] = found_data.get(where, False) or series > 0
    problems += [f"{where}: no data" for where, found in found_data.items() if not found]
    return len(found_data), problems


def _run(
    prometheus: PrometheusServer,
    resolved: promql.ResolvedQuery,
    time_range: promql.TimeRange,
    end: float,
) -> int:
    """Send one query the way Grafana would (instant, range or both); count the series."""
    series = 0
    if resolved.query.instant:
        series += len(prometheus.query(resolved.expr, at=end))
    if resolved.query.range:
        series += len(
            prometheus.query_range(resolved.expr, end - time_range.seconds, end, time_range.step)
        )
    return series


def _check_exported_names(prometheus: PrometheusServer) -> list[str]:
    """Every series name of the contract reached Prometheus (a rename shows up here by name)."""
    found = prometheus.query('count by (__name__) ({job="linkmon"})')
    missing = KNOWN_SERIES - {row["metric"]["__name__"] for row in found}
    return [f"no series {name} from the agents" for name in sorted(missing)]


def _check_outage_table(
    prometheus: PrometheusServer, scenario: Scenario, time_range: promql.TimeRange, end: float
) -> list[str]:
    """The NOC's first question after the cut: what is down, why, since when."""
    dashboard = json.loads((ROOT / "grafana" / "dashboards" / "noc-overview.json").read_text())
    (query,) = [
        q
        for q in promql.panel_queries(dashboard)
        if q.panel_title == "Gangguan yang sedang berlangsung"
    ]
    selected = {"agent": promql.ALL, "kabupaten": promql.ALL}
    expr = promql.interpolate(query.expr, promql.variables(dashboard), selected, time=time_range)
    rows = {row["metric"]["link"]: row for row in prometheus.query(expr, at=end)}
    problems = []
    cut = rows.get(scenario.cut_link, {}).get("metric", {})
    if cut.get("state") != "down" or not cut.get("reason"):
        problems.append(f"outage table: {scenario.cut_link} not down with a reason: {rows}")
    behind = rows.get(scenario.unreachable_link, {}).get("metric", {})
    if behind.get("state") != "unreachable":
        problems.append(f"outage table: {scenario.unreachable_link} not unreachable: {rows}")
    for link, row in rows.items():
        if not 0 <= float(row["value"][1]) <= time_range.seconds:
            problems.append(
                f"outage table: {link} lasted {row['value'][1]} s, longer than the test"
            )
    return problems


def _check_rules(prometheus: PrometheusServer, scenario: Scenario) -> list[str]:
    problems = []
    groups = prometheus.rule_groups()
    rules = [rule for group in groups for rule in group["rules"]]
    if len(groups) < 3 or not rules:
        problems.append(f"rules not loaded: {[g['name'] for g in groups]}")
    for rule in rules:
        if rule["health"] != "ok":
            problems.append(f"rule {rule['name']}: {rule['health']}: {rule.get('lastError')}")
    for name in {rule["name"] for rule in rules if rule["type"] == "recording"}:
        if not prometheus.query(name):
            problems.append(f"recording rule {name} produced no series")

    alerts = prometheus.alerts()
    link_down = {a["labels"].get("link") for a in alerts if a["labels"]["alertname"] == "LinkDown"}
    if scenario.cut_link not in link_down:
        problems.append(f"LinkDown not pending for the cut link {scenario.cut_link}: {alerts}")
    if scenario.unreachable_link in link_down:
        problems.append(f"LinkDown for {scenario.unreachable_link}, which is only unreachable")
    unavailable = {
        a["labels"].get("kabupaten")
        for a in alerts
        if a["labels"]["alertname"] == "ServiceUnavailable"
    }
    if scenario.kabupaten not in unavailable:
        problems.append(f"ServiceUnavailable not pending for {scenario.kabupaten}: {alerts}")
    return problems

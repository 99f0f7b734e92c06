"""STAND-IN for a linkmon agent's /metrics, used until the real daemon (issue 2) exists.

It serves the contract's metric names (``tests/support/linkmon_metrics.py``) with the labels a
real agent sets, from a toy model: links with probes, a cut link goes down, links that depend on
it become unreachable, offices behind it lose service, one lossy link is degraded. It lets the
dashboard and rule tests run every query against a real Prometheus; it proves nothing about
linkmon itself, and the end-to-end test runs the same checks against the real daemon.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.support.linkmon_metrics import (
    CONTRACT,
    DELIVERY_RESULTS,
    LINK_STATES,
    PROBE_KINDS,
    RTT_BUCKETS,
)

SCHEDULER_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CERT_LIFETIME = 60 * 86400.0


@dataclass(frozen=True)
class FakeProbe:
    kind: str
    target: str


@dataclass(frozen=True)
class FakeLink:
    id: str
    from_site: str
    to_site: str
    network: str
    kabupaten: str
    probes: tuple[FakeProbe, ...]
    depends_on: tuple[str, ...] = ()
    loss: float = 0.0
    """Share of echoes lost while the link is not cut; above 0.2 the link is degraded."""

    def labels(self, agent: str) -> dict[str, str]:
        return {
            "agent": agent,
            "link": self.id,
            "from": self.from_site,
            "to": self.to_site,
            "network": self.network,
            "kabupaten": self.kabupaten,
        }


@dataclass(frozen=True)
class FakeOffice:
    """An office serves online while every link of ``path`` works and DC or DRC is reached."""

    site: str
    kabupaten: str
    path: tuple[str, ...]
    dc: str | None = None
    drc: str | None = None


class FakeAgent:
    """One stand-in agent serving /metrics on 127.0.0.1 and playing probe rounds in a thread."""

    def __init__(
        self,
        name: str,
        links: Sequence[FakeLink],
        offices: Sequence[FakeOffice] = (),
        receivers: Sequence[str] = ("oncall",),
        round_interval: float = 0.25,
        seed: int = 1,
    ) -> None:
        self.name = name
        self.links = {link.id: link for link in links}
        self.offices = tuple(offices)
        self.receivers = tuple(receivers)
        self.round_interval = round_interval
        self._random = random.Random(seed)
        self._cut: set[str] = set()
        self._state: dict[str, str] = {}
        self._queued = {receiver: 0 for receiver in self.receivers}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: WSGIServer | None = None
        self.registry = CollectorRegistry()
        self.gauges, self.counters, self.histograms = _metrics(self.registry)
        self.address = ""

    def start(self) -> str:
        """Serve /metrics and start probing; returns ``host:port``."""
        self._setup()
        self._round()
        server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self._server = server
        self.address = f"127.0.0.1:{server.server_port}"
        self._thread = threading.Thread(target=self._run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        return self.address

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def cut(self, link_id: str) -> None:
        with self._lock:
            self.links[link_id]  # noqa: B018 - a KeyError names a link that does not exist
            self._cut.add(link_id)

    def restore(self, link_id: str) -> None:
        with self._lock:
            self._cut.discard(link_id)

    def _run(self) -> None:
        while not self._stop.wait(self.round_interval):
            self._round()

    def _setup(self) -> None:
        now = time.time()
        self.gauges["linkmon_build_info"].labels("0.1.0-stand-in", "3.11").set(1)
        self.gauges["linkmon_config_last_reload_successful"].labels(self.name).set(1)
        for cause in ("own_lan", "own_uplink"):
            self.gauges["linkmon_agent_blind"].labels(self.name, cause).set(0)
        self.gauges["linkmon_agent_fault_probes"].labels(self.name, "fds").set(0)
        self.gauges["linkmon_config_last_reload_success_timestamp_seconds"].labels(self.name).set(
            now
        )
        for kind in PROBE_KINDS:  # children created up front so rate() sees zero, not nothing
            self.counters["linkmon_probe_errors_total"].labels(self.name, kind)
        for receiver in self.receivers:
            for result in DELIVERY_RESULTS:
                self.counters["linkmon_alert_deliveries_total"].labels(self.name, receiver, result)
        for site, kind, parent, kabupaten in self._sites():
            self.gauges["linkmon_site_info"].labels(
                self.name, site, kind, site, parent, kabupaten, "Asia/Makassar"
            ).set(1)
        for link in self.links.values():
            labels = link.labels(self.name)
            self.gauges["linkmon_link_flapping"].labels(**labels).set(0)
            self.gauges["linkmon_link_in_maintenance"].labels(**labels).set(0)
            self.counters["linkmon_link_state_changes_total"].labels(**labels)
            for probe in link.probes:
                if probe.target.startswith("https://"):
                    self.gauges["linkmon_tls_cert_expiry_timestamp_seconds"].labels(
                        self.name, link.id, probe.target
                    ).set(now + CERT_LIFETIME)

    def _sites(self) -> list[tuple[str, str, str, str]]:
        """Site, kind, parent and kabupaten of every site named by a link or an office; the
        kind is read from the id's prefix (``kec-``, ``kab-``, ``kota-``, ``pusat-dc``...)."""
        kabupaten = {office.site: office.kabupaten for office in self.offices}
        for link in self.links.values():
            kabupaten.setdefault(link.from_site, link.kabupaten)
            kabupaten.setdefault(link.to_site, link.kabupaten)
        found = []
        for site, kab in sorted(kabupaten.items()):
            kind = _site_kind(site)
            if kind in ("pusat", "drc"):
                found.append((site, kind, "", ""))
            else:
                found.append((site, kind, kab if kind == "kecamatan" else "", kab))
        return found

    def _round(self) -> None:
        with self._lock:
            cut = set(self._cut)
        now = time.time()
        self.histograms["linkmon_scheduler_lag_seconds"].labels(self.name).observe(
            self._random.uniform(0.0005, 0.004)
        )
        for link in self.links.values():
            self._probe(link, link.id in cut or self._upstream_down(link, cut))
            self._set_state(link, self._link_state(link, cut), now)
        for office in self.offices:
            self.gauges["linkmon_service_available"].labels(
                self.name, office.site, office.kabupaten
            ).set(self._service(office))
        for receiver, queued in self._queued.items():
            self.gauges["linkmon_alerts_queued"].labels(self.name, receiver).set(queued)
            if queued:  # the receiver takes one alert per round
                self._queued[receiver] -= 1
                self.counters["linkmon_alert_deliveries_total"].labels(
                    self.name, receiver, "success"
                ).inc()

    def _upstream_down(self, link: FakeLink, cut: set[str]) -> bool:
        return bool(link.depends_on) and all(
            up in cut or self._upstream_down(self.links[up], cut) for up in link.depends_on
        )

    def _link_state(self, link: FakeLink, cut: set[str]) -> str:
        if link.id in cut:
            return "down"
        if self._upstream_down(link, cut):
            return "unreachable"
        return "degraded" if link.loss > 0.2 else "up"

    def _probe(self, link: FakeLink, failing: bool) -> None:
        for probe in link.probes:
            labels = {**link.labels(self.name), "kind": probe.kind, "target": probe.target}
            self.gauges["linkmon_probe_success"].labels(**labels).set(0 if failing else 1)
            if failing:
                self.counters["linkmon_probe_failures_total"].labels(
                    **labels, reason="timeout"
                ).inc()
            if probe.kind == "icmp":
                self._echoes(labels, 0 if failing else 5 - round(5 * link.loss))
            elif not failing:
                self.histograms["linkmon_probe_duration_seconds"].labels(**labels).observe(
                    self._rtt()
                )

    def _echoes(self, labels: dict[str, str], received: int) -> None:
        sent = 5
        self.counters["linkmon_probe_packets_sent_total"].labels(**labels).inc(sent)
        self.counters["linkmon_probe_packets_received_total"].labels(**labels).inc(received)
        self.gauges["linkmon_probe_loss_ratio"].labels(**labels).set(1 - received / sent)
        if not received:
            return
        rtts = sorted(self._rtt() for _ in range(received))
        avg = sum(rtts) / len(rtts)
        self.histograms["linkmon_probe_duration_seconds"].labels(**labels).observe(avg)
        self.gauges["linkmon_probe_rtt_min_seconds"].labels(**labels).set(rtts[0])
        self.gauges["linkmon_probe_rtt_avg_seconds"].labels(**labels).set(avg)
        self.gauges["linkmon_probe_rtt_max_seconds"].labels(**labels).set(rtts[-1])
        stddev = (sum((r - avg) ** 2 for r in rtts) / len(rtts)) ** 0.5
        self.gauges["linkmon_probe_rtt_stddev_seconds"].labels(**labels).set(stddev)
        self.gauges["linkmon_probe_jitter_seconds"].labels(**labels).set(rtts[-1] - rtts[0])

    def _rtt(self) -> float:
        return self._random.lognormvariate(-3.5, 0.4)  # around 30 ms, a VPN over a telco line

    def _set_state(self, link: FakeLink, state: str, now: float) -> None:
        labels = link.labels(self.name)
        previous = self._state.get(link.id)
        if previous == state:
            return
        self._state[link.id] = state
        if previous is not None:
            self.counters["linkmon_link_state_changes_total"].labels(**labels).inc()
            for receiver in self._queued:
                self._queued[receiver] += 1
        self.gauges["linkmon_link_state_since_timestamp_seconds"].labels(**labels).set(now)
        # Clear the old state before setting the new one: a scrape in between sees none, never two.
        for other in LINK_STATES:
            if other != state:
                self.gauges["linkmon_link_state"].labels(**labels, state=other).set(0)
        self.gauges["linkmon_link_state"].labels(**labels, state=state).set(1)
        self.gauges["linkmon_link_up"].labels(**labels).set(1 if state in ("up", "degraded") else 0)

    def _service(self, office: FakeOffice) -> float:
        def works(link_id: str | None) -> bool:
            return link_id is not None and self._state.get(link_id) in ("up", "degraded")

        if not all(works(link_id) for link_id in office.path):
            return 0.0
        if office.dc is None or works(office.dc):
            return 1.0
        return 0.5 if works(office.drc) else 0.0


def _site_kind(site: str) -> str:
    if site.endswith("drc"):
        return "drc"
    if site.startswith("pusat"):
        return "pusat"
    prefixes = {"kec-": "kecamatan", "kab-": "kabupaten", "kota-": "kota", "prov-": "provinsi"}
    return next((kind for prefix, kind in prefixes.items() if site.startswith(prefix)), "kabupaten")


def _metrics(
    registry: CollectorRegistry,
) -> tuple[dict[str, Gauge], dict[str, Counter], dict[str, Histogram]]:
    gauges: dict[str, Gauge] = {}
    counters: dict[str, Counter] = {}
    histograms: dict[str, Histogram] = {}
    for spec in CONTRACT:
        doc = f"{spec.name} (stand-in)"
        if spec.type == "gauge":
            gauges[spec.name] = Gauge(spec.name, doc, spec.labels, registry=registry)
        elif spec.type == "counter":
            counters[spec.name] = Counter(spec.name, doc, spec.labels, registry=registry)
        else:
            lag = spec.name == "linkmon_scheduler_lag_seconds"
            histograms[spec.name] = Histogram(
                spec.name,
                doc,
                spec.labels,
                registry=registry,
                buckets=SCHEDULER_LAG_BUCKETS if lag else RTT_BUCKETS,
            )
    return gauges, counters, histograms


def _link(
    link_id: str,
    network: str,
    kabupaten: str,
    *probes: FakeProbe,
    depends_on: tuple[str, ...] = (),
    loss: float = 0.0,
) -> FakeLink:
    from_site, to_site = link_id.split("--")
    return FakeLink(link_id, from_site, to_site, network, kabupaten, probes, depends_on, loss)


def nunukan_and_pusat() -> list[FakeAgent]:
    """Two agents shaped like the examples: kab-nunukan (hub + kecamatan) and pusat-noc (central).

    ``kec-lumbis--kab-nunukan`` is the link to cut: it goes down, the Lumbis Ogong link relayed
    behind it becomes unreachable, and both offices lose service.
    """
    icmp, tcp, http = (partial(FakeProbe, kind) for kind in ("icmp", "tcp", "http"))
    kab = "kab-nunukan"
    nunukan = FakeAgent(
        kab,
        links=[
            _link(
                "kab-nunukan--pusat-dc",
                "vpn",
                kab,
                icmp("198.18.1.1"),
                tcp("198.18.1.1:443"),
                http("https://198.18.1.1/health"),
            ),
            _link("kab-nunukan--pusat-drc", "vpn", kab, icmp("198.18.2.1"), tcp("198.18.2.1:443")),
            _link("kec-krayan--kab-nunukan", "m2m", kab, icmp("198.18.10.2")),
            _link(
                "kec-sebatik--kab-nunukan",
                "starlink",
                kab,
                icmp("198.18.11.2"),
                tcp("198.18.11.2:22"),
                loss=0.4,
            ),
            _link("kec-lumbis--kab-nunukan", "jip", kab, icmp("198.18.12.2")),
            _link(
                "kec-lumbis-ogong--kec-lumbis",
                "jip",
                kab,
                icmp("198.18.13.2"),
                depends_on=("kec-lumbis--kab-nunukan",),
            ),
        ],
        offices=[
            FakeOffice(kab, kab, (), dc="kab-nunukan--pusat-dc", drc="kab-nunukan--pusat-drc"),
            *(
                FakeOffice(
                    site, kab, path, dc="kab-nunukan--pusat-dc", drc="kab-nunukan--pusat-drc"
                )
                for site, path in (
                    ("kec-krayan", ("kec-krayan--kab-nunukan",)),
                    ("kec-sebatik", ("kec-sebatik--kab-nunukan",)),
                    ("kec-lumbis", ("kec-lumbis--kab-nunukan",)),
                    (
                        "kec-lumbis-ogong",
                        ("kec-lumbis-ogong--kec-lumbis", "kec-lumbis--kab-nunukan"),
                    ),
                )
            ),
        ],
        receivers=("oncall", "am"),
        seed=1,
    )
    pusat = FakeAgent(
        "pusat-noc",
        links=[
            _link(
                "pusat-dc--kab-nunukan",
                "vpn",
                kab,
                icmp("198.18.0.10"),
                http("https://198.18.0.10/health"),
            ),
            _link("pusat-dc--kota-samarinda", "jip", "kota-samarinda", icmp("198.18.20.1")),
        ],
        offices=[
            FakeOffice(kab, kab, ("pusat-dc--kab-nunukan",)),
            FakeOffice("kota-samarinda", "kota-samarinda", ("pusat-dc--kota-samarinda",)),
        ],
        seed=2,
    )
    return [nunukan, pusat]

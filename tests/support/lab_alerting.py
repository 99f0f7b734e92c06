"""Alert receivers inside the lab, for end-to-end alerting tests.

linkmon runs in a lab site's namespace and reaches only that namespace's loopback, so its
receivers run there too: the webhook receiver of :mod:`tests.support.receiver` and a real
Alertmanager (Debian ``prometheus-alertmanager``). linkmon's config names their inside URL
(``.url``); the test talks to them through a port forward from the host
(:meth:`linkmon.lab.Lab.forward`) and reads the receiver's JSONL log from the shared file system.
Both are stopped by PID (``ip netns exec`` execs, so the PID is the program's own).

Also what alerting tests read from a running linkmon: link states from /metrics, the stored
transitions and outbox, and the notifications the receiver got.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from linkmon.storage import Storage
from tests.support.alerting import Alertmanager, alertmanager_argv
from tests.support.child import start_helper
from tests.support.daemon import Linkmon, free_port
from tests.support.receiver import ReceiverProcess

if TYPE_CHECKING:
    from linkmon.lab import Lab

# Short rounds for alerting tests: down after 3 failed rounds (1.5 s), up after 2 good ones.
INTERVAL, DOWN_AFTER, UP_AFTER = 0.5, 3, 2
FAST = {
    "interval": "500ms",
    "timeout": "400ms",
    "down_after": DOWN_AFTER,
    "up_after": UP_AFTER,
    "icmp": {"count": 3, "spacing": "50ms", "size": 56},
}
SETTLE = 2.5  # two state ticks and a few rounds: long enough for a stray page to show up

ALERTMANAGER_PORT = 9093  # inside the site's namespace, which has no Alertmanager of its own


class LabReceiver(ReceiverProcess):
    """The webhook receiver in a site's namespace.

    ``url`` is where linkmon (in the same namespace) sends; :meth:`fail` goes through a
    forward from the host, so ``port`` is the host side of that forward. ``across``: listen on
    every address, and ``url`` is then the site's own address, for a linkmon in another
    namespace that reaches it over the lab's links.
    """

    def __init__(self, lab: Lab, site: str, log: Path, across: bool = False) -> None:
        # Not super().__init__: the same receiver, started inside the namespace instead.
        self.log = log
        self.proc, line = start_helper(
            "tests.support.receiver",
            ["--log", str(log), "--host", "0.0.0.0" if across else "127.0.0.1"],
            "listening ",
            f"test receiver did not start in {site}",
            popen=lambda argv, **kw: lab.popen(site, argv, **kw),
        )
        inside = int(line.split()[1])
        self.url = f"http://{lab.address(site) if across else '127.0.0.1'}:{inside}/hook"
        self.port = free_port()
        try:
            lab.forward(site, inside, self.port)
        except BaseException:
            self.stop()
            raise


@contextlib.contextmanager
def receiver_in_lab(lab: Lab, site: str, log: Path, across: bool = False) -> Iterator[LabReceiver]:
    receiver = LabReceiver(lab, site, log, across)
    try:
        yield receiver
    finally:
        receiver.stop()


class LabAlertmanager(Alertmanager):
    """A standalone Alertmanager (no cluster port) in a site's namespace: ``url`` is where
    linkmon (in the namespace) sends, ``api`` the host side of a forward to it."""

    def __init__(self, lab: Lab, site: str, workdir: Path) -> None:
        # Not super().__init__: the same Alertmanager, started inside the namespace instead.
        self.port = ALERTMANAGER_PORT
        self.url = f"http://127.0.0.1:{ALERTMANAGER_PORT}"  # as linkmon sees it
        argv = alertmanager_argv(workdir, ALERTMANAGER_PORT)
        with (workdir / "alertmanager.log").open("w") as log:
            self.proc = lab.popen(site, argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            host_port = free_port()
            lab.forward(site, ALERTMANAGER_PORT, host_port)
            self.api = f"http://127.0.0.1:{host_port}"
        except BaseException:
            self.stop()
            raise
        self.wait_ready(20, f"alertmanager in {site}", every=0.1)


@contextlib.contextmanager
def alertmanager_in_lab(lab: Lab, site: str, workdir: Path) -> Iterator[LabAlertmanager]:
    am = LabAlertmanager(lab, site, workdir)
    try:
        yield am
    finally:
        am.stop()


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook message, as the receiver got it."""

    at: float  # when the receiver got it (unix seconds)
    answered: int  # the HTTP status the receiver answered
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    starts_at: str
    ends_at: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


def notifications(
    receiver: ReceiverProcess, since: float = 0.0, accepted: bool = True, **labels: str
) -> list[Notification]:
    """Alerts the receiver got after ``since`` whose labels include ``labels``, oldest first.

    ``accepted``: only those it answered 200 (delivered); else every attempt, 503s included.
    """
    found = []
    for record in receiver.records():
        if record["at"] < since or (accepted and record["answered"] != 200):
            continue
        for alert in record["body"]["alerts"]:
            if labels.items() <= alert["labels"].items():
                found.append(
                    Notification(
                        at=record["at"],
                        answered=record["answered"],
                        status=alert["status"],
                        labels=alert["labels"],
                        annotations=alert["annotations"],
                        fingerprint=alert["fingerprint"],
                        starts_at=alert["startsAt"],
                        ends_at=alert["endsAt"],
                    )
                )
    return found


def subjects(found: list[Notification]) -> list[tuple[str, str, str]]:
    """(status, alertname, link or site) of each: what a test compares with the pages it expects."""
    return [(n.status, n.name, n.labels.get("link") or n.labels.get("site", "")) for n in found]


# -- what a running linkmon shows --------------------------------------------------------------


def link_states(daemon: Linkmon) -> dict[str, str]:
    """Each link's state, from /metrics (reading it changes nothing in the daemon)."""
    return {
        dict(labels)["link"]: dict(labels)["state"]
        for (name, labels), sample in daemon.metrics().items()
        if name == "linkmon_link_state" and sample == 1
    }


def all_up(daemon: Linkmon) -> bool:
    return set(link_states(daemon).values()) == {"up"}


def link_doc(daemon: Linkmon, link: str) -> dict[str, Any]:
    """The link as the status API shows it."""
    links: list[dict[str, Any]] = daemon.status()["links"]
    return next(doc for doc in links if doc["id"] == link)


def echoes_sent(daemon: Linkmon, link: str) -> float:
    return daemon.value("linkmon_probe_packets_sent_total", link=link, kind="icmp") or 0.0


def config_path(daemon: Linkmon) -> Path:
    argv = daemon.process.args  # [..., "linkmon", "run", "-c", PATH]
    assert isinstance(argv, list)
    return Path(argv[-1])


def storage_path(daemon: Linkmon) -> Path:
    return Path(yaml.safe_load(config_path(daemon).read_text())["storage"]["path"])


def transitions(db: Path, link: str, since: float) -> list[tuple[str, str]]:
    """(old, new) of every state change stored for ``link`` since ``since``, in order."""
    with Storage(db, readonly=True) as storage:
        return [
            (t.old.value, t.new.value)
            for t in storage.transitions(since, time.time() + 1, link=link)
        ]


def outbox_empty(db: Path) -> bool:
    """Every queued notification delivered and forgotten (durably: it is read from disk)."""
    with Storage(db, readonly=True) as storage:
        return not storage.pending()

"""The shipped ``alertmanager/alertmanager.example.yml`` run in a real Alertmanager, and the
alerts linkmon's agents and Prometheus' rules would push into it.

The test copy differs from the shipped file only where it must: webhook URLs go to a loopback
receiver process (its path names the receiver), Telegram goes to a loopback stand-in of the
Bot API (the real one cannot be reached from a test), the template path is absolute, and the
group timers are short so that a test takes seconds.

Alerts are made by linkmon's own code, never typed by hand: the agent's alerts by the state
machine (:class:`linkmon.state.Network`) fed failed probe rounds for a real config, put into
words by its composer (:class:`linkmon.alerts.compose.Composer`); the
Prometheus rules' alerts from the labels linkmon's metrics carry (``link_labels``) and the
labels the rule file adds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from linkmon.alerts.compose import Composer
from linkmon.alerts.model import Alert, alertmanager_payload
from linkmon.config import Config, load_config
from linkmon.metrics import link_labels
from linkmon.state import Network, Rules
from probes.base import Failure, ProbeResult
from tests.support.alerting import Alertmanager
from tests.support.daemon import free_port
from tests.support.receiver import ReceiverProcess, running_receiver
from tests.support.telegram_api import TelegramBotApi, telegram_bot_api
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "alertmanager" / "alertmanager.example.yml"
RULES = ROOT / "prometheus" / "rules" / "linkmon-alerts.yml"
SCRAPE = ROOT / "prometheus" / "prometheus.example.yml"
NUNUKAN = ROOT / "config" / "nunukan.yml"
KALTIM = ROOT / "config" / "kaltim-jip.yml"

# A Tuesday, 10:00 WITA: inside service hours, outside every maintenance window of the configs.
TUESDAY = datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()


def config_for_test(webhook_base: str, telegram_url: str) -> str:
    """The shipped config, pointed at loopback stand-ins, with short group timers."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    config["global"]["telegram_api_url"] = telegram_url
    config["templates"] = [str(SHIPPED.parent / t) for t in config["templates"]]
    config["route"].update(group_wait="1s", group_interval="1m", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_base}/{receiver['name']}"
        for telegram in receiver.get("telegram_configs", []):
            telegram.pop("api_url", None)  # the global one, pointed at the stand-in
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


@dataclass
class ShippedAlertmanager:
    am: Alertmanager
    webhook: ReceiverProcess
    telegram: TelegramBotApi

    def push(self, alerts: Iterable[Alert]) -> None:
        """``POST /api/v2/alerts`` as linkmon's ``alertmanager`` receiver sends them."""
        body = alertmanager_payload(list(alerts), now=time.time(), resend_interval=60)
        response = httpx.post(f"{self.am.api}/api/v2/alerts", json=body, timeout=5)
        response.raise_for_status()

    def notifications(self, receiver: str) -> list[dict[str, Any]]:
        """Webhook messages the receiver named ``receiver`` got, in arrival order."""
        return [r["body"] for r in self.webhook.records() if r["path"] == f"/{receiver}"]

    def telegram_texts(self, chat_id: int) -> list[str]:
        return [
            str(call.params["text"])
            for call in self.telegram.messages()
            if str(call.params["chat_id"]) == str(chat_id)
        ]

    def state(self, alert: Alert) -> dict[str, Any]:
        """The alert's ``status`` as Alertmanager's API shows it (active, suppressed, …)."""
        for held in self.am.alerts():
            if held["fingerprint"] == alert.fingerprint:
                status: dict[str, Any] = held["status"]
                return status
        raise AssertionError(f"Alertmanager does not hold {alert.labels}")

    def inhibitors(self, alert: Alert) -> list[str]:
        """Fingerprints of what inhibits ``alert``, once Alertmanager has muted it (the mute
        is decided when its group is flushed)."""
        wait_until(lambda: self.state(alert)["state"] == "suppressed", 20, f"{alert.labels} muted")
        return list(self.state(alert)["inhibitedBy"])

    def notifications_sent(self, integration: str) -> float:
        """Alertmanager's own count of notifications sent through one integration."""
        text = httpx.get(f"{self.am.api}/metrics", timeout=5).text
        pattern = rf'^alertmanager_notifications_total{{integration="{integration}"}} (\S+)$'
        match = re.search(pattern, text, re.MULTILINE)
        return float(match[1]) if match else 0.0


@contextmanager
def shipped_alertmanager(workdir: Path) -> Iterator[ShippedAlertmanager]:
    with (
        running_receiver(workdir / "webhook.jsonl") as webhook,
        telegram_bot_api() as telegram,
    ):
        base = webhook.url.removesuffix("/hook")
        am = Alertmanager(workdir / "am", free_port(), config_for_test(base, telegram.url))
        try:
            yield ShippedAlertmanager(am, webhook, telegram)
        finally:
            am.stop()


def receiver_config(name: str) -> dict[str, Any]:
    """One receiver of the shipped file (anchors merged), to read its chat ids."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    return dict(found)


def chat_of(receiver: str) -> int:
    return int(receiver_config(receiver)["telegram_configs"][0]["chat_id"])


# -- what a linkmon agent sends: its state machine, fed failed rounds --------------------------


def _failed(kind: str, target: str) -> ProbeResult:
    if kind == "icmp":
        return ProbeResult(kind, target, False, failure=Failure.TIMEOUT, packets_sent=3)
    return ProbeResult(kind, target, False, failure=Failure.TIMEOUT)


class Agent:
    """One agent's state machine and composer on a real config, cut link by link."""

    def __init__(self, config: Config, now: float = TUESDAY) -> None:
        self.config = config
        self.now = now
        rules = Rules.from_config(config)
        agent = config.agent
        self.network = Network(rules, now)
        self.composer = Composer(rules, language=agent.language, timezone=agent.timezone)
        self.composer.compose(self.network.tick(now).alerts)

    @property
    def firing(self) -> dict[str, Alert]:
        return {alert.key: alert for alert in self.composer.firing()}

    def cut(self, links: Iterable[str]) -> None:
        """Every probe of these links fails, round after round, until they are judged."""
        chosen = [link for link in self.config.links if link.id in set(links)]
        rounds = max(link.down_after for link in chosen)
        for _ in range(rounds):
            self.now += 15
            for link in chosen:
                for index, probe in enumerate(link.probes):
                    result = _failed(probe.kind, probe.target_label)
                    self.composer.compose(
                        self.network.observe(link.id, index, result, self.now).alerts
                    )
            self.composer.compose(self.network.tick(self.now).alerts)

    def alert(self, key: str) -> Alert:
        return self.firing[key]


# -- what Prometheus sends for linkmon's alert rules ------------------------------------------


def _rule(name: str) -> dict[str, Any]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == name]
    return dict(rule)


def rule_alert(name: str, series: dict[str, str], starts_at: float | None = None) -> Alert:
    """The alert Prometheus makes when rule ``name`` fires on a series (or aggregate) with
    these labels: the series' labels, then the rule's own; the summary with ``$labels``
    filled in as Prometheus would. It starts now unless told otherwise: Alertmanager flushes
    a new group at once, without ``group_wait``, for an alert already older than that."""
    rule = _rule(name)
    starts_at = time.time() if starts_at is None else starts_at
    labels = {**series, **rule.get("labels", {}), "alertname": name}
    summary = re.sub(
        r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), rule["annotations"]["summary"]
    )
    return Alert.create(
        f"{name}/{sorted(labels.items())}", "rule", labels, {"summary": summary}, starts_at
    )


def link_down_rule(config: Config, link_id: str) -> Alert:
    """Prometheus' LinkDown for a link: ``linkmon_link_state{state="down"}``'s labels."""
    (link,) = [link for link in config.links if link.id == link_id]
    return rule_alert("LinkDown", {**link_labels(config, link), "state": "down"})


def linkmon_down_rule(agent: str) -> Alert:
    """Prometheus' LinkmonDown for an agent: the labels of its ``up`` series, as scraped by
    the example scrape config (job, instance, and the target's agent label)."""
    scrape = yaml.safe_load(SCRAPE.read_text(encoding="utf-8"))
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "linkmon"]
    (group,) = [g for g in job["static_configs"] if g["labels"]["agent"] == agent]
    series = {"job": "linkmon", "instance": group["targets"][0], **group["labels"]}
    return rule_alert("LinkmonDown", series)


def nunukan() -> Config:
    return load_config(NUNUKAN)


def kaltim() -> Config:
    return load_config(KALTIM)

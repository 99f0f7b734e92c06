"""Where alerts go: a webhook or an Alertmanager cluster, behind one interface.

Both POST JSON and read the answer the same way (as Alertmanager treats its own receivers):
2xx delivered; 5xx, 408, 429 and network errors are worth a retry; any other answer is a
rejection that no retry will fix, so the notification is dropped and counted. They differ
only in the URL and the body. An Alertmanager also gets every firing alert again each
``resend_interval`` (:meth:`Receiver.refresh`), so one that restarted relearns them.

URLs and header values may hold tokens: nothing here logs or returns them. What is logged
is the receiver's name and :func:`safe_url` (scheme, host and port); httpx's own request log
line is cut down to the same (it would print the whole URL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx

from linkmon.alerts.model import Alert, alertmanager_payload, webhook_payload

if TYPE_CHECKING:
    from linkmon.config import Alerting


class Result(StrEnum):
    """Outcome of one delivery attempt; the ``result`` label of the delivery counter."""

    SUCCESS = "success"
    RETRY = "retry"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Delivery:
    result: Result
    reason: str = ""  # status code or error kind; never a URL or a header


def safe_url(url: str) -> str:
    """``scheme://host:port`` only: paths, queries and user info may carry tokens."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


class _HideUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; a receiver URL may carry a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{safe_url(str(arg))}/…" if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_HideUrls())


class Receiver(ABC):
    """One configured receiver: a name, one or more URLs (delivery targets), headers.

    Each URL is its own delivery target with its own queue, as Prometheus treats every
    Alertmanager of an HA cluster; :attr:`targets` maps a stable target id (name and a hash
    of the URL, so no token reaches the database) to the URL.
    """

    kind = ""

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        send_resolved: bool = True,
        resend_interval: float | None = None,
        external_url: str = "",
    ) -> None:
        if not urls:
            raise ValueError(f"receiver {name}: needs at least one URL")
        self.name = name
        self.targets = {f"{name}#{hashlib.sha256(u.encode()).hexdigest()[:12]}": u for u in urls}
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.send_resolved = send_resolved
        self.resend_interval = resend_interval
        self.external_url = external_url

    def endpoint(self, url: str) -> str:
        return url

    @abstractmethod
    def body(self, alerts: Sequence[Alert], now: float) -> Any:
        """The JSON body for ``alerts``, rendered at send time (``endsAt`` depends on it)."""

    def wants(self, alert: Alert) -> bool:
        return self.send_resolved or alert.ends_at is None

    async def deliver(
        self, client: httpx.AsyncClient, target: str, alert: Alert, now: float
    ) -> Delivery:
        """Send one notification to one target."""
        return await self._post(client, target, [alert], now)

    async def refresh(
        self, client: httpx.AsyncClient, target: str, alerts: Sequence[Alert], now: float
    ) -> Delivery:
        """Send the current alerts again (only receivers with a ``resend_interval``)."""
        return await self._post(client, target, alerts, now)

    async def _post(
        self, client: httpx.AsyncClient, target: str, alerts: Sequence[Alert], now: float
    ) -> Delivery:
        url = self.targets[target]
        content = json.dumps(self.body(alerts, now), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        try:
            response = await client.post(
                self.endpoint(url), content=content, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            return Delivery(Result.RETRY, self._scrub(exc, url))
        status = response.status_code
        if 200 <= status < 300:
            return Delivery(Result.SUCCESS, f"HTTP {status}")
        if status >= 500 or status in (408, 429):
            return Delivery(Result.RETRY, f"HTTP {status}")
        return Delivery(Result.DROPPED, f"HTTP {status}")

    def _scrub(self, exc: Exception, url: str) -> str:
        """The error kind and message, with anything secret cut out."""
        message = str(exc)
        secrets = [url, self.endpoint(url), *self.headers.values()]
        if "://" in message or any(s and s in message for s in secrets):
            message = ""
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class WebhookReceiver(Receiver):
    """Alertmanager webhook JSON (version "4"), one alert per message."""

    kind = "webhook"

    def body(self, alerts: Sequence[Alert], now: float) -> Any:
        [alert] = alerts
        return webhook_payload(alert, receiver=self.name, external_url=self.external_url)


class AlertmanagerReceiver(Receiver):
    """``POST <url>/api/v2/alerts`` to every Alertmanager of a cluster."""

    kind = "alertmanager"

    def __init__(
        self, name: str, urls: Sequence[str], *, resend_interval: float = 60.0, **kw: Any
    ) -> None:
        super().__init__(name, urls, resend_interval=resend_interval, **kw)

    def endpoint(self, url: str) -> str:
        return url.rstrip("/") + "/api/v2/alerts"

    def body(self, alerts: Sequence[Alert], now: float) -> Any:
        return alertmanager_payload(alerts, now=now, resend_interval=self.resend_interval or 60.0)


def build_receivers(alerting: Alerting, external_url: str = "") -> list[Receiver]:
    """The receivers of a validated config, with secrets resolved."""
    receivers: list[Receiver] = []
    for rc in alerting.receivers:
        urls = [u.get_secret_value() for u in rc.urls]
        headers = {k: v.get_secret_value() for k, v in rc.headers.items()}
        common: dict[str, Any] = {
            "headers": headers,
            "timeout": rc.timeout,
            "send_resolved": rc.send_resolved,
            "external_url": external_url,
        }
        if rc.kind == "alertmanager":
            receivers.append(
                AlertmanagerReceiver(
                    rc.name, urls, resend_interval=alerting.resend_interval, **common
                )
            )
        else:
            receivers.append(WebhookReceiver(rc.name, urls, **common))
    return receivers

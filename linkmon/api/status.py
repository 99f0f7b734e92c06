"""The status document the daemon serves at ``GET /api/v1/status``, and the status page shows.

Built on request from the monitor's state, at the monitor's time (``now``): the wall page, the
CLI and scripts all read this one document, so it says everything in plain values (UTC
timestamps, ids, states) and leaves the words to whoever shows it; the one sentence in it, where
a down link's trace stopped, is in the agent's language. Its shape is fixed by
:mod:`linkmon.api.openapi`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..alerts.text import zone_abbr
from ..config import Config, Link
from ..paths import PathWatch
from ..state import LinkSnapshot, Network, ServiceStatus
from .summary import TERMINAL_KINDS, summarize


def status_document(
    config: Config,
    network: Network,
    paths: PathWatch,
    *,
    now: float,
    version: str,
    started_at: float,
) -> dict[str, Any]:
    """Sites, links, service availability, open outages and maintenance as of ``now``."""
    snapshots = network.snapshot()
    services = network.service()
    language = config.agent.language
    sites = [_site_doc(config, site.id, services, now) for site in config.sites]
    links = [
        _link_doc(config, link, snapshots[link.id], _path_text(paths, link.id, language), now)
        for link in config.links
        if link.id in snapshots
    ]
    windows = _maintenance_docs(config, now)
    outages = [
        {
            "link": doc["id"],
            "state": doc["state"],
            "since": doc["since"],
            "cause": doc["cause"] or "",
            "alerted": _alerted(network, doc["id"]),
        }
        for doc in links
        if doc["state"] in ("down", "unreachable")
    ]
    agent = config.agent
    return {
        "agent": {
            "name": agent.name,
            "timezone": agent.timezone,
            "zone_abbr": zone_abbr(now, agent.timezone),
            "language": agent.language,
            "version": version,
            "started_at": _iso(started_at),
        },
        "generated_at": _iso(now),
        "summary": summarize(sites, links, windows),
        "sites": sites,
        "links": links,
        "outages": outages,
        "maintenance": windows,
    }


def _path_text(paths: PathWatch, link_id: str, language: str) -> str | None:
    """Where the trace taken when the link went down stopped."""
    report = paths.report(link_id)
    if report is None or report.reason != "down":
        return None
    return report.text(language)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


def _site_doc(
    config: Config, site_id: str, services: Mapping[str, ServiceStatus], now: float
) -> dict[str, Any]:
    site = config.site(site_id)
    timezone = site.timezone or config.agent.timezone
    status = services.get(site_id)
    service = (
        None
        if site.kind in TERMINAL_KINDS or status is None
        else {"state": status.availability.value, "via": list(status.via), "reason": status.reason}
    )
    return {
        "id": site.id,
        "kind": site.kind,
        "name": site.name or site.id,
        "parent": site.parent,
        "kabupaten": config.kabupaten_of(site.id),
        "timezone": timezone,
        "zone_abbr": zone_abbr(now, timezone),
        "service": service,
    }


def _link_doc(
    config: Config, link: Link, snap: LinkSnapshot, path: str | None, now: float
) -> dict[str, Any]:
    maintenance = None
    if snap.maintenance is not None:
        moment = datetime.fromtimestamp(now, UTC)
        window = config.in_maintenance(link.id, moment)
        maintenance = {
            "reason": snap.maintenance,
            "until": _window_end(config, link.id, window, moment),
        }
    return {
        "id": link.id,
        "from": link.from_site,
        "to": link.to_site,
        "network": link.network,
        "state": snap.state.value,
        "since": _iso(snap.since),
        "cause": snap.cause or None,
        "detail": snap.detail,
        "flapping": snap.flapping,
        "maintenance": maintenance,
        "depends_on": list(link.depends_on),
        "unreachable_via": snap.upstream[0] if snap.upstream else None,
        "path": path if snap.state.value == "down" else None,
        "rtt_seconds": snap.rtt,
        "loss": snap.loss,
        "probes": [
            {
                "kind": p.kind,
                "target": p.target,
                "success": p.success,
                "failure": p.failure,
                "detail": p.detail,
                "duration_seconds": p.duration,
                "loss": p.loss,
                "at": _iso_or_none(p.last_at),
            }
            for p in snap.probes
        ],
    }


def _window_end(config: Config, link_id: str, window: object, now: datetime) -> str | None:
    for start, end, found in config.maintenance_periods(link_id, now, now):
        if found is window and start <= now <= end:
            return end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _maintenance_docs(config: Config, now_ts: float) -> list[dict[str, Any]]:
    now = datetime.fromtimestamp(now_ts, UTC)
    docs = []
    for link in config.links:
        for start, end, window in config.maintenance_periods(link.id, now, now):
            if start <= now <= end:
                docs.append(
                    {
                        "links": list(window.links),
                        "sites": list(window.sites),
                        "reason": window.reason or "",
                        "start": _iso(start.timestamp()),
                        "end": _iso(end.timestamp()),
                    }
                )
    unique = {tuple(sorted((k, str(v)) for k, v in d.items())): d for d in docs}
    return list(unique.values())


def _alerted(network: Network, link_id: str) -> bool:
    return any(key.kind.about_link and key.subject == link_id for key in network.firing())

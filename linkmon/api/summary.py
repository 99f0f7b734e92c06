"""The status document's one-glance answer, computed from the document's own fields.

The daemon summarizes what it serves; ``linkmon status --site`` summarizes the part of it
one office asks about; the fleet view (:mod:`linkmon.fleet`) the document it builds from
Prometheus. All call :func:`summarize` on the document's plain dicts, so a narrowed view, a
fleet and the daemon's answer follow the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .openapi import LINK_STATES

TERMINAL_KINDS = frozenset({"pusat", "drc"})
SERVING = frozenset({"available", "degraded"})
# Lower rank = further from pusat; a link is shown under its lower end.
_RANK = {"kecamatan": 0, "kabupaten": 1, "kota": 1, "provinsi": 2, "pusat": 3, "drc": 3}

# Worst first; an office that cannot serve weighs like a link that is down.
SEVERITY = ("down", "unknown", "degraded", "up")
LINK_WEIGHT = {
    "down": "down",
    "unreachable": "down",
    "unknown": "unknown",
    "degraded": "degraded",
    "up": "up",
}
SERVICE_WEIGHT = {
    "unavailable": "down",
    "unknown": "unknown",
    "degraded": "degraded",
    "available": "up",
}


def office_end(link: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    """The end of a link nearer the kecamatan: the office whose link it is.

    An uplink belongs to its kabupaten, a kecamatan link to the kecamatan, whichever end
    probes it. ``kinds`` maps site id to kind; an end not in it is never chosen.
    """
    ends: list[str] = [end for end in (link["from"], link["to"]) if end in kinds]
    return min(ends or [str(link["from"])], key=lambda end: _RANK.get(kinds.get(end, ""), 0))


def summarize(
    sites: Sequence[Mapping[str, Any]],
    links: Sequence[Mapping[str, Any]],
    windows: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``summary`` object for these sites, links and maintenance windows.

    The state is the worst of every link and every office's service: down (a link down or
    unreachable, an office that cannot serve) over unknown over degraded (e.g. serving via
    the DRC only) over up. Planned work must not page the Nagios on-call: links in
    maintenance, and offices in a window or with one of their own links in one, are counted
    but do not set the state: all of it in maintenance is up. No links at all is unknown.
    """
    counts = {state: 0 for state in LINK_STATES}
    for link in links:
        counts[link["state"]] += 1
    kinds = {site["id"]: site["kind"] for site in sites}
    resting = {site for window in windows for site in window["sites"]}
    resting |= {office_end(link, kinds) for link in links if link["maintenance"] is not None}
    weights = {LINK_WEIGHT[link["state"]] for link in links if link["maintenance"] is None}
    # pusat and the DRC have no service, nor has a province heading of a fleet's document
    offices = [s for s in sites if s["kind"] not in TERMINAL_KINDS and s["service"] is not None]
    weights |= {
        SERVICE_WEIGHT[site["service"]["state"]] for site in offices if site["id"] not in resting
    }
    state = next((s for s in SEVERITY if s in weights), "up" if links else "unknown")
    online = sum(1 for site in offices if site["service"]["state"] in SERVING)
    return {
        "state": state,
        "links": counts,
        "offices_online": online,
        "offices_total": len(offices),
    }

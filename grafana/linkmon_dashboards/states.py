"""What linkmon's series mean on a dashboard: the link state as one number, and the words and
colours of link states, office service, probe results and yes/no flags.

Words are in Bahasa Indonesia where an officer reads them; state names stay as linkmon says them
(UP, DOWN, ...), the same words as in alerts and ``linkmon status``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import (
    DashboardRangeMapOptions,
    RangeMap,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

# linkmon exports one series per state (1 for the current one); multiplying each by its code and
# taking the max leaves the current state's code, 0 when only "unknown" is set. A link in a
# maintenance window shows as maintenance whatever its state.
STATE_CODES = (("up", 1), ("degraded", 2), ("unreachable", 3), ("down", 4))
MAINTENANCE_CODE = 5


def link_state_code(selector: str, by: str) -> str:
    """PromQL for the state of each link (grouped ``by``) as one number a tile can colour."""
    per_state = " or ".join(
        f'linkmon_link_state{{{selector},state="{state}"}} * {code}' for state, code in STATE_CODES
    )
    return (
        f"max by ({by}) ({per_state}"
        f" or linkmon_link_in_maintenance{{{selector}}} * {MAINTENANCE_CODE})"
    )


def value_mappings(*entries: tuple[str, str, str]) -> list[ValueMapping]:
    """Exact values shown as words: ``(value, text, colour)``, in display order."""
    return [
        ValueMap(
            options={
                value: ValueMappingResult(text=text, color=color, index=index)
                for index, (value, text, color) in enumerate(entries)
            }
        )
    ]


def range_mappings(*entries: tuple[float, float, str, str]) -> list[ValueMapping]:
    """Value ranges shown as words: ``(from, to, text, colour)``, in display order."""
    return [
        RangeMap(
            options=DashboardRangeMapOptions(
                from_val=low,
                to=high,
                result=ValueMappingResult(text=text, color=color, index=index),
            )
        )
        for index, (low, high, text, color) in enumerate(entries)
    ]


LINK_STATE_MAPPINGS = value_mappings(
    ("0", "UNKNOWN", "text"),
    ("1", "UP", "green"),
    ("2", "DEGRADED", "yellow"),
    ("3", "UNREACHABLE", "purple"),
    ("4", "DOWN", "red"),
    (str(MAINTENANCE_CODE), "MAINTENANCE", "blue"),
)
# linkmon_service_available: 1 online, 0.5 only through the DRC, 0 offline. Ranges, not exact
# values, so 0.5 matches however Grafana prints it.
SERVICE_MAPPINGS = range_mappings(
    (-0.25, 0.25, "OFFLINE", "red"),
    (0.25, 0.75, "VIA DRC", "orange"),
    (0.75, 1.25, "ONLINE", "green"),
)
# A probe, or a config reload, that worked or failed.
SUCCESS_MAPPINGS = value_mappings(("0", "GAGAL", "red"), ("1", "OK", "green"))
YES_NO_MAPPINGS = value_mappings(("0", "TIDAK", "green"), ("1", "YA", "orange"))
SCRAPE_MAPPINGS = value_mappings(("0", "DOWN", "red"), ("1", "UP", "green"))
OUTAGE_CAUSE_MAPPINGS = value_mappings(
    ("down", "DOWN (link ini)", "red"),
    ("unreachable", "UNREACHABLE (hulu putus)", "purple"),
)

STATE_HELP = {
    "up": "Link yang normal sekarang.",
    "degraded": "Link yang tersambung tetapi loss atau RTT melewati batas (lambat/putus-putus).",
    "down": "Link yang putus sendiri (bukan karena hulunya). Inilah yang perlu ditangani.",
    "unreachable": "Link yang tidak terjangkau karena link di hulunya DOWN; tidak di-page sendiri.",
}

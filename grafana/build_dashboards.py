#!/usr/bin/env python3
"""Writes linkmon's Grafana dashboards (grafana/dashboards/*.json) from this one description.

The JSON files are what users import or provision; this script is how they are kept consistent
(one data source variable, one state colour scheme, unique panel ids, a layout that never
overlaps). Edit here, run ``python grafana/build_dashboards.py``, commit both; ``--check`` fails
when the JSON and this script disagree, and the test suite runs it.

Panel titles and descriptions are in Bahasa Indonesia, like everything else a NOC officer reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NOC_UID, LINK_UID, AVAILABILITY_UID = "linkmon-noc", "linkmon-link", "linkmon-availability"

Json = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Link states as one number per link, so a state timeline or a stat tile can colour it.
# linkmon exports one series per state (1 for the current one); multiplying each by its code and
# taking the max leaves the current state's code, 0 when only "unknown" is set. A link in a
# maintenance window shows as maintenance whatever its state.

STATE_CODES = (("up", 1), ("degraded", 2), ("unreachable", 3), ("down", 4))
MAINTENANCE_CODE = 5


def link_state_code(selector: str, by: str) -> str:
    per_state = " or ".join(
        f'linkmon_link_state{{{selector},state="{state}"}} * {code}' for state, code in STATE_CODES
    )
    return (
        f"max by ({by}) ({per_state}"
        f" or linkmon_link_in_maintenance{{{selector}}} * {MAINTENANCE_CODE})"
    )


def value_mappings(*entries: tuple[str, str, str]) -> list[Json]:
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": index}
                for index, (value, text, color) in enumerate(entries)
            },
        }
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
SERVICE_MAPPINGS = [
    {
        "type": "range",
        "options": {"from": low, "to": high, "result": {"text": text, "color": color, "index": i}},
    }
    for i, (low, high, text, color) in enumerate(
        (
            (-0.25, 0.25, "OFFLINE", "red"),
            (0.25, 0.75, "VIA DRC", "orange"),
            (0.75, 1.25, "ONLINE", "green"),
        )
    )
]
PROBE_MAPPINGS = value_mappings(("0", "GAGAL", "red"), ("1", "OK", "green"))
YES_NO_MAPPINGS = value_mappings(("0", "TIDAK", "green"), ("1", "YA", "orange"))
SCRAPE_MAPPINGS = value_mappings(("0", "DOWN", "red"), ("1", "UP", "green"))

DAY = 86400


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


AVAILABILITY_THRESHOLDS = thresholds("red", (0.95, "orange"), (0.99, "green"))


def detail_link(label_ref: str) -> list[Json]:
    """A click-through to the link detail dashboard for the link under the cursor."""
    return [
        {
            "title": "Detail link",
            "url": f"/d/{LINK_UID}?${{datasource:queryparam}}&${{agent:queryparam}}"
            f"&var-link={label_ref}&${{__url_time_range}}",
        }
    ]


# ---------------------------------------------------------------------------------------------
# Panels


def query(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "time_series") -> Json:
    return {
        "expr": expr,
        "legendFormat": legend,
        "instant": instant,
        "range": not instant,
        "format": fmt,
        "editorMode": "code",
    }


def panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Json],
    options: Json,
    defaults: Json | None = None,
    overrides: Iterable[Json] = (),
    transformations: Iterable[Json] = (),
) -> Json:
    built: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, **q}
            for i, q in enumerate(queries)
        ],
        "fieldConfig": {
            "defaults": {"unit": unit, **(defaults or {})},
            "overrides": list(overrides),
        },
        "options": options,
    }
    if transformations:
        built["transformations"] = list(transformations)
    return built


def stat(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Json],
    *,
    mappings: list[Json] | None = None,
    steps: Json | None = None,
    color: str | None = None,
    show_names: bool = False,
    links: list[Json] | None = None,
    extra: Json | None = None,
) -> Json:
    defaults: Json = {"mappings": mappings or [], "thresholds": steps or thresholds("text")}
    defaults["color"] = {"mode": "fixed", "fixedColor": color} if color else {"mode": "thresholds"}
    if links:
        defaults["links"] = links
    defaults.update(extra or {})
    return panel(
        "stat",
        title,
        description,
        unit,
        queries,
        options={
            "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
            "orientation": "auto",
            "textMode": "value_and_name" if show_names else "value",
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
        defaults=defaults,
    )


def count_stat(title: str, description: str, expr: str, alarm: str | None) -> Json:
    """A count that is fine at zero; ``alarm`` colours it once it is not (None: always neutral)."""
    steps = thresholds("green", (1, alarm)) if alarm else thresholds("blue")
    return stat(
        title,
        description,
        "none",
        [query(f"{expr} or vector(0)", instant=True)],
        steps=steps,
        extra={"decimals": 0},
    )


def availability_stat(title: str, description: str, ratio: str) -> Json:
    """The average over the selection of ``ratio`` (0..1 per series), as a percentage."""
    return stat(
        title,
        description,
        "percentunit",
        [query(f"avg({ratio})", instant=True)],
        steps=AVAILABILITY_THRESHOLDS,
        extra={"decimals": 2},
    )


def timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Json],
    *,
    bars: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1,
            "fillOpacity": 60 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if bars else "none", "group": "A"},
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return panel(
        "timeseries",
        title,
        description,
        unit,
        queries,
        options={
            "legend": {
                "showLegend": True,
                "displayMode": "list",
                "placement": "bottom",
                "calcs": [],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults=defaults,
    )


def state_timeline(
    title: str,
    description: str,
    queries: Sequence[Json],
    mappings: list[Json],
    links: list[Json] | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "thresholds": thresholds("text"),
        "mappings": mappings,
        "custom": {"fillOpacity": 80, "lineWidth": 0},
    }
    if links:
        defaults["links"] = links
    return panel(
        "state-timeline",
        title,
        description,
        "none",
        queries,
        options={
            "mergeValues": True,
            "showValue": "never",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        defaults=defaults,
    )


def column(field: str, title: str, unit: str | None = None, **properties: Any) -> Json:
    """A table column override: its header and, where numeric, its unit and colouring."""
    props: list[Json] = [{"id": "displayName", "value": title}]
    if unit:
        props.append({"id": "unit", "value": unit})
    if "mappings" in properties:
        props.append({"id": "mappings", "value": properties["mappings"]})
    if "steps" in properties:
        props.append({"id": "thresholds", "value": properties["steps"]})
    if "decimals" in properties:
        props.append({"id": "decimals", "value": properties["decimals"]})
    if properties.get("coloured"):
        props.append(
            {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}}
        )
    return {"matcher": {"id": "byName", "options": field}, "properties": props}


def availability_column(field: str, title: str) -> Json:
    """An availability ratio, coloured by the availability thresholds."""
    return column(
        field,
        title,
        "percentunit",
        decimals=2,
        steps=AVAILABILITY_THRESHOLDS,
        coloured=True,
    )


# The labels that name a link, as the first columns of a table with a row per link.
LINK_COLUMNS = (
    column("link", "Link"),
    column("from", "Dari"),
    column("to", "Ke"),
    column("network", "Jaringan"),
    column("kabupaten", "Kabupaten/kota"),
    column("agent", "Agen"),
)


def table(
    title: str,
    description: str,
    queries: Sequence[Json],
    columns: Sequence[Json],
    *,
    hidden: Sequence[str] = (),
    sort_by: str | None = None,
    links: list[Json] | None = None,
) -> Json:
    """An instant-query table; several queries are merged into one row per label set."""
    queries = [{**q, "format": "table", "instant": True, "range": False} for q in queries]
    transformations: list[Json] = []
    if len(queries) > 1:
        transformations.append({"id": "merge", "options": {}})
    exclude = {name: True for name in ("Time", "job", "instance", "__name__", *hidden)}
    transformations.append({"id": "organize", "options": {"excludeByName": exclude}})
    defaults: Json = {
        "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
        "thresholds": thresholds("text"),
        "color": {"mode": "thresholds"},
    }
    if links:
        defaults["links"] = links
    return panel(
        "table",
        title,
        description,
        "none",
        queries,
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": "", "countRows": False},
            "sortBy": [{"displayName": sort_by, "desc": True}] if sort_by else [],
        },
        defaults=defaults,
        overrides=columns,
        transformations=transformations,
    )


# ---------------------------------------------------------------------------------------------
# Layout: panels flow left to right in Grafana's 24-column grid; ids are given at the end.


class Board:
    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = self._y = self._line_height = 0
        self._row: Json | None = None

    def add(self, built: Json, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        built["gridPos"] = {"x": self._x, "y": self._y, "w": w, "h": h}
        self._x += w
        self._line_height = max(self._line_height, h)
        if self._row is not None and self._row["collapsed"]:
            self._row["panels"].append(built)
        else:
            self.panels.append(built)

    def row(self, title: str, *, collapsed: bool = False, repeat: str | None = None) -> None:
        self._newline()
        row: Json = {
            "type": "row",
            "title": title,
            "collapsed": collapsed,
            "panels": [],
            "gridPos": {"x": 0, "y": self._y, "w": 24, "h": 1},
        }
        if repeat:
            row["repeat"] = repeat
        self.panels.append(row)
        self._row = row
        self._y += 1

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = self._line_height = 0

    def numbered(self) -> list[Json]:
        next_id = 1
        for top in self.panels:
            for each in (top, *top.get("panels", [])):
                each["id"] = next_id
                next_id += 1
        return self.panels


# ---------------------------------------------------------------------------------------------
# Template variables


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(
    name: str, label: str, definition: str, *, multi: bool, all_value: str | None = None
) -> Json:
    variable: Json = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {
            "qryType": 1,
            "query": definition,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


# From linkmon_link_up, which carries linkmon's own agent label whatever the scrape config says.
# ".+" rather than a regex of every agent: a national Prometheus may scrape 500 of them.
AGENT_VARIABLE = query_variable(
    "agent", "Agen", "label_values(linkmon_link_up, agent)", multi=True, all_value=".+"
)
# ".*" so "All" also keeps links with no kabupaten (pusat to DRC, for instance).
KABUPATEN_VARIABLE = query_variable(
    "kabupaten",
    "Kabupaten/kota",
    'label_values(linkmon_link_up{agent=~"$agent"}, kabupaten)',
    multi=True,
    all_value=".*",
)
LINK_VARIABLE = query_variable(
    "link",
    "Link",
    'label_values(linkmon_link_up{agent=~"$agent",kabupaten=~"$kabupaten"}, link)',
    multi=False,
)


def dashboard(
    uid: str,
    title: str,
    description: str,
    board: Board,
    variables: Sequence[Json],
    time_from: str,
    time_to: str = "now",
) -> Json:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["linkmon", "dukcapil"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": time_to},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "linkmon",
                "tags": ["linkmon"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": board.numbered(),
    }


# ---------------------------------------------------------------------------------------------
# 1. NOC overview


def noc_overview() -> Json:
    sel = 'agent=~"$agent",kabupaten=~"$kabupaten"'
    board = Board()
    for state, colour in (
        ("up", None),
        ("degraded", "yellow"),
        ("down", "red"),
        ("unreachable", "purple"),
    ):
        board.add(
            count_stat(
                f"Link {state.upper()}",
                STATE_HELP[state],
                f'count(linkmon_link_state{{{sel},state="{state}"}} == 1)',
                colour,
            ),
            w=3,
            h=4,
        )
    offices = f"max by (kabupaten, site) (linkmon_service_available{{{sel}}})"
    for title, condition, colour, help_text in (
        ("Kantor ONLINE", "== 1", None, "Kantor yang punya jalur kerja ke DC pusat sekarang."),
        (
            "Kantor hanya via DRC",
            "== 0.5",
            "orange",
            "Kantor yang masih bisa melayani, tetapi hanya lewat DRC Batam (DC tidak terjangkau).",
        ),
        (
            "Kantor OFFLINE",
            "== 0",
            "red",
            "Kantor yang tidak bisa melayani online sekarang: linknya sendiri atau uplink "
            "kabupatennya ke DC dan DRC putus.",
        ),
    ):
        board.add(count_stat(title, help_text, f"count({offices} {condition})", colour), w=3, h=4)
    board.add(
        count_stat(
            "Agen linkmon DOWN",
            "Agen linkmon yang tidak bisa di-scrape Prometheus: link yang dipantaunya tidak "
            "terlihat sama sekali.",
            'count(up{job="linkmon",agent=~"$agent"} == 0)',
            "red",
        ),
        w=3,
        h=4,
    )

    # Open outages: duration from the state's start, the state as the cause (down = this link,
    # unreachable = an upstream link), and the commonest probe failure reason of the last 15
    # minutes. "+ 0 * reason" only carries the reason label; "or on" keeps outages with none.
    since = f"linkmon_link_state_since_timestamp_seconds{{{sel}}}"
    outage = (
        f"(time() - {since}) * on (agent, link) group_left (state) "
        f'(linkmon_link_state{{{sel},state=~"down|unreachable"}} == 1)'
    )
    reason = (
        "topk by (agent, link) (1, sum by (agent, link, reason) "
        f"(increase(linkmon_probe_failures_total{{{sel}}}[15m])) > 0)"
    )
    board.add(
        table(
            "Gangguan yang sedang berlangsung",
            "Link yang DOWN (linknya sendiri putus) atau UNREACHABLE (putus karena link di hulunya "
            "DOWN), sejak kapan, dan sebab kegagalan probe yang paling sering 15 menit terakhir.",
            [
                query(
                    f"{outage} + on (agent, link) group_left (reason) (0 * {reason})"
                    f" or on (agent, link) {outage}",
                    instant=True,
                )
            ],
            [
                *LINK_COLUMNS,
                column(
                    "state",
                    "Status",
                    mappings=value_mappings(
                        ("down", "DOWN (link ini)", "red"),
                        ("unreachable", "UNREACHABLE (hulu putus)", "purple"),
                    ),
                    coloured=True,
                ),
                column("reason", "Sebab probe gagal"),
                column("Value", "Durasi", "dtdurations"),
            ],
            sort_by="Durasi",
            links=detail_link("${__data.fields.link}"),
        ),
        w=24,
        h=8,
    )

    board.row("Agen linkmon")
    agent = 'agent=~"$agent"'

    def lag(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (agent, le) "
            f"(rate(linkmon_scheduler_lag_seconds_bucket{{{agent}}}[$__rate_interval])))"
        )

    board.add(
        table(
            "Kesehatan agen",
            "Satu baris per agen: bisa di-scrape, config terakhir berhasil dimuat, keterlambatan "
            "penjadwal probe (p99), alert yang masih antri, jumlah link, versi.",
            [
                query(f'max by (agent) (up{{job="linkmon",{agent}}})', instant=True),
                query(
                    f"max by (agent) (linkmon_config_last_reload_successful{{{agent}}})",
                    instant=True,
                ),
                query(
                    "time() - max by (agent) "
                    f"(linkmon_config_last_reload_success_timestamp_seconds{{{agent}}})",
                    instant=True,
                ),
                query(lag(0.99), instant=True),
                query(f"sum by (agent) (linkmon_alerts_queued{{{agent}}})", instant=True),
                query(f"count by (agent) (linkmon_link_up{{{agent}}})", instant=True),
                query(f"max by (agent, version) (linkmon_build_info{{{agent}}})", instant=True),
            ],
            [
                column("agent", "Agen"),
                column("Value #A", "Scrape", mappings=SCRAPE_MAPPINGS, coloured=True),
                column(
                    "Value #B",
                    "Reload config",
                    mappings=value_mappings(("0", "GAGAL", "red"), ("1", "OK", "green")),
                    coloured=True,
                ),
                column("Value #C", "Config dimuat", "dtdurations"),
                column(
                    "Value #D",
                    "Lag penjadwal p99",
                    "s",
                    steps=thresholds("green", (0.5, "orange"), (2, "red")),
                    coloured=True,
                ),
                column(
                    "Value #E",
                    "Alert antri",
                    "none",
                    decimals=0,
                    steps=thresholds("green", (1, "orange"), (20, "red")),
                    coloured=True,
                ),
                column("Value #F", "Link", "none", decimals=0),
                column("version", "Versi"),
            ],
            hidden=["Value #G"],
        ),
        w=24,
        h=6,
    )
    board.add(
        timeseries(
            "Keterlambatan penjadwal probe",
            "Seberapa telat probe dijalankan dibanding jadwalnya. Tinggi terus = agen kelebihan "
            "beban; hasil RTT dan deteksi putus jadi terlambat.",
            "s",
            [query(lag(0.99), "{{agent}} p99"), query(lag(0.5), "{{agent}} p50")],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries(
            "Alert antri per receiver",
            "Alert yang belum terkirim. Naik terus = receiver (webhook/Alertmanager) tidak "
            "menerima; linkmon terus mencoba.",
            "none",
            [query(f"linkmon_alerts_queued{{{agent}}}", "{{agent}} → {{receiver}}")],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries(
            "Pengiriman alert",
            "Percobaan kirim alert per detik menurut hasil: success, retry (dicoba lagi), "
            "dropped (dibuang karena antrian penuh).",
            "ops",
            [
                query(
                    "sum by (agent, receiver, result) "
                    f"(rate(linkmon_alert_deliveries_total{{{agent}}}[$__rate_interval]))",
                    "{{agent}} → {{receiver}}: {{result}}",
                )
            ],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries(
            "Error kode probe",
            "Probe yang melempar exception (bug di linkmon, bukan target yang gagal). Harus nol.",
            "ops",
            [
                query(
                    "sum by (agent, kind) "
                    f"(rate(linkmon_probe_errors_total{{{agent}}}[$__rate_interval]))",
                    "{{agent}} {{kind}}",
                )
            ],
        ),
        w=6,
        h=7,
    )

    board.row("Kabupaten/kota $kabupaten", repeat="kabupaten")
    board.add(
        stat(
            "Status link",
            "Status setiap link di kabupaten/kota ini sekarang. Klik untuk detail link.",
            "none",
            [query(link_state_code(sel, "agent, link"), "{{link}}", instant=True)],
            mappings=LINK_STATE_MAPPINGS,
            show_names=True,
            links=detail_link("${__field.labels.link}"),
        ),
        w=12,
        h=8,
    )
    board.add(
        stat(
            "Kantor: bisa melayani online?",
            "ONLINE: ada jalur ke DC pusat. VIA DRC: hanya lewat DRC Batam. OFFLINE: perekaman "
            "dan pencetakan dokumen online berhenti di kantor ini.",
            "none",
            [query(offices, "{{site}}", instant=True)],
            mappings=SERVICE_MAPPINGS,
            show_names=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        state_timeline(
            "Riwayat status link",
            "Status setiap link dari waktu ke waktu. Klik untuk detail link.",
            [query(link_state_code(sel, "agent, link"), "{{link}}")],
            LINK_STATE_MAPPINGS,
            links=detail_link("${__field.labels.link}"),
        ),
        w=24,
        h=8,
    )
    return dashboard(
        NOC_UID,
        "linkmon — Ringkasan NOC",
        "Semua link dan kantor sekarang: apa yang putus, sejak kapan, kenapa, kantor mana yang "
        "tidak bisa melayani, dan kesehatan agen linkmon.",
        board,
        [AGENT_VARIABLE, KABUPATEN_VARIABLE],
        "now-6h",
    )


STATE_HELP = {
    "up": "Link yang normal sekarang.",
    "degraded": "Link yang tersambung tetapi loss atau RTT melewati batas (lambat/putus-putus).",
    "down": "Link yang putus sendiri (bukan karena hulunya). Inilah yang perlu ditangani.",
    "unreachable": "Link yang tidak terjangkau karena link di hulunya DOWN; tidak di-page sendiri.",
}


# ---------------------------------------------------------------------------------------------
# 2. Link detail


def link_detail() -> Json:
    sel = 'agent=~"$agent",link="$link"'
    board = Board()
    board.add(
        stat(
            "Status sekarang",
            "Status link ini menurut setiap agen yang memantaunya.",
            "none",
            [query(link_state_code(sel, "agent"), "{{agent}}", instant=True)],
            mappings=LINK_STATE_MAPPINGS,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat(
            "Lama di status ini",
            "Sudah berapa lama link ini di status sekarang.",
            "dtdurations",
            [
                query(
                    f"time() - linkmon_link_state_since_timestamp_seconds{{{sel}}}",
                    "{{agent}}",
                    instant=True,
                )
            ],
            color="text",
        ),
        w=4,
        h=4,
    )
    board.add(
        stat(
            "Perubahan status",
            "Berapa kali status link ini berubah dalam rentang waktu yang dipilih.",
            "none",
            [
                query(
                    "round(sum by (agent) (increase("
                    f"linkmon_link_state_changes_total{{{sel}}}[$__range])))",
                    "{{agent}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (4, "orange"), (20, "red")),
            extra={"decimals": 0},
        ),
        w=4,
        h=4,
    )
    board.add(
        stat(
            "Flapping",
            "YA: link naik-turun terus; linkmon mengirim satu alert flapping, "
            "bukan puluhan alert putus.",
            "none",
            [query(f"max by (agent) (linkmon_link_flapping{{{sel}}})", "{{agent}}", instant=True)],
            mappings=YES_NO_MAPPINGS,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat(
            "Maintenance",
            "YA: link dalam jadwal maintenance; gangguannya tidak di-page.",
            "none",
            [
                query(
                    f"max by (agent) (linkmon_link_in_maintenance{{{sel}}})",
                    "{{agent}}",
                    instant=True,
                )
            ],
            mappings=YES_NO_MAPPINGS,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat(
            "Sertifikat TLS berakhir dalam",
            "Sisa umur sertifikat TLS setiap target HTTPS link ini. Merah: kurang dari 14 hari.",
            "dtdurations",
            [
                query(
                    f"linkmon_tls_cert_expiry_timestamp_seconds{{{sel}}} - time()",
                    "{{target}}",
                    instant=True,
                )
            ],
            steps=thresholds("red", (14 * DAY, "orange"), (30 * DAY, "green")),
            extra={"noValue": "tidak ada probe HTTPS"},
        ),
        w=4,
        h=4,
    )
    board.add(
        state_timeline(
            "Riwayat status",
            "Status link ini dari waktu ke waktu, per agen.",
            [query(link_state_code(sel, "agent"), "{{agent}}")],
            LINK_STATE_MAPPINGS,
        ),
        w=24,
        h=4,
    )
    board.add(
        state_timeline(
            "Probe sukses per jenis",
            "Hasil setiap probe (ICMP, TCP, HTTP) per ronde. ICMP OK tetapi TCP/HTTP "
            "GAGAL: jalur hidup, layanannya menolak (seperti akses diblokir pusat).",
            [query(f"linkmon_probe_success{{{sel}}}", "{{kind}} {{target}} ({{agent}})")],
            PROBE_MAPPINGS,
        ),
        w=24,
        h=6,
    )
    board.add(
        panel(
            "heatmap",
            "RTT ICMP — heatmap ala smokeping",
            "Sebaran RTT ping per selang waktu dari histogram linkmon: pita gelap yang melebar "
            "atau naik = jitter atau antrian di jalur.",
            "short",
            [
                query(
                    "sum(rate(linkmon_probe_duration_seconds_bucket"
                    f'{{{sel},kind="icmp"}}[$__rate_interval])) by (le)',
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            options={
                "calculate": False,
                "cellGap": 1,
                "color": {
                    "mode": "scheme",
                    "scheme": "Spectral",
                    "steps": 64,
                    "exponent": 0.5,
                    "fill": "dark-orange",
                    "scale": "exponential",
                    "reverse": False,
                },
                "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
                "rowsFrame": {"layout": "auto"},
                "filterValues": {"le": 1e-9},
                "cellValues": {"unit": "short"},
                "legend": {"show": True},
                "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
                "exemplars": {"color": "rgba(255,0,255,0.7)"},
            },
            defaults={
                "custom": {
                    "scaleDistribution": {"type": "linear"},
                    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                }
            },
        ),
        w=24,
        h=10,
    )
    board.add(
        timeseries(
            "RTT ICMP per ronde",
            "RTT minimum, rata-rata dan maksimum dari echo setiap ronde ping.",
            "s",
            [
                query(f"linkmon_probe_rtt_{stat_name}_seconds{{{sel}}}", f"{label} {{{{target}}}}")
                for stat_name, label in (("min", "min"), ("avg", "rata-rata"), ("max", "maks"))
            ],
        ),
        w=12,
        h=8,
    )

    def quantile(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (kind, le) "
            f"(rate(linkmon_probe_duration_seconds_bucket{{{sel}}}[$__rate_interval])))"
        )

    board.add(
        timeseries(
            "Durasi probe per jenis (p50 / p90 / p99)",
            "Dari histogram: RTT untuk ICMP, waktu connect untuk TCP, seluruh request untuk HTTP.",
            "s",
            [query(quantile(q), f"p{round(q * 100)} {{{{kind}}}}") for q in (0.5, 0.9, 0.99)],
        ),
        w=12,
        h=8,
    )

    def packets(direction: str) -> str:
        return (
            f"sum by (target) "
            f"(rate(linkmon_probe_packets_{direction}_total{{{sel}}}[$__rate_interval]))"
        )

    board.add(
        timeseries(
            "Packet loss",
            "Bagian echo ICMP yang hilang: rata-rata selang waktu (dari "
            "counter) dan per ronde terakhir.",
            "percentunit",
            [
                query(f"1 - {packets('received')} / {packets('sent')}", "loss {{target}}"),
                query(f"linkmon_probe_loss_ratio{{{sel}}}", "loss per ronde {{target}}"),
            ],
            minimum=0,
            maximum=1,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries(
            "Probe gagal per sebab",
            "timeout, refused, unreachable, dns, tls, "
            "http_status, body_mismatch ...: membedakan jalur putus dari layanan menolak.",
            "none",
            [
                query(
                    "sum by (kind, reason) (increase("
                    f"linkmon_probe_failures_total{{{sel}}}[$__rate_interval]))",
                    "{{kind}}: {{reason}}",
                )
            ],
            bars=True,
        ),
        w=12,
        h=8,
    )
    board.row("Detail per ronde", collapsed=True)
    board.add(
        timeseries(
            "Jitter dan simpangan baku RTT",
            "Jitter dan simpangan baku RTT echo dalam satu ronde ping.",
            "s",
            [
                query(f"linkmon_probe_jitter_seconds{{{sel}}}", "jitter {{target}}"),
                query(f"linkmon_probe_rtt_stddev_seconds{{{sel}}}", "stddev {{target}}"),
            ],
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries(
            "Paket ICMP terkirim / diterima",
            "Echo per detik: selisihnya adalah loss.",
            "pps",
            [
                query(packets("sent"), "terkirim {{target}}"),
                query(packets("received"), "diterima {{target}}"),
            ],
        ),
        w=12,
        h=8,
    )
    return dashboard(
        LINK_UID,
        "linkmon — Detail link",
        "Satu link: status, RTT ala smokeping, loss, hasil probe per jenis, sertifikat TLS.",
        board,
        [AGENT_VARIABLE, KABUPATEN_VARIABLE, LINK_VARIABLE],
        "now-6h",
    )


# ---------------------------------------------------------------------------------------------
# 3. Availability


def availability() -> Json:
    sel = 'agent=~"$agent",kabupaten=~"$kabupaten"'
    link_up = f"linkmon_link_up{{{sel}}}"
    link_availability = f"avg_over_time({link_up}[$__range])"
    # Outages overlapping the range, from the up/down edges of linkmon_link_up: (changes + 1 -
    # up_now) / 2 rounded up counts an outage already open at the start and one still open now.
    outages = f"ceil((changes({link_up}[$__range]) + 1 - {link_up}) / 2)"
    downtime = f"(1 - {link_availability}) * $__range_s"
    online = f"(linkmon_service_available{{{sel}}} > bool 0)"
    office_availability = f"avg_over_time({online}[$__range:])"
    board = Board()
    board.add(
        availability_stat(
            "Ketersediaan link",
            "Rata-rata bagian waktu link UP (atau DEGRADED) dalam rentang "
            "waktu yang dipilih, semua link terpilih.",
            link_availability,
        ),
        w=6,
        h=4,
    )
    board.add(
        availability_stat(
            "Kantor bisa melayani online",
            "Rata-rata bagian waktu kantor bisa melayani online "
            "(lewat DC atau DRC) dalam rentang waktu yang dipilih.",
            office_availability,
        ),
        w=6,
        h=4,
    )
    board.add(
        stat(
            "Jumlah gangguan link",
            "Berapa kali link turun (UP ke tidak UP) dalam rentang "
            "waktu yang dipilih, termasuk yang masih berlangsung.",
            "none",
            [query(f"sum({outages})", instant=True)],
            steps=thresholds("green", (1, "orange")),
            extra={"decimals": 0},
        ),
        w=6,
        h=4,
    )
    board.add(
        stat(
            "Total waktu putus",
            "Jumlah waktu putus semua link terpilih dalam rentang waktu yang dipilih.",
            "dtdurations",
            [query(f"sum({downtime})", instant=True)],
            color="text",
        ),
        w=6,
        h=4,
    )
    board.add(
        panel(
            "bargauge",
            "Ketersediaan link per kabupaten/kota",
            "Rata-rata ketersediaan link setiap kabupaten/kota dalam rentang waktu yang dipilih.",
            "percentunit",
            [query(f"avg by (kabupaten) ({link_availability})", "{{kabupaten}}", instant=True)],
            options={
                "orientation": "horizontal",
                "displayMode": "gradient",
                "valueMode": "color",
                "showUnfilled": True,
                "namePlacement": "auto",
                "sizing": "auto",
                "minVizHeight": 16,
                "minVizWidth": 8,
                "maxVizHeight": 300,
                "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
            },
            defaults={
                "min": 0,
                "max": 1,
                "decimals": 2,
                "thresholds": AVAILABILITY_THRESHOLDS,
                "color": {"mode": "thresholds"},
            },
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries(
            "Ketersediaan link dari waktu ke waktu",
            "Rata-rata ketersediaan link setiap kabupaten/kota per selang waktu grafik.",
            "percentunit",
            [query(f"avg by (kabupaten) (avg_over_time({link_up}[$__interval]))", "{{kabupaten}}")],
            minimum=0,
            maximum=1,
        ),
        w=12,
        h=8,
    )
    board.add(
        table(
            "Ketersediaan per link",
            "Setiap link dalam rentang waktu yang dipilih: ketersediaan, jumlah gangguan, total "
            "waktu putus, jumlah perubahan status (termasuk DEGRADED).",
            [
                query(link_availability, instant=True),
                query(outages, instant=True),
                query(downtime, instant=True),
                query(
                    f"round(increase(linkmon_link_state_changes_total{{{sel}}}[$__range]))",
                    instant=True,
                ),
            ],
            [
                *LINK_COLUMNS,
                availability_column("Value #A", "Ketersediaan"),
                column("Value #B", "Gangguan", "none", decimals=0),
                column("Value #C", "Total putus", "dtdurations"),
                column("Value #D", "Perubahan status", "none", decimals=0),
            ],
            sort_by="Total putus",
            links=detail_link("${__data.fields.link}"),
        ),
        w=24,
        h=10,
    )
    board.add(
        table(
            "Ketersediaan per kantor",
            "Bagian waktu setiap kantor bisa melayani online: lewat DC atau DRC, lewat DC saja, "
            "dan total waktu tidak bisa melayani.",
            [
                query(office_availability, instant=True),
                query(
                    f"avg_over_time((linkmon_service_available{{{sel}}} == bool 1)[$__range:])",
                    instant=True,
                ),
                query(f"(1 - {office_availability}) * $__range_s", instant=True),
            ],
            [
                column("site", "Kantor"),
                column("kabupaten", "Kabupaten/kota"),
                column("agent", "Agen"),
                availability_column("Value #A", "Bisa melayani"),
                column("Value #B", "Lewat DC", "percentunit", decimals=2),
                column("Value #C", "Total tidak bisa melayani", "dtdurations"),
            ],
            sort_by="Total tidak bisa melayani",
        ),
        w=24,
        h=8,
    )
    return dashboard(
        AVAILABILITY_UID,
        "linkmon — Ketersediaan",
        "Ketersediaan per link dan per kantor dalam rentang waktu yang dipilih (bawaan: bulan "
        "ini), jumlah gangguan dan total waktu putus.",
        board,
        [AGENT_VARIABLE, KABUPATEN_VARIABLE],
        "now/M",
    )


# ---------------------------------------------------------------------------------------------

BUILDERS = {
    "noc-overview.json": noc_overview,
    "link-detail.json": link_detail,
    "availability.json": availability,
}


def render(built: Json) -> str:
    return json.dumps(built, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed JSON is not what this builds"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, build in BUILDERS.items():
        path = DASHBOARDS / name
        text = render(build())
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run python grafana/build_dashboards.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every PromQL expression of a Grafana dashboard, with variables filled in as Grafana does.

A dashboard is only proven when its queries run against a real Prometheus, and Grafana never sends
the text stored in the JSON: it first replaces ``$agent``, ``${link}``, ``[[kabupaten]]``,
``$__rate_interval``, ``$__range`` ... This module mirrors what Grafana's Prometheus data source
does (``interpolateQueryExpr``, ``createQuery``, ``adjustInterval``, ``getRangeScopedVars``,
``rangeUtil.calculateInterval``) so tests send Prometheus exactly what a browser would:

- a single-value variable is inserted with only backslashes and single quotes escaped;
- a multi-value or include-all variable is regex-escaped and several values become ``(a|b)``;
- "All" becomes the variable's custom ``allValue`` untouched, or else every option, as above;
- panels in a repeated row (or a repeated panel) run once per value of the repeat variable;
- ``$__interval`` comes from the time range and max data points, rounded as Grafana rounds it and
  never below the data source's scrape interval; ``$__rate_interval`` is
  ``max($__interval + scrape, 4 * scrape)``; ``$__range`` is the range in whole seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALL = "$__all"

Dashboard = Mapping[str, Any]
Selection = str | Sequence[str]
"""What is selected for a variable: one value, several values, or ``ALL``."""


class InterpolationError(ValueError):
    """An expression names a variable the dashboard does not define or the caller did not set."""


@dataclass(frozen=True)
class Variable:
    """One entry of a dashboard's ``templating.list``."""

    name: str
    type: str
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    query: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Variable:
        query = raw.get("query")
        if isinstance(query, Mapping):  # Grafana 10+ stores {"query": "...", "refId": ...}
            query = query.get("query")
        return cls(
            name=raw["name"],
            type=raw.get("type", "query"),
            multi=bool(raw.get("multi")),
            include_all=bool(raw.get("includeAll")),
            all_value=raw.get("allValue") or None,
            query=query if isinstance(query, str) and query else None,
        )


@dataclass(frozen=True)
class LabelValuesQuery:
    """A ``label_values(selector, label)`` variable query: Prometheus' label values API."""

    label: str
    match: str | None


_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


def parse_label_values(query: str) -> LabelValuesQuery:
    found = _LABEL_VALUES.match(query)
    if found is None:
        raise ValueError(f"not a label_values(selector, label) variable query: {query!r}")
    return LabelValuesQuery(label=found["label"], match=found["match"])


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, as stored in the dashboard JSON."""

    dashboard: str
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str
    instant: bool
    range: bool
    format: str
    legend: str
    repeat: str | None
    """The variable the panel (or the row holding it) is repeated over, if any."""

    @property
    def where(self) -> str:
        return f"{self.dashboard} panel {self.panel_id} {self.panel_title!r} query {self.ref_id}"


@dataclass(frozen=True)
class TimeRange:
    """A dashboard time range, and the interval variables Grafana derives from it."""

    seconds: float
    scrape_interval: float = 15.0
    """The data source's "Scrape interval" (``jsonData.timeInterval``)."""
    max_data_points: int = 1000
    """Grafana uses the panel's width in pixels unless the panel sets maxDataPoints."""

    @property
    def step(self) -> float:
        """Seconds between points of a range query; also ``$__interval`` in seconds."""
        interval_ms = _round_interval(self.seconds * 1000 / self.max_data_points)
        interval_ms = max(interval_ms, self.scrape_interval * 1000)
        interval = _interval_to_seconds(_seconds_to_hms(interval_ms / 1000))
        safe = self.seconds / 11000  # Prometheus refuses more than 11,000 points per series
        if safe > 1:
            safe = math.ceil(safe)
        return max(interval, safe)

    def builtins(self) -> dict[str, str]:
        """Grafana's global variables for this range, as the Prometheus data source sets them."""
        interval_ms = max(
            _round_interval(self.seconds * 1000 / self.max_data_points), self.scrape_interval * 1000
        )
        grafana_interval = _seconds_to_hms(interval_ms / 1000)
        step = self.step
        if step != _interval_to_seconds(grafana_interval):
            grafana_interval = f"{_js_number(step)}s"
        range_s = round(self.seconds)
        rate = max(step + self.scrape_interval, 4 * self.scrape_interval)
        return {
            "__interval": grafana_interval,
            "__interval_ms": _js_number(step * 1000),
            "__rate_interval": f"{_js_number(rate)}s",
            "__range": f"{range_s}s",
            "__range_s": str(range_s),
            "__range_ms": _js_number(self.seconds * 1000),
        }


@dataclass(frozen=True)
class ResolvedQuery:
    """A panel query with every variable replaced: the text Grafana would send."""

    query: PanelQuery
    expr: str
    repeat_value: str | None = None

    @property
    def where(self) -> str:
        if self.repeat_value is None:
            return self.query.where
        return f"{self.query.where} ({self.query.repeat}={self.repeat_value})"


def variables(dashboard: Dashboard) -> dict[str, Variable]:
    """The dashboard's template variables by name, in the order Grafana resolves them."""
    listed = dashboard.get("templating", {}).get("list", [])
    return {v.name: v for v in map(Variable.from_json, listed)}


def walk_panels(dashboard: Dashboard) -> Iterator[Mapping[str, Any]]:
    """Every panel, rows included, and the panels folded inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Dashboard) -> list[PanelQuery]:
    """Every PromQL target of every panel, in dashboard order."""
    uid = dashboard.get("uid") or dashboard.get("title", "?")
    found: list[PanelQuery] = []
    row_repeat: str | None = None
    for top in dashboard.get("panels", []):
        if top.get("type") == "row":
            # An expanded row owns the panels after it; a collapsed one keeps them inside.
            row_repeat = top.get("repeat") or None
            for inner in top.get("panels", []):
                found.extend(_targets(uid, inner, inner.get("repeat") or row_repeat))
            continue
        found.extend(_targets(uid, top, top.get("repeat") or row_repeat))
    return found


def _targets(uid: str, panel: Mapping[str, Any], repeat: str | None) -> Iterator[PanelQuery]:
    for target in panel.get("targets", []):
        expr = target.get("expr")
        if not expr:
            continue
        instant = bool(target.get("instant"))
        yield PanelQuery(
            dashboard=uid,
            panel_id=panel.get("id", -1),
            panel_title=panel.get("title", ""),
            ref_id=target.get("refId", "?"),
            expr=expr,
            instant=instant,
            range=bool(target.get("range", not instant)),
            format=target.get("format", "time_series"),
            legend=target.get("legendFormat", ""),
            repeat=repeat,
        )


# Grafana's variable syntax: $name, [[name]] / [[name:format]], ${name} / ${name:format}.
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def interpolate(
    expr: str,
    dashboard_variables: Mapping[str, Variable],
    selected: Mapping[str, Selection],
    *,
    options: Mapping[str, Sequence[str]] | None = None,
    time: TimeRange | None = None,
) -> str:
    """Replace every variable in ``expr`` the way Grafana's Prometheus data source does.

    ``selected`` maps variable names to their current value(s) or ``ALL``; ``options`` lists
    every value a variable can take, needed for "All" when the variable has no ``allValue``.
    Unknown variables raise :class:`InterpolationError` instead of reaching Prometheus verbatim.
    """
    builtins = time.builtins() if time is not None else {}

    def replace(found: re.Match[str]) -> str:
        name = found[1] or found[2] or found[4]
        fmt = found[3] or found[6]
        if found[5]:
            raise InterpolationError(f"field paths like {found[0]!r} are not supported")
        if name in builtins:
            return builtins[name]
        if name.startswith("__"):
            raise InterpolationError(f"{found[0]!r} needs a time range (pass time=TimeRange(...))")
        variable = dashboard_variables.get(name)
        if variable is None:
            raise InterpolationError(f"{found[0]!r} is not a variable of this dashboard")
        if name not in selected:
            raise InterpolationError(f"no value selected for variable {found[0]!r}")
        return _variable_text(variable, selected[name], fmt, (options or {}).get(name))

    return _VARIABLE.sub(replace, expr)


def _variable_text(
    variable: Variable, selection: Selection, fmt: str | None, options: Sequence[str] | None
) -> str:
    value: str | list[str]
    if selection == ALL or (not isinstance(selection, str) and list(selection) == [ALL]):
        if variable.all_value is not None:
            return variable.all_value  # Grafana inserts a custom "All" value unescaped
        if options is None:
            raise InterpolationError(
                f"'All' selected for ${variable.name}, which has no allValue: pass its options"
            )
        value = list(options)
    elif isinstance(selection, str):
        value = selection
    else:
        value = list(selection)

    if fmt is None:
        return _interpolate_query_expr(value, variable)
    listed = [value] if isinstance(value, str) else value
    if fmt in ("raw", "csv"):
        return ",".join(listed)
    if fmt == "pipe":
        return "|".join(listed)
    raise InterpolationError(f"format {fmt!r} of ${variable.name} is not supported here")


def _interpolate_query_expr(value: str | list[str], variable: Variable) -> str:
    """Grafana's Prometheus ``interpolateQueryExpr``."""
    if not variable.multi and not variable.include_all:
        if isinstance(value, list):
            value = ",".join(value)
        return _regular_escape(value)
    if isinstance(value, str):
        return _regex_escape(value)
    escaped = [_regex_escape(v) for v in value]
    if len(escaped) == 1:
        return escaped[0]
    return "(" + "|".join(escaped) + ")"


def _regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


_REGEX_META = re.compile(r"[$^*{}\[\]+?.()|]")


def _regex_escape(value: str) -> str:
    # Two backslashes: one survives the PromQL string literal, one escapes the regex.
    return _REGEX_META.sub(lambda m: "\\\\" + m[0], value.replace("\\", "\\\\\\\\"))


def resolve(
    dashboard: Dashboard,
    selected: Mapping[str, Selection],
    *,
    options: Mapping[str, Sequence[str]] | None = None,
    time: TimeRange,
) -> list[ResolvedQuery]:
    """Every panel query of ``dashboard`` as Grafana would send it, repeats expanded."""
    dashboard_variables = variables(dashboard)
    resolved: list[ResolvedQuery] = []
    for query in panel_queries(dashboard):
        if query.repeat is None:
            expr = interpolate(
                query.expr, dashboard_variables, selected, options=options, time=time
            )
            resolved.append(ResolvedQuery(query, expr))
            continue
        for value in _repeat_values(query, dashboard_variables, selected, options):
            scoped = {**selected, query.repeat: value}
            expr = interpolate(query.expr, dashboard_variables, scoped, options=options, time=time)
            resolved.append(ResolvedQuery(query, expr, value))
    return resolved


def _repeat_values(
    query: PanelQuery,
    dashboard_variables: Mapping[str, Variable],
    selected: Mapping[str, Selection],
    options: Mapping[str, Sequence[str]] | None,
) -> list[str]:
    assert query.repeat is not None
    if query.repeat not in dashboard_variables:
        raise InterpolationError(f"{query.where} repeats over unknown variable ${query.repeat}")
    selection = selected.get(query.repeat)
    if selection is None:
        raise InterpolationError(f"no value selected for repeat variable ${query.repeat}")
    if selection == ALL or (not isinstance(selection, str) and list(selection) == [ALL]):
        if options is None or query.repeat not in options:
            raise InterpolationError(f"'All' selected for ${query.repeat}: pass its options")
        return list(options[query.repeat])
    return [selection] if isinstance(selection, str) else list(selection)


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NOT_NAMES = re.compile(r"\[[^\]]*\]|\{[^}]*\}|\boffset\s+\S+|\bgroup_(?:left|right)\b")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "inf", "nan"})


def metric_names(expr: str) -> frozenset[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels left out).

    A small lexer, not a parser: good for checking our own dashboards against the metric
    contract; Prometheus itself proves the expressions parse.
    """
    text = _STRING.sub('""', expr)
    text = _LABEL_LIST.sub(" ", text)
    text = _NOT_NAMES.sub(" ", text)
    names = set()
    for found in _IDENTIFIER.finditer(text):
        name, call = found[1], found[2]
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return frozenset(names)


def _round_interval(interval_ms: float) -> float:
    """Grafana's ``rangeUtil.roundInterval``: snap to a readable interval."""
    for limit, rounded in _ROUNDING:
        if interval_ms < limit:
            return rounded
    return 31536000000


_ROUNDING = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
    (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
    (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
    (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)  # fmt: skip


def _seconds_to_hms(seconds: float) -> str:
    """Grafana's ``rangeUtil.secondsToHms``: only the largest whole unit, as Grafana shows it."""
    for unit, size, wrap in _HMS_UNITS:
        whole = math.floor((seconds % wrap) / size)
        if whole:
            return f"{whole}{unit}"
    return f"{math.floor(seconds * 1000)}ms"


_HMS_UNITS = (
    ("y", 31536000, math.inf), ("d", 86400, 31536000), ("h", 3600, 86400), ("m", 60, 3600),
    ("s", 1, 60),
)  # fmt: skip

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _interval_to_seconds(text: str) -> float:
    found = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if found is None:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(found[1]) * _UNIT_SECONDS[found[2]]


def _js_number(value: float) -> str:
    """How JavaScript prints a number: no trailing ``.0``."""
    return str(int(value)) if float(value).is_integer() else repr(value)

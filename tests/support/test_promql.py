"""The PromQL helper fills variables in exactly as Grafana's Prometheus data source does.

Expected strings follow Grafana's source (public/app/plugins/datasource/prometheus:
interpolateQueryExpr, prometheusRegularEscape, prometheusSpecialRegexEscape, createQuery,
adjustInterval; rangeUtil.roundInterval and secondsToHms).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import promql
from tests.support.promql import ALL, InterpolationError, TimeRange, Variable

VARIABLES = {
    "link": Variable("link", "query"),
    "agent": Variable("agent", "query", multi=True, include_all=True, all_value=".+"),
    "kabupaten": Variable("kabupaten", "query", multi=True, include_all=True),
}


def fill(expr: str, **selected: promql.Selection) -> str:
    return promql.interpolate(
        expr, VARIABLES, selected, options={"kabupaten": ["kab-nunukan", "kota.samarinda"]}
    )


def test_single_value_variable_only_escapes_backslash_and_quote() -> None:
    assert fill('up{link="$link"}', link="kec-krayan--kab") == 'up{link="kec-krayan--kab"}'
    assert fill('{link="$link"}', link="a.b'c\\d") == '{link="a.b\\\\\'c\\\\d"}'


def test_multi_value_variable_becomes_an_escaped_alternation() -> None:
    picked = ["kab-nunukan", "kota.samarinda"]
    assert fill('{kabupaten=~"$kabupaten"}', kabupaten=picked) == (
        '{kabupaten=~"(kab-nunukan|kota\\\\.samarinda)"}'
    )
    assert fill('{kabupaten=~"$kabupaten"}', kabupaten=["kota.samarinda"]) == (
        '{kabupaten=~"kota\\\\.samarinda"}'
    )


def test_all_uses_the_custom_all_value_unescaped_or_every_option() -> None:
    assert fill('{agent=~"$agent"}', agent=ALL) == '{agent=~".+"}'
    assert fill('{kabupaten=~"$kabupaten"}', kabupaten=[ALL]) == (
        '{kabupaten=~"(kab-nunukan|kota\\\\.samarinda)"}'
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('{agent=~"${agent}"}', '{agent=~"(a|b)"}'),
        ('{agent=~"[[agent]]"}', '{agent=~"(a|b)"}'),
        ('{agent=~"${agent:pipe}"}', '{agent=~"a|b"}'),
        ('{agent=~"[[agent:csv]]"}', '{agent=~"a,b"}'),
        ('{agent=~"${agent:raw}"}', '{agent=~"a,b"}'),
    ],
)
def test_every_variable_syntax(expr: str, expected: str) -> None:
    assert fill(expr, agent=["a", "b"]) == expected


@pytest.mark.parametrize(
    ("expr", "selected", "message"),
    [
        ('{site="$site"}', {}, "not a variable of this dashboard"),
        ('{link="$link"}', {}, "no value selected"),
        ("rate(x[$__rate_interval])", {}, "needs a time range"),
        ('{agent=~"${agent:lucene}"}', {"agent": "a"}, "not supported"),
        ('{link="${link.text}"}', {"link": "a"}, "field paths"),
    ],
)
def test_mistakes_are_named_instead_of_sent_to_prometheus(
    expr: str, selected: dict[str, Any], message: str
) -> None:
    with pytest.raises(InterpolationError, match=message):
        fill(expr, **selected)


def test_all_without_all_value_needs_the_options() -> None:
    with pytest.raises(InterpolationError, match="pass its options"):
        promql.interpolate('{kabupaten=~"$kabupaten"}', VARIABLES, {"kabupaten": ALL})


@pytest.mark.parametrize(
    ("time_range", "expected"),
    [
        # 6 h over 1000 px: 21.6 s rounds to 20 s; $__rate_interval = max(20 + 15, 4 * 15).
        (
            TimeRange(6 * 3600),
            {"__interval": "20s", "__interval_ms": "20000", "__rate_interval": "60s",
             "__range": "21600s", "__range_s": "21600", "__range_ms": "21600000"},
        ),
        # 1 h: 3.6 s rounds to 5 s, raised to the 15 s scrape interval.
        (TimeRange(3600), {"__interval": "15s", "__rate_interval": "60s", "__range": "3600s"}),
        # 30 d: 43.2 min rounds to 30 min, shown the way Grafana shows it.
        (TimeRange(30 * 86400), {"__interval": "30m", "__rate_interval": "1815s"}),
        # 30 d over 100,000 points would exceed Prometheus' 11,000 points: 236 s instead.
        (
            TimeRange(30 * 86400, max_data_points=100_000),
            {"__interval": "236s", "__interval_ms": "236000", "__rate_interval": "251s"},
        ),
        # The live test: 20 s of data scraped every second.
        (TimeRange(20.4, scrape_interval=1), {"__interval": "1s", "__rate_interval": "4s",
                                              "__range": "20s", "__range_ms": "20400"}),
    ],
)  # fmt: skip
def test_interval_variables_match_grafana(time_range: TimeRange, expected: dict[str, str]) -> None:
    builtins = time_range.builtins()
    assert {name: builtins[name] for name in expected} == expected
    assert time_range.step == float(builtins["__interval_ms"]) / 1000


DASHBOARD: dict[str, Any] = {
    "uid": "test",
    "templating": {
        "list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "agent", "type": "query", "multi": True, "includeAll": True,
             "allValue": ".+", "query": {"query": "label_values(linkmon_link_up, agent)"}},
            {"name": "kabupaten", "type": "query", "multi": True, "includeAll": True,
             "query": 'label_values(linkmon_link_up{agent=~"$agent"}, kabupaten)'},
        ]
    },
    "panels": [
        {"id": 1, "type": "stat", "title": "top",
         "targets": [{"refId": "A", "expr": 'count(up{agent=~"$agent"})', "instant": True}]},
        {"id": 2, "type": "row", "title": "per kabupaten", "repeat": "kabupaten", "panels": []},
        {"id": 3, "type": "timeseries", "title": "repeated",
         "targets": [{"refId": "A", "expr": 'linkmon_link_up{kabupaten=~"$kabupaten"}'},
                     {"refId": "B", "expr": "rate(x[$__rate_interval])", "instant": True,
                      "range": True}]},
        {"id": 4, "type": "row", "title": "folded", "collapsed": True, "panels": [
            {"id": 5, "type": "table", "title": "inside",
             "targets": [{"refId": "A", "expr": "sum(y[$__range])", "format": "table",
                          "instant": True}]},
        ]},
    ],
}  # fmt: skip


def test_panel_queries_include_rows_and_collapsed_panels() -> None:
    found = promql.panel_queries(DASHBOARD)
    assert [(q.panel_id, q.ref_id, q.repeat) for q in found] == [
        (1, "A", None),
        (3, "A", "kabupaten"),
        (3, "B", "kabupaten"),
        (5, "A", None),
    ]
    assert [(q.instant, q.range) for q in found] == [
        (True, False), (False, True), (True, True), (True, False),
    ]  # fmt: skip
    assert found[3].format == "table"
    assert found[3].where == "test panel 5 'inside' query A"
    assert [p["id"] for p in promql.walk_panels(DASHBOARD)] == [1, 2, 3, 4, 5]


def test_resolve_runs_repeated_panels_once_per_value() -> None:
    resolved = promql.resolve(
        DASHBOARD,
        {"agent": ALL, "kabupaten": ALL},
        options={"kabupaten": ["kab-nunukan", "kota.samarinda"]},
        time=TimeRange(3600),
    )
    assert [r.expr for r in resolved] == [
        'count(up{agent=~".+"})',
        'linkmon_link_up{kabupaten=~"kab-nunukan"}',
        'linkmon_link_up{kabupaten=~"kota\\\\.samarinda"}',
        "rate(x[60s])",
        "rate(x[60s])",
        "sum(y[3600s])",
    ]
    assert resolved[2].where == "test panel 3 'repeated' query A (kabupaten=kota.samarinda)"


def test_variables_and_their_label_values_queries() -> None:
    variables = promql.variables(DASHBOARD)
    assert list(variables) == ["datasource", "agent", "kabupaten"]
    assert variables["agent"].query == "label_values(linkmon_link_up, agent)"
    assert promql.parse_label_values(variables["kabupaten"].query or "") == (
        promql.LabelValuesQuery("kabupaten", 'linkmon_link_up{agent=~"$agent"}')
    )
    assert promql.parse_label_values("label_values(agent)") == promql.LabelValuesQuery(
        "agent", None
    )
    with pytest.raises(ValueError, match="not a label_values"):
        promql.parse_label_values("query_result(up)")


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum(rate(linkmon_probe_duration_seconds_bucket{link="x"}[5m])) by (le)',
         {"linkmon_probe_duration_seconds_bucket"}),
        ('count(linkmon_link_state{state="up"} == 1) or vector(0)', {"linkmon_link_state"}),
        ("a * on (agent, link) group_left (state) b unless on(agent) c offset 5m",
         {"a", "b", "c"}),
        ("up == bool 1e3 and ignoring(instance) x_total", {"up", "x_total"}),
        ("time() - max by (agent) (since)", {"since"}),
        ("avg_over_time((linkmon_service_available > bool 0)[30d:])",
         {"linkmon_service_available"}),
    ],
)  # fmt: skip
def test_metric_names(expr: str, names: set[str]) -> None:
    assert promql.metric_names(expr) == names

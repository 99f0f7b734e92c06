"""The dashboard JSON users import: valid for file provisioning, consistent, and every query
parses and names only metrics linkmon exports.

Parsing is checked offline by promtool (each expression, variables filled in as Grafana would,
becomes a recording rule that ``promtool check rules`` parses); test_dashboards_live.py then runs
every expression against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import promql
from tests.support.linkmon_metrics import KNOWN_SERIES

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


DASHBOARDS = {path.name: load(path) for path in DASHBOARD_FILES}
by_name = pytest.mark.parametrize("name", sorted(DASHBOARDS))


def content_panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    return (p for p in promql.walk_panels(dashboard) if p.get("type") != "row")


def sample_selection(dashboard: Mapping[str, Any]) -> dict[str, promql.Selection]:
    """ "All" for multi-value variables, a plausible link id for single-value ones."""
    return {
        name: promql.ALL if v.multi or v.include_all else "kec-krayan--kab"
        for name, v in promql.variables(dashboard).items()
    }


def test_the_three_dashboards_exist() -> None:
    assert sorted(DASHBOARDS) == ["availability.json", "link-detail.json", "noc-overview.json"]


def test_json_is_what_the_generator_builds() -> None:
    done = subprocess.run(
        [sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# The SDK deprecates its classic dashboard model for the v2 one, which only Grafana 12 with a
# feature flag loads; file provisioning on Grafana 10 to 12 takes the classic model.
@pytest.mark.filterwarnings("ignore:Prefer using dashboardv2:DeprecationWarning")
@by_name
def test_grafana_schema_reads_back_everything_the_json_says(name: str) -> None:
    """grafana-foundation-sdk's models of Grafana's schema (panel options typed per panel kind)
    read the committed JSON without losing a key or changing a value: nothing in it was written
    around the schema. Reading may add the schema's defaults, so the check is one-way."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    read = json.loads(json.dumps(Dashboard.from_json(DASHBOARDS[name]), cls=JSONEncoder))
    lost = list(_not_kept(DASHBOARDS[name], read))
    assert not lost, lost[:10]


def _not_kept(written: Any, read: Any, where: str = "") -> Iterator[str]:
    if isinstance(written, dict) and isinstance(read, dict):
        for key, value in written.items():
            if key not in read:
                yield f"{where}.{key}: dropped"
            else:
                yield from _not_kept(value, read[key], f"{where}.{key}")
    elif isinstance(written, list) and isinstance(read, list) and len(written) == len(read):
        for index, (item, back) in enumerate(zip(written, read, strict=True)):
            yield from _not_kept(item, back, f"{where}[{index}]")
    elif written != read:
        yield f"{where}: {written!r} read back as {read!r}"


@by_name
def test_dashboard_is_ready_for_file_provisioning(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert "__inputs" not in dashboard and "__requires" not in dashboard  # grafana#10786
    assert dashboard.get("id") is None  # the SDK leaves an unset id out rather than null
    assert re.fullmatch(r"linkmon-[a-z-]+", dashboard["uid"])
    assert dashboard["title"].startswith("linkmon")
    assert dashboard["schemaVersion"] == 39
    assert "linkmon" in dashboard["tags"]


@by_name
def test_nothing_newer_than_the_declared_schema_version(name: str) -> None:
    """Schema 39 is declared so Grafana 10 to 12 all load the dashboards (Grafana migrates older
    ones forward; the dashboard API of Grafana 12 fails newer ones). That holds only while
    nothing in them is what migrations 40 to 42 would change."""
    dashboard = DASHBOARDS[name]
    assert isinstance(dashboard.get("refresh", ""), str)  # v40: a boolean refresh
    assert "time_options" not in dashboard.get("timepicker", {})  # v41
    for panel in promql.walk_panels(dashboard):  # v42: hideFrom overrides
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            changed = {change["id"] for change in override["properties"]}
            assert "custom.hideFrom" not in changed, panel["title"]


def test_dashboard_uids_are_unique_and_links_point_at_them() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    linked = set(re.findall(r"/d/([\w-]+)", json.dumps(list(DASHBOARDS.values()))))
    assert linked, "no click-through between dashboards"
    assert linked <= set(uids)


@by_name
def test_datasource_is_a_variable_and_never_hard_coded(name: str) -> None:
    dashboard = DASHBOARDS[name]
    first = dashboard["templating"]["list"][0]
    assert (first["name"], first["type"], first["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    assert "${DS_" not in json.dumps(dashboard)
    references = list(_datasource_references(dashboard))
    assert references, "no datasource reference at all"
    for where, reference in references:
        assert reference == DATASOURCE, f"{where}: {reference}"


def _datasource_references(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield f"{where}.{key}", value
            else:
                yield from _datasource_references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _datasource_references(item, f"{where}[{index}]")


@by_name
def test_every_panel_and_target_uses_the_datasource_variable(name: str) -> None:
    for panel in content_panels(DASHBOARDS[name]):
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), f"{panel['title']}: duplicate refId"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, f"{panel['title']} {target['refId']}"


@by_name
def test_panel_ids_unique_titles_and_units_set(name: str) -> None:
    panels = list(promql.walk_panels(DASHBOARDS[name]))
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids), f"duplicate panel ids in {name}"
    for panel in panels:
        assert panel.get("title", "").strip(), f"panel {panel['id']} has no title"
    for panel in content_panels(DASHBOARDS[name]):
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit, f"{panel['title']}: no unit"
        assert panel.get("description"), f"{panel['title']}: no description for the NOC"


@by_name
def test_table_columns_refer_to_existing_queries(name: str) -> None:
    for panel in content_panels(DASHBOARDS[name]):
        ref_ids = {t["refId"] for t in panel["targets"]}
        for override in panel["fieldConfig"]["overrides"]:
            field = override["matcher"]["options"]
            found = re.fullmatch(r"Value #(\w+)", field)
            if found:
                assert found[1] in ref_ids, f"{panel['title']}: column {field} has no query"


@by_name
def test_layout_stays_in_the_grid_without_overlaps(name: str) -> None:
    placed: list[tuple[str, dict[str, int]]] = []
    for panel in DASHBOARDS[name]["panels"]:  # collapsed rows keep their own layout inside
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for other_title, other in placed:
            overlap = (
                pos["x"] < other["x"] + other["w"]
                and other["x"] < pos["x"] + pos["w"]
                and pos["y"] < other["y"] + other["h"]
                and other["y"] < pos["y"] + pos["h"]
            )
            assert not overlap, f"{panel['title']!r} overlaps {other_title!r}"
        placed.append((panel["title"], pos))


@by_name
def test_variables_query_prometheus_and_scale_to_many_agents(name: str) -> None:
    variables = promql.variables(DASHBOARDS[name])
    agent = variables["agent"]
    assert agent.multi and agent.include_all, "dashboards must work with many agents"
    raw = {v["name"]: v for v in DASHBOARDS[name]["templating"]["list"]}
    for variable in variables.values():
        if variable.type == "datasource":
            continue
        assert raw[variable.name]["datasource"] == DATASOURCE
        assert variable.query is not None
        wanted = promql.parse_label_values(variable.query)
        assert wanted.match is not None
        assert promql.metric_names(wanted.match) <= KNOWN_SERIES


def _all_queries() -> list[tuple[str, promql.ResolvedQuery]]:
    found = []
    for name, dashboard in DASHBOARDS.items():
        options = {n: ["kab-nunukan", "kota-samarinda"] for n in promql.variables(dashboard)}
        for resolved in promql.resolve(
            dashboard,
            sample_selection(dashboard),
            options=options,
            time=promql.TimeRange(6 * 3600),
        ):
            found.append((name, resolved))
    return found


def test_every_query_parses_with_variables_filled_in(tmp_path: Path) -> None:
    """promtool 2.42 has no PromQL parse command, but parses every recording rule it checks."""
    queries = _all_queries()
    assert len(queries) > 50
    rules = {
        "groups": [
            {
                "name": f"{name} {resolved.where}",
                "rules": [{"record": f"dashboard_check:q{i}", "expr": resolved.expr}],
            }
            for i, (name, resolved) in enumerate(queries)
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_queries_use_only_metrics_linkmon_exports() -> None:
    for name, resolved in _all_queries():
        metrics = promql.metric_names(resolved.expr)
        assert metrics, f"{name} {resolved.where}: selects no metric"
        unknown = metrics - KNOWN_SERIES
        assert not unknown, f"{name} {resolved.where}: not exported by linkmon: {unknown}"


def test_no_query_leaves_a_variable_for_prometheus() -> None:
    for name, resolved in _all_queries():
        assert "$" not in resolved.expr, f"{name} {resolved.where}"


# What each dashboard is for (issue 6), checked by the metrics and panels that answer it.
REQUIRED_METRICS = {
    "noc-overview.json": {
        "linkmon_link_state",
        "linkmon_service_available",
        "linkmon_link_state_since_timestamp_seconds",
        "linkmon_probe_failures_total",
        "up",
        "linkmon_scheduler_lag_seconds_bucket",
        "linkmon_config_last_reload_successful",
        "linkmon_alerts_queued",
    },
    "link-detail.json": {
        "linkmon_probe_duration_seconds_bucket",
        "linkmon_probe_packets_sent_total",
        "linkmon_probe_packets_received_total",
        "linkmon_probe_loss_ratio",
        "linkmon_probe_success",
        "linkmon_link_state",
        "linkmon_tls_cert_expiry_timestamp_seconds",
    },
    "availability.json": {
        "linkmon_link_up",
        "linkmon_service_available",
        "linkmon_link_state_changes_total",
    },
}


@by_name
def test_each_dashboard_shows_what_the_noc_needs(name: str) -> None:
    used = set().union(
        *(promql.metric_names(q.expr) for q in promql.panel_queries(DASHBOARDS[name]))
    )
    assert REQUIRED_METRICS[name] <= used, REQUIRED_METRICS[name] - used


def test_noc_overview_groups_link_states_by_kabupaten() -> None:
    dashboard = DASHBOARDS["noc-overview.json"]
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert any(row.get("repeat") == "kabupaten" for row in rows)
    repeated = [q for q in promql.panel_queries(dashboard) if q.repeat == "kabupaten"]
    types = {
        p["type"] for p in content_panels(dashboard) if p["id"] in {q.panel_id for q in repeated}
    }
    assert {"stat", "state-timeline"} <= types
    outages = [q for q in promql.panel_queries(dashboard) if "time() -" in q.expr]
    assert any("linkmon_link_state_since_timestamp_seconds" in q.expr for q in outages)


def test_link_detail_has_the_smokeping_heatmap() -> None:
    dashboard = DASHBOARDS["link-detail.json"]
    assert not promql.variables(dashboard)["link"].multi
    heatmaps = [p for p in content_panels(dashboard) if p["type"] == "heatmap"]
    assert len(heatmaps) == 1
    (target,) = heatmaps[0]["targets"]
    assert re.fullmatch(
        r'sum\(rate\(linkmon_probe_duration_seconds_bucket\{[^}]*link="\$link"[^}]*'
        r'kind="icmp"[^}]*\}\[\$__rate_interval\]\)\) by \(le\)',
        target["expr"],
    )
    assert (target["format"], target["legendFormat"]) == ("heatmap", "{{le}}")
    assert heatmaps[0]["options"]["calculate"] is False


def test_availability_is_over_the_selected_range() -> None:
    queries = promql.panel_queries(DASHBOARDS["availability.json"])
    exprs = " ".join(q.expr for q in queries)
    assert "avg_over_time(linkmon_link_up{" in exprs and "[$__range])" in exprs
    assert "increase(linkmon_link_state_changes_total{" in exprs
    assert "$__range_s" in exprs  # total downtime in seconds
    assert all(q.instant for q in queries if "$__range" in q.expr)

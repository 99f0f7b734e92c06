"""What every linkmon dashboard shares: the grid layout, the template variables and the frame
(tags, refresh, the links between the dashboards)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard

from .panels import DATASOURCE, AnyPanel, Link

GRID_WIDTH = 24
# The schema version the JSON declares: not the SDK's own (42, Grafana 12.2), because Grafana
# migrates older dashboards forward but refuses newer ones (the dashboard API of Grafana 12.0 and
# 12.1 fails a schema-42 dashboard: "schema version not migrated to target version"). What these
# dashboards say is valid at 39: migrations 40 to 42 change only a boolean refresh,
# timepicker.time_options and hideFrom overrides, none of which they have (a test checks it).
SCHEMA_VERSION = 39


@dataclass
class _Section:
    """The panels under one row (or above the first row): Grafana keeps them inside a collapsed
    row and after an expanded one."""

    row: dashboard_builders.Row | None = None
    collapsed: bool = False
    panels: list[AnyPanel] = field(default_factory=list)


class Board:
    """Panels flow left to right in Grafana's 24-column grid and wrap before one that would not
    fit; a row starts a line of its own. Not the SDK's own flow, which wraps only once a line is
    full and so lets a panel wider than what is left run off the grid."""

    def __init__(self) -> None:
        self._sections = [_Section()]
        self._x = self._y = self._line_height = 0

    def add(self, panel: AnyPanel, w: int, h: int) -> None:
        if self._x + w > GRID_WIDTH:
            self._newline()
        panel.grid_pos(dashboard.GridPos(x=self._x, y=self._y, w=w, h=h))
        self._x += w
        self._line_height = max(self._line_height, h)
        self._sections[-1].panels.append(panel)

    def row(self, title: str, *, collapsed: bool = False, repeat: str | None = None) -> None:
        self._newline()
        row = (
            dashboard_builders.Row(title)
            .collapsed(collapsed)
            .grid_pos(dashboard.GridPos(x=0, y=self._y, w=GRID_WIDTH, h=1))
        )
        if repeat:
            row.repeat(repeat)
        self._sections.append(_Section(row, collapsed))
        self._y += 1

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = self._line_height = 0

    def place_on(self, target: dashboard_builders.Dashboard) -> None:
        """Number every panel (rows and the panels folded inside them too) and add it."""
        ids = count(1)
        for section in self._sections:
            if section.row is None:
                for panel in section.panels:
                    target.with_panel(panel.id(next(ids)))
            elif section.collapsed:
                section.row.id(next(ids))
                for panel in section.panels:
                    section.row.with_panel(panel.id(next(ids)))
                target.with_row(section.row)
            else:
                target.with_row(section.row.id(next(ids)))
                for panel in section.panels:
                    target.with_panel(panel.id(next(ids)))


# ---------------------------------------------------------------------------------------------
# Template variables


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    """Any Prometheus data source; panels refer to it as ``${datasource}``."""
    return (
        dashboard_builders.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .hide(dashboard.VariableHide.DONT_HIDE)
        .include_all(False)
        .multi(False)
        .regex("")
    )


def label_values_variable(
    name: str, label: str, definition: str, *, multi: bool, all_value: str | None = None
) -> dashboard_builders.QueryVariable:
    """A variable from Prometheus' label values, refreshed with the time range."""
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .definition(definition)
        .query(
            {
                "qryType": 1,
                "query": definition,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            }
        )
        .hide(dashboard.VariableHide.DONT_HIDE)
        .include_all(multi)
        .multi(multi)
        .options([])
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        variable.current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
    if all_value is not None:
        variable.all_value(all_value)
    return variable


def agent_variable() -> dashboard_builders.QueryVariable:
    """From linkmon_link_up, which carries linkmon's own agent label whatever the scrape config
    says. ".+" rather than a regex of every agent: a national Prometheus may scrape 500 of them."""
    return label_values_variable(
        "agent", "Agen", "label_values(linkmon_link_up, agent)", multi=True, all_value=".+"
    )


def kabupaten_variable() -> dashboard_builders.QueryVariable:
    """ ".*" so "All" also keeps links with no kabupaten (pusat to DRC, for instance)."""
    return label_values_variable(
        "kabupaten",
        "Kabupaten/kota",
        'label_values(linkmon_link_up{agent=~"$agent"}, kabupaten)',
        multi=True,
        all_value=".*",
    )


def link_variable() -> dashboard_builders.QueryVariable:
    return label_values_variable(
        "link",
        "Link",
        'label_values(linkmon_link_up{agent=~"$agent",kabupaten=~"$kabupaten"}, link)',
        multi=False,
    )


# ---------------------------------------------------------------------------------------------
# The frame


def linkmon_dashboard(
    uid: str,
    title: str,
    description: str,
    board: Board,
    variables: Sequence[dashboard_builders.QueryVariable],
    time_from: str,
    time_to: str = "now",
) -> dashboard.Dashboard:
    """A dashboard tagged ``linkmon``, with a link to the others that keeps the time and the
    variables, refreshed every 30 s; the data source variable comes first."""
    built = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["linkmon", "dukcapil"])
        .timezone("browser")
        .editable()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .version(1)
        .time(time_from, time_to)
        .fiscal_year_start_month(0)
        .live_now(False)
        .week_start("")
        .annotations([])
        .link(
            Link(
                dashboard.DashboardLink(
                    title="linkmon",
                    type_val=dashboard.DashboardLinkType.DASHBOARDS,
                    icon="external link",
                    tags=["linkmon"],
                    include_vars=True,
                    keep_time=True,
                )
            )
        )
        .with_variable(datasource_variable())
    )
    for variable in variables:
        built.with_variable(variable)
    board.place_on(built)
    model = built.build()
    model.schema_version = SCHEMA_VERSION
    return model

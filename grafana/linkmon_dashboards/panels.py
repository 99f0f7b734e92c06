"""The panel kinds of linkmon's dashboards, as grafana-foundation-sdk builders in the house style.

Every panel gets the data source variable on itself and on each query (file provisioning cannot
fill in a ``${DS_...}`` input, grafana/grafana#10786), a unit and a description for the NOC, and
linkmon's colours. A function returns the SDK's builder, so a dashboard says only what a panel
shows and anything else stays one typed call away: ``stat_panel(...).decimals(0)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, TypeAlias, TypeVar

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as options
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode, HeatmapColorScale
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
LINK_UID = "linkmon-link"
DAY = 86400


AnyPanel: TypeAlias = (
    bargauge.Panel
    | heatmap.Panel
    | stat.Panel
    | statetimeline.Panel
    | table.Panel
    | timeseries.Panel
)
"""The SDK panel builders linkmon's dashboards are made of."""
P = TypeVar("P", bound=AnyPanel)


# ---------------------------------------------------------------------------------------------
# Queries, thresholds, links


def query(
    expr: str,
    legend: str = "",
    *,
    instant: bool = False,
    fmt: PromQueryFormat = PromQueryFormat.TIME_SERIES,
) -> prometheus.Dataquery:
    built = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .format(fmt)
        .editor_mode(QueryEditorMode.CODE)
    )
    return built.instant() if instant else built.range()


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builders.ThresholdsConfig:
    """Colour ``base`` below the first step, then each step's colour from its value up."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps(
            [dashboard.Threshold(value=None, color=base)]
            + [dashboard.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def colour_mode(mode: dashboard.FieldColorModeId) -> dashboard_builders.FieldColor:
    return dashboard_builders.FieldColor().mode(mode)


def fixed_colour(color: str) -> dashboard_builders.FieldColor:
    return colour_mode(dashboard.FieldColorModeId.FIXED).fixed_color(color)


def availability_thresholds() -> dashboard_builders.ThresholdsConfig:
    """Red below 95 %, orange below 99 %, green from there."""
    return thresholds("red", (0.95, "orange"), (0.99, "green"))


class Link(cogbuilder.Builder[dashboard.DashboardLink]):
    """A link as Grafana's schema has it. grafana-foundation-sdk 0.0.21 writes ``placement:
    inControlsMenu`` into every link it builds, although the schema makes that field optional and
    its absence is what keeps a dashboard link above the panels (a data link has no placement)."""

    def __init__(self, link: dashboard.DashboardLink) -> None:
        link.placement = None  # type: ignore[assignment]
        self._link = link

    def build(self) -> dashboard.DashboardLink:
        return self._link


def detail_link(label_ref: str) -> list[cogbuilder.Builder[dashboard.DashboardLink]]:
    """A click-through to the link detail dashboard for the link under the cursor (a data link,
    which the SDK types as a dashboard link: its extra fields are ignored there)."""
    return [
        Link(
            dashboard.DashboardLink(
                title="Detail link",
                url=f"/d/{LINK_UID}?${{datasource:queryparam}}&${{agent:queryparam}}"
                f"&var-link={label_ref}&${{__url_time_range}}",
            )
        )
    ]


# ---------------------------------------------------------------------------------------------
# Panels


def _described(
    panel: P, title: str, description: str, unit: str, queries: Sequence[prometheus.Dataquery]
) -> P:
    panel.title(title).description(description).unit(unit).datasource(DATASOURCE)
    for index, each in enumerate(queries):
        panel.with_target(each.ref_id(chr(ord("A") + index)).datasource(DATASOURCE))
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    mappings: list[dashboard.ValueMapping] | None = None,
    steps: dashboard_builders.ThresholdsConfig | None = None,
    color: str | None = None,
    show_names: bool = False,
    links: list[cogbuilder.Builder[dashboard.DashboardLink]] | None = None,
) -> stat.Panel:
    """Big coloured tiles, one per series: the last value, its word and its colour."""
    panel = (
        _described(stat.Panel(), title, description, unit, queries)
        .mappings(mappings or [])
        .thresholds(steps or thresholds("text"))
        .color_scheme(
            fixed_colour(color) if color else colour_mode(dashboard.FieldColorModeId.THRESHOLDS)
        )
        .reduce_options(last_value())
        .orientation(common.VizOrientation.AUTO)
        .text_mode(
            common.BigValueTextMode.VALUE_AND_NAME if show_names else common.BigValueTextMode.VALUE
        )
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .wide_layout(True)
        .show_percent_change(False)
    )
    if links:
        panel.data_links(links)
    return panel


def last_value() -> options.ReduceDataOptions:
    return options.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("")


def count_stat(title: str, description: str, expr: str, alarm: str | None) -> stat.Panel:
    """A count that is fine at zero; ``alarm`` colours it once it is not (None: always neutral)."""
    steps = thresholds("green", (1, alarm)) if alarm else thresholds("blue")
    return stat_panel(
        title, description, "none", [query(f"{expr} or vector(0)", instant=True)], steps=steps
    ).decimals(0)


def availability_stat(title: str, description: str, ratio: str) -> stat.Panel:
    """The average over the selection of ``ratio`` (0..1 per series), as a percentage."""
    return stat_panel(
        title,
        description,
        "percentunit",
        [query(f"avg({ratio})", instant=True)],
        steps=availability_thresholds(),
    ).decimals(2)


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    bars: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> timeseries.Panel:
    """Lines (or stacked bars for counts per interval), legend below, all series in the tooltip."""
    panel = (
        _described(timeseries.Panel(), title, description, unit, queries)
        .color_scheme(colour_mode(dashboard.FieldColorModeId.PALETTE_CLASSIC))
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if bars else 10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            options.StackingConfig()
            .mode(common.StackingMode.NORMAL if bars else common.StackingMode.NONE)
            .group("A")
        )
        .legend(
            options.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs([])
        )
        .tooltip(
            options.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if minimum is not None:
        panel.min(minimum)
    if maximum is not None:
        panel.max(maximum)
    return panel


def state_timeline(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    mappings: list[dashboard.ValueMapping],
    links: list[cogbuilder.Builder[dashboard.DashboardLink]] | None = None,
) -> statetimeline.Panel:
    """One band per series, coloured by its mapped state over time."""
    panel = (
        _described(statetimeline.Panel(), title, description, "none", queries)
        .color_scheme(colour_mode(dashboard.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds("text"))
        .mappings(mappings)
        .fill_opacity(80)
        .line_width(0)
        .merge_values(True)
        .show_value(common.VisibilityMode.NEVER)
        .align_value(common.TimelineValueAlignment.LEFT)
        .row_height(0.9)
        .legend(
            options.VizLegendOptions()
            .show_legend(False)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(
            options.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.SINGLE)
            .sort(common.SortOrder.NONE)
        )
    )
    if links:
        panel.data_links(links)
    return panel


def smokeping_heatmap(title: str, description: str, expr: str) -> heatmap.Panel:
    """smokeping_prober's RTT heatmap: histogram buckets as they are, not recalculated."""
    return (
        _described(
            heatmap.Panel(),
            title,
            description,
            "short",
            [query(expr, "{{le}}", fmt=PromQueryFormat.HEATMAP)],
        )
        .calculate(False)
        .cell_gap(1)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(HeatmapColorMode.SCHEME)
            .scheme("Spectral")
            .steps(64)
            .exponent(0.5)
            .fill("dark-orange")
            .scale(HeatmapColorScale.EXPONENTIAL)
            .reverse(False)
        )
        .y_axis(
            heatmap.YAxisConfig().axis_placement(common.AxisPlacement.LEFT).unit("s").reverse(False)
        )
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
        .filter_values(heatmap.FilterValueRange().le(1e-9))
        .cell_values(heatmap.CellValues().unit("short"))
        .show_legend()
        .tooltip(
            heatmap.HeatmapTooltip()
            .mode(common.TooltipDisplayMode.SINGLE)
            .y_histogram(True)
            .show_color_scale(False)
        )
        .exemplars_color("rgba(255,0,255,0.7)")
        .scale_distribution(options.ScaleDistributionConfig().type(common.ScaleDistribution.LINEAR))
        .hide_from(options.HideSeriesConfig().legend(False).tooltip(False).viz(False))
    )


def availability_bars(
    title: str, description: str, queries: Sequence[prometheus.Dataquery]
) -> bargauge.Panel:
    """Horizontal bars from 0 to 100 %, coloured by the availability thresholds."""
    return (
        _described(bargauge.Panel(), title, description, "percentunit", queries)
        .min(0)
        .max(1)
        .decimals(2)
        .thresholds(availability_thresholds())
        .color_scheme(colour_mode(dashboard.FieldColorModeId.THRESHOLDS))
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .show_unfilled(True)
        .name_placement(common.BarGaugeNamePlacement.AUTO)
        .sizing(common.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .reduce_options(last_value())
    )


# ---------------------------------------------------------------------------------------------
# Tables


class Column(NamedTuple):
    """A table column: the field it shows and how (header, unit, colouring)."""

    field: str
    properties: list[dashboard.DynamicConfigValue]


def column(
    field: str,
    title: str,
    unit: str | None = None,
    *,
    mappings: list[dashboard.ValueMapping] | None = None,
    steps: dashboard_builders.ThresholdsConfig | None = None,
    decimals: int | None = None,
    coloured: bool = False,
) -> Column:
    """A column's header and, where numeric, its unit and colouring."""
    properties = [dashboard.DynamicConfigValue(id_val="displayName", value=title)]
    if unit:
        properties.append(dashboard.DynamicConfigValue(id_val="unit", value=unit))
    if mappings is not None:
        properties.append(dashboard.DynamicConfigValue(id_val="mappings", value=mappings))
    if steps is not None:
        properties.append(dashboard.DynamicConfigValue(id_val="thresholds", value=steps.build()))
    if decimals is not None:
        properties.append(dashboard.DynamicConfigValue(id_val="decimals", value=decimals))
    if coloured:
        properties.append(
            dashboard.DynamicConfigValue(
                id_val="custom.cellOptions",
                value=common.TableColoredBackgroundCellOptions(
                    mode=common.TableCellBackgroundDisplayMode.BASIC
                ),
            )
        )
    return Column(field, properties)


def availability_column(field: str, title: str) -> Column:
    """An availability ratio, coloured by the availability thresholds."""
    return column(
        field,
        title,
        "percentunit",
        decimals=2,
        steps=availability_thresholds(),
        coloured=True,
    )


def link_columns() -> list[Column]:
    """The labels that name a link, as the first columns of a table with a row per link."""
    return [
        column("link", "Link"),
        column("from", "Dari"),
        column("to", "Ke"),
        column("network", "Jaringan"),
        column("kabupaten", "Kabupaten/kota"),
        column("agent", "Agen"),
    ]


def table_panel(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    columns: Iterable[Column],
    *,
    hidden: Sequence[str] = (),
    sort_by: str | None = None,
    links: list[cogbuilder.Builder[dashboard.DashboardLink]] | None = None,
) -> table.Panel:
    """An instant-query table; several queries are merged into one row per label set."""
    for each in queries:
        each.format(PromQueryFormat.TABLE).instant()
    panel = (
        _described(table.Panel(), title, description, "none", queries)
        .align(common.FieldTextAlignment.AUTO)
        .cell_options(common.TableAutoCellOptions())
        .filterable(True)
        .thresholds(thresholds("text"))
        .color_scheme(colour_mode(dashboard.FieldColorModeId.THRESHOLDS))
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .footer(options.TableFooterOptions().show(False).reducer(["sum"]).count_rows(False))
        .sort_by(
            [options.TableSortByFieldState().display_name(sort_by).desc(True)] if sort_by else []
        )
    )
    if len(queries) > 1:
        panel.with_transformation(dashboard.DataTransformerConfig(id_val="merge", options={}))
    exclude = {name: True for name in ("Time", "job", "instance", "__name__", *hidden)}
    panel.with_transformation(
        dashboard.DataTransformerConfig(id_val="organize", options={"excludeByName": exclude})
    )
    if links:
        panel.data_links(links)
    for each_column in columns:
        panel.override_by_name(each_column.field, each_column.properties)
    return panel

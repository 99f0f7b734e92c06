"""Monthly availability report: figures against a hand-computed fixture.

The fixture (tests/testdata/outages/, see tests/support/outages.py) holds a config with sites
in WIB, WITA and WIT, outages spanning midnight and the month boundary, maintenance
overlapping outages, and the figures worked out by hand in expected.yml. The outages go into a
real SQLite file through :meth:`Storage.record`, as the daemon's state machine writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkmon.config import Config, parse_config
from linkmon.report import (
    Figures,
    Report,
    build_report,
    figures,
    intersect,
    merge,
    subtract,
)
from linkmon.state import Changes, LinkState, Transition
from linkmon.storage import Storage
from tests.support import outages

EXPECTED = outages.expected()
REPORTED_AT = outages.REPORTED_AT


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The fixture config in a directory of its own, with its database of outages."""
    return outages.install(tmp_path_factory.mktemp("outages"))


def _report(config: Config, year: int = 2026, month: int = 11, now: float = REPORTED_AT) -> Report:
    with Storage(config.storage.path, readonly=True) as storage:
        return build_report(config, storage, year, month, now)


def _rows(report: Report, scope: str) -> dict[str, Any]:
    return {
        row.id: row
        for group in report.groups
        for row in (group.offices if scope == "office" else group.links)
    }


def _as_expected(fig: Figures) -> dict[str, Any]:
    mttr = fig.mttr
    return {
        "measured": round(fig.measured),
        "downtime": round(fig.downtime),
        "outages": fig.outages,
        "longest": round(fig.longest),
        "maintenance": round(fig.maintenance),
        "mttr": None if mttr is None else round(mttr),
        "availability": f"{fig.availability * 100:.3f} %" if fig.availability is not None else "-",
    }


@pytest.fixture(scope="module")
def november(fixture_config: Config) -> Report:
    return _report(fixture_config)


@pytest.mark.parametrize(
    "scope,row_id",
    [*(("link", k) for k in EXPECTED["links"]), *(("office", k) for k in EXPECTED["offices"])],
)
def test_november_figures_match_the_hand_computed_ones(
    november: Report, scope: str, row_id: str
) -> None:
    expected = EXPECTED["links" if scope == "link" else "offices"][row_id]
    row = _rows(november, scope)[row_id]
    assert _as_expected(row.full) == expected["full"], f"{scope} {row_id} 24x7"
    assert _as_expected(row.service) == expected["service"], f"{scope} {row_id} service hours"


def test_every_link_and_office_is_reported_once_in_its_kabupaten(november: Report) -> None:
    assert set(_rows(november, "link")) == set(EXPECTED["links"])
    assert set(_rows(november, "office")) == set(EXPECTED["offices"])
    groups = {g.id: ({r.id for r in g.offices}, {r.id for r in g.links}) for g in november.groups}
    assert groups["kab-nunukan"] == (
        {"kab-nunukan", "kec-krayan"},
        {"kab-nunukan--dc", "kab-nunukan--drc", "kec-krayan--kab"},
    )
    assert groups["kab-sorong"][0] == {"kab-sorong", "kec-aimas"}
    assert not november.partial


def test_october_gets_its_side_of_an_outage_across_the_month_boundary(
    fixture_config: Config,
) -> None:
    rows = _rows(_report(fixture_config, month=10), "link")
    for link_id, expected in EXPECTED["october"].items():
        assert _as_expected(rows[link_id].full) == expected["full"], link_id


def test_the_running_month_is_counted_up_to_now(fixture_config: Config) -> None:
    # 18 Nov 12:00 WIT: aimas' outage that morning is over, the one of the 29th still ahead.
    now = outages.timestamp("2026-11-18T12:00+09:00")
    report = _report(fixture_config, now=now)
    aimas = _rows(report, "link")["kec-aimas--kab"].full
    # 17 days and 12 hours of November in WIT, minus the Wednesdays 4 and 11 (2 h).
    assert report.partial
    assert aimas.measured == 17 * 86400 + 12 * 3600 - 2 * 3600
    assert (aimas.outages, aimas.downtime) == (1, 1800)


# ------------------------------------------------------------------------------ span arithmetic

spans = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=8)


def _cells(items: list[tuple[float, float]]) -> set[int]:
    return {t for start, end in items for t in range(int(start), int(end))}


@given(spans, spans)
def test_span_arithmetic_agrees_with_counting_unit_cells(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    ma = merge((float(s), float(e)) for s, e in a)
    mb = merge((float(s), float(e)) for s, e in b)
    assert all(x[1] < y[0] for x, y in zip(ma, ma[1:], strict=False))  # sorted, apart
    assert _cells(ma) == _cells([(s, e) for s, e in a])
    assert _cells(intersect(ma, mb)) == _cells(ma) & _cells(mb)
    assert _cells(subtract(ma, mb)) == _cells(ma) - _cells(mb)


def test_an_outage_inside_maintenance_is_no_outage() -> None:
    fig = figures([(10.0, 20.0), (30.0, 50.0)], [(0.0, 100.0)], [(5.0, 25.0), (40.0, 60.0)])
    assert (fig.outages, fig.downtime, fig.longest, fig.maintenance) == (1, 10.0, 10.0, 40.0)
    assert fig.measured == 60.0 and fig.availability == pytest.approx(1 - 10 / 60)


def test_offices_with_no_watched_path_to_pusat_get_no_office_row(tmp_path: Path) -> None:
    config = parse_config(f"""
storage: {{path: {tmp_path / "state.db"}}}
sites:
  - {{id: kab-nunukan, kind: kabupaten}}
  - {{id: kec-krayan, kind: kecamatan, parent: kab-nunukan}}
links:
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: vpn,
     probes: [{{kind: icmp, target: 198.18.30.8}}]}}
""")
    with Storage(config.storage.path) as storage:
        storage.record(
            Changes(
                transitions=(
                    Transition(
                        "kec-krayan--kab",
                        LinkState.UP,
                        LinkState.DOWN,
                        outages.timestamp("2026-11-03T10:00+08:00"),
                        "path_down",
                        "",
                        "kec-krayan",
                    ),
                )
            ),
            0.0,
        )
    report = _report(config)
    assert _rows(report, "office") == {}  # the agent watches no uplink: unknown, not "out"
    link = _rows(report, "link")["kec-krayan--kab"].full
    assert link.outages == 1 and link.downtime == outages.timestamp(
        "2026-12-01T00:00+08:00"
    ) - outages.timestamp("2026-11-03T10:00+08:00")

#!/usr/bin/env python3
"""Writes linkmon's Grafana dashboards (grafana/dashboards/*.json) with grafana-foundation-sdk.

The JSON files are what users import or provision; ``linkmon_dashboards/`` describes them with
Grafana's own typed generator, so they follow Grafana's dashboard schema, and keeps them
consistent (one data source variable, one state colour scheme, unique panel ids, a layout that
never overlaps). Edit there, run ``python grafana/build_dashboards.py``, commit both; ``--check``
fails when the JSON and the description disagree, and the test suite runs it.

Panel titles and descriptions are in Bahasa Indonesia, like everything else a NOC officer reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from linkmon_dashboards import availability, link_detail, noc_overview

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
BUILDERS: dict[str, Callable[[], Dashboard]] = {
    "noc-overview.json": noc_overview.build,
    "link-detail.json": link_detail.build,
    "availability.json": availability.build,
}


def render(built: Dashboard) -> str:
    return json.dumps(built, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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

"""The agents' own page, served by ``linkmon fleet``, draws the whole fleet in real Chromium.

The page reads ``/api/v1/status`` of its origin; from the fleet server that is the fleet's
document (a real Prometheus scraping stand-in agents). It must show every agent's offices,
follow a cut without a reload, say which agent went silent and when it was last seen, and ask
nothing of anyone but the fleet server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.linkmon.fleet.conftest import StandInFleet, fleet_server

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[Any]:
    from tests.linkmon.test_page import CHROMIUM_ARGS  # the flags that work on this machine

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_page_draws_the_fleet_and_follows_a_cut(
    stand_in_fleet: StandInFleet, browser: Any
) -> None:
    with fleet_server(stand_in_fleet.prometheus.url, "--refresh", "1") as server:
        url = server.url
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{url}/?refresh=1")
            link = '[data-link="kec-lumbis--kab-nunukan"]'
            page.wait_for_selector(f'{link}[data-state="up"]', timeout=15_000)
            for office in ("kec-krayan", "kec-lumbis-ogong", "kota-samarinda"):
                assert page.query_selector(f'[data-site="{office}"]') is not None, office
            stand_in_fleet.nunukan.cut("kec-lumbis--kab-nunukan")
            page.wait_for_selector(f'{link}[data-state="down"]', timeout=20_000)
            assert page.get_attribute("#overall", "data-state") == "down"
            # an agent goes silent: its office is unknown, with when the agent was last seen
            stand_in_fleet.pusat.stop()
            samarinda = '[data-site="kota-samarinda"]'
            page.wait_for_selector(f'{samarinda}[data-service="unknown"]', timeout=20_000)
            assert "agen tidak melapor: pusat-noc terakhir terlihat " in page.inner_text(samarinda)
            home = urlsplit(url).netloc
            assert [r for r in requests if urlsplit(r).netloc not in (home, "")] == []
            assert errors == []
        finally:
            context.close()

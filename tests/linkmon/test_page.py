"""The NOC wall page in real headless Chromium (Debian ``chromium``, driven by Playwright).

The page is served by ``linkmon.web.create_app``, the daemon's own web app. Here its status
comes from ``status_source``, a stand-in whose document the test changes (up, then a cut);
the lab variant at the end runs the real daemon on the lab and cuts a real link. Every request
the page makes is recorded: it must talk to linkmon and nothing else (a NOC network has no
internet, and a wall screen must not leak what it shows).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from linkmon.alerts import text
from linkmon.web import create_app
from tests.support.daemon import lab_config, linkmon_in_lab
from tests.support.labs import shipped_lab
from tests.support.status_fixture import all_up, nunukan_status

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WALL = {"width": 1920, "height": 1080}

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)
sync_api = pytest.importorskip("playwright.sync_api")


class StandInDaemon:
    """A StatusSource answering whatever document the test sets; ``broken`` makes it fail."""

    ready = True
    reload_enabled = False

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.broken = False

    def render_metrics(self) -> list[bytes]:
        return []

    def status(self) -> dict[str, Any]:
        if self.broken:
            raise RuntimeError("the stand-in daemon is broken on purpose")
        return self.document

    async def reload(self) -> tuple[bool, str]:
        return False, "the stand-in does not reload"


@pytest.fixture
def status_source() -> StandInDaemon:
    """Nunukan with every link up; a test 'cuts' by setting the incident document."""
    return StandInDaemon(all_up(nunukan_status()))


@pytest.fixture
def linkmon_url(status_source: StandInDaemon) -> Iterator[str]:
    """linkmon's web app on a real loopback port, served by uvicorn as the daemon does."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(status_source), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Wall:
    """A page at wall-screen size that records every request and every script error."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport=WALL, service_workers="block")
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base}/{query}")
        self.page.evaluate("window.sameDocument = true")

    def still_same_document(self) -> bool:
        """A reload or a navigation would have dropped the mark :meth:`open` left."""
        return bool(self.page.evaluate("window.sameDocument === true"))

    def foreign_requests(self) -> list[str]:
        """Requests to anywhere but linkmon's host:port (data: URLs never leave the page)."""
        home = urlsplit(self.base)
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme != "data"
            and (urlsplit(url).scheme, urlsplit(url).netloc) != (home.scheme, home.netloc)
        ]


@pytest.fixture
def wall(browser: Any, linkmon_url: str) -> Iterator[Wall]:
    screen = Wall(browser, linkmon_url)
    try:
        yield screen
    finally:
        screen.context.close()


def _link(wall: Wall, link_id: str, state: str, timeout: float = 15) -> None:
    wall.page.wait_for_selector(
        f'[data-link="{link_id}"][data-state="{state}"]', timeout=timeout * 1000
    )


def test_a_cut_shows_without_a_reload(wall: Wall, status_source: StandInDaemon) -> None:
    wall.open("?refresh=1")
    _link(wall, "kec-krayan--kab", "up")
    assert wall.page.get_attribute("#overall", "data-state") == "up"
    assert "Tidak ada gangguan" in wall.page.inner_text("#outages")

    status_source.document = nunukan_status()  # Krayan cut, Lumbis Ogong on its DRC backup
    _link(wall, "kec-krayan--kab", "down")

    assert wall.still_same_document(), "the page was reloaded"
    assert wall.page.get_attribute("#overall", "data-state") == "down"
    card = wall.page.inner_text('[data-outage="kec-lumbis-ogong--kab"]')
    assert "turun sejak 08:12 WITA (3 j 5 m)" in card
    assert "jalur putus (tidak ada balasan ping)" in card
    krayan = wall.page.inner_text('[data-outage="kec-krayan--kab"]')
    assert "4 kantor di belakangnya tak terjangkau" in krayan
    assert wall.page.get_attribute('[data-site="kec-lumbis-ogong"]', "data-service") == "degraded"
    assert "hanya melalui DRC" in wall.page.inner_text('[data-site="kec-lumbis-ogong"]')
    assert "14 / 22" in wall.page.inner_text("#offices")
    # the state is spelled out, not only coloured
    assert wall.page.inner_text('[data-link="kec-krayan--kab"] .badge').endswith("TURUN")

    ARTIFACTS.mkdir(exist_ok=True)
    wall.page.screenshot(path=str(ARTIFACTS / "status-page.png"))
    assert (ARTIFACTS / "status-page.png").stat().st_size > 50_000
    assert wall.page.evaluate("document.documentElement.scrollHeight") <= WALL["height"], (
        "the wall must fit one screen"
    )

    polls = [url for url in wall.requests if url.endswith("/api/v1/status")]
    assert len(polls) >= 2
    assert wall.foreign_requests() == []
    assert wall.errors == []


def test_english_and_back_without_a_reload(wall: Wall, status_source: StandInDaemon) -> None:
    status_source.document = nunukan_status()
    wall.open("?lang=en&refresh=1")
    wall.page.wait_for_selector('[data-outage="kec-lumbis-ogong--kab"]')
    assert "down since 08:12 WITA (3 h 5 m)" in wall.page.inner_text("#outages")
    assert wall.page.evaluate("document.documentElement.lang") == "en"

    wall.page.click("#lang")
    wall.page.wait_for_selector("html[lang=id]", state="attached")
    assert "turun sejak 08:12 WITA (3 j 5 m)" in wall.page.inner_text("#outages")
    assert "lang=id" in wall.page.url
    assert wall.still_same_document()
    assert wall.foreign_requests() == []


def test_language_defaults_to_the_agents(wall: Wall, status_source: StandInDaemon) -> None:
    document = nunukan_status()
    document["agent"]["language"] = "en"
    status_source.document = document
    wall.open()
    wall.page.wait_for_selector("html[lang=en]", state="attached")
    assert wall.page.inner_text("#overall").endswith("DOWN")


def test_an_unreachable_daemon_is_shown_not_hidden(
    wall: Wall, status_source: StandInDaemon
) -> None:
    """A frozen green wall is the worst failure: stale data must look stale."""
    wall.open("?refresh=1")
    _link(wall, "kec-krayan--kab", "up")
    status_source.broken = True
    wall.page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
    assert "Tidak dapat menghubungi linkmon" in wall.page.inner_text("#banner")
    assert "HTTP 500" in wall.page.inner_text("#banner")
    assert "stale" in (wall.page.get_attribute("body", "class") or "")
    status_source.broken = False
    wall.page.wait_for_selector("#banner[hidden]", state="attached", timeout=10_000)
    assert "stale" not in (wall.page.get_attribute("body", "class") or "")


def test_hostile_text_stays_text(wall: Wall, status_source: StandInDaemon) -> None:
    """Names and probe details are shown as text: markup in them never runs or loads."""
    document = nunukan_status()
    bait = '<img src="http://127.0.0.2:9/x.png" onerror="window.pwned=1">'
    document["sites"][3]["name"] = f"Kecamatan {bait}"
    krayan = next(link for link in document["links"] if link["id"] == "kec-krayan--kab")
    krayan["detail"] = bait
    document["outages"][0]["cause"] = bait
    status_source.document = document
    wall.open()
    wall.page.wait_for_selector('[data-outage="kec-krayan--kab"]')
    assert bait in wall.page.inner_text("#network")
    assert bait in wall.page.inner_text("#outages")
    assert wall.page.evaluate("window.pwned === undefined")
    assert wall.foreign_requests() == []


def test_cause_words_are_those_of_the_alerts(wall: Wall) -> None:
    """The page's words for each cause are exactly what alerts and `linkmon status` say."""
    wall.open()
    words = wall.page.evaluate("window.linkmonText")
    for language in text.LANGUAGES:
        page_causes = words[language]["causes"]
        assert set(page_causes) == set(text._CAUSES[language])  # the table the alerts use
        for cause, shown in page_causes.items():
            assert shown == text.cause_text(cause, language)


# -- on the lab, with the real daemon ---------------------------------------------------------

LAB_CONFIG = Path(__file__).resolve().parents[2] / "config" / "lab-nunukan.yml"


@pytest.fixture
def lab_daemon(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """The shipped Nunukan lab with linkmon running in the hub, forwarded to the host."""
    with (
        shipped_lab(f"p{os.getpid() % 100_000}") as lab,
        linkmon_in_lab(lab, "kab-nunukan", lab_config(LAB_CONFIG, tmp_path)) as daemon,
    ):
        yield lab, daemon.url


@pytest.mark.lab
@pytest.mark.root
def test_a_lab_cut_shows_on_the_page(browser: Any, lab_daemon: tuple[Any, str]) -> None:
    lab, base = lab_daemon
    wall = Wall(browser, base)
    try:
        wall.open("?refresh=1")
        _link(wall, "kec-krayan--kab", "up", timeout=20)
        lab.cut("kec-krayan--kab")
        _link(wall, "kec-krayan--kab", "down", timeout=20)
        assert wall.still_same_document()
        ARTIFACTS.mkdir(exist_ok=True)
        wall.page.screenshot(path=str(ARTIFACTS / "status-page-lab.png"))
        assert wall.foreign_requests() == []
    finally:
        wall.context.close()

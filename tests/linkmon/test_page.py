"""The status page in real headless Chromium (Debian ``chromium``, driven by Playwright).

The page is served by ``linkmon.web.create_app``, the daemon's own web app. Here its status
comes from ``status_source``, a stand-in whose document the test changes (up, then a cut);
the lab variant at the end runs the real daemon on the lab and cuts a real link. Every request
the page makes is recorded: it must talk to linkmon and nothing else (a NOC network has no
internet, and a wall screen must not leak what it shows). The page is looked at as a NOC wall
(1920×1080) and as a phone (360–412 px wide, touch, mobile viewport), and checked by axe-core.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from linkmon.alerts import text
from linkmon.web import create_app
from tests.support.axe import BLOCKING_IMPACTS, axe_violations, report
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
DESK = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}

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


class Screen:
    """A page that records every request and every script error: a wall screen by default;
    ``phone`` makes it a touch screen with a mobile viewport, as a phone's browser has.
    ``bypass_csp`` only for tests that inject a script of their own (axe-core)."""

    def __init__(
        self,
        browser: Any,
        base: str,
        viewport: dict[str, int] = WALL,
        phone: bool = False,
        bypass_csp: bool = False,
    ) -> None:
        self.base = base
        self.context = browser.new_context(
            viewport=viewport,
            service_workers="block",
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
            bypass_csp=bypass_csp,
        )
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
def open_screen(browser: Any, linkmon_url: str) -> Iterator[Callable[..., Screen]]:
    """Opens screens on linkmon's page (Screen's keywords); each is closed after the test."""
    opened: list[Screen] = []

    def open_(**kwargs: Any) -> Screen:
        opened.append(Screen(browser, linkmon_url, **kwargs))
        return opened[-1]

    yield open_
    for screen in opened:
        screen.context.close()


@pytest.fixture
def wall(open_screen: Callable[..., Screen]) -> Screen:
    return open_screen()


def _link(wall: Screen, link_id: str, state: str, timeout: float = 15) -> None:
    wall.page.wait_for_selector(
        f'[data-link="{link_id}"][data-state="{state}"]', timeout=timeout * 1000
    )


def test_a_cut_shows_without_a_reload(wall: Screen, status_source: StandInDaemon) -> None:
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


def test_english_and_back_without_a_reload(wall: Screen, status_source: StandInDaemon) -> None:
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


def test_language_defaults_to_the_agents(wall: Screen, status_source: StandInDaemon) -> None:
    document = nunukan_status()
    document["agent"]["language"] = "en"
    status_source.document = document
    wall.open()
    wall.page.wait_for_selector("html[lang=en]", state="attached")
    assert wall.page.inner_text("#overall").endswith("DOWN")


def test_an_unreachable_daemon_is_shown_not_hidden(
    wall: Screen, status_source: StandInDaemon
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


def test_hostile_text_stays_text(wall: Screen, status_source: StandInDaemon) -> None:
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


def test_cause_words_are_those_of_the_alerts(wall: Screen) -> None:
    """The page's words for each cause are exactly what alerts and `linkmon status` say."""
    wall.open()
    words = wall.page.evaluate("window.linkmonText")
    for language in text.LANGUAGES:
        page_causes = words[language]["causes"]
        assert set(page_causes) == set(text._CAUSES[language])  # the table the alerts use
        for cause, shown in page_causes.items():
            assert shown == text.cause_text(cause, language)


# -- on a phone, and for everyone: axe-core ---------------------------------------------------


def long_names(document: dict[str, Any]) -> dict[str, Any]:
    """Names as long as real ones get: the agent named after the office in full, the
    kabupaten office by its official name, a kecamatan office with its service point."""
    document["agent"]["name"] = "disdukcapil-kabupaten-nunukan-kantor-utama-tanjung-harapan"
    names = {
        "kab-nunukan": "Dinas Kependudukan dan Pencatatan Sipil Kabupaten Nunukan",
        "kec-lumbis-ogong": "Kecamatan Lumbis Ogong (Unit Pelayanan Perbatasan Labang)",
        "kec-sei-menggaris": "Kecamatan Sei Menggaris (Kantor Camat Sementara Srinanti)",
    }
    for site in document["sites"]:
        site["name"] = names.get(site["id"], site["name"])
    return document


# The same Nunukan morning, ordered as a phone shows it: offices cut off (down, unreachable,
# serving only through the DRC or refused by pusat), then limited (lossy, flapping), then not
# yet known, then planned work, then the offices that serve normally, each in config order.
PHONE_ORDER = [
    "kec-krayan",
    "kec-krayan-selatan",
    "kec-krayan-tengah",
    "kec-krayan-timur",
    "kec-krayan-barat",
    "kec-lumbis-ogong",
    "kec-tulin-onsoi",
    "kec-sebatik-utara",
    "kec-lumbis-hulu",
    "kec-sei-menggaris",
    "kec-sembakung",
    "kec-nunukan",
    "kec-nunukan-selatan",
    "kec-sebatik",
    "kec-sebatik-barat",
    "kec-sebatik-timur",
    "kec-sebatik-tengah",
    "kec-lumbis",
    "kec-lumbis-pansiangan",
    "kec-sebuku",
    "kec-sembakung-atulai",
]

_DESCRIBE = """(el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
  + [...el.classList].map((c) => "." + c).join("")
  + ' "' + el.textContent.trim().slice(0, 40) + '"'"""

# Boxes that hide part of their text (an ellipsis, a clipped name). A box 1 px wide is the
# screen-reader-only idiom, hidden on purpose.
_CLIPPED = f"""() => {{
  const describe = {_DESCRIBE};
  return [...document.querySelectorAll("body *")].filter((el) => {{
    const overflow = getComputedStyle(el).overflowX;
    return el.checkVisibility() && ["hidden", "clip"].includes(overflow)
      && el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1;
  }}).map(describe);
}}"""

# Visible text drawn under 16 px, with its size.
_SMALL_TEXT = f"""() => {{
  const describe = {_DESCRIBE};
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {{
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.checkVisibility()) continue;
    if (el.getBoundingClientRect().width <= 1) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 16) small.push(describe(el) + ": " + size + " px");
  }}
  return small;
}}"""

# Things a finger must hit that are smaller than 44×44 px.
_SMALL_TARGETS = f"""() => {{
  const describe = {_DESCRIBE};
  const interactive = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";
  return [...document.querySelectorAll(interactive)].filter((el) => el.checkVisibility())
    .map((el) => [el, el.getBoundingClientRect()])
    .filter(([, box]) => box.width < 44 || box.height < 44)
    .map(([el, box]) => describe(el) + ": " + box.width + "x" + box.height);
}}"""

# Where the boxes a selector finds are drawn: their tops in document order, their distinct lefts.
_TOPS = """(selector) => [...document.querySelectorAll(selector)]
  .map((el) => el.getBoundingClientRect().top)"""
_LEFTS = """(selector) => [...new Set([...document.querySelectorAll(selector)]
  .map((el) => el.getBoundingClientRect().left))]"""


@pytest.mark.parametrize("width", [360, 390, 412])
def test_a_phone_reads_one_column_problems_first(
    open_screen: Callable[..., Screen], status_source: StandInDaemon, width: int
) -> None:
    """What a camat sees on a phone: nothing sideways, nothing cut off, nothing too small to
    read or to tap, the page's parts one under the other, offices in trouble first."""
    status_source.document = long_names(nunukan_status())
    phone = open_screen(viewport={**PHONE, "width": width}, phone=True)
    phone.open()
    phone.page.wait_for_selector('[data-outage="kec-krayan--kab"]')
    page = phone.page
    # A mobile browser widens its layout viewport to fit what overflows: pin it first.
    assert page.evaluate("window.innerWidth") == width
    assert page.evaluate("document.documentElement.scrollWidth") <= width, (
        "the page scrolls sideways"
    )
    assert page.evaluate(_CLIPPED) == [], "text cut off on a phone"
    assert page.evaluate(_SMALL_TEXT) == [], "text under 16 px on a phone"
    assert page.evaluate(_SMALL_TARGETS) == [], "tap targets under 44 px on a phone"

    sections = page.evaluate(_TOPS, "main > section:not([hidden])")
    assert sections == sorted(sections), "the page's parts are not one under the other"
    assert len(page.evaluate(_LEFTS, ".outage")) == 1, "outage cards side by side"
    assert len(page.evaluate(_LEFTS, ".tile")) == 1, "offices side by side"
    tiles = page.evaluate(_TOPS, ".tile")
    assert tiles == sorted(tiles)
    shown = page.eval_on_selector_all(".tile", "tiles => tiles.map(t => t.dataset.site)")
    assert shown == PHONE_ORDER
    assert page.inner_text("h1").endswith(
        "disdukcapil-kabupaten-nunukan-kantor-utama-tanjung-harapan"
    )

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"status-page-phone-{width}.png"), full_page=True)
    assert phone.foreign_requests() == []
    assert phone.errors == []


def test_a_phone_jumps_to_the_network(
    open_screen: Callable[..., Screen], status_source: StandInDaemon
) -> None:
    """The one-column page is long: its navigation jumps past the outages (which come first
    and need no link) to maintenance and the network, without a reload."""
    status_source.document = nunukan_status()
    phone = open_screen(viewport=PHONE, phone=True)
    phone.open()
    phone.page.wait_for_selector("[data-link]")
    nav = phone.page.get_by_role("navigation")
    assert nav.get_by_role("link").all_inner_texts() == ["Pemeliharaan (1)", "Jaringan"]
    nav.get_by_role("link", name="Jaringan").tap()
    phone.page.wait_for_function(
        "() => Math.abs(document.getElementById('network').getBoundingClientRect().top) < 2",
        timeout=5_000,
    )
    assert phone.still_same_document()
    assert phone.page.evaluate("window.scrollY") > 1000


def test_turning_a_tablet_reorders_without_a_reload(
    open_screen: Callable[..., Screen], status_source: StandInDaemon
) -> None:
    status_source.document = nunukan_status()
    tablet = open_screen(viewport={"width": 1280, "height": 800}, phone=True)
    tablet.open()
    tablet.page.wait_for_selector(".tile")
    assert tablet.page.eval_on_selector(".tile", "t => t.dataset.site") == "kec-nunukan"
    tablet.page.set_viewport_size({"width": 800, "height": 1280})
    tablet.page.wait_for_function(
        "() => document.querySelector('.tile').dataset.site === 'kec-krayan'", timeout=5_000
    )
    assert tablet.still_same_document()


def test_the_wall_keeps_the_configured_order(wall: Screen, status_source: StandInDaemon) -> None:
    """On the wall an office keeps its place: the NOC learns where Krayan sits."""
    status_source.document = nunukan_status()
    wall.open()
    wall.page.wait_for_selector('[data-outage="kec-krayan--kab"]')
    shown = wall.page.eval_on_selector_all(".tile", "tiles => tiles.map(t => t.dataset.site)")
    configured = [site["id"] for site in nunukan_status()["sites"] if site["kind"] == "kecamatan"]
    assert shown == configured
    assert len(wall.page.evaluate(_LEFTS, ".tile")) == 4, "four columns of offices on the wall"


def test_the_wall_holds_long_names(wall: Screen, status_source: StandInDaemon) -> None:
    """Long names wrap or end in an ellipsis inside their box; no part of the wall scrolls
    sideways."""
    status_source.document = long_names(nunukan_status())
    wall.open()
    wall.page.wait_for_selector('[data-outage="kec-lumbis-ogong--kab"]')
    sideways = wall.page.eval_on_selector_all(
        "main > section", "all => all.filter(s => s.scrollWidth > s.clientWidth).map(s => s.id)"
    )
    assert sideways == []
    assert wall.page.evaluate("document.documentElement.scrollWidth") <= WALL["width"]


def test_a_wall_part_that_scrolls_scrolls_by_keyboard(
    open_screen: Callable[..., Screen], status_source: StandInDaemon
) -> None:
    """On a desk screen the network does not fit: it scrolls, by keyboard too. On the wall it
    fits, and is no tab stop."""
    status_source.document = nunukan_status()
    desk = open_screen(viewport=DESK)
    desk.open()
    desk.page.wait_for_selector("[data-link]")
    assert desk.page.get_attribute("#network", "tabindex") == "0"
    desk.page.focus("#network")
    desk.page.keyboard.press("PageDown")
    desk.page.wait_for_function(
        "() => document.getElementById('network').scrollTop > 0", timeout=5_000
    )
    desk.page.set_viewport_size(WALL)
    desk.page.wait_for_function(
        "() => !document.getElementById('network').hasAttribute('tabindex')", timeout=5_000
    )


def test_landmarks_and_headings(wall: Screen, status_source: StandInDaemon) -> None:
    """What a screen reader walks: banner, main, footer; one h1 naming the agent; the
    network's offices as headings below their kabupaten; the language button in its language."""
    status_source.document = nunukan_status()
    wall.open()
    wall.page.wait_for_selector("[data-link]")
    for role in ("banner", "main", "contentinfo"):
        assert wall.page.get_by_role(role).count() == 1, role
    assert wall.page.get_by_role("heading", level=1).inner_text().endswith("kab-nunukan")
    assert wall.page.get_by_role("heading", level=3, name="Disdukcapil Kabupaten Nunukan").count()
    assert wall.page.get_by_role("heading", level=4, name="Krayan", exact=True).count() == 1
    button = wall.page.get_by_role("button", name="English")
    assert button.get_attribute("lang") == "en"


# Rules whose findings axe rates only moderate, but which are what the page promises everyone:
# landmarks around all content, one main, an h1, headings in order.
REQUIRED_RULES = frozenset(
    {"region", "landmark-one-main", "page-has-heading-one", "heading-order", "landmark-unique"}
)
SCREENS = {"wall": (WALL, False), "desk": (DESK, False), "phone": (PHONE, True)}


@pytest.mark.parametrize("document", ["incident", "calm"])
@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("screen", ["wall", "desk", "phone"])
def test_axe_finds_nothing_serious(
    open_screen: Callable[..., Screen],
    status_source: StandInDaemon,
    screen: str,
    language: str,
    document: str,
) -> None:
    """axe-core on the page as drawn: a bad morning (down, unreachable, degraded, maintenance,
    flapping, long names) and a calm one (every link up: the zero counts), in both languages,
    on the wall, a desk screen (whose parts scroll) and a phone."""
    incident = long_names(nunukan_status())
    incident["agent"]["language"] = language
    status_source.document = incident if document == "incident" else all_up(incident)
    viewport, phone = SCREENS[screen]
    checked = open_screen(viewport=viewport, phone=phone, bypass_csp=True)
    checked.open()
    checked.page.wait_for_selector(f"html[lang={language}] [data-link]")
    found = axe_violations(checked.page)
    failing = [v for v in found if v.impact in BLOCKING_IMPACTS or v.rule in REQUIRED_RULES]
    assert failing == [], f"axe-core on the {screen} ({language}, {document}):\n" + report(failing)
    assert checked.errors == []


@pytest.mark.parametrize("screen", ["wall", "phone"])
def test_a_stale_page_stays_readable(
    open_screen: Callable[..., Screen], status_source: StandInDaemon, screen: str
) -> None:
    """Stale data is shown grey under a banner, and still passes axe: people read it."""
    status_source.document = nunukan_status()
    viewport, phone = SCREENS[screen]
    checked = open_screen(viewport=viewport, phone=phone, bypass_csp=True)
    checked.open("?refresh=1")
    checked.page.wait_for_selector('[data-outage="kec-krayan--kab"]')
    status_source.broken = True
    checked.page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
    failing = [v for v in axe_violations(checked.page) if v.impact in BLOCKING_IMPACTS]
    assert failing == [], f"axe-core on the stale {screen}:\n" + report(failing)


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
    """The real daemon's document, after a real cut: on the wall, and on a phone (one column,
    nothing sideways, nothing serious for axe-core)."""
    lab, base = lab_daemon
    wall = Screen(browser, base)
    phone = Screen(browser, base, viewport=PHONE, phone=True, bypass_csp=True)
    try:
        wall.open("?refresh=1")
        _link(wall, "kec-krayan--kab", "up", timeout=20)
        lab.cut("kec-krayan--kab")
        _link(wall, "kec-krayan--kab", "down", timeout=20)
        assert wall.still_same_document()
        ARTIFACTS.mkdir(exist_ok=True)
        wall.page.screenshot(path=str(ARTIFACTS / "status-page-lab.png"))
        assert wall.foreign_requests() == []

        phone.open()
        _link(phone, "kec-krayan--kab", "down")
        assert phone.page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
            PHONE["width"],
            PHONE["width"],
        ]
        phone.page.screenshot(path=str(ARTIFACTS / "status-page-lab-phone.png"), full_page=True)
        failing = [v for v in axe_violations(phone.page) if v.impact in BLOCKING_IMPACTS]
        assert failing == [], "axe-core on the lab daemon's page, phone:\n" + report(failing)
    finally:
        wall.context.close()
        phone.context.close()

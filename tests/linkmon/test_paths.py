"""Per-link paths: comparison, the SQLite book, rate limits, metrics, and a path change seen
when the lab reroutes Krayan over its Starlink backup."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from linkmon.config import Config, parse_config
from linkmon.lab import Lab
from linkmon.pathchange import PathChange, PathReport, compare, where
from linkmon.paths import PathBook, PathLimits, PathWatch, open_book, trace_spec
from probes import ProbeSetupError
from probes.trace import Hop, Reply, TraceResult, TraceSpec, trace
from tests.support.clock import FakeClock
from tests.support.krayan import DC, make_config
from tests.support.labs import shipped_lab
from tests.support.wait import wait_for

HUB = "198.19.0.18"  # the hub's end of Krayan's VPN link


def result(
    *path: str | None, reached: bool = True, at: float = 0.0, last: Reply = Reply.TIME_EXCEEDED
) -> TraceResult:
    hops = tuple(
        Hop(
            i + 1,
            a,
            0.001 if a else None,
            Reply.ECHO_REPLY
            if reached and i == len(path) - 1
            else last
            if i == len(path) - 1
            else Reply.TIME_EXCEEDED
            if a
            else None,
        )
        for i, a in enumerate(path)
    )
    return TraceResult(DC, "icmp", None, "198.18.30.8", hops, reached, "", at, 0.01, len(path))


# ------------------------------------------------------------------------------ comparing


def test_compare_finds_the_first_differing_hop() -> None:
    good = result(HUB, "198.19.0.2", DC)
    assert compare(good, result(HUB, "198.19.0.2", DC)) is None
    assert compare(good, result(HUB, None, DC)) is None  # a silent hop is no change
    assert compare(good, result("198.18.40.10", "198.19.0.2", DC)) == PathChange(
        1, HUB, "198.18.40.10", 3, 3
    )
    assert compare(good, result(HUB, "198.19.0.2", "198.19.9.9", DC)) == PathChange(
        3, DC, "198.19.9.9", 3, 4
    )  # a longer path
    broken = result(HUB, reached=False, last=Reply.NET_UNREACHABLE)
    change = compare(good, broken)
    assert change == PathChange(2, "198.19.0.2", None, 3, 1)
    assert change.text("en") == (
        "path differs from the last good one from hop 2: was 198.19.0.2, now no answer (3 → 1 hops)"
    )
    assert change.text("id").startswith("jalur berbeda dari jalur baik terakhir mulai hop 2")
    assert where(broken, "en") == f"last answer from hop 1, {HUB} (network unreachable)"
    assert where(broken, "id") == f"jawaban terakhir dari hop 1, {HUB} (jaringan tak terjangkau)"
    assert where(good, "id") == f"sampai di {DC} pada hop 3"
    no_route = TraceResult(DC, "icmp", None, None, (), False, "no route from here")
    assert where(no_route, "en") == f"no route from here to {DC}"


def test_trace_follows_the_protocol_and_source_of_the_links_probe(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert trace_spec(config.link("kec-krayan--dc")) == TraceSpec(DC)
    assert trace_spec(config.link("kec-krayan--kab")) == TraceSpec(DC, "tcp", 9000)
    # The IPv6 HTTP probe is skipped; the next one gives TCP to 443 from its source.
    assert trace_spec(config.link("kab-nunukan--dc")) == TraceSpec(
        DC, "tcp", 443, source="198.18.30.8"
    )
    assert trace_spec(config.link("kec-krayan--kab"), "udp", max_hops=4) == TraceSpec(
        DC, "udp", None, max_hops=4
    )


# ------------------------------------------------------------------------------ the book


def test_book_keeps_last_and_good_paths_and_the_changes(tmp_path: Path) -> None:
    book = PathBook(tmp_path / "state.db")
    try:
        assert book.good("kec-krayan--dc") is None
        first = result(HUB, DC, at=1.0)
        book.record(PathReport("kec-krayan--dc", "check", first, None, None))
        moved = result("198.18.40.10", DC, at=2.0)
        change = compare(first, moved)
        book.record(PathReport("kec-krayan--dc", "check", moved, first, change))
        broken = result(reached=False, at=3.0)
        book.record(PathReport("kec-krayan--dc", "down", broken, moved, compare(moved, broken)))
        assert book.good("kec-krayan--dc") == moved
        assert book.last("kec-krayan--dc") == broken
        assert book.changes() == [("kec-krayan--dc", 2.0, change)]
        for i in range(150):  # bounded: the newest 100, and the newest good one
            book.record(
                PathReport("kec-krayan--dc", "down", result(reached=False, at=4.0 + i), moved, None)
            )
        db = sqlite3.connect(tmp_path / "state.db")
        assert db.execute("SELECT count(*) FROM path_traces").fetchone()[0] == 101
        db.close()
        assert book.good("kec-krayan--dc") == moved
    finally:
        book.close()
    reader = PathBook(tmp_path / "state.db", readonly=True)
    assert reader.good("kec-krayan--dc") == moved
    reader.close()


# ------------------------------------------------------------------------------ the watch


class FakeTracer:
    """Answers with queued results after ``delay`` seconds of the test's clock; counts how many
    traces run at once. Stands in for raw-socket traceroute where the path is not the point."""

    def __init__(self, clock: FakeClock | None = None, delay: float = 0.0) -> None:
        self.clock = clock or FakeClock()
        self.delay = delay
        self.calls: list[TraceSpec] = []
        self.running = self.most = 0
        self.answers: list[TraceResult] = []

    async def __call__(self, spec: TraceSpec) -> TraceResult:
        self.calls.append(spec)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.clock.sleep(self.delay)
            if self.answers:
                return self.answers.pop(0)
            return result(HUB, spec.target, at=self.clock.time())
        finally:
            self.running -= 1


async def advance_until(
    clock: FakeClock, condition: Callable[[], bool], step: float, limit: float
) -> float:
    """Advance ``clock`` by ``step`` until ``condition`` holds; the fake seconds it took."""
    waited = 0.0
    while not condition():
        assert waited < limit, f"condition not met within {limit} s of the fake clock"
        await clock.advance(step)
        waited += step
    return waited


def _sample(registry: CollectorRegistry, name: str, link: str) -> float | None:
    labels = {
        "agent": "kec-krayan",
        "link": link,
        "from": "kec-krayan",
        "to": "pusat-dc",
        "network": "vpn",
        "kabupaten": "kab-nunukan",
    }
    return registry.get_sample_value(name, labels)


async def test_a_down_link_is_traced_at_once_and_a_flapping_one_within_the_limit(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    tracer = FakeTracer(clock)
    reports: list[PathReport] = []
    watch = PathWatch(
        make_config(tmp_path),
        CollectorRegistry(),
        tracer=tracer,
        limits=PathLimits(per_window=2, window=300, tick=1.0),
        clock=clock,
        on_trace=reports.append,
    )
    await watch.start()
    try:
        for _ in range(5):  # flapping: down, up, down, ...
            watch.link_changed("kec-krayan--dc", "down")
            await clock.advance(0.05)
            watch.link_changed("kec-krayan--dc", "up")
        assert len(tracer.calls) == 2, "at most 2 traces per 5 minutes"
        watch.link_changed("kec-krayan--dc", "down")  # over the limit: waits
        await clock.advance(299.0)
        assert len(tracer.calls) == 2
        # the waiting down trace runs at the first tick once the first trace is 5 minutes old
        took = await advance_until(clock, lambda: len(reports) == 3, 1.0, 5.0)
        assert took <= 2.0
        assert len(tracer.calls) == 3 and [r.reason for r in reports] == ["down"] * 3
    finally:
        await watch.stop()


async def test_checks_run_for_up_links_and_at_most_n_at_once(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    clock = FakeClock()
    tracer = FakeTracer(clock, delay=0.1)
    states = {"kec-krayan--dc": "up", "kec-krayan--kab": "degraded", "kab-nunukan--dc": "up"}
    watch = PathWatch(
        config,
        CollectorRegistry(),
        tracer=tracer,
        clock=clock,
        limits=PathLimits(concurrent=2, tick=0.5, check_every=60),
        link_states=lambda: states,
    )
    await watch.start()
    try:
        await advance_until(clock, lambda: len(tracer.calls) == 3 and not tracer.running, 0.1, 5)
        assert tracer.most == 2
        await clock.advance(55)
        assert len(tracer.calls) == 3, "not again before check_every"
        await advance_until(clock, lambda: len(tracer.calls) == 6, 0.5, 10)
    finally:
        await watch.stop()
    states = {"kec-krayan--dc": "down"}
    quiet = FakeTracer(clock)
    watch = PathWatch(
        config,
        CollectorRegistry(),
        tracer=quiet,
        clock=clock,
        limits=PathLimits(tick=0.5),
        link_states=lambda: states,
    )
    await watch.start()
    await clock.advance(60)
    await watch.stop()
    assert quiet.calls == [], "no checks on a link that is down"


def many_links(count: int) -> Config:
    lines = [
        "agent: {name: kab-nunukan, timezone: Asia/Makassar}",
        "sites:",
        "  - {id: kab-nunukan, kind: kabupaten, name: Kabupaten Nunukan}",
    ]
    lines += [
        f"  - {{id: kec-{i}, kind: kecamatan, parent: kab-nunukan, name: Kec {i}}}"
        for i in range(count)
    ]
    lines.append("links:")
    lines += [
        f"  - {{id: kec-{i}--kab, from: kec-{i}, to: kab-nunukan, network: m2m, "
        f"probes: [{{kind: icmp, target: 198.18.9.{i + 1}}}]}}"
        for i in range(count)
    ]
    return parse_config("\n".join(lines))


async def test_checks_are_paced_and_never_queue_a_task_per_link() -> None:
    """A national agent must not start 10,000 traces (or tasks) at once: checks start at the
    budget's rate, at most ``concurrent`` at a time, and each link is learnt once."""
    config = many_links(60)
    clock = FakeClock()
    tracer = FakeTracer(clock, delay=0.01)
    watch = PathWatch(
        config,
        CollectorRegistry(),
        tracer=tracer,
        clock=clock,
        limits=PathLimits(concurrent=4, tick=0.05, check_rate=40, check_every=3600),
        link_states=lambda: dict.fromkeys((link.id for link in config.links), "up"),
    )
    most_tasks = 0

    def traces_alive() -> int:
        return sum(task.get_name().startswith("trace ") for task in asyncio.all_tasks())

    await watch.start()
    try:
        for _ in range(100):
            await clock.advance(0.005)
            most_tasks = max(most_tasks, traces_alive())
        # 0.5 s at 40 a second, after a first burst of 4 (the budget's starting credit)
        assert 4 + 0.5 * 40 - 4 <= len(tracer.calls) <= 4 + 0.5 * 40 + 4, len(tracer.calls)
        await advance_until(clock, lambda: len(tracer.calls) == 60, 0.05, 5)
        await clock.advance(600)
        assert len(tracer.calls) == 60, "each link once, then not before check_every"
        assert len({spec.target for spec in tracer.calls}) == 60
        assert most_tasks <= 4
    finally:
        await watch.stop()
    # The budget grows with the links: 60 links re-traced every 0.5 s need 120 a second.
    busy = FakeTracer(clock)
    watch = PathWatch(
        config,
        CollectorRegistry(),
        tracer=busy,
        clock=clock,
        limits=PathLimits(concurrent=4, tick=0.05, check_rate=1, check_every=0.5),
        link_states=lambda: dict.fromkeys((link.id for link in config.links), "up"),
    )
    await watch.start()
    try:
        await clock.advance(1.0)
    finally:
        await watch.stop()
    assert len(busy.calls) >= 60, "the rate follows links / check_every, not check_rate"


async def test_path_changes_while_up_are_counted_stored_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    registry = CollectorRegistry()
    tracer = FakeTracer()
    watch = PathWatch(config, registry, book=PathBook(tmp_path / "state.db"), tracer=tracer)
    link = "kec-krayan--dc"
    try:
        tracer.answers = [
            result(HUB, DC, at=1.0),
            result(HUB, DC, at=2.0),
            result("198.18.40.10", "198.19.0.2", DC, at=3.0),
            result(reached=False, at=4.0),
        ]
        first = await watch.trace_now(link, "check")
        assert first is not None and first.change is None and first.good is None
        assert _sample(registry, "linkmon_path_hops", link) == 2
        assert _sample(registry, "linkmon_path_changes_total", link) == 0
        assert (await watch.trace_now(link, "check")) is not None
        watch.limits = PathLimits(per_window=10)
        longer = await watch.trace_now(link, "check")
        assert longer is not None and longer.change == PathChange(1, HUB, "198.18.40.10", 2, 3)
        assert _sample(registry, "linkmon_path_hops", link) == 3
        assert _sample(registry, "linkmon_path_changes_total", link) == 1
        down = await watch.trace_now(link, "down")
        assert down is not None and down.change is not None
        assert _sample(registry, "linkmon_path_changes_total", link) == 1, "down is no change"
        assert watch.report(link) == down
    finally:
        await watch.stop()
    again = CollectorRegistry()
    restarted = PathWatch(config, again, book=PathBook(tmp_path / "state.db"))
    try:
        assert _sample(again, "linkmon_path_hops", link) == 3  # the good path, from disk
        assert restarted.book is not None and len(restarted.book.changes(link)) == 1
    finally:
        await restarted.stop()


async def test_no_raw_sockets_turns_traces_off_once_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(spec: TraceSpec) -> TraceResult:
        raise ProbeSetupError("traceroute needs raw sockets")

    watch = PathWatch(make_config(tmp_path), CollectorRegistry(), tracer=refused)
    try:
        assert await watch.trace_now("kec-krayan--dc") is None
        assert await watch.trace_now("kec-krayan--kab") is None  # off: not even tried
        assert [r.message for r in caplog.records].count(
            "path traces are off: traceroute needs raw sockets"
        ) == 1
    finally:
        await watch.stop()


async def test_a_reload_forgets_removed_links(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    watch = PathWatch(make_config(tmp_path), registry, tracer=FakeTracer())
    try:
        await watch.trace_now("kec-krayan--dc", "check")
        assert _sample(registry, "linkmon_path_hops", "kec-krayan--dc") == 2
        watch.reconfigure(parse_config(_yaml_without_first_link(tmp_path)))
        assert _sample(registry, "linkmon_path_hops", "kec-krayan--dc") is None
        assert await watch.trace_now("kec-krayan--dc") is None
    finally:
        await watch.stop()


def _yaml_without_first_link(tmp_path: Path) -> str:
    text = (tmp_path / "config.yml").read_text()
    start = text.index("  - {id: kec-krayan--dc")
    return text[:start] + text[text.index("  - {id: kec-krayan--kab") :]


# ------------------------------------------------------------------------------ the lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with shipped_lab(f"pa{os.getpid() % 1_000_000}") as lab:
        yield lab


@pytest.fixture()
async def krayan_watch(
    lab: Lab, tmp_path: Path
) -> AsyncIterator[tuple[PathWatch, CollectorRegistry]]:
    """A watch whose traces run inside Krayan's namespace, towards the DC."""
    executor: ThreadPoolExecutor = lab.executor("kec-krayan")

    async def in_krayan(spec: TraceSpec) -> TraceResult:
        return await asyncio.wrap_future(executor.submit(asyncio.run, trace(spec)))

    registry = CollectorRegistry()
    watch = PathWatch(
        make_config(tmp_path),
        registry,
        book=PathBook(tmp_path / "state.db"),
        tracer=in_krayan,
        limits=PathLimits(per_window=10),
    )
    try:
        yield watch, registry
    finally:
        await watch.stop()
        executor.shutdown()
        lab.reroute(False)
        lab.restore_all()


@pytest.mark.lab
@pytest.mark.root
async def test_reroute_over_starlink_is_a_path_change_and_a_cut_uplink_shows_where(
    lab: Lab, krayan_watch: tuple[PathWatch, CollectorRegistry]
) -> None:
    watch, registry = krayan_watch
    link = "kec-krayan--dc"
    first = await watch.trace_now(link, "check")
    assert first is not None and first.trace.path == (HUB, DC), first
    lab.reroute()
    lab.cut("kec-krayan--kab")  # the VPN: Krayan now goes over Starlink
    moved = await watch.trace_now(link, "check")
    assert moved is not None and moved.trace.reached, moved
    assert moved.change == PathChange(1, HUB, "198.18.40.10", 2, 2)
    assert _sample(registry, "linkmon_path_changes_total", link) == 1
    lab.restore("kec-krayan--kab")  # rerouting on: back over the VPN
    back = await watch.trace_now(link, "check")
    assert back is not None and back.change == PathChange(1, "198.18.40.10", HUB, 2, 2)
    assert _sample(registry, "linkmon_path_changes_total", link) == 2
    lab.reroute(False)  # static routes: Krayan still sends to the hub, the hub has no way on
    lab.cut("kab-nunukan--dc")
    watch.link_changed(link, "down")
    await wait_for(
        lambda: getattr(watch.report(link), "reason", "") == "down", 30, "the trace of the cut"
    )
    report = watch.report(link)
    assert report is not None
    assert report.text("en") == (
        f"last answer from hop 1, {HUB} (network unreachable); path "
        f"differs from the last good one from hop 2: was {DC}, now no "
        "answer (2 → 1 hops)"
    )
    assert _sample(registry, "linkmon_path_changes_total", link) == 2
    assert watch.book is not None and [c for _, _, c in watch.book.changes(link)] == [
        moved.change,
        back.change,
    ]


def test_a_database_that_cannot_be_opened_leaves_the_watch_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    assert open_book(tmp_path / "not-a-dir" / "state.db") is None
    assert "cannot keep link paths" in caplog.text
    memory = open_book(":memory:")
    assert memory is not None
    memory.record(PathReport("kec-krayan--dc", "check", result(HUB, DC), None, None))
    assert memory.good("kec-krayan--dc") == result(HUB, DC)
    memory.close()

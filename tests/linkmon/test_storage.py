"""SQLite storage on real files: history, outbox, crash safety and clear errors."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from linkmon.alerts.model import Alert
from linkmon.state import Changes, LinkSnapshot, LinkState, ProbeSnapshot, Transition
from linkmon.storage import Storage, StorageError, snapshot_from_json, snapshot_json
from tests.support.alerting import SILENT, network, rounds
from tests.support.loopback import nobody_dir
from tests.support.staged import Staged

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_740_798_000.0


def moved(
    link: str,
    old: LinkState,
    new: LinkState,
    at: float,
    cause: str = "path_down",
    site: str = "kec-krayan",
) -> Transition:
    return Transition(
        link=link, old=old, new=new, at=at, cause=cause, detail="icmp: timeout", site=site
    )


def alert(link: str, at: float, resolved: float | None = None) -> Alert:
    firing = Alert.create(
        f"LinkDown/{link}",
        f"link:{link}",
        {"alertname": "LinkDown", "link": link, "severity": "critical"},
        {"summary": f"{link} putus"},
        starts_at=at,
    )
    return firing if resolved is None else firing.resolve(resolved)


UP, DOWN, UNREACHABLE = LinkState.UP, LinkState.DOWN, LinkState.UNREACHABLE


def test_wal_mode_and_schema(tmp_path: Path) -> None:
    with Storage(tmp_path / "state.db"):
        pass
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"link_state", "transitions", "outages", "firing", "outbox"} <= tables
    db.close()


def test_outage_history_opens_and_closes_with_transitions(tmp_path: Path) -> None:
    with Storage(tmp_path / "state.db") as store:
        store.record(Changes(transitions=(moved("kec-krayan--kab", UP, DOWN, T0),)), T0)
        store.record(
            Changes(
                transitions=(
                    moved("kec-krayan--kab", DOWN, UNREACHABLE, T0 + 60, "upstream:kab--dc"),
                )
            ),
            T0,
        )
        store.record(
            Changes(
                transitions=(
                    moved("kec-lumbis--kab", UP, DOWN, T0 + 100, "service_refused", "kec-lumbis"),
                )
            ),
            T0,
        )
        store.record(
            Changes(transitions=(moved("kec-krayan--kab", UNREACHABLE, UP, T0 + 300),)), T0
        )
        everything = store.outages(T0 - 10, T0 + 1000)
        assert [(o.link, o.state, o.cause, o.start, o.end) for o in everything] == [
            ("kec-krayan--kab", DOWN, "path_down", T0, T0 + 300),
            ("kec-lumbis--kab", DOWN, "service_refused", T0 + 100, None),
        ]
        # Overlap, not containment: an outage that started before the range still counts.
        assert [o.link for o in store.outages(T0 + 200, T0 + 250)] == [
            "kec-krayan--kab",
            "kec-lumbis--kab",
        ]
        assert [o.link for o in store.outages(T0 + 301, T0 + 400)] == ["kec-lumbis--kab"]
        assert store.outages(T0 + 10, T0 + 20, link="kec-lumbis--kab") == []
        assert [o.link for o in store.outages(0, T0 * 2, site="kec-lumbis")] == ["kec-lumbis--kab"]
        assert [t.new for t in store.transitions(0, T0 * 2, link="kec-krayan--kab")] == [
            DOWN,
            UNREACHABLE,
            UP,
        ]


def test_firing_book_and_outbox_follow_the_alerts(tmp_path: Path) -> None:
    with Storage(tmp_path / "state.db") as store:
        fire = alert("kec-krayan--kab", T0)
        entries = store.record(Changes(), T0, alerts=(fire,), routes=lambda a: ["oncall#1", "am#2"])
        assert [(e.target, e.alert) for e in entries] == [("oncall#1", fire), ("am#2", fire)]
        assert store.load_firing() == [fire]
        resolve = fire.resolve(T0 + 60)
        store.record(Changes(), T0 + 60, alerts=(resolve,), routes=lambda a: ["oncall#1"])
        assert store.load_firing() == []
        assert [(e.target, e.alert.status) for e in store.pending()] == [
            ("oncall#1", "firing"),
            ("am#2", "firing"),
            ("oncall#1", "resolved"),
        ]
        assert [e.alert.status for e in store.pending("oncall#1")] == ["firing", "resolved"]
        store.remove([entries[0].id])
        assert [e.alert.status for e in store.pending("oncall#1")] == ["resolved"]
        assert store.keep_targets(["oncall#1"]) == 1
        assert [e.target for e in store.pending()] == ["oncall#1"]


def test_link_snapshots_round_trip(tmp_path: Path) -> None:
    snap = LinkSnapshot(
        link="kec-krayan--kab",
        state=DOWN,
        since=T0,
        cause="path_down",
        detail="icmp: timeout",
        flapping=True,
        maintenance=None,
        upstream=("kab--dc",),
        loss=0.4,
        rtt=0.12,
        probes=(ProbeSnapshot("icmp", "198.18.10.2", False, 5, 0, T0, False, "timeout"),),
        flaps=(T0 - 60, T0),
    )
    with Storage(tmp_path / "state.db") as store:
        store.save_links([snap], T0)
        store.record(Changes(forgotten=("gone",)), T0)
    with Storage(tmp_path / "state.db") as store:
        assert store.load_links() == {"kec-krayan--kab": snap}


def test_snapshots_of_a_live_network_read_back_exactly() -> None:
    agent = network(links=2)
    rounds(agent, "kec-0--kab", SILENT, 4)
    snapshots = agent.net.snapshot().values()
    assert {s.state for s in snapshots} == {DOWN, LinkState.UNKNOWN}
    for snap in snapshots:
        assert snapshot_from_json(snapshot_json(snap)) == snap


def test_state_of_each_link_at_a_moment_is_its_last_transition_before(tmp_path: Path) -> None:
    with Storage(tmp_path / "state.db") as store:
        store.record(Changes(transitions=(moved("a", UP, DOWN, T0), moved("b", UP, DOWN, T0))), T0)
        store.record(Changes(transitions=(moved("a", DOWN, UNREACHABLE, T0 + 10),)), T0)
        store.record(Changes(transitions=(moved("a", UNREACHABLE, UP, T0 + 20),)), T0)
        assert store.states_at(T0) == {}
        assert store.states_at(T0 + 10) == {"a": DOWN, "b": DOWN}
        assert store.states_at(T0 + 15) == {"a": UNREACHABLE, "b": DOWN}
        assert store.states_at(T0 + 60) == {"a": UP, "b": DOWN}


WRITER = textwrap.dedent("""
    import sys, time
    from linkmon.alerts.model import Alert
    from linkmon.state import Changes, LinkState, Transition
    from linkmon.storage import Storage

    store = Storage(sys.argv[1])
    print("open", flush=True)
    n = 0
    while True:
        n += 1
        link = f"kec-{n % 50}--kab"
        t = Transition(link, LinkState.UP, LinkState.DOWN, time.time(), "path_down", "x" * 500,
                       "kec")
        a = Alert.create(f"LinkDown/{link}", f"link:{link}",
                         {"alertname": "LinkDown", "link": link}, {"summary": "y" * 2000},
                         starts_at=time.time())
        store.record(Changes(transitions=(t,)), time.time(), alerts=(a,), routes=lambda a: ["t1"])
""")


def test_kill_9_mid_write_leaves_database_intact_and_steps_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    rng = random.Random(9)
    for _ in range(5):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "open"
            time.sleep(rng.uniform(0.1, 0.4))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
            if writer.stdout is not None:
                writer.stdout.close()
    with Storage(path) as store:
        assert store.integrity_check() == "ok"
        transitions = len(store.transitions(0, time.time() + 1))
        assert transitions > 20  # the writer really was writing when it was killed
        # Each step wrote one transition, one outbox entry and one firing row, or nothing.
        assert len(store.pending()) == transitions
        assert len(store.load_firing()) == min(50, transitions)


def test_full_disk_is_a_clear_error_and_the_step_is_not_half_written(tmp_path: Path) -> None:
    with Storage(tmp_path / "state.db") as store:
        raw = store._db  # noqa: SLF001 - the one way to give this single file a size cap
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count={pages}")
        big = Alert.create(
            "LinkDown/x",
            "link:x",
            {"alertname": "LinkDown"},
            {"description": "z" * 8000},
            starts_at=T0,
        )
        step = Changes(transitions=(moved("x", UP, DOWN, T0),))
        with pytest.raises(StorageError, match="disk is full: free space"):
            store.record(step, T0, alerts=(big,), routes=lambda a: ["t1"])
        assert store.transitions(0, T0 * 2) == []
        raw.execute("PRAGMA max_page_count=1073741823")
        store.record(step, T0, alerts=(big,), routes=lambda a: ["t1"])
        assert len(store.transitions(0, T0 * 2)) == 1


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="not a linkmon database"):
        Storage(path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does the directory exist"):
        Storage(tmp_path / "nowhere" / "state.db")


def test_history_reader_alongside_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Storage(path) as daemon:
        daemon.record(Changes(transitions=(moved("kec-krayan--kab", UP, DOWN, T0),)), T0)
        with Storage(path, readonly=True) as reader:
            assert [o.link for o in reader.outages(0, T0 * 2)] == ["kec-krayan--kab"]
            with pytest.raises(StorageError, match="read-only"):
                reader.save_links([LinkSnapshot("kec-krayan--kab", DOWN, T0, "path_down")], T0)
        daemon.record(Changes(transitions=(moved("kec-krayan--kab", DOWN, UP, T0 + 5),)), T0)
    with pytest.raises(StorageError, match="no such state database"):
        Storage(tmp_path / "absent.db", readonly=True)


OPEN_AS_NOBODY = textwrap.dedent("""
    import sys
    from linkmon.storage import Storage, StorageError
    try:
        Storage(sys.argv[1])
    except StorageError as exc:
        print(exc)
    else:
        print("opened")
""")


@pytest.mark.root
@pytest.mark.parametrize("existing", [False, True])
def test_read_only_state_directory_is_a_clear_error(
    existing: bool, staged_for_nobody: Staged
) -> None:
    with nobody_dir("linkmon-storage-") as home:
        state = home / "state"
        state.mkdir()
        path = state / "linkmon.db"
        if existing:
            Storage(path).close()
            for leftover in state.glob("linkmon.db-*"):
                leftover.unlink()
            path.chmod(0o444)
        state.chmod(0o555)
        result = staged_for_nobody.run(["-c", OPEN_AS_NOBODY, str(path)])
    message = result.stdout.strip()
    assert str(path) in message, result.stderr
    assert "read-only" in message or "writable by the linkmon user" in message, message

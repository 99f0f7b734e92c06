"""SQLite storage (``storage.path``): link state, outage history and the alert outbox.

One write transaction per state-machine step (:meth:`Storage.record`) holds the transitions,
the changed link snapshots, the firing-alert book and the outbox entries together: after a
``kill -9`` either all of a step is on disk or none of it, so linkmon never pages twice for
an outage it already alerted and never forgets a resolve it owes. The outbox reads and
forgets its entries here too (:class:`~linkmon.alerts.outbox.OutboxStore`).

WAL mode lets ``linkmon history`` and ``report`` read while the daemon writes;
``synchronous=FULL`` because the outbox must survive a power cut too (writes happen only on
changes, so the fsync costs nothing worth saving). Every SQLite failure surfaces as
:class:`StorageError` with the file and what to do about it, so the daemon can log it and go
on probing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from linkmon.alerts.model import Alert
from linkmon.alerts.outbox import OutboxEntry, OutboxStoreError, Routes
from linkmon.state import OUT, Changes, LinkSnapshot, LinkState, ProbeSnapshot, Transition

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS link_state (
    link TEXT PRIMARY KEY, state TEXT NOT NULL, since REAL NOT NULL, cause TEXT NOT NULL,
    snapshot TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY, link TEXT NOT NULL, site TEXT NOT NULL, old TEXT NOT NULL,
    new TEXT NOT NULL, at REAL NOT NULL, cause TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_at ON transitions (at);
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY, link TEXT NOT NULL, site TEXT NOT NULL, state TEXT NOT NULL,
    cause TEXT NOT NULL, detail TEXT NOT NULL, start REAL NOT NULL, end REAL);
CREATE INDEX IF NOT EXISTS outages_link ON outages (link, start);
CREATE INDEX IF NOT EXISTS outages_start ON outages (start);
CREATE TABLE IF NOT EXISTS firing (
    key TEXT PRIMARY KEY, alert TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, grp TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, alert TEXT NOT NULL,
    enqueued REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox (target, id);
"""

_HINTS = {
    sqlite3.SQLITE_READONLY: "the file or its directory is read-only: give the linkmon user "
    "write access (systemd: StateDirectory=)",
    sqlite3.SQLITE_FULL: "the disk is full: free space on the state volume",
    sqlite3.SQLITE_CANTOPEN: "cannot create or open the file: does the directory exist and "
    "is it writable by the linkmon user?",
    sqlite3.SQLITE_NOTADB: "this is not a linkmon database (or it is damaged): move it aside",
    sqlite3.SQLITE_CORRUPT: "the database is damaged: move it aside, linkmon starts a new one",
    sqlite3.SQLITE_BUSY: "another process holds a write lock on it for too long",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error (full, read-only or failing)",
    sqlite3.SQLITE_PERM: "permission denied: give the linkmon user write access",
}


class StorageError(OutboxStoreError):
    """The state database cannot be used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Outage:
    """A period a link was out of service (down, or unreachable behind a failed upstream).

    ``state`` and ``cause`` are those it started with; ``end`` is None while it lasts.
    """

    link: str
    site: str
    state: LinkState
    cause: str
    detail: str
    start: float
    end: float | None


class Storage:
    """The state database at ``path`` (created if missing); ``readonly`` for history/report."""

    def __init__(self, path: str | Path, *, readonly: bool = False, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._connect(readonly, timeout)

    def _connect(self, readonly: bool, timeout: float) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            if readonly:
                if not self.path.exists():
                    raise StorageError(f"{self.path}: no such state database")
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                db = sqlite3.connect(
                    uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
                )
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"{self.path}: cannot switch to WAL mode (got {mode}); "
                    "is it on a network file system?"
                )
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path}: written by a newer linkmon (schema {version}, "
                    f"this one knows {SCHEMA_VERSION})"
                )
            db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            return db
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise self._error("cannot open", exc) from None
        except StorageError:
            if db is not None:
                db.close()
            raise

    def _error(self, doing: str, exc: sqlite3.Error) -> StorageError:
        code = getattr(exc, "sqlite_errorcode", None)
        hint = _HINTS.get(code & 0xFF) if isinstance(code, int) else None
        return StorageError(f"{self.path}: {doing}: {exc}" + (f" — {hint}" if hint else ""))

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back as a whole on any failure."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise self._error(doing, exc) from None

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already (it does on a full disk)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error("cannot read", exc) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------

    def record(
        self,
        changes: Changes,
        now: float,
        *,
        alerts: Sequence[Alert] = (),
        routes: Routes = lambda alert: (),
    ) -> list[OutboxEntry]:
        """Store one step of the state machine atomically; returns the queued outbox entries.

        ``alerts``: the step's alert changes as composed; the firing book follows them, and
        each is queued once for every delivery target ``routes(alert)`` names.
        """
        entries: list[OutboxEntry] = []
        with self._write("cannot record state change") as db:
            for t in changes.transitions:
                db.execute(
                    "INSERT INTO transitions (link, site, old, new, at, cause, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (t.link, t.site, t.old.value, t.new.value, t.at, t.cause, t.detail),
                )
                was_out, is_out = t.old in OUT, t.new in OUT
                if is_out and not was_out:
                    db.execute(
                        "INSERT INTO outages (link, site, state, cause, detail, start) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (t.link, t.site, t.new.value, t.cause, t.detail, t.at),
                    )
                elif was_out and not is_out:
                    db.execute(
                        "UPDATE outages SET end = ? WHERE link = ? AND end IS NULL", (t.at, t.link)
                    )
            self._save(db, changes.links, now)
            for link in changes.forgotten:
                db.execute("DELETE FROM link_state WHERE link = ?", (link,))
                db.execute("UPDATE outages SET end = ? WHERE link = ? AND end IS NULL", (now, link))
            for alert in alerts:
                stored = alert.to_json()
                if alert.ends_at is None:
                    db.execute(
                        "INSERT OR REPLACE INTO firing (key, alert) VALUES (?, ?)",
                        (alert.key, stored),
                    )
                else:
                    db.execute("DELETE FROM firing WHERE key = ?", (alert.key,))
                for target in routes(alert):
                    cursor = db.execute(
                        "INSERT INTO outbox (target, grp, fingerprint, status, alert, enqueued) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (target, alert.group, alert.fingerprint, alert.status, stored, now),
                    )
                    entries.append(OutboxEntry(int(cursor.lastrowid or 0), target, alert, now))
        return entries

    def save_links(self, snapshots: Iterable[LinkSnapshot], now: float) -> None:
        """Store current link snapshots (counters too): call every few seconds, not per result."""
        with self._write("cannot save link state") as db:
            self._save(db, snapshots, now)

    @staticmethod
    def _save(db: sqlite3.Connection, snapshots: Iterable[LinkSnapshot], now: float) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO link_state (link, state, since, cause, snapshot, updated) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(s.link, s.state.value, s.since, s.cause, snapshot_json(s), now) for s in snapshots],
        )

    def load_links(self) -> dict[str, LinkSnapshot]:
        rows = self._read("SELECT snapshot FROM link_state")
        return {snap.link: snap for snap in (snapshot_from_json(str(r[0])) for r in rows)}

    def load_firing(self) -> list[Alert]:
        """Alerts firing when linkmon last stopped: their resolves are still owed."""
        return [Alert.from_json(str(r[0])) for r in self._read("SELECT alert FROM firing")]

    # -- outbox ------------------------------------------------------------------------------

    def pending(self, target: str | None = None) -> list[OutboxEntry]:
        """Undelivered entries, oldest first (all targets, or one)."""
        sql = "SELECT id, target, alert, enqueued FROM outbox"
        rows = self._read(
            sql + (" WHERE target = ? ORDER BY id" if target else " ORDER BY id"),
            (target,) if target else (),
        )
        return [
            OutboxEntry(int(r[0]), str(r[1]), Alert.from_json(str(r[2])), float(r[3])) for r in rows
        ]

    def remove(self, entry_ids: Iterable[int]) -> None:
        """Forget entries that were delivered or dropped."""
        ids = [(i,) for i in entry_ids]
        if ids:
            with self._write("cannot update the outbox") as db:
                db.executemany("DELETE FROM outbox WHERE id = ?", ids)

    def keep_targets(self, targets: Iterable[str]) -> int:
        """Drop entries for delivery targets a reload removed; returns how many went."""
        keep = sorted(set(targets))
        marks = ",".join("?" * len(keep))
        with self._write("cannot update the outbox") as db:
            cursor = db.execute(f"DELETE FROM outbox WHERE target NOT IN ({marks})", keep)
            return int(cursor.rowcount)

    # -- history -----------------------------------------------------------------------------

    def states_at(self, at: float) -> dict[str, LinkState]:
        """The state each link was left in by its last transition before ``at``."""
        rows = self._read(
            "SELECT link, new, max(id) FROM transitions WHERE at < ? GROUP BY link", (at,)
        )
        return {str(r[0]): LinkState(r[1]) for r in rows}

    def transitions(self, since: float, until: float, link: str | None = None) -> list[Transition]:
        sql = (
            "SELECT link, old, new, at, cause, detail, site FROM transitions "
            "WHERE at >= ? AND at < ?"
        )
        params: list[object] = [since, until]
        if link is not None:
            sql += " AND link = ?"
            params.append(link)
        return [
            Transition(
                link=str(r[0]),
                old=LinkState(r[1]),
                new=LinkState(r[2]),
                at=float(r[3]),
                cause=str(r[4]),
                detail=str(r[5]),
                site=str(r[6]),
            )
            for r in self._read(sql + " ORDER BY at, id", params)
        ]

    def outages(
        self, since: float, until: float, link: str | None = None, site: str | None = None
    ) -> list[Outage]:
        """Outages overlapping [since, until), oldest first; open ones have ``end`` None."""
        sql = (
            "SELECT link, site, state, cause, detail, start, end FROM outages "
            "WHERE start < ? AND (end IS NULL OR end > ?)"
        )
        params: list[object] = [until, since]
        if link is not None:
            sql += " AND link = ?"
            params.append(link)
        if site is not None:
            sql += " AND site = ?"
            params.append(site)
        return [
            Outage(
                link=str(r[0]),
                site=str(r[1]),
                state=LinkState(r[2]),
                cause=str(r[3]),
                detail=str(r[4]),
                start=float(r[5]),
                end=None if r[6] is None else float(r[6]),
            )
            for r in self._read(sql + " ORDER BY start, id", params)
        ]

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: ``ok`` when intact."""
        return str(self._read("PRAGMA integrity_check")[0][0])


def snapshot_json(snapshot: LinkSnapshot) -> str:
    """A link snapshot as the ``link_state`` table keeps it; :func:`snapshot_from_json` reads
    it back exactly."""
    data: dict[str, Any] = {
        "link": snapshot.link,
        "state": snapshot.state.value,
        "since": snapshot.since,
        "cause": snapshot.cause,
        "detail": snapshot.detail,
        "flapping": snapshot.flapping,
        "maintenance": snapshot.maintenance,
        "upstream": list(snapshot.upstream),
        "loss": snapshot.loss,
        "rtt": snapshot.rtt,
        "flaps": list(snapshot.flaps),
        "flapping_since": snapshot.flapping_since,
        "probes": [
            {
                "kind": p.kind,
                "target": p.target,
                "verdict": p.verdict,
                "failures": p.failures,
                "successes": p.successes,
                "last_at": p.last_at,
                "success": p.success,
                "failure": p.failure,
                "detail": p.detail,
                "duration": p.duration,
                "loss": p.loss,
                "rtt": p.rtt,
            }
            for p in snapshot.probes
        ],
    }
    return json.dumps(data, ensure_ascii=False)


def snapshot_from_json(raw: str) -> LinkSnapshot:
    data = json.loads(raw)
    probes = tuple(ProbeSnapshot(**p) for p in data.pop("probes"))
    return LinkSnapshot(
        **{
            **data,
            "state": LinkState(data["state"]),
            "upstream": tuple(data["upstream"]),
            "flaps": tuple(data["flaps"]),
            "probes": probes,
        }
    )

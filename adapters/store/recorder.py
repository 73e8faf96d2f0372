"""The event store's recorder: eventsourcing's ProcessRecorder interface over MySQL/MariaDB
and SQLite, on the eventsourcing-sqlalchemy datastore.

The extension's own recorders add events one ORM object at a time and leave the MySQL gaps
of DESIGN.md open; this subclass keeps their interface and datastore but replaces the hot
paths with plain DBAPI statements:

- appends take the one-row lock ``bss_append_head`` (``SELECT ... FOR UPDATE`` on MySQL,
  ``BEGIN IMMEDIATE`` on SQLite) and number events densely from it, so notification order is
  commit order and a reader that has seen id N has seen everything up to N;
- under that lock the append first reads what others committed since the writer last looked
  and refuses (:class:`AppendConflict`) when any of it touched an aggregate the decision read:
  optimistic concurrency over the whole read set, not only the written streams;
- events, idempotency keys and the head move in one transaction, multi-row inserts;
- tracking rows are locked while a projection batch commits (two workers cannot both
  commit the same notification).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy.exc
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    StoredEvent,
    Subscription,
    Tracking,
)
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyProcessRecorder, SQLAlchemyRecorder
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import sessionmaker

from adapters.store.engine import is_memory_sqlite, is_sqlite, is_transient, with_retry
from adapters.store.schema import LOG_NAME
from adapters.store.writer import WriterPool, db_time

EVENT_COLUMNS = "id, originator_id, originator_version, topic, state, recorded_at"


class AppendConflict(Exception):
    """Raised when aggregates a decision read were changed by another writer before it committed."""

    def __init__(self, conflicts: set[str], changed: list[tuple[str, int]], head: int) -> None:
        super().__init__(f"changed concurrently: {', '.join(sorted(conflicts)[:5])}")
        self.conflicts = conflicts
        self.changed = changed
        self.head = head


class DuplicateCommand(Exception):
    """Raised when an idempotency key of the append was committed by another writer first."""


@dataclass(frozen=True)
class CommandRecord:
    """An idempotency key with the outcome (JSON bytes) the command produced."""

    key: str
    outcome: bytes


@dataclass(frozen=True)
class StoredCommand:
    """A committed idempotency key: where its command's events end, what it answered, and
    when the ledger recorded it."""

    position: int
    outcome: bytes
    recorded_at: datetime


def _utc(value: Any) -> datetime:
    """A recorded_at column value (naive UTC; SQLite gives text) as an aware datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class AppendRequest:
    """One transaction's worth of a writer's work."""

    events: Sequence[StoredEvent]
    commands: Sequence[CommandRecord] = ()
    read_set: Mapping[str, int] = field(default_factory=dict)
    seen: int | None = None  # the writer's view is complete up to this notification id
    recorded_at: datetime | None = None
    erase_rider_keys: Sequence[str] = ()  # riders whose data keys go with this append


@dataclass(frozen=True)
class AppendResult:
    """Where the appended events landed, and what others had appended since ``seen``."""

    first_id: int
    last_id: int
    head_before: int
    changed: list[tuple[str, int]]


class LedgerRecorder(SQLAlchemyProcessRecorder):
    """Application, aggregate and tracking recorder for the ledger (see module docstring)."""

    def __init__(self, engine: Engine) -> None:
        datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))
        # Only the base initialiser: the extension's ORM record classes (UUID ids, BLOB state,
        # VARCHAR(32) names) are replaced by the tables in adapters/store/schema.py.
        SQLAlchemyRecorder.__init__(self, datastore)
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self.p = "?" if self.sqlite else "%s"
        self._memory_lock = threading.RLock() if is_memory_sqlite(str(engine.url)) else None
        self._writers = WriterPool(engine, self.sqlite)
        self._appended = threading.Condition()
        self.appends = 0

    # --- connections ----------------------------------------------------------------------

    @contextmanager
    def raw(self) -> Iterator[Any]:
        """A pooled DBAPI connection (pinged on checkout), invalidated if it broke."""
        lock = self._memory_lock
        if lock is not None:
            lock.acquire()
        try:
            conn = self.engine.raw_connection()
            try:
                yield conn
            except Exception as error:
                if is_transient(error):
                    conn.invalidate()
                else:
                    try:
                        conn.rollback()
                    except Exception:
                        conn.invalidate()
                raise
            finally:
                conn.close()
        finally:
            if lock is not None:
                lock.release()

    # --- appending ------------------------------------------------------------------------

    def append(self, request: AppendRequest) -> AppendResult:
        """Append events and idempotency keys atomically, or raise AppendConflict /
        DuplicateCommand / IntegrityError. Transient disconnects are retried (bounded)."""
        return with_retry(lambda: self._append_once(request))

    def _append_once(self, request: AppendRequest) -> AppendResult:
        recorded_at = db_time(request.recorded_at)
        stamp: Any = recorded_at.isoformat(" ") if self.sqlite else recorded_at
        p = self.p
        with self._locked():
            writer = self._writers.writer
            conn = writer.connection()
            cur = conn.cursor()
            try:
                head = writer.begin_locked(cur)
                changed: list[tuple[str, int]] = []
                if request.seen is not None and head > request.seen:
                    cur.execute(
                        "SELECT originator_id, originator_version FROM bss_events "
                        f"WHERE id > {p} AND id <= {p} ORDER BY id",
                        (request.seen, head),
                    )
                    changed = [(str(r[0]), int(r[1])) for r in cur.fetchall()]
                    conflicts = {oid for oid, _ in changed if oid in request.read_set}
                    if conflicts:
                        conn.rollback()
                        raise AppendConflict(conflicts, changed, head)
                rows = [
                    (head + i, str(e.originator_id), e.originator_version, e.topic, e.state, stamp)
                    for i, e in enumerate(request.events, start=1)
                ]
                last = head + len(rows)
                commands = [(c.key, last, c.outcome, stamp) for c in request.commands]
                writer.insert_and_commit(cur, rows, commands, last, list(request.erase_rider_keys))
            except AppendConflict:
                raise
            except Exception as error:
                writer.after_error(error)
                if _is_integrity_error(error):
                    message = str(error)
                    if "bss_events_stream" in message or "bss_events.originator" in message:
                        raise IntegrityError(message) from error
                    raise DuplicateCommand(message) from error
                raise
            finally:
                cur.close()
        self._notify_appended()
        return AppendResult(first_id=head + 1, last_id=last, head_before=head, changed=changed)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._memory_lock is None:
            yield
            return
        with self._memory_lock:
            yield

    def _notify_appended(self) -> None:
        with self._appended:
            self.appends += 1
            self._appended.notify_all()

    def wait_for_append(self, timeout: float) -> None:
        """Block until this process appends something, or the timeout passes."""
        with self._appended:
            self._appended.wait(timeout)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        """eventsourcing's interface: append events (and a tracking record, if given)."""
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self.insert_tracking(tracking)
        result = self.append(AppendRequest(events=stored_events))
        return list(range(result.first_id, result.last_id + 1))

    # --- idempotency keys -----------------------------------------------------------------

    def get_commands(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """Stored outcomes (position, outcome bytes) of the keys already committed."""
        return {k: (c.position, c.outcome) for k, c in self.get_stored_commands(keys).items()}

    def get_stored_commands(self, keys: Sequence[str]) -> dict[str, StoredCommand]:
        """The keys already committed, with their position, outcome and recording time."""
        if not keys:
            return {}
        marks = ", ".join([self.p] * len(keys))
        rows = self._query(
            "SELECT command_key, position, outcome, recorded_at FROM bss_commands "
            f"WHERE command_key IN ({marks})",
            list(keys),
        )
        return {str(r[0]): StoredCommand(int(r[1]), bytes(r[2]), _utc(r[3])) for r in rows}

    def next_value(self, name: str) -> int:
        """The next number of a named counter (gaps possible, never a repeat)."""
        p = self.p

        def work() -> int:
            with self._locked():
                writer = self._writers.writer
                conn = writer.connection()
                cur = conn.cursor()
                try:
                    writer.begin(cur)
                    cur.execute(
                        f"UPDATE bss_sequences SET value = value + 1 WHERE name = {p}", (name,)
                    )
                    if cur.rowcount == 0:
                        cur.execute(
                            f"INSERT INTO bss_sequences (name, value) VALUES ({p}, 1)", (name,)
                        )
                    cur.execute(f"SELECT value FROM bss_sequences WHERE name = {p}", (name,))
                    value = int(cur.fetchone()[0])
                    conn.commit()
                    return value
                except Exception as error:
                    writer.after_error(error)
                    if _is_integrity_error(error):  # two first uses raced: count on
                        return work()
                    raise
                finally:
                    cur.close()

        return with_retry(work)

    # --- riders' data keys (adapters/store/personal.py) -----------------------------------

    def get_rider_key(self, rider_id: str) -> tuple[int, bytes] | None:
        rows = self._query(
            f"SELECT scheme, key_material FROM bss_rider_keys WHERE rider_id = {self.p}",
            [rider_id],
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def put_rider_key(self, rider_id: str, scheme: int, material: bytes) -> bool:
        """Store a new rider key; False if the rider has one already (another writer's)."""
        p = self.p
        stamp: Any = db_time(None)
        if self.sqlite:
            stamp = stamp.isoformat(" ")

        def work() -> bool:
            with self._locked():
                writer = self._writers.writer
                conn = writer.connection()
                cur = conn.cursor()
                try:
                    cur.execute(
                        "INSERT INTO bss_rider_keys (rider_id, scheme, key_material, created_at) "
                        f"VALUES ({p}, {p}, {p}, {p})",
                        (rider_id, scheme, material, stamp),
                    )
                    conn.commit()
                    return True
                except Exception as error:
                    writer.after_error(error)
                    if _is_integrity_error(error):
                        return False
                    raise
                finally:
                    cur.close()

        return with_retry(work)

    # --- reading --------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read on this thread's writer connection (no pool ping per statement)."""

        def work() -> list[Any]:
            with self._locked():
                return self._writers.writer.query(sql, params)

        return with_retry(work)

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        p = self.p
        sql = (
            "SELECT originator_id, originator_version, topic, state FROM bss_events "
            f"WHERE originator_id = {p}"
        )
        params: list[Any] = [str(originator_id)]
        if gt is not None:
            sql += f" AND originator_version > {p}"
            params.append(gt)
        if lte is not None:
            sql += f" AND originator_version <= {p}"
            params.append(lte)
        sql += " ORDER BY originator_version" + (" DESC" if desc else "")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            StoredEvent(
                originator_id=r[0], originator_version=int(r[1]), topic=r[2], state=bytes(r[3])
            )
            for r in self._query(sql, params)
        ]

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Every event of several aggregates in one query, grouped by aggregate, in order."""
        found: dict[str, list[StoredEvent]] = {oid: [] for oid in originator_ids}
        if not originator_ids:
            return found
        marks = ", ".join([self.p] * len(originator_ids))
        rows = self._query(
            "SELECT originator_id, originator_version, topic, state FROM bss_events "
            f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
            list(originator_ids),
        )
        for r in rows:
            found[str(r[0])].append(
                StoredEvent(
                    originator_id=r[0], originator_version=int(r[1]), topic=r[2], state=bytes(r[3])
                )
            )
        return found

    def streams_between(self, after: int, upto: int) -> set[str]:
        """The streams appended to by the events after ``after`` up to ``upto``."""
        rows = self._query(
            f"SELECT DISTINCT originator_id FROM bss_events WHERE id > {self.p} AND id <= {self.p}",
            [after, upto],
        )
        return {str(r[0]) for r in rows}

    def max_notification_id(self) -> int | None:
        rows = self._query(f"SELECT last_id FROM bss_append_head WHERE name = {self.p}", [LOG_NAME])
        if not rows:
            return None
        return int(rows[0][0]) or None

    def head(self) -> int:
        """The id of the last committed event (0 when the log is empty)."""
        return self.max_notification_id() or 0

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        p = self.p
        clauses: list[str] = []
        params: list[Any] = []
        if start is not None:
            clauses.append(f"id {'>=' if inclusive_of_start else '>'} {p}")
            params.append(start)
        if stop is not None:
            clauses.append(f"id <= {p}")
            params.append(stop)
        if topics:
            clauses.append(f"topic IN ({', '.join([p] * len(topics))})")
            params.extend(topics)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT id, originator_id, originator_version, topic, state FROM bss_events"
            f"{where} ORDER BY id LIMIT {int(limit)}",
            params,
        )
        return [
            Notification(
                id=int(r[0]),
                originator_id=r[1],
                originator_version=int(r[2]),
                topic=r[3],
                state=bytes(r[4]),
            )
            for r in rows
        ]

    def select_rows(self, after: int, limit: int) -> list[tuple[int, str, int, str, bytes, Any]]:
        """Raw event rows after a position, for bulk readers (projection catch-up, replay)."""
        rows = self._query(
            f"SELECT {EVENT_COLUMNS} FROM bss_events "
            f"WHERE id > {self.p} ORDER BY id LIMIT {int(limit)}",
            [after],
        )
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bytes(r[4]), r[5]) for r in rows]

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[Any]:
        from adapters.store.subscription import PollingSubscription

        return PollingSubscription(self, gt=gt, topics=topics)

    # --- tracking -------------------------------------------------------------------------

    @contextmanager
    def tracked(self, name: str) -> Iterator[tuple[Connection, int]]:
        """A transaction holding the lock on projection ``name``'s position: yields the
        connection and the position; write rows and call :meth:`set_position` on it."""
        self._ensure_tracking_row(name)
        lock = self._memory_lock
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.begin() as conn:
                # An UPDATE takes the row's write lock on MySQL and SQLite alike.
                conn.execute(
                    text(
                        "UPDATE bss_tracking SET notification_id = notification_id WHERE name = :n"
                    ),
                    {"n": name},
                )
                position = conn.execute(
                    text("SELECT notification_id FROM bss_tracking WHERE name = :n"), {"n": name}
                ).scalar_one()
                yield conn, int(position)
        finally:
            if lock is not None:
                lock.release()

    @staticmethod
    def set_position(conn: Connection, name: str, position: int) -> None:
        conn.execute(
            text("UPDATE bss_tracking SET notification_id = :p WHERE name = :n"),
            {"p": position, "n": name},
        )

    def _ensure_tracking_row(self, name: str) -> None:
        if self._query(f"SELECT 1 FROM bss_tracking WHERE name = {self.p}", [name]):
            return
        try:
            with self.raw() as conn:
                cur = conn.cursor()
                cur.execute(
                    f"INSERT INTO bss_tracking (name, notification_id) VALUES ({self.p}, 0)",
                    (name,),
                )
                conn.commit()
        except Exception as error:
            if not _is_integrity_error(error):
                raise

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.tracked(tracking.application_name) as (conn, position):
            if position >= tracking.notification_id:
                raise IntegrityError(
                    f"{tracking.application_name} already at {position} "
                    f">= {tracking.notification_id}"
                )
            self.set_position(conn, tracking.application_name, tracking.notification_id)

    def max_tracking_id(self, application_name: str) -> int | None:
        rows = self._query(
            f"SELECT notification_id FROM bss_tracking WHERE name = {self.p}", [application_name]
        )
        if not rows:
            return None
        return int(rows[0][0]) or None

    def tracking_positions(self) -> dict[str, int]:
        return {
            str(r[0]): int(r[1])
            for r in self._query("SELECT name, notification_id FROM bss_tracking")
        }


def _is_integrity_error(error: BaseException) -> bool:
    if isinstance(error, (IntegrityError, sqlalchemy.exc.IntegrityError)):
        return True
    name = type(error).__name__
    return name == "IntegrityError"

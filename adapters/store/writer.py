"""Dedicated writer connections: the append path in as few round trips as the database allows.

A writer keeps one connection (per thread) instead of checking one out of the pool for each
append, which would cost a ping and a reset round trip every time. On MySQL the append is two
round trips: lock the head row and read it, then one multi-statement batch that inserts the
events and keys, moves the head and commits. Connections that broke are dropped and rebuilt;
one idle for longer than ``PING_AFTER`` seconds is pinged first (the server's idle timeout
would otherwise surface as error 2006 on the next append).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymysql.converters import escape_bytes, escape_string
from sqlalchemy.engine import Engine

from adapters.store.engine import is_transient, mysql_timeouts
from adapters.store.schema import LOG_NAME

PING_AFTER = 30.0


def db_time(moment: datetime | None) -> datetime:
    """Naive UTC, as DATETIME columns hold it."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class Writer:
    """Base: holds a DBAPI connection for one thread, rebuilding it after transient errors."""

    paramstyle = "%s"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._used_at = 0.0

    def connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        elif time.monotonic() - self._used_at > PING_AFTER:
            self._ping()
        self._used_at = time.monotonic()
        return self._conn

    def _connect(self) -> Any:
        raise NotImplementedError

    def _ping(self) -> None:
        pass

    def discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is already broken
                conn.close()

    def rollback_quietly(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except Exception:
            self.discard()

    def after_error(self, error: BaseException) -> None:
        if is_transient(error):
            self.discard()
        else:
            self.rollback_quietly()

    autocommit_reads = False  # True: a read needs no rollback to end its transaction

    def begin(self, cur: Any) -> None:
        """Start a write transaction."""
        raise NotImplementedError

    def begin_locked(self, cur: Any) -> int:
        """Start the append transaction holding the log's lock; return the head."""
        raise NotImplementedError

    def insert_and_commit(
        self,
        cur: Any,
        rows: list[tuple[Any, ...]],
        commands: list[tuple[Any, ...]],
        last: int,
        erase: Sequence[str] = (),
    ) -> None:
        """Insert events and idempotency keys, delete erased riders' data keys, move the head
        to ``last`` and commit."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(sql, tuple(params))
            rows = list(cur.fetchall())
            if not self.autocommit_reads:
                conn.rollback()
            return rows
        except Exception as error:
            self.after_error(error)
            raise
        finally:
            cur.close()


class MySQLWriter(Writer):
    """PyMySQL connection with multi-statements enabled (used for our own escaped SQL only).
    It runs in autocommit mode, so a read is one round trip (no rollback after it); writes
    open their transaction explicitly, in the same round trip as their first statement."""

    autocommit_reads = True

    def _connect(self) -> Any:
        import pymysql
        from pymysql.constants import CLIENT

        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        kwargs = dict(kwargs)
        kwargs["client_flag"] = int(kwargs.get("client_flag", 0)) | CLIENT.MULTI_STATEMENTS
        kwargs["autocommit"] = True
        kwargs.update(mysql_timeouts())
        kwargs["init_command"] = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
        return pymysql.connect(*args, **kwargs)

    def _ping(self) -> None:
        try:
            self._conn.ping(reconnect=False)
        except Exception:
            self.discard()
            self._conn = self._connect()

    def begin(self, cur: Any) -> None:
        cur.execute("START TRANSACTION")

    def begin_locked(self, cur: Any) -> int:
        cur.execute(
            "START TRANSACTION; SELECT last_id FROM bss_append_head WHERE name = %s FOR UPDATE",
            (LOG_NAME,),
        )
        cur.nextset()  # past START TRANSACTION's empty result
        row = cur.fetchone()
        if row is None:
            raise RuntimeError("the event store has no schema: run `bss db init`")
        return int(row[0])

    def insert_and_commit(
        self,
        cur: Any,
        rows: list[tuple[Any, ...]],
        commands: list[tuple[Any, ...]],
        last: int,
        erase: Sequence[str] = (),
    ) -> None:
        parts: list[str] = []
        if rows:
            stamp = _literal_time(rows[0][5])
            parts.append(
                "INSERT INTO bss_events "
                "(id, originator_id, originator_version, topic, state, recorded_at) VALUES "
                + ",".join(
                    f"({int(r[0])},{_literal_str(r[1])},{int(r[2])},{_literal_topic(r[3])},"
                    f"{escape_bytes(r[4])},{stamp})"
                    for r in rows
                )
            )
            parts.append(f"UPDATE bss_append_head SET last_id = {int(last)} WHERE name = 'events'")
        if commands:
            stamp = _literal_time(commands[0][3])
            parts.append(
                "INSERT INTO bss_commands (command_key, position, outcome, recorded_at) VALUES "
                + ",".join(
                    f"({_literal_str(c[0])},{int(c[1])},{escape_bytes(c[2])},{stamp})"
                    for c in commands
                )
            )
        if erase:
            parts.append(
                "DELETE FROM bss_rider_keys WHERE rider_id IN ("
                + ",".join(_literal_str(r) for r in erase)
                + ")"
            )
        parts.append("COMMIT")
        cur.execute(";".join(parts))
        while cur.nextset():
            pass


# Literals for the multi-statement append. The connection's charset is utf8mb4 and
# NO_BACKSLASH_ESCAPES is off (PyMySQL's own escaping makes the same assumption).


def _literal_str(value: str) -> str:
    return "'" + escape_string(value) + "'"


_topics: dict[str, str] = {}


def _literal_topic(topic: str) -> str:
    literal = _topics.get(topic)
    if literal is None:
        literal = _topics[topic] = _literal_str(topic)
    return literal


def _literal_time(moment: datetime) -> str:
    return "'" + moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"


class SQLiteWriter(Writer):
    """A long-lived sqlite3 connection from the engine; BEGIN IMMEDIATE takes the write lock."""

    paramstyle = "?"

    def _connect(self) -> Any:
        return self.engine.raw_connection()

    def begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def begin_locked(self, cur: Any) -> int:
        cur.execute("BEGIN IMMEDIATE")
        cur.execute("SELECT last_id FROM bss_append_head WHERE name = ?", (LOG_NAME,))
        row = cur.fetchone()
        if row is None:
            raise RuntimeError("the event store has no schema: run `bss db init`")
        return int(row[0])

    def insert_and_commit(
        self,
        cur: Any,
        rows: list[tuple[Any, ...]],
        commands: list[tuple[Any, ...]],
        last: int,
        erase: Sequence[str] = (),
    ) -> None:
        if rows:
            cur.executemany(
                "INSERT INTO bss_events "
                "(id, originator_id, originator_version, topic, state, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            cur.execute("UPDATE bss_append_head SET last_id = ? WHERE name = ?", (last, LOG_NAME))
        if commands:
            cur.executemany(
                "INSERT INTO bss_commands (command_key, position, outcome, recorded_at) "
                "VALUES (?, ?, ?, ?)",
                commands,
            )
        if erase:
            cur.executemany("DELETE FROM bss_rider_keys WHERE rider_id = ?", [(r,) for r in erase])
        self._conn.commit()


class WriterPool(threading.local):
    """One writer per thread for a recorder."""

    def __init__(self, engine: Engine, sqlite: bool) -> None:
        self.writer: Writer = SQLiteWriter(engine) if sqlite else MySQLWriter(engine)

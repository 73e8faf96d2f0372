"""SQLAlchemy engines for the event store: MySQL/MariaDB over PyMySQL, or SQLite.

MySQL engines ping before use and recycle idle connections (DESIGN.md gap 6: after the
server's idle timeout the next call fails with 2006). SQLite engines run in WAL mode with a
busy timeout, and leave transaction control to us: pysqlite's own implicit transactions
cannot take the write lock up front, which the append protocol needs (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

# PyMySQL/MySQL error codes worth retrying: the connection went away or never came, the
# server is shutting down, a lock wait timed out or a deadlock was broken.
TRANSIENT_MYSQL_CODES = frozenset({1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055})


def normalise_url(url: str) -> str:
    """Accept the spellings operators use: ``mysql://`` means PyMySQL, ``mariadb://`` too."""
    for prefix in ("mysql://", "mariadb://", "mariadb+pymysql://"):
        if url.startswith(prefix):
            url = "mysql+pymysql://" + url[len(prefix) :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "mysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def is_memory_sqlite(url: str) -> bool:
    return url.startswith("sqlite") and (
        url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
    )


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine configured for the event store and the read models."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.update(mysql_timeouts())
    return sa_create_engine(url, **kwargs)


def mysql_timeouts() -> dict[str, int]:
    """Socket timeouts for PyMySQL. Without read/write timeouts a server that stops answering
    (paused, or a network that drops packets) hangs a client for ever; with them the call
    fails with 2013 and is retried like any lost connection."""
    return {"connect_timeout": 5, "read_timeout": READ_TIMEOUT, "write_timeout": READ_TIMEOUT}


READ_TIMEOUT = 120


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    memory = is_memory_sqlite(url)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args["check_same_thread"] = False
    connect_args.setdefault("timeout", 30)
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sa_create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def mysql_error_code(error: BaseException) -> int | None:
    """The MySQL error number behind a (wrapped) PyMySQL error, if any."""
    orig = getattr(error, "orig", error)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_transient(error: BaseException) -> bool:
    """True for errors after which the same work may simply be tried again."""
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    code = mysql_error_code(error)
    if code in TRANSIENT_MYSQL_CODES:
        return True
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text


def with_retry(
    work: Callable[[], T],
    *,
    attempts: int = 5,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Run ``work``; on a transient database error wait (exponential backoff) and run it again,
    at most ``attempts`` times in all. Other errors, and the last transient one, propagate."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as error:
            if attempt == attempts or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(error, attempt)
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")

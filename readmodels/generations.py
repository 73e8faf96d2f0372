"""Which generation of each read model the queries read, and how they find its tables.

Every read model's tables carry a generation suffix (``rm_riders_g2``); ``rm_active`` maps
each read model to the generation in force. A rebuild fills generation N+1 beside N and
flips the mapping in one transaction (see ``replay/rebuild.py``). Queries look the mapping
up through :data:`ACTIVE`, a per-process cache re-read at most every ``ttl`` seconds (one
read of a table of a few rows), and retry once against a fresh mapping when the tables they
resolved were dropped under them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.schema import active_table, model_tables

T = TypeVar("T")

TTL = 0.5


class ActiveGenerations:
    """A cache of ``rm_active`` per engine, refreshed at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, int]]] = (
            weakref.WeakKeyDictionary()
        )

    def all(self, engine: Engine) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(engine)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        with engine.connect() as conn:
            mapping = read_active(conn)
        with self._lock:
            self._cache[engine] = (now, mapping)
        return mapping

    def get(self, engine: Engine, model: str) -> int:
        generation = self.all(engine).get(model)
        if generation is None:
            self.invalidate(engine)
            generation = self.all(engine).get(model)
        if generation is None:
            raise LookupError(
                f"read model {model!r} has no tables: run `bss db init` (readmodels.create_all)"
            )
        return generation

    def invalidate(self, engine: Engine) -> None:
        with self._lock:
            self._cache.pop(engine, None)


ACTIVE = ActiveGenerations()


def read_active(conn: Connection) -> dict[str, int]:
    """The mapping read model -> active generation, straight from the database."""
    rows = conn.execute(select(active_table.c.model, active_table.c.generation))
    return {str(model): int(generation) for model, generation in rows}


def tables(engine: Engine, model: str) -> dict[str, Table]:
    """The tables of the active generation of ``model``, by logical name."""
    return model_tables(model, ACTIVE.get(engine, model))


def query(engine: Engine, model: str, work: Callable[[Connection, dict[str, Table]], T]) -> T:
    """Run ``work(conn, tables)`` on the active generation of ``model``; if its tables vanished
    (a rebuild dropped them after a switch this process had not yet seen), re-resolve once."""
    for attempt in (1, 2):
        resolved = tables(engine, model)
        try:
            with engine.connect() as conn:
                return work(conn, resolved)
        except sqlalchemy.exc.DBAPIError as error:
            if attempt == 2 or not _missing_table(error):
                raise
            ACTIVE.invalidate(engine)
    raise AssertionError("unreachable")


def one_row(engine: Engine, model: str, table: str, **equal: Any) -> dict[str, Any] | None:
    """The row of ``model``'s ``table`` (active generation) whose columns equal ``equal``,
    as a dict, or None."""

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, Any] | None:
        tab = t[table]
        clauses = [tab.c[name] == value for name, value in equal.items()]
        row = conn.execute(select(tab).where(*clauses)).first()
        return None if row is None else dict(row._mapping)

    return query(engine, model, work)


def _missing_table(error: BaseException) -> bool:
    orig = getattr(error, "orig", None)
    args = getattr(orig, "args", ())
    if args and args[0] == 1146:  # MySQL: table doesn't exist
        return True
    return "no such table" in str(error).lower()

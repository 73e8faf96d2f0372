"""The read models' tables, by generation, and the two tables that say which is in force.

- ``rm_active``: read model -> the generation queries read (one row per read model).
- ``rm_generations``: every generation ever made: building, active, retired or dropped,
  with the table-layout version it was built with.

Each read model module in this package has ``define(metadata, suffix)`` returning its
tables by logical name; the physical names carry the generation (``rm_swaps_g4``).
Nothing is created at import time: :func:`create_all` (``bss db init``) does it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.types import MYSQL_TABLE_OPTIONS, UtcDateTime

MODELS = ("riders", "batteries", "health", "stations", "swaps", "analytics", "billing", "rejected")
"""Every read model; the module ``readmodels.<name>`` defines its tables and queries."""

registry = MetaData()

active_table = Table(
    "rm_active",
    registry,
    Column("model", String(32), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("switched_at", UtcDateTime, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

generations_table = Table(
    "rm_generations",
    registry,
    Column("model", String(32), primary_key=True),
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),  # building | active | retired | dropped
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("switched_at", UtcDateTime),
    **MYSQL_TABLE_OPTIONS,
)


def model_module(model: str) -> Any:
    if model not in MODELS:
        raise KeyError(f"no read model {model!r}; known: {', '.join(MODELS)}")
    return importlib.import_module(f"readmodels.{model}")


def model_version(model: str) -> int:
    """The table layout version of the code (bumped when a model's tables or feed change)."""
    return int(model_module(model).VERSION)


@lru_cache(maxsize=256)
def model_tables(model: str, generation: int) -> dict[str, Table]:
    """The tables of one generation of a read model, by logical name."""
    return dict(model_module(model).define(MetaData(), f"g{generation}"))


def tracking_name(model: str, generation: int) -> str:
    """The projection's row in the store's tracking table (at most 64 characters)."""
    return f"rm:{model}:g{generation}"


def now() -> datetime:
    return datetime.now(UTC)


def create_all(engine: Engine) -> None:
    """Create the registry and generation 1 of every read model that has none (idempotent,
    safe to run from several processes at once); re-create tables of active generations
    that are missing."""
    _create(engine, registry.sorted_tables)
    with engine.connect() as conn:
        active = {
            str(m): int(g)
            for m, g in conn.execute(select(active_table.c.model, active_table.c.generation))
        }
    for model in MODELS:
        generation = active.get(model)
        if generation is not None:
            create_tables(engine, model, int(generation))
            continue
        create_tables(engine, model, 1)
        try:
            with engine.begin() as conn:
                stamp = now()
                conn.execute(
                    generations_table.insert().values(
                        model=model,
                        generation=1,
                        state="active",
                        version=model_version(model),
                        created_at=stamp,
                        switched_at=stamp,
                    )
                )
                conn.execute(
                    active_table.insert().values(model=model, generation=1, switched_at=stamp)
                )
        except sqlalchemy.exc.IntegrityError:
            pass  # another process registered it first


def create_tables(engine: Engine, model: str, generation: int) -> dict[str, Table]:
    tables = model_tables(model, generation)
    _create(engine, list(tables.values()))
    return tables


def drop_tables(engine: Engine, model: str, generation: int) -> None:
    for table in reversed(list(model_tables(model, generation).values())):
        if _exists(engine, table):
            _ddl(engine, table.drop, "no such table", "unknown table")


def _create(engine: Engine, tables: list[Table]) -> None:
    for table in tables:
        if not _exists(engine, table):
            _ddl(engine, table.create, "already exists")


def _exists(engine: Engine, table: Table) -> bool:
    with engine.connect() as conn:
        return bool(engine.dialect.has_table(conn, table.name))


def _ddl(engine: Engine, work: Callable[[Connection], object], *benign: str) -> None:
    """Run one DDL statement in a transaction of its own, whose first statement it is (on
    SQLite a transaction that read first cannot wait for the write lock: it fails at once
    with "database is locked"), retrying while the database is busy; errors saying the work
    was done already (by another process) are fine."""

    delay = 0.05
    for attempt in range(1, 9):
        try:
            with engine.begin() as conn:
                work(conn)
            return
        except sqlalchemy.exc.DBAPIError as error:
            text = str(error).lower()
            if any(b in text for b in benign):
                return
            if attempt == 8 or not any(b in text for b in _BUSY):
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


_BUSY = ("database is locked", "database is busy", "lock wait timeout", "deadlock")


def registered_generations(conn: Connection, model: str | None = None) -> list[dict[str, Any]]:
    stmt = select(generations_table).order_by(
        generations_table.c.model, generations_table.c.generation
    )
    if model is not None:
        stmt = stmt.where(generations_table.c.model == model)
    return [dict(r._mapping) for r in conn.execute(stmt)]

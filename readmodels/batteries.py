"""Batteries now: custody, status and grade, the latest reading, when last seen.

``custody`` is always the four keys ``{"kind", "station_id", "slot", "rider_id"}`` (None
where they do not apply); ``kind`` is slot, rider, warehouse, repair or retired, and is
also a column of its own (with ``station_id``, ``slot``, ``rider_id``) for filtering.
``status`` summarises custody and grade in one word: docked, reserved, in_use, warehouse,
repair, quarantined or retired.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import one_row, query
from readmodels.paging import Page, page
from readmodels.types import (
    ID,
    MYSQL_TABLE_OPTIONS,
    TEXT,
    ExactDecimal,
    Json,
    UtcDateTime,
    table_name,
)

MODEL = "batteries"
VERSION = 2
STATUSES = ("docked", "reserved", "in_use", "warehouse", "repair", "quarantined", "retired")


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    batteries = Table(
        table_name("batteries", suffix),
        metadata,
        Column("battery_id", String(ID), primary_key=True),
        Column("battery_type", String(TEXT), nullable=False),
        Column("capacity_ah", ExactDecimal(12, 3), nullable=False),
        Column("manufactured_on", String(32)),
        Column("custody", Json, nullable=False),
        Column("custody_kind", String(16), nullable=False),
        Column("station_id", String(ID)),
        Column("slot", Integer),
        Column("rider_id", String(ID)),
        Column("grade", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("reserved_for", String(ID)),
        Column("soc", Double),
        Column("soh", Double),
        Column("temperature", Double),
        Column("voltage", Double),
        Column("cycle_count", Integer),
        Column("error_code", String(TEXT)),
        Column("reading_at", UtcDateTime),
        Column("last_seen_at", UtcDateTime, nullable=False),
        Column("registered_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_batteries_status", "status"),
        Index(f"ix_{suffix}_batteries_station", "station_id", "slot"),
        Index(f"ix_{suffix}_batteries_rider", "rider_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"batteries": batteries}


BATTERY_SORTS = ("battery_id", "soc", "soh", "cycle_count", "last_seen_at", "registered_at")


def get_battery(engine: Engine, battery_id: str) -> dict[str, Any] | None:
    """One battery (custody dict, grade, status, latest reading), or None."""
    return one_row(engine, MODEL, "batteries", battery_id=battery_id)


def list_batteries(
    engine: Engine,
    *,
    status: str | None = None,
    grade: str | None = None,
    custody_kind: str | None = None,
    station_id: str | None = None,
    rider_id: str | None = None,
    soh_below: float | None = None,
    sort: str = "battery_id",
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Batteries, filtered and sorted, one page."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        b = t["batteries"]
        stmt = select(b)
        for column, value in (
            ("status", status),
            ("grade", grade),
            ("custody_kind", custody_kind),
            ("station_id", station_id),
            ("rider_id", rider_id),
        ):
            if value is not None:
                stmt = stmt.where(b.c[column] == value)
        if soh_below is not None:
            stmt = stmt.where(b.c.soh < soh_below)
        return page(conn, stmt, b, sort, BATTERY_SORTS, "battery_id", descending, cursor, limit)

    return query(engine, MODEL, work)


def count_by_status(engine: Engine) -> dict[str, int]:
    """How many batteries have each status (for dashboards)."""
    from sqlalchemy import func

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, int]:
        b = t["batteries"]
        rows = conn.execute(select(b.c.status, func.count()).group_by(b.c.status))
        return {str(status): int(n) for status, n in rows}

    return query(engine, MODEL, work)

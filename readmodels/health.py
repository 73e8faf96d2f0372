"""Every health reading of every battery (the original health log, plus SOC): the SOH history.

One row per ``Battery.HealthRecorded`` event, keyed by its position in the log, so a reading
is never stored twice. ``measured_at`` is the station's clock (the event's occurred_at),
``recorded_at`` the ledger's. ``temperature`` and ``voltage`` are as the reading gave them;
v2 telemetry sends ``max_temp`` and ``pack_voltage`` instead, kept in their own columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Double, Index, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import query
from readmodels.paging import Page, page
from readmodels.types import ID, MYSQL_TABLE_OPTIONS, TEXT, UtcDateTime, table_name

MODEL = "health"
VERSION = 2
READING_COLUMNS = (
    "soc",
    "soh",
    "temperature",
    "voltage",
    "pack_voltage",
    "cell_voltage_min",
    "cell_voltage_max",
    "max_temp",
    "ambient_temp",
    "humidity",
    "internal_resist",
    "cycle_count",
    "error_code",
)


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    readings = Table(
        table_name("health", suffix),
        metadata,
        Column("event_id", BigInteger, primary_key=True, autoincrement=False),
        Column("battery_id", String(ID), nullable=False),
        Column("measured_at", UtcDateTime, nullable=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        Column("source", String(TEXT), nullable=False),
        Column("station_id", String(ID)),
        Column("slot", Integer),
        Column("soc", Double),
        Column("soh", Double),
        Column("temperature", Double),
        Column("voltage", Double),
        Column("pack_voltage", Double),
        Column("cell_voltage_min", Double),
        Column("cell_voltage_max", Double),
        Column("max_temp", Double),
        Column("ambient_temp", Double),
        Column("humidity", Double),
        Column("internal_resist", Double),
        Column("cycle_count", Integer),
        Column("error_code", String(TEXT)),
        Index(f"ix_{suffix}_health_battery", "battery_id", "measured_at"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"readings": readings}


def health_history(
    engine: Engine,
    battery_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """One battery's readings in measurement order (oldest first unless ``descending``),
    optionally within [since, until); paged."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        h = t["readings"]
        stmt = select(h).where(h.c.battery_id == battery_id)
        if since is not None:
            stmt = stmt.where(h.c.measured_at >= since)
        if until is not None:
            stmt = stmt.where(h.c.measured_at < until)
        return page(
            conn, stmt, h, "measured_at", ("measured_at",), "event_id", descending, cursor, limit
        )

    return query(engine, MODEL, work)


def soh_series(
    engine: Engine,
    battery_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """The SOH history for a chart: ``[{"measured_at", "soh", "cycle_count"}]`` of readings
    that carried an SOH, oldest first (at most ``limit``, the most recent ones)."""

    def work(conn: Connection, t: dict[str, Table]) -> list[dict[str, Any]]:
        h = t["readings"]
        stmt = select(h.c.measured_at, h.c.soh, h.c.cycle_count).where(
            h.c.battery_id == battery_id, h.c.soh.is_not(None)
        )
        if since is not None:
            stmt = stmt.where(h.c.measured_at >= since)
        if until is not None:
            stmt = stmt.where(h.c.measured_at < until)
        stmt = stmt.order_by(h.c.measured_at.desc(), h.c.event_id.desc()).limit(limit)
        return [dict(r._mapping) for r in reversed(conn.execute(stmt).all())]

    return query(engine, MODEL, work)

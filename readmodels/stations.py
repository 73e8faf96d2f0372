"""Stations and their slots: live inventory per slot, station status, last heartbeat.

A slot's ``state`` is ready, charging, empty or faulty. Unless the station's latest
heartbeat reported the slot's state (then ``state_source`` is ``heartbeat``), it is derived
(``state_source`` ``derived``) from the docked battery: none -> empty; grade not ok or SOH
under the policy's issue minimum -> faulty; SOC unknown or under the policy's issue minimum
(default 80 %) -> charging; else ready. ``issuable`` applies the issue rules 11-12 (docked,
grade ok, not reserved, SOC and SOH at or above the policy's minimums) whatever the
heartbeat said; a station's ``batteries_available`` counts its issuable slots.

The ``inv_batteries`` and ``state`` tables are the projection's own working state (where
each battery is and its latest SOC/SOH, and the policy in force); they are not for queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from readmodels.generations import query
from readmodels.paging import Page, page
from readmodels.types import ID, MYSQL_TABLE_OPTIONS, REASON, TEXT, Json, UtcDateTime, table_name

MODEL = "stations"
VERSION = 2
SLOT_STATES = ("ready", "charging", "empty", "faulty")


def slot_table(metadata: MetaData, name: str, suffix: str) -> Table:
    return Table(
        table_name(name, suffix),
        metadata,
        Column("station_id", String(ID), primary_key=True),
        Column("slot", Integer, primary_key=True, autoincrement=False),
        Column("battery_id", String(ID)),
        Column("state", String(REASON), nullable=False),
        Column("state_source", String(16), nullable=False),
        Column("reported_state", String(REASON)),
        Column("reported_at", UtcDateTime),
        Column("soc", Double),
        Column("soh", Double),
        Column("temperature", Double),
        Column("grade", String(16)),
        Column("reserved_for", String(ID)),
        Column("issuable", Boolean, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )


def inventory_tables(metadata: MetaData, prefix: str, suffix: str) -> dict[str, Table]:
    """Working state of an inventory-tracking projection (stations, analytics)."""
    batteries = Table(
        table_name(f"{prefix}_inv_batteries", suffix),
        metadata,
        Column("battery_id", String(ID), primary_key=True),
        Column("station_id", String(ID)),
        Column("slot", Integer),
        Column("soc", Double),
        Column("soh", Double),
        Column("temperature", Double),
        Column("grade", String(16), nullable=False),
        Column("reading_at", UtcDateTime),
        **MYSQL_TABLE_OPTIONS,
    )
    state = Table(
        table_name(f"{prefix}_state", suffix),
        metadata,
        Column("name", String(64), primary_key=True),
        Column("value", Json),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"inv_batteries": batteries, "state": state}


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    stations = Table(
        table_name("stations", suffix),
        metadata,
        Column("station_id", String(ID), primary_key=True),
        Column("name", String(TEXT), nullable=False),
        Column("location", String(TEXT)),
        Column("lat", Double),
        Column("lng", Double),
        Column("slot_count", Integer, nullable=False),
        Column("status", String(16), nullable=False),
        Column("status_source", String(16)),
        Column("status_at", UtcDateTime),
        Column("last_heartbeat_at", UtcDateTime),
        Column("mismatches", Json),
        Column("slots_ready", Integer, nullable=False),
        Column("slots_charging", Integer, nullable=False),
        Column("slots_empty", Integer, nullable=False),
        Column("slots_faulty", Integer, nullable=False),
        Column("batteries_docked", Integer, nullable=False),
        Column("batteries_available", Integer, nullable=False),
        Column("open_sessions", Json, nullable=False),
        Column("registered_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_stations_status", "status"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {
        "stations": stations,
        "slots": slot_table(metadata, "slots", suffix),
        **inventory_tables(metadata, "st", suffix),
    }


STATION_SORTS = ("station_id", "name", "batteries_available", "last_heartbeat_at")


def get_station(engine: Engine, station_id: str) -> dict[str, Any] | None:
    """One station with its slots (``slots``: list of slot dicts in slot order), or None."""

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, Any] | None:
        s = t["stations"]
        row = conn.execute(select(s).where(s.c.station_id == station_id)).first()
        if row is None:
            return None
        station = dict(row._mapping)
        station["slots"] = _slots(conn, t["slots"], station_id)
        return station

    return query(engine, MODEL, work)


def list_stations(
    engine: Engine,
    *,
    status: str | None = None,
    sort: str = "station_id",
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """Stations (without slots), filtered by status, sorted and paged."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        s = t["stations"]
        stmt = select(s)
        if status is not None:
            stmt = stmt.where(s.c.status == status)
        return page(conn, stmt, s, sort, STATION_SORTS, "station_id", descending, cursor, limit)

    return query(engine, MODEL, work)


def station_slots(engine: Engine, station_id: str) -> list[dict[str, Any]]:
    """The live inventory of one station: every slot in order (empty ones included)."""
    return query(engine, MODEL, lambda conn, t: _slots(conn, t["slots"], station_id))


def _slots(conn: Connection, slots: Table, station_id: str) -> list[dict[str, Any]]:
    stmt = select(slots).where(slots.c.station_id == station_id).order_by(slots.c.slot)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def inventory_summary(engine: Engine) -> dict[str, int]:
    """Slot counts by state over all stations, plus docked and available batteries."""
    from sqlalchemy import func

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, int]:
        s = t["stations"]
        row = conn.execute(
            select(
                func.coalesce(func.sum(s.c.slots_ready), 0),
                func.coalesce(func.sum(s.c.slots_charging), 0),
                func.coalesce(func.sum(s.c.slots_empty), 0),
                func.coalesce(func.sum(s.c.slots_faulty), 0),
                func.coalesce(func.sum(s.c.batteries_docked), 0),
                func.coalesce(func.sum(s.c.batteries_available), 0),
                func.count(),
            )
        ).one()
        keys = ("ready", "charging", "empty", "faulty", "docked", "available", "stations")
        return {k: int(v) for k, v in zip(keys, row, strict=True)}

    return query(engine, MODEL, work)

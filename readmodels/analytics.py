"""Station analytics: one row per station per hour (UTC, by the station's clock).

- ``sessions``: sessions opened (authorised) in the hour; ``swaps``: swaps completed;
  ``refusals``: refusal events (auth denied, returned battery refused, issue refused, no
  battery to issue, refused by the station) with ``refusals_by_reason`` {reason: count};
  ``cancelled`` and ``timed_out`` sessions.
- ``duration_p50_s`` / ``duration_p95_s``: percentiles (nearest rank) of the durations
  (auth to completion) of the swaps completed in the hour; ``durations`` keeps them all.
- ``available_min`` / ``available_max`` / ``available_last``: issuable batteries at the
  station (see readmodels.stations) over the hour, as seen after each change in it.
- ``busy_s``: seconds of the hour during which a session was open at the station;
  ``utilisation`` = busy_s / 3600, the share of the hour the station was serving a rider
  (a station with one kiosk is at most 1.0; overlapping sessions count once).
- ``energy_ah``: energy used by the swaps completed in the hour.

Hours with no event at a station have no row; availability carries over from the last row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Double, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import query
from readmodels.stations import inventory_tables, slot_table
from readmodels.types import (
    ID,
    MYSQL_TABLE_OPTIONS,
    ExactDecimal,
    Json,
    UtcDateTime,
    table_name,
)

MODEL = "analytics"
VERSION = 2


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    hourly = Table(
        table_name("station_hourly", suffix),
        metadata,
        Column("station_id", String(ID), primary_key=True),
        Column("hour", UtcDateTime, primary_key=True),
        Column("sessions", Integer, nullable=False),
        Column("swaps", Integer, nullable=False),
        Column("refusals", Integer, nullable=False),
        Column("refusals_by_reason", Json, nullable=False),
        Column("cancelled", Integer, nullable=False),
        Column("timed_out", Integer, nullable=False),
        Column("durations", Json, nullable=False),
        Column("duration_p50_s", Double),
        Column("duration_p95_s", Double),
        Column("available_min", Integer),
        Column("available_max", Integer),
        Column("available_last", Integer),
        Column("busy_s", Double, nullable=False),
        Column("utilisation", Double, nullable=False),
        Column("energy_ah", ExactDecimal(14, 3), nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    sessions = Table(
        table_name("an_sessions", suffix),
        metadata,
        Column("session_id", String(ID), primary_key=True),
        Column("station_id", String(ID), nullable=False),
        Column("opened_at", UtcDateTime, nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    stations = Table(
        table_name("an_stations", suffix),
        metadata,
        Column("station_id", String(ID), primary_key=True),
        Column("slot_count", Integer, nullable=False),
        Column("available", Integer, nullable=False),
        Column("busy_since", UtcDateTime),
        Column("open_sessions", Json, nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    return {
        "hourly": hourly,
        "sessions": sessions,
        "stations": stations,
        "slots": slot_table(metadata, "an_slots", suffix),
        **inventory_tables(metadata, "an", suffix),
    }


def station_hourly(
    engine: Engine,
    station_id: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 24 * 31,
) -> list[dict[str, Any]]:
    """Hourly rows, oldest first, of one station (or all), with ``hour`` in [since, until)."""

    def work(conn: Connection, t: dict[str, Table]) -> list[dict[str, Any]]:
        h = t["hourly"]
        stmt = select(h)
        if station_id is not None:
            stmt = stmt.where(h.c.station_id == station_id)
        if since is not None:
            stmt = stmt.where(h.c.hour >= since)
        if until is not None:
            stmt = stmt.where(h.c.hour < until)
        stmt = stmt.order_by(h.c.hour, h.c.station_id).limit(max(1, min(limit, 100_000)))
        return [dict(r._mapping) for r in conn.execute(stmt)]

    return query(engine, MODEL, work)


def station_totals(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Per station over [since, until): sessions, swaps, refusals, cancelled, timed out,
    busy seconds and energy (sums of the hourly rows), busiest first."""
    from sqlalchemy import func

    def work(conn: Connection, t: dict[str, Table]) -> list[dict[str, Any]]:
        h = t["hourly"]
        stmt = select(
            h.c.station_id,
            func.sum(h.c.sessions).label("sessions"),
            func.sum(h.c.swaps).label("swaps"),
            func.sum(h.c.refusals).label("refusals"),
            func.sum(h.c.cancelled).label("cancelled"),
            func.sum(h.c.timed_out).label("timed_out"),
            func.sum(h.c.busy_s).label("busy_s"),
            func.count().label("hours"),
        ).group_by(h.c.station_id)
        if since is not None:
            stmt = stmt.where(h.c.hour >= since)
        if until is not None:
            stmt = stmt.where(h.c.hour < until)
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        for row in rows:
            for key in ("sessions", "swaps", "refusals", "cancelled", "timed_out", "hours"):
                row[key] = int(row[key] or 0)
            row["busy_s"] = float(row["busy_s"] or 0)
        rows.sort(key=lambda r: (-r["swaps"], r["station_id"]))
        return rows

    return query(engine, MODEL, work)

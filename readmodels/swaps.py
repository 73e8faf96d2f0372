"""Swap sessions: one row per session, from the RFID auth to its end.

``state`` is the session's state (authenticated, pending_collection, complete, refused,
cancelled, timed_out); ``outcome`` is None while open, else completed / refused /
cancelled / timed_out. ``reason`` is the refusal's reason code (DOMAIN.md), and
``station_reason`` the station's own words when it refused on its own. The returned
battery's readings are those the station reported at initiate (or completion); the issued
battery's those at completion. ``duration_s`` = closed_at - opened_at (station clock).
``energy_used_ah`` is the energy in force after corrections; ``corrections`` lists each
correction (``{"version", "delta_ah", "note", "at"}``).
"""

from __future__ import annotations

from datetime import datetime
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

from readmodels.generations import one_row, query
from readmodels.paging import Page, page
from readmodels.types import (
    ID,
    MYSQL_TABLE_OPTIONS,
    REASON,
    TEXT,
    ExactDecimal,
    Json,
    UtcDateTime,
    table_name,
)

MODEL = "swaps"
VERSION = 2
OUTCOMES = ("completed", "refused", "cancelled", "timed_out")


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    swaps = Table(
        table_name("swaps", suffix),
        metadata,
        Column("session_id", String(ID), primary_key=True),
        Column("station_id", String(ID), nullable=False),
        Column("rider_id", String(ID)),
        Column("rfid_code", String(ID)),
        Column("state", String(24), nullable=False),
        Column("outcome", String(16)),
        Column("reason", String(REASON)),
        Column("station_reason", String(TEXT)),
        Column("opened_at", UtcDateTime, nullable=False),
        Column("initiated_at", UtcDateTime),
        Column("closed_at", UtcDateTime),
        Column("duration_s", Double),
        Column("returned_battery_id", String(ID)),
        Column("returned_slot", Integer),
        Column("returned_soc", Double),
        Column("returned_soh", Double),
        Column("returned_temperature", Double),
        Column("returned_voltage", Double),
        Column("returned_issue_soc", Double),
        Column("taken_back", Boolean, nullable=False),
        Column("picked_battery_id", String(ID)),
        Column("picked_slot", Integer),
        Column("issued_battery_id", String(ID)),
        Column("issued_slot", Integer),
        Column("issued_soc", Double),
        Column("issued_soh", Double),
        Column("capacity_ah", ExactDecimal(12, 3)),
        Column("energy_used_ah", ExactDecimal(14, 3)),
        Column("corrections", Json, nullable=False),
        Column("correction_count", Integer, nullable=False),
        Column("superseded_by", String(ID)),
        Column("policy_version", Integer),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_swaps_opened", "opened_at"),
        Index(f"ix_{suffix}_swaps_station", "station_id", "opened_at"),
        Index(f"ix_{suffix}_swaps_rider", "rider_id", "opened_at"),
        Index(f"ix_{suffix}_swaps_outcome", "outcome", "opened_at"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"swaps": swaps}


SWAP_SORTS = ("opened_at", "closed_at", "duration_s", "energy_used_ah")


def get_swap(engine: Engine, session_id: str) -> dict[str, Any] | None:
    """One session, or None."""
    return one_row(engine, MODEL, "swaps", session_id=session_id)


def list_swaps(
    engine: Engine,
    *,
    station_id: str | None = None,
    rider_id: str | None = None,
    battery_id: str | None = None,
    outcome: str | None = None,
    state: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: str = "opened_at",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Sessions, newest first by default; filters combine with AND. ``battery_id`` matches
    the returned or the issued battery; ``since``/``until`` bound ``opened_at``;
    ``outcome="open"`` selects sessions still open."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        s = t["swaps"]
        stmt = select(s)
        for column, value in (
            ("station_id", station_id),
            ("rider_id", rider_id),
            ("state", state),
            ("reason", reason),
        ):
            if value is not None:
                stmt = stmt.where(s.c[column] == value)
        if outcome == "open":
            stmt = stmt.where(s.c.outcome.is_(None))
        elif outcome is not None:
            stmt = stmt.where(s.c.outcome == outcome)
        if battery_id is not None:
            stmt = stmt.where(
                (s.c.returned_battery_id == battery_id) | (s.c.issued_battery_id == battery_id)
            )
        if since is not None:
            stmt = stmt.where(s.c.opened_at >= since)
        if until is not None:
            stmt = stmt.where(s.c.opened_at < until)
        return page(conn, stmt, s, sort, SWAP_SORTS, "session_id", descending, cursor, limit)

    return query(engine, MODEL, work)

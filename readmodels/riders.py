"""Riders and their RFID cards: profile, status, battery held, swap count, last swap.

``personal`` is the rider's personal fields exactly as the events carry them (one dict:
name, email, phone, address, licence); card codes are stored in full (masking them is the
API's job).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import one_row, query
from readmodels.paging import Page, page
from readmodels.types import ID, MYSQL_TABLE_OPTIONS, TEXT, Json, UtcDateTime, table_name

MODEL = "riders"
VERSION = 1


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    riders = Table(
        table_name("riders", suffix),
        metadata,
        Column("rider_id", String(ID), primary_key=True),
        Column("personal", Json),
        Column("vehicle", String(TEXT)),
        Column("plan_id", String(ID)),
        Column("role", String(TEXT), nullable=False),
        Column("status", String(16), nullable=False),
        Column("status_reason", String(TEXT)),
        Column("batteries", Json, nullable=False),
        Column("battery_id", String(ID)),
        Column("open_session_id", String(ID)),
        Column("open_station_id", String(ID)),
        Column("swap_count", Integer, nullable=False),
        Column("last_swap_at", UtcDateTime),
        Column("last_swap_session_id", String(ID)),
        Column("last_swap_station_id", String(ID)),
        Column("registered_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_riders_status", "status", "registered_at"),
        Index(f"ix_{suffix}_riders_registered", "registered_at"),
        **MYSQL_TABLE_OPTIONS,
    )
    cards = Table(
        table_name("rider_cards", suffix),
        metadata,
        Column("rfid_code", String(ID), primary_key=True),
        Column("rider_id", String(ID), nullable=False),
        Column("status", String(16), nullable=False),
        Column("reason", String(TEXT)),
        Column("issued_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_cards_rider", "rider_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"riders": riders, "cards": cards}


RIDER_SORTS = ("registered_at", "rider_id", "swap_count", "last_swap_at")


def get_rider(engine: Engine, rider_id: str) -> dict[str, Any] | None:
    """One rider with their cards (``cards``: list of card dicts), or None."""

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, Any] | None:
        row = conn.execute(select(t["riders"]).where(t["riders"].c.rider_id == rider_id)).first()
        if row is None:
            return None
        rider = dict(row._mapping)
        cards = t["cards"]
        rider["cards"] = [
            dict(r._mapping)
            for r in conn.execute(
                select(cards).where(cards.c.rider_id == rider_id).order_by(cards.c.issued_at)
            )
        ]
        return rider

    return query(engine, MODEL, work)


def list_riders(
    engine: Engine,
    *,
    status: str | None = None,
    plan_id: str | None = None,
    holding: str | None = None,
    sort: str = "registered_at",
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Riders, filtered by status / plan / the battery they hold, sorted and paged."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        riders = t["riders"]
        stmt = select(riders)
        if status is not None:
            stmt = stmt.where(riders.c.status == status)
        if plan_id is not None:
            stmt = stmt.where(riders.c.plan_id == plan_id)
        if holding is not None:
            stmt = stmt.where(riders.c.battery_id == holding)
        return page(conn, stmt, riders, sort, RIDER_SORTS, "rider_id", descending, cursor, limit)

    return query(engine, MODEL, work)


def get_card(engine: Engine, rfid_code: str) -> dict[str, Any] | None:
    """One card (full code, status, rider), or None."""
    return one_row(engine, MODEL, "cards", rfid_code=rfid_code)


def list_cards(
    engine: Engine,
    *,
    rider_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Cards, filtered by rider and status, in issue order."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        cards = t["cards"]
        stmt = select(cards)
        if rider_id is not None:
            stmt = stmt.where(cards.c.rider_id == rider_id)
        if status is not None:
            stmt = stmt.where(cards.c.status == status)
        return page(
            conn, stmt, cards, "issued_at", ("issued_at",), "rfid_code", False, cursor, limit
        )

    return query(engine, MODEL, work)

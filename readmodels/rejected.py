"""Messages the MQTT ingest could not accept (bad JSON, wrong types, unknown station, too big):
one row per rejection event, with the reason, the MQTT topic, the station (when the topic
named one) and the raw bytes, base64, capped at 4 KiB (``raw_size`` is the full size).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import query
from readmodels.paging import Page, page
from readmodels.types import (
    ID,
    MYSQL_TABLE_OPTIONS,
    TEXT,
    LongText,
    UtcDateTime,
    table_name,
)

MODEL = "rejected"
VERSION = 1
RAW_CAP = 4096


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    rejected = Table(
        table_name("rejected", suffix),
        metadata,
        Column("event_id", BigInteger, primary_key=True, autoincrement=False),
        Column("station_id", String(ID)),
        Column("mqtt_topic", String(TEXT)),
        Column("reason", String(TEXT), nullable=False),
        Column("message", String(TEXT)),
        Column("raw_b64", LongText),
        Column("raw_size", Integer),
        Column("truncated", Boolean, nullable=False),
        Column("received_at", UtcDateTime, nullable=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        Index(f"ix_{suffix}_rejected_station", "station_id", "event_id"),
        Index(f"ix_{suffix}_rejected_received", "received_at"),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"rejected": rejected}


def list_rejected(
    engine: Engine,
    *,
    station_id: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Rejected messages, newest first, filtered by station, reason and received time."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        r = t["rejected"]
        stmt = select(r)
        if station_id is not None:
            stmt = stmt.where(r.c.station_id == station_id)
        if reason is not None:
            stmt = stmt.where(r.c.reason == reason)
        if since is not None:
            stmt = stmt.where(r.c.received_at >= since)
        if until is not None:
            stmt = stmt.where(r.c.received_at < until)
        return page(conn, stmt, r, "event_id", ("event_id",), "event_id", descending, cursor, limit)

    return query(engine, MODEL, work)

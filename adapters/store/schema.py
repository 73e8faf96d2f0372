"""Tables of the event store (SQLAlchemy Core), shared by the recorder and the migrations.

- ``bss_events``: the append-only log. ``id`` is the notification id: assigned densely
  under the append lock, so id order is commit order (DESIGN.md gap 1). ``state`` is
  LONGBLOB on MySQL (gap 4: BLOB stops at 64 KiB).
- ``bss_append_head``: one row per log; appenders lock it, which serialises appends.
- ``bss_commands``: idempotency keys with the outcome they produced, written in the same
  transaction as the command's events.
- ``bss_tracking``: each projection's position, locked while a batch is applied so two
  workers cannot both commit the same notification (gap 3).
- ``bss_sequences``: counters for numeric ids (riders: v1 stations read ``user_id`` as a number).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
LongBlob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
MicroTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

events = Table(
    "bss_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("originator_id", String(160), nullable=False),
    Column("originator_version", BigId, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("state", LongBlob, nullable=False),
    Column("recorded_at", MicroTime, nullable=False),
    Index("bss_events_stream", "originator_id", "originator_version", unique=True),
    **MYSQL_TABLE_OPTIONS,
)

append_head = Table(
    "bss_append_head",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_id", BigId, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

commands = Table(
    "bss_commands",
    metadata,
    Column("command_key", String(128), primary_key=True),
    Column("position", BigId, nullable=False),
    Column("outcome", LongBlob, nullable=False),
    Column("recorded_at", MicroTime, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

tracking = Table(
    "bss_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("notification_id", BigId, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

sequences = Table(
    "bss_sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigId, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

LOG_NAME = "events"

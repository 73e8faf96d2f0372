"""The event store: events, append head, idempotency keys, projection tracking, id sequences.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONGBLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
TIME6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "bss_events",
        sa.Column("id", BIG, primary_key=True, autoincrement=False),
        sa.Column("originator_id", sa.String(160), nullable=False),
        sa.Column("originator_version", BIG, nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("state", LONGBLOB, nullable=False),
        sa.Column("recorded_at", TIME6, nullable=False),
        **OPTIONS,
    )
    op.create_index(
        "bss_events_stream", "bss_events", ["originator_id", "originator_version"], unique=True
    )
    op.create_table(
        "bss_append_head",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_id", BIG, nullable=False),
        **OPTIONS,
    )
    op.bulk_insert(
        sa.table("bss_append_head", sa.column("name"), sa.column("last_id")),
        [{"name": "events", "last_id": 0}],
    )
    op.create_table(
        "bss_commands",
        sa.Column("command_key", sa.String(128), primary_key=True),
        sa.Column("position", BIG, nullable=False),
        sa.Column("outcome", LONGBLOB, nullable=False),
        sa.Column("recorded_at", TIME6, nullable=False),
        **OPTIONS,
    )
    op.create_table(
        "bss_tracking",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("notification_id", BIG, nullable=False),
        **OPTIONS,
    )

    op.create_table(
        "bss_sequences",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", BIG, nullable=False),
        **OPTIONS,
    )


def downgrade() -> None:
    for table in ("bss_sequences", "bss_tracking", "bss_commands", "bss_append_head", "bss_events"):
        op.drop_table(table)

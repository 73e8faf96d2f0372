"""Per-rider data keys: riders' personal fields are stored encrypted with their own key;
erasing a rider deletes the key (crypto-shredding), the events stay.

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
TIME6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "bss_rider_keys",
        sa.Column("rider_id", sa.String(160), primary_key=True),
        sa.Column("scheme", sa.Integer(), nullable=False),
        sa.Column("key_material", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIME6, nullable=False),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("bss_rider_keys")

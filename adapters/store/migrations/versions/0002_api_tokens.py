"""API bearer tokens: only a SHA-256 hash of each token is kept.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
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
        "bss_api_tokens",
        # The public part of a token (``bss_<token_id>_<secret>``): finds the row, proves nothing.
        sa.Column("token_id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIME6, nullable=False),
        sa.Column("revoked_at", TIME6, nullable=True),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("bss_api_tokens")

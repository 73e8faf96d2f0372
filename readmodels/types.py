"""Column types shared by the read tables (MySQL/MariaDB and SQLite alike).

- :class:`UtcDateTime`: aware UTC datetimes in Python, naive UTC ``DATETIME(6)`` in MySQL
  (microseconds kept) and ISO text in SQLite.
- :class:`ExactDecimal`: money and Ah as exact ``Decimal``: ``DECIMAL`` on MySQL, text on
  SQLite (whose NUMERIC is a binary float).
- :class:`Json`: any JSON-able value (Decimals and datetimes become strings), stored as text
  with orjson, read back as plain dicts and lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import DateTime, Numeric, String, Text, TypeDecorator
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

MicroDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def to_db_time(value: datetime | None) -> datetime | None:
    """Naive UTC, as the DATETIME columns hold it."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db_time(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive UTC with microseconds."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return to_db_time(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return from_db_time(value)


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimals: DECIMAL(precision, scale) on MySQL, text on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 14, scale: int = 3) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale
        self.step = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
        exact = exact.quantize(self.step)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


class Json(TypeDecorator[Any]):
    """A JSON document in a text column (orjson both ways)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


ID = 160
"""Length of id columns: the store's stream ids are at most 160 characters, prefix included."""
TEXT = 1000
"""Length of free-text columns (names, reasons, notes): the domain accepts up to 1000."""
REASON = 200
"""Length of reason-code columns (codes are short; room for an adapter's own words)."""

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def table_name(table: str, suffix: str) -> str:
    """The physical name of a read table in one generation: ``rm_riders_g3``."""
    return f"rm_{table}_{suffix}"

"""Multi-row upserts and inserts without the per-value cost of the generic paths.

SQLAlchemy's executemany hands PyMySQL one dict per row, which PyMySQL formats value by
value through its generic escaper (``escape_item`` dispatch, a dict per row): in a rebuild
that was a third of the time. Here each column gets one converter chosen from its type
once, and a batch becomes one ``INSERT ... VALUES (...),(...) ON DUPLICATE KEY UPDATE``
statement per table (split to stay far below ``max_allowed_packet``). Strings go through
the connection's own ``escape_string`` (which honours NO_BACKSLASH_ESCAPES). On SQLite the
same converters turn rows into parameter tuples for ``executemany``
(``INSERT ... ON CONFLICT DO UPDATE``); sqlite3 binds in C.

Values are converted exactly as the read tables' column types would convert them
(readmodels/types.py), so rows written here read back the same through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymysql.converters import escape_string
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table
from sqlalchemy.engine import Connection

from readmodels.types import ExactDecimal, Json, UtcDateTime, dumps

MAX_STATEMENT_BYTES = 4 * 1024 * 1024
Convert = Callable[[Any], Any]


def _utc_text(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _python_value(column_type: Any) -> Convert | None:
    """value -> what the column stores (a Python value the driver binds), or None for
    'as is'."""
    if isinstance(column_type, UtcDateTime):
        return lambda v: None if v is None else _utc_text(v)
    if isinstance(column_type, ExactDecimal):
        step = column_type.step

        def exact(v: Any) -> str | None:
            if v is None:
                return None
            d = v if isinstance(v, Decimal) else Decimal(str(v))
            return str(d.quantize(step))

        return exact
    if isinstance(column_type, Json):
        return lambda v: None if v is None else dumps(v)
    if isinstance(column_type, Boolean):
        return lambda v: None if v is None else int(bool(v))
    if isinstance(column_type, DateTime):
        return lambda v: None if v is None else _utc_text(v)
    return None


def _utc_literal(value: datetime) -> str:
    if value.utcoffset():
        value = value.astimezone(UTC)
    return "'" + value.isoformat(" ", "microseconds")[:26] + "'"


def mysql_row_formatter(table: Table, escape: Callable[[str], str]) -> Callable[[Any], str]:
    """A function row -> ``(v1,v2,...)`` SQL text for MySQL/MariaDB, generated for this
    table so that each column's conversion is inlined (no call per value): in a rebuild
    this formats millions of values."""
    env: dict[str, Any] = {
        "escape": escape,
        "utc": _utc_literal,
        "dumps": dumps,
        "Decimal": Decimal,
        "floats": _FLOATS,
        "float_text": _float_text,
    }
    parts = []
    for i, column in enumerate(table.columns):
        kind, v = column.type, f"v{i}"
        if isinstance(kind, ExactDecimal):
            env[f"step{i}"] = kind.step
            text = (
                f"str(({v} if {v}.__class__ is Decimal else Decimal(str({v}))).quantize(step{i}))"
            )
        elif isinstance(kind, UtcDateTime | DateTime):
            text = f"utc({v})"
        elif isinstance(kind, Json):
            text = f'"\'" + escape(dumps({v})) + "\'"'
        elif isinstance(kind, Boolean):
            text = f"('1' if {v} else '0')"
        elif isinstance(kind, Float):
            text = f"(floats.get({v}) or float_text({v}))"
        elif isinstance(kind, Integer):
            text = f"str(int({v}))"
        elif isinstance(kind, Date):
            text = f'"\'" + {v}.isoformat() + "\'"'
        else:
            text = f'"\'" + escape(str({v})) + "\'"'
        parts.append(f"('NULL' if ({v} := row[{column.name!r}]) is None else {text})")
    source = "def format_row(row):\n    return '(' + ','.join((" + ", ".join(parts) + ")) + ')'\n"
    exec(compile(source, f"<format_row {table.name}>", "exec"), env)  # noqa: S102 - our own code
    return env["format_row"]  # type: ignore[no-any-return]


_FLOATS: dict[float, str] = {}
"""Float -> its SQL text: measurements repeat a lot (sensors round), and ``repr`` of a float
costs ten dictionary lookups."""


def _float_text(value: Any) -> str:
    text = repr(float(value))
    if text in ("nan", "inf", "-inf"):
        raise ValueError(f"not a finite number: {value!r}")
    if len(_FLOATS) > 500_000:
        _FLOATS.clear()
    _FLOATS[value] = text
    return text


class TableWriter:
    """Writes batches of complete rows (dicts with every column) into one table."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self.columns = [c.name for c in table.columns]
        self.pk = [c.name for c in table.primary_key.columns]
        self.mysql = dialect in ("mysql", "mariadb")
        names = ", ".join(_quote(c, self.mysql) for c in self.columns)
        self.insert_head = f"INSERT INTO {_quote(table.name, self.mysql)} ({names}) VALUES "
        others = [c for c in self.columns if c not in self.pk]
        if self.mysql:
            sets = ", ".join(
                f"{_quote(c, True)} = VALUES({_quote(c, True)})" for c in (others or self.pk[:1])
            )
            self.upsert_tail = f" ON DUPLICATE KEY UPDATE {sets}"
        else:
            keys = ", ".join(_quote(c, False) for c in self.pk)
            if others:
                sets = ", ".join(
                    f"{_quote(c, False)} = excluded.{_quote(c, False)}" for c in others
                )
                self.upsert_tail = f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            else:
                self.upsert_tail = f" ON CONFLICT ({keys}) DO NOTHING"
        self.types = [c.type for c in table.columns]
        self._python = [_python_value(t) for t in self.types]
        self._formatters: dict[int, Callable[[Any], str]] = {}

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]], *, upsert: bool) -> int:
        """Insert (or upsert) the rows; returns the number of statements sent."""
        if not rows:
            return 0
        tail = self.upsert_tail if upsert else ""
        if self.mysql:
            return self._write_mysql(conn, rows, tail)
        return self._write_sqlite(conn, rows, tail)

    def _write_mysql(self, conn: Connection, rows: Sequence[dict[str, Any]], tail: str) -> int:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        format_row = self._mysql_formatter(dbapi)
        cursor = dbapi.cursor()
        statements = 0
        try:
            chunk: list[str] = []
            size = 0
            for row in rows:
                values = format_row(row)
                chunk.append(values)
                size += len(values) + 1
                if size >= MAX_STATEMENT_BYTES:
                    cursor.execute(self.insert_head + ",".join(chunk) + tail)
                    statements += 1
                    chunk, size = [], 0
            if chunk:
                cursor.execute(self.insert_head + ",".join(chunk) + tail)
                statements += 1
        finally:
            cursor.close()
        return statements

    def _mysql_formatter(self, dbapi: Any) -> Callable[[Any], str]:
        escape = _escaper(dbapi)
        key = id(escape) if escape is not escape_string else 0
        found = self._formatters.get(key)
        if found is None:
            found = self._formatters[key] = mysql_row_formatter(self.table, escape)
        return found

    def _write_sqlite(self, conn: Connection, rows: Sequence[dict[str, Any]], tail: str) -> int:
        marks = ", ".join("?" for _ in self.columns)
        sql = f"{self.insert_head}({marks}){tail}"
        pairs = list(zip(self.columns, self._python, strict=True))
        params = [
            tuple(row[name] if convert is None else convert(row[name]) for name, convert in pairs)
            for row in rows
        ]
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()
        return 1


def _quote_only(text: str) -> str:
    return text.replace("'", "''")


def _escaper(dbapi: Any) -> Callable[[str], str]:
    """String escaping for this PyMySQL connection's SQL mode (as PyMySQL itself does it)."""
    from pymysql.constants import SERVER_STATUS

    if dbapi.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        return _quote_only
    return escape_string


def _quote(name: str, mysql: bool) -> str:
    return f"`{name}`" if mysql else f'"{name}"'

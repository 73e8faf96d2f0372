"""Keyset paging for list queries: sort by one column plus the primary key, resume after a
cursor (an opaque string holding the last row's sort value and key).

Keyset, not OFFSET: a page costs the same however deep it is, and rows appended while a
client pages through do not shift the pages it has not read yet. NULL sort values come
first in ascending order and last in descending order, as MySQL and SQLite both sort them.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

import orjson
from sqlalchemy import Column, Select, Table, and_, or_
from sqlalchemy.engine import Connection

from readmodels.types import ExactDecimal, UtcDateTime, from_db_time

MAX_LIMIT = 1000


class Page(TypedDict):
    """One page of a list: the rows (plain dicts) and the cursor of the next page, if any."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class BadCursor(ValueError):
    """Raised when a cursor is not one this list handed out (malformed or for another sort)."""


def encode_cursor(sort: str, value: Any, key: Any) -> str:
    if isinstance(value, Decimal):
        value = str(value)
    raw = orjson.dumps([sort, value, key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, column: Column[Any]) -> tuple[Any, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, key = orjson.loads(raw)
    except Exception as error:
        raise BadCursor("malformed cursor") from error
    if name != sort:
        raise BadCursor(f"cursor was made for sort {name!r}, not {sort!r}")
    if value is not None and isinstance(column.type, UtcDateTime):
        value = from_db_time(datetime.fromisoformat(value))
    elif value is not None and isinstance(column.type, ExactDecimal):
        value = Decimal(value)
    return value, key


def clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def page(
    conn: Connection,
    stmt: Select[Any],
    table: Table,
    sort: str,
    allowed: tuple[str, ...],
    key: str,
    descending: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    """Run ``stmt`` sorted by ``sort`` then ``key``, resuming after ``cursor``; one page."""
    if sort not in allowed:
        raise ValueError(f"sort must be one of {', '.join(allowed)}")
    limit = clamp(limit)
    col, key_col = table.c[sort], table.c[key]
    if cursor:
        value, last = decode_cursor(cursor, sort, col)
        stmt = stmt.where(_after(col, key_col, value, last, descending))
    if descending:
        stmt = stmt.order_by(col.desc(), key_col.desc())
    else:
        stmt = stmt.order_by(col.asc(), key_col.asc())
    rows = [dict(r._mapping) for r in conn.execute(stmt.limit(limit + 1))]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        tail = rows[-1]
        next_cursor = encode_cursor(sort, _jsonable(tail[sort]), tail[key])
    return {"items": rows, "next_cursor": next_cursor}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _after(col: Any, key_col: Any, value: Any, last: Any, descending: bool) -> Any:
    if value is None:
        if descending:  # nulls come last: only nulls with a smaller key remain
            return and_(col.is_(None), key_col < last)
        return or_(and_(col.is_(None), key_col > last), col.is_not(None))
    if descending:
        return or_(col < value, and_(col == value, key_col < last), col.is_(None))
    return or_(col > value, and_(col == value, key_col > last))

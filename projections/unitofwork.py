"""The rows one batch of events changes, and the cache that spares re-reading them.

A projection batch reads the rows it needs, changes them in memory, and writes each changed
row once, in one statement per table, in the batch's transaction (see runner.py):

- :meth:`UnitOfWork.get` returns a working copy of a row (or None), from the cache, else the
  database; projection code changes the copy and hands it back with :meth:`put`
  (nested lists and dicts in a row must be replaced, never changed in place: the cache
  shares them);
- :meth:`insert` appends a row known to be new (health readings, bill lines);
- :meth:`flush` upserts every changed row (``ON DUPLICATE KEY UPDATE`` on MySQL,
  ``ON CONFLICT DO UPDATE`` on SQLite), deletes deleted ones and inserts appended ones,
  one multi-row statement per table (projections/sqlwrite.py).

:class:`RowCache` keeps rows between batches. It is only valid while nobody else wrote the
projection's tables, which the runner checks under the tracking row's lock: the cache
belongs to one position, and if the locked position is not that one (another runner moved
it), or a batch failed, the cache is dropped. A table whose every row is in the cache
(``complete``: a fresh generation starts empty, small tables are loaded whole) answers
"absent" without a query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import String, Table, delete, select, tuple_
from sqlalchemy.engine import Connection

from projections.sqlwrite import TableWriter
from readmodels.types import ExactDecimal

log = logging.getLogger(__name__)

Row = dict[str, Any]
MAX_CACHED_ROWS = 200_000
IN_CHUNK = 500


class TableCache:
    __slots__ = ("complete", "rows")

    def __init__(self) -> None:
        self.rows: dict[Any, Row | None] = {}
        self.complete = False


class RowCache:
    """Committed rows of one projection's tables, valid at ``position`` only."""

    def __init__(self, max_rows: int = MAX_CACHED_ROWS) -> None:
        self.max_rows = max_rows
        self.tables: dict[str, TableCache] = {}
        self.position: int | None = None

    def table(self, name: str) -> TableCache:
        cache = self.tables.get(name)
        if cache is None:
            cache = self.tables[name] = TableCache()
        return cache

    def reset(self) -> None:
        self.tables.clear()
        self.position = None

    def mark_empty(self, names: Iterable[str]) -> None:
        """The tables are known to be empty (a new generation): everything is cached."""
        for name in names:
            cache = self.table(name)
            cache.rows.clear()
            cache.complete = True

    def valid_at(self, position: int) -> bool:
        return self.position is not None and self.position == position


class Spec:
    """What the unit of work needs to know about one table: its key and its statements."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self.columns = [c.name for c in table.columns]
        self.pk = [c.name for c in table.primary_key.columns]
        self.single = len(self.pk) == 1
        self.defaults: Row = {name: None for name in self.columns}
        self.writer = TableWriter(table, dialect)
        # Exact decimals are kept as the column stores them (quantized to its scale), so a
        # row computed from the cache and one read back from the table are the same.
        self.decimals = [
            (c.name, c.type.step) for c in table.columns if isinstance(c.type, ExactDecimal)
        ]
        # Text longer than its column would fail the whole batch on MySQL (strict mode) and
        # stop the projection for good: it is cut, with a warning, instead.
        self.strings = [
            (c.name, c.type.length)
            for c in table.columns
            if isinstance(c.type, String) and c.type.length and not c.primary_key
        ]

    def key(self, row: Row) -> Any:
        if self.single:
            return row[self.pk[0]]
        return tuple(row[c] for c in self.pk)

    def where(self, keys: list[Any]) -> Any:
        if self.single:
            return self.table.c[self.pk[0]].in_(keys)
        return tuple_(*(self.table.c[c] for c in self.pk)).in_(keys)


def _quantize(row: Row, decimals: list[tuple[str, Decimal]]) -> None:
    for column, step in decimals:
        value = row[column]
        if value is not None:
            exact = value if isinstance(value, Decimal) else Decimal(str(value))
            row[column] = exact.quantize(step)


def _fit(row: Row, spec: Spec) -> None:
    for column, length in spec.strings:
        value = row[column]
        if value is not None and len(value) > length:
            log.warning(
                "%s.%s: %d characters cut to %d", spec.table.name, column, len(value), length
            )
            row[column] = value[:length]


_SPECS: dict[tuple[str, str], Spec] = {}


def spec_of(table: Table, dialect: str) -> Spec:
    spec = _SPECS.get((table.name, dialect))
    if spec is None or spec.table is not table:
        spec = _SPECS[(table.name, dialect)] = Spec(table, dialect)
    return spec


class UnitOfWork:
    """One batch's reads and writes over a projection's tables (see module docstring)."""

    def __init__(self, conn: Connection, tables: dict[str, Table], cache: RowCache) -> None:
        self.conn = conn
        dialect = conn.dialect.name
        self.specs = {name: spec_of(table, dialect) for name, table in tables.items()}
        self.cache = cache
        self.working: dict[str, dict[Any, Row | None]] = {name: {} for name in tables}
        self.dirty: dict[str, set[Any]] = {name: set() for name in tables}
        self.appended: dict[str, list[Row]] = {name: [] for name in tables}
        self.statements = 0

    # --- reading ------------------------------------------------------------------------

    def get(self, name: str, key: Any) -> Row | None:
        working = self.working[name]
        if key in working:
            return working[key]
        cache = self.cache.table(name)
        if key in cache.rows:
            cached = cache.rows[key]
            row = None if cached is None else dict(cached)
        elif cache.complete:
            row = None
        else:
            self.prefetch(name, [key])
            return working[key]
        working[key] = row
        return row

    def prefetch(self, name: str, keys: Iterable[Any]) -> None:
        """Load the rows of these keys that are neither in this batch nor in the cache, in
        as few queries as possible."""
        working = self.working[name]
        cache = self.cache.table(name)
        missing = []
        for key in dict.fromkeys(keys):
            if key in working:
                continue
            if key in cache.rows:
                cached = cache.rows[key]
                working[key] = None if cached is None else dict(cached)
            elif cache.complete:
                working[key] = None
            else:
                missing.append(key)
        if not missing:
            return
        spec = self.specs[name]
        for start in range(0, len(missing), IN_CHUNK):
            chunk = missing[start : start + IN_CHUNK]
            found = {}
            for r in self.conn.execute(select(spec.table).where(spec.where(chunk))):
                row = dict(r._mapping)
                found[spec.key(row)] = row
            self.statements += 1
            for key in chunk:
                working[key] = found.get(key)

    def load_all(self, name: str) -> None:
        """Read a whole (small) table into the cache unless it is complete already."""
        cache = self.cache.table(name)
        if cache.complete:
            return
        spec = self.specs[name]
        rows = {}
        for r in self.conn.execute(select(spec.table)):
            row = dict(r._mapping)
            rows[spec.key(row)] = row
        self.statements += 1
        # Rows changed in this batch already (none, when called first) stay as they are.
        for key, row in rows.items():
            self.working[name].setdefault(key, dict(row))
        cache.rows = dict(rows)
        cache.complete = True

    def rows(self, name: str) -> dict[Any, Row | None]:
        """Every row of a complete table as this batch sees it (call :meth:`load_all` first)."""
        cache = self.cache.table(name)
        if not cache.complete:
            raise RuntimeError(f"table {name} is not loaded whole")
        merged: dict[Any, Row | None] = {k: v for k, v in cache.rows.items() if v is not None}
        for key, row in self.working[name].items():
            if row is None:
                merged.pop(key, None)
            else:
                merged[key] = row
        return merged

    # --- writing ------------------------------------------------------------------------

    def new(self, name: str, **values: Any) -> Row:
        """A row with every column (None where not given); not stored until :meth:`put`."""
        row = dict(self.specs[name].defaults)
        row.update(values)
        return row

    def put(self, name: str, row: Row) -> None:
        spec = self.specs[name]
        if spec.decimals:
            _quantize(row, spec.decimals)
        _fit(row, spec)
        key = spec.key(row)
        self.working[name][key] = row
        self.dirty[name].add(key)

    def delete(self, name: str, key: Any) -> None:
        self.working[name][key] = None
        self.dirty[name].add(key)

    def insert(self, name: str, row: Row) -> None:
        spec = self.specs[name]
        if spec.decimals:
            _quantize(row, spec.decimals)
        _fit(row, spec)
        self.appended[name].append(row)

    def flush(self) -> int:
        """Write everything this batch changed; returns the number of rows written."""
        written = 0
        for name, spec in self.specs.items():
            keys = self.dirty[name]
            working = self.working[name]
            if keys:
                upserts = [row for k in keys if (row := working[k]) is not None]
                gone = [k for k in keys if working[k] is None]
                if gone:
                    for start in range(0, len(gone), IN_CHUNK):
                        chunk = gone[start : start + IN_CHUNK]
                        self.conn.execute(delete(spec.table).where(spec.where(chunk)))
                        self.statements += 1
                if upserts:
                    self.statements += spec.writer.write(self.conn, upserts, upsert=True)
                written += len(keys)
            appended = self.appended[name]
            if appended:
                self.statements += spec.writer.write(self.conn, appended, upsert=False)
                written += len(appended)
        return written

    def commit_to_cache(self, position: int) -> None:
        """After the transaction committed: the cache now holds the state at ``position``."""
        for name, working in self.working.items():
            if not working:
                continue
            cache = self.cache.table(name)
            cache.rows.update(working)
            if len(cache.rows) > self.cache.max_rows:
                cache.rows.clear()
                cache.complete = False
        self.cache.position = position

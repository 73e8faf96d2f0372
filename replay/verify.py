"""Compare read model tables row for row: a generation against another, e.g. the live one
against a fresh rebuild (``bss replay verify``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from adapters.store import Store
from readmodels.generations import read_active
from readmodels.schema import model_tables


def snapshot(engine: Engine, model: str, generation: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of one generation, by logical table, in primary key order."""
    tables = model_tables(model, generation)
    with engine.connect() as conn:
        return {name: _rows(conn, table) for name, table in tables.items()}


def _rows(conn: Any, table: Table) -> list[tuple[Any, ...]]:
    order = list(table.primary_key.columns)
    return [tuple(r) for r in conn.execute(select(table).order_by(*order))]


def differences(engine: Engine, model: str, a: int, b: int, *, limit: int = 5) -> list[str]:
    """Human-readable differences between two generations of a read model (empty: equal)."""
    left, right = snapshot(engine, model, a), snapshot(engine, model, b)
    found: list[str] = []
    for name in left:
        rows_a, rows_b = left[name], right[name]
        if rows_a == rows_b:
            continue
        keys_a, keys_b = {repr(r) for r in rows_a}, {repr(r) for r in rows_b}
        only_a = [r for r in rows_a if repr(r) not in keys_b]
        only_b = [r for r in rows_b if repr(r) not in keys_a]
        found.append(
            f"{model}.{name}: {len(rows_a)} rows in g{a}, {len(rows_b)} in g{b}; "
            f"only in g{a}: {only_a[:limit]}; only in g{b}: {only_b[:limit]}"
        )
    return found


def verify(
    store: Store, names: list[str] | None = None, **rebuild_options: Any
) -> dict[str, list[str]]:
    """Build every named read model afresh beside the active one (no switch) and compare
    them; the scratch generations are dropped afterwards. Returns differences by read model
    (empty lists: all equal).

    Meaningful once the live runners have caught up and while nothing appends (a quiet
    system, or a copy of the database): both sides must stand at the same position."""
    from replay.rebuild import drop_generation, rebuild

    results = rebuild(store, names, switch=False, **rebuild_options)
    report: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        active = read_active(conn)
    try:
        for result in results:
            report[result.model] = differences(
                store.engine, result.model, active[result.model], result.new_generation
            )
    finally:
        for result in results:
            drop_generation(store, result.model, result.new_generation)
    return report

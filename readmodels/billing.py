"""Billing: one row per rider per month, its usage lines, and the plans.

A bill is ``open`` until the month is closed, then ``closed`` (amount due fixed by rule
17), and ``paid`` once payments cover the amount due. ``used_ah`` is the usage of swaps in
the month itself; ``adjustment_ah`` is usage of earlier, already closed months that arrived
late and was put on this bill (rule 17: never silently into a closed bill); ``total_ah`` is
their sum. While a bill is open, ``included_ah``/``excess_ah``/``estimated_due`` preview it
with the rider's current plan; once closed they are the bill's own terms and
``amount_due`` is set. All money and Ah values are exact decimals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.engine import Connection, Engine

from readmodels.generations import query
from readmodels.paging import Page, page
from readmodels.types import (
    ID,
    MYSQL_TABLE_OPTIONS,
    TEXT,
    ExactDecimal,
    Json,
    UtcDateTime,
    table_name,
)

MODEL = "billing"
VERSION = 1
STATUSES = ("open", "closed", "paid")


def define(metadata: MetaData, suffix: str) -> dict[str, Table]:
    ah = ExactDecimal(14, 3)
    money = ExactDecimal(14, 2)
    bills = Table(
        table_name("bills", suffix),
        metadata,
        Column("rider_id", String(ID), primary_key=True),
        Column("month", String(7), primary_key=True),
        Column("status", String(8), nullable=False),
        Column("plan_id", String(ID)),
        Column("used_ah", ah, nullable=False),
        Column("adjustment_ah", ah, nullable=False),
        Column("total_ah", ah, nullable=False),
        Column("included_ah", ah),
        Column("excess_ah", ah),
        Column("monthly_fee", ExactDecimal(16, 4)),
        Column("extra_ah_rate", ExactDecimal(18, 6)),
        Column("amount_due", money),
        Column("estimated_due", money),
        Column("paid", money, nullable=False),
        Column("outstanding", money),
        Column("payments", Json, nullable=False),
        Column("usage_lines", Integer, nullable=False),
        Column("adjustment_lines", Integer, nullable=False),
        Column("opened_at", UtcDateTime, nullable=False),
        Column("closed_at", UtcDateTime),
        Column("due_at", UtcDateTime),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_{suffix}_bills_month", "month", "status"),
        **MYSQL_TABLE_OPTIONS,
    )
    lines = Table(
        table_name("bill_lines", suffix),
        metadata,
        Column("event_id", BigInteger, primary_key=True, autoincrement=False),
        Column("rider_id", String(ID), nullable=False),
        Column("month", String(7), nullable=False),
        Column("for_month", String(7), nullable=False),
        Column("adjustment", Boolean, nullable=False),
        Column("session_id", String(ID), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("energy_ah", ah, nullable=False),
        Column("swap_at", UtcDateTime, nullable=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        Index(f"ix_{suffix}_lines_bill", "rider_id", "month"),
        **MYSQL_TABLE_OPTIONS,
    )
    plans = Table(
        table_name("plans", suffix),
        metadata,
        Column("plan_id", String(ID), primary_key=True),
        Column("name", String(TEXT), nullable=False),
        Column("monthly_fee", ExactDecimal(16, 4), nullable=False),
        Column("included_ah", ah, nullable=False),
        Column("extra_ah_rate", ExactDecimal(18, 6), nullable=False),
        Column("defined_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    rider_plans = Table(
        table_name("bl_rider_plans", suffix),
        metadata,
        Column("rider_id", String(ID), primary_key=True),
        Column("plan_id", String(ID)),
        **MYSQL_TABLE_OPTIONS,
    )
    return {"bills": bills, "lines": lines, "plans": plans, "rider_plans": rider_plans}


def get_bill(engine: Engine, rider_id: str, month: str) -> dict[str, Any] | None:
    """One bill with its usage lines (``lines``, in log order), or None."""

    def work(conn: Connection, t: dict[str, Table]) -> dict[str, Any] | None:
        b, lines = t["bills"], t["lines"]
        row = conn.execute(select(b).where(b.c.rider_id == rider_id, b.c.month == month)).first()
        if row is None:
            return None
        bill = dict(row._mapping)
        stmt = (
            select(lines)
            .where(lines.c.rider_id == rider_id, lines.c.month == month)
            .order_by(lines.c.event_id)
        )
        bill["lines"] = [dict(r._mapping) for r in conn.execute(stmt)]
        return bill

    return query(engine, MODEL, work)


def list_bills(
    engine: Engine,
    *,
    rider_id: str | None = None,
    month: str | None = None,
    status: str | None = None,
    unpaid: bool = False,
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Bills (without lines), newest month first; ``unpaid`` selects closed bills with an
    amount still outstanding."""

    def work(conn: Connection, t: dict[str, Table]) -> Page:
        b = t["bills"]
        stmt = select(b)
        if rider_id is not None:
            stmt = stmt.where(b.c.rider_id == rider_id)
        if month is not None:
            stmt = stmt.where(b.c.month == month)
        if status is not None:
            stmt = stmt.where(b.c.status == status)
        if unpaid:
            stmt = stmt.where(b.c.status == "closed")
        key = "rider_id"
        return page(conn, stmt, b, "month", ("month",), key, descending, cursor, limit)

    return query(engine, MODEL, work)


def list_plans(engine: Engine) -> list[dict[str, Any]]:
    """Every plan with its current terms, by id."""

    def work(conn: Connection, t: dict[str, Table]) -> list[dict[str, Any]]:
        p = t["plans"]
        return [dict(r._mapping) for r in conn.execute(select(p).order_by(p.c.plan_id))]

    return query(engine, MODEL, work)

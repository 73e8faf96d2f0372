"""Analytics over the read models: counts, SOH buckets, swaps per day, refusals, utilisation.

Time windows default to the last 30 days (``since``/``until``, UTC); per-day figures are
summed from the hourly station rows of the analytics read model.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection, Engine

from adapters.http import reads
from adapters.http.cache import cached
from adapters.http.deps import EngineDep, Readers, fresh
from adapters.http.models.analytics import (
    ReasonCount,
    SohBucket,
    StationDay,
    Summary,
    Utilisation,
    Window,
)
from adapters.http.problems import ERROR_RESPONSES, ProblemException
from readmodels import analytics as model
from readmodels import batteries as battery_model
from readmodels import stations as station_model
from readmodels.generations import query

router = APIRouter(prefix="/api/analytics", tags=["analytics"], responses=ERROR_RESPONSES)

BUCKETS = ("90-100", "80-89", "70-79", "60-69", "<60", "unknown")


def window(since: datetime | None, until: datetime | None, days: int = 30) -> Window:
    end = _aware(until) or datetime.now(UTC)
    start = _aware(since) or end - timedelta(days=days)
    if start >= end:
        raise ProblemException(422, "invalid_request", "since must be before until")
    return Window(since=start, until=end)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _hourly(engine: Engine, w: Window, station_id: str | None = None) -> list[dict[str, Any]]:
    return reads.call(
        model.station_hourly, engine, station_id, since=w.since, until=w.until, limit=100_000
    )


@router.get("/summary", response_model=Summary, dependencies=[Depends(fresh("analytics"))])
@cached("analytics", "stations", "batteries")
def summary(
    engine: EngineDep, who: Readers, since: datetime | None = None, until: datetime | None = None
) -> Summary:
    """Stations, slots and batteries now; sessions, swaps and refusals in the window."""
    w = window(since, until)
    inventory = reads.call(station_model.inventory_summary, engine)
    totals = reads.call(model.station_totals, engine, since=w.since, until=w.until)
    sums = {
        k: sum(int(t[k]) for t in totals)
        for k in ("sessions", "swaps", "refusals", "cancelled", "timed_out")
    }
    return Summary(
        window=w,
        stations=inventory.get("stations", 0),
        slots={k: inventory.get(k, 0) for k in ("ready", "charging", "empty", "faulty")},
        batteries=reads.call(battery_model.count_by_status, engine),
        **sums,
    )


@router.get(
    "/soh-distribution",
    response_model=list[SohBucket],
    dependencies=[Depends(fresh("batteries"))],
)
@cached("batteries")
def soh_distribution(
    engine: EngineDep, who: Readers, include_retired: bool = False
) -> list[SohBucket]:
    """Batteries by state of health: 90-100, 80-89, 70-79, 60-69, <60 and unknown."""

    def work(conn: Connection, t: dict[str, Any]) -> dict[str, int]:
        b = t["batteries"]
        soh = b.c.soh
        bucket = case(
            (soh.is_(None), "unknown"),
            (soh >= 90, "90-100"),
            (soh >= 80, "80-89"),
            (soh >= 70, "70-79"),
            (soh >= 60, "60-69"),
            else_="<60",
        ).label("bucket")
        stmt = select(bucket, func.count()).group_by(bucket)
        if not include_retired:
            stmt = stmt.where(b.c.grade != "retired")
        return {str(name): int(n) for name, n in conn.execute(stmt)}

    counts = reads.call(query, engine, battery_model.MODEL, work)
    return [SohBucket(bucket=name, batteries=counts.get(name, 0)) for name in BUCKETS]


@router.get(
    "/swaps-per-station-per-day",
    response_model=list[StationDay],
    dependencies=[Depends(fresh("analytics"))],
)
@cached("analytics")
def swaps_per_station_per_day(
    engine: EngineDep,
    who: Readers,
    station_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StationDay]:
    """Sessions, swaps, refusals and energy per station per UTC day."""
    w = window(since, until)
    days: dict[tuple[str, Any], dict[str, Any]] = defaultdict(
        lambda: {"sessions": 0, "swaps": 0, "refusals": 0, "energy_ah": Decimal(0)}
    )
    for row in _hourly(engine, w, station_id):
        day = days[(row["station_id"], row["hour"].date())]
        for k in ("sessions", "swaps", "refusals"):
            day[k] += int(row[k])
        day["energy_ah"] += Decimal(row["energy_ah"] or 0)
    return [StationDay(station_id=s, day=d, **v) for (s, d), v in sorted(days.items())]


@router.get(
    "/refusal-reasons",
    response_model=list[ReasonCount],
    dependencies=[Depends(fresh("analytics"))],
)
@cached("analytics")
def refusal_reasons(
    engine: EngineDep,
    who: Readers,
    station_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ReasonCount]:
    """Refusals by reason code in the window, most frequent first."""
    w = window(since, until)
    counts: dict[str, int] = defaultdict(int)
    for row in _hourly(engine, w, station_id):
        for reason, n in (row.get("refusals_by_reason") or {}).items():
            counts[str(reason)] += int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [ReasonCount(reason=r, count=n) for r, n in ranked]


@router.get(
    "/utilisation", response_model=list[Utilisation], dependencies=[Depends(fresh("analytics"))]
)
@cached("analytics")
def utilisation(
    engine: EngineDep, who: Readers, since: datetime | None = None, until: datetime | None = None
) -> list[Utilisation]:
    """Per station: the share of the window during which a session was open."""
    w = window(since, until, days=7)
    seconds = (w.until - w.since).total_seconds()
    totals = reads.call(model.station_totals, engine, since=w.since, until=w.until)
    return [
        Utilisation(
            station_id=t["station_id"],
            busy_s=t["busy_s"],
            utilisation=round(min(1.0, t["busy_s"] / seconds), 6),
            sessions=t["sessions"],
            swaps=t["swaps"],
        )
        for t in totals
    ]

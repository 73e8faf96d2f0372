"""Station analytics per hour (readmodels/analytics.py) from SwapSession events, plus the
inventory (projections/inventory.py) for the batteries available.

Busy time: a station is busy from the moment its open-session count goes from 0 to 1 until
it drops back to 0; each busy interval is split over the hours it spans. Times are the
station's clock (occurred_at); a session closing "before" it opened counts zero seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.session import SwapSession
from projections import inventory
from projections.base import Projection, key_of
from projections.inventory import Inventory
from projections.unitofwork import Row, UnitOfWork

S = SwapSession
HOUR = timedelta(hours=1)
ZERO = Decimal("0.000")
REFUSALS = (S.AuthDenied, S.ReturnedBatteryRefused, S.IssueRefused, S.PickRefused, S.StationRefused)
CLOSING = (
    S.ReturnedBatteryRefused,
    S.PickRefused,
    S.StationRefused,
    S.Completed,
    S.Cancelled,
    S.TimedOut,
)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-1) of the values, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class AnalyticsProjection(Projection):
    model = "analytics"
    handles = (
        *inventory.HANDLES,
        S.CardAuthorized,
        *REFUSALS,
        S.Completed,
        S.Cancelled,
        S.TimedOut,
    )
    preload = ("stations", "sessions", *inventory.TABLES)

    def __init__(self) -> None:
        super().__init__()
        self.inventory = Inventory(self._slot_changed, readings=False)

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        at = event.occurred_at
        match event:
            case S.CardAuthorized():
                session_id = key_of(event.originator_id)
                uow.put(
                    "sessions",
                    {"session_id": session_id, "station_id": event.station_id, "opened_at": at},
                )
                self._hour(uow, event.station_id, at)["sessions"] += 1
                station = self._station(uow, event.station_id)
                if not station["open_sessions"]:
                    station["busy_since"] = at
                station["open_sessions"] = sorted({*station["open_sessions"], session_id})
                uow.put("stations", station)
            case S.AuthDenied():
                self._refusal(uow, event.station_id, at, event.reason)
            case _ if isinstance(event, REFUSALS + CLOSING):
                self._session_event(uow, event)
            case _:
                self.inventory.apply(event, uow)

    def _session_event(self, uow: UnitOfWork, event: Any) -> None:
        session = uow.get("sessions", key_of(event.originator_id))
        if session is None:
            return
        station_id, at = session["station_id"], event.occurred_at
        if isinstance(event, REFUSALS):
            self._refusal(uow, station_id, at, event.reason)
        match event:
            case S.Completed():
                hour = self._hour(uow, station_id, at)
                seconds = max(0.0, (at - session["opened_at"]).total_seconds())
                hour["swaps"] += 1
                hour["durations"] = [*hour["durations"], seconds]
                hour["duration_p50_s"] = percentile(hour["durations"], 0.5)
                hour["duration_p95_s"] = percentile(hour["durations"], 0.95)
                hour["energy_ah"] = Decimal(hour["energy_ah"]) + event.energy_used_ah
            case S.Cancelled():
                self._hour(uow, station_id, at)["cancelled"] += 1
            case S.TimedOut():
                self._hour(uow, station_id, at)["timed_out"] += 1
        if isinstance(event, CLOSING):
            uow.delete("sessions", session["session_id"])
            self._close(uow, station_id, session["session_id"], at)

    def _refusal(self, uow: UnitOfWork, station_id: str, at: datetime, reason: str) -> None:
        hour = self._hour(uow, station_id, at)
        hour["refusals"] += 1
        by_reason = dict(hour["refusals_by_reason"])
        by_reason[reason] = by_reason.get(reason, 0) + 1
        hour["refusals_by_reason"] = by_reason

    def _close(self, uow: UnitOfWork, station_id: str, session_id: str, at: datetime) -> None:
        station = self._station(uow, station_id)
        remaining = [s for s in station["open_sessions"] if s != session_id]
        if station["open_sessions"] and not remaining and station["busy_since"] is not None:
            self._busy(uow, station_id, station["busy_since"], at)
            station["busy_since"] = None
        station["open_sessions"] = remaining
        uow.put("stations", station)

    def _busy(self, uow: UnitOfWork, station_id: str, start: datetime, end: datetime) -> None:
        while start < end:
            bucket = hour_of(start)
            stop = min(end, bucket + HOUR)
            hour = self._hour(uow, station_id, start)
            hour["busy_s"] = hour["busy_s"] + (stop - start).total_seconds()
            hour["utilisation"] = round(hour["busy_s"] / 3600.0, 6)
            start = stop

    # --- rows ---------------------------------------------------------------------------

    def _station(self, uow: UnitOfWork, station_id: str) -> Row:
        station = uow.get("stations", station_id)
        if station is None:
            station = uow.new(
                "stations", station_id=station_id, slot_count=0, available=0, open_sessions=[]
            )
        return station

    def _hour(self, uow: UnitOfWork, station_id: str, at: datetime) -> Row:
        """The station's row of that hour (created with the current availability), marked
        as changed: callers change it in place."""
        key = (station_id, hour_of(at))
        row = uow.get("hourly", key)
        if row is None:
            available = self._station(uow, station_id)["available"]
            row = uow.new(
                "hourly",
                station_id=station_id,
                hour=key[1],
                sessions=0,
                swaps=0,
                refusals=0,
                refusals_by_reason={},
                cancelled=0,
                timed_out=0,
                durations=[],
                available_min=available,
                available_max=available,
                available_last=available,
                busy_s=0.0,
                utilisation=0.0,
                energy_ah=ZERO,
            )
        uow.put("hourly", row)
        return row

    def _slot_changed(
        self, uow: UnitOfWork, old: Row | None, new: Row | None, at: datetime
    ) -> None:
        slot = new if new is not None else old
        assert slot is not None
        before = bool(old and old["issuable"])
        after = bool(new and new["issuable"])
        station = self._station(uow, slot["station_id"])
        station["slot_count"] += (new is not None) - (old is not None)
        if before == after:
            uow.put("stations", station)
            return
        station["available"] += after - before
        uow.put("stations", station)
        hour = self._hour(uow, slot["station_id"], at)
        available = station["available"]
        hour["available_min"] = min(hour["available_min"], available)
        hour["available_max"] = max(hour["available_max"], available)
        hour["available_last"] = available

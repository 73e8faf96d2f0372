"""Batteries now (readmodels/batteries.py) from Battery events.

The latest reading follows the aggregate's rule: a reading older than the latest one is
history only (it is in the health log) and changes nothing here; a reading without
``temperature`` takes ``max_temp``, one without ``voltage`` takes ``pack_voltage``.
``last_seen_at`` is the latest station-clock time the battery was physically seen: a
reading, docking, removal, hand-over, issue or return.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.battery import Battery
from projections.base import Projection, key_of, later
from projections.decode import Delivered
from projections.unitofwork import UnitOfWork

SEEN = (
    Battery.Registered,
    Battery.Docked,
    Battery.Removed,
    Battery.HandedOver,
    Battery.Issued,
    Battery.Returned,
    Battery.HealthRecorded,
)


def custody(
    kind: str, station_id: str | None = None, slot: int | None = None, rider_id: str | None = None
) -> dict[str, Any]:
    """The custody dict with all four keys."""
    return {"kind": kind, "station_id": station_id, "slot": slot, "rider_id": rider_id}


def full_custody(value: dict[str, Any]) -> dict[str, Any]:
    return custody(value["kind"], value.get("station_id"), value.get("slot"), value.get("rider_id"))


class BatteriesProjection(Projection):
    model = "batteries"
    handles = (
        Battery.Registered,
        Battery.Updated,
        Battery.Docked,
        Battery.Removed,
        Battery.HandedOver,
        Battery.Issued,
        Battery.Returned,
        Battery.Reserved,
        Battery.ReservationReleased,
        Battery.HealthRecorded,
        Battery.Quarantined,
        Battery.Reinstated,
        Battery.SentToRepair,
        Battery.Retired,
    )

    def prefetch(self, batch: list[Delivered]) -> dict[str, Iterable[Any]]:
        return {"batteries": [key_of(d.event.originator_id) for d in batch]}

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        key = key_of(event.originator_id)
        if isinstance(event, Battery.Registered):
            row = uow.new(
                "batteries",
                battery_id=key,
                grade="ok",
                registered_at=event.occurred_at,
                last_seen_at=event.occurred_at,
            )
            _describe(row, event)
            _move(row, full_custody(event.custody))
            row["soc"], row["soh"] = event.soc, event.soh
            row["reading_at"] = event.occurred_at
        else:
            found = uow.get("batteries", key)
            if found is None:
                return
            row = found
        match event:
            case Battery.Registered():
                pass
            case Battery.Updated():
                _describe(row, event)
            case Battery.Docked():
                _move(row, custody("slot", event.station_id, event.slot))
            case Battery.Returned():
                _move(row, custody("slot", event.station_id, event.slot))
            case Battery.Removed():
                _move(row, custody(event.destination))
            case Battery.HandedOver() | Battery.Issued():
                _move(row, custody("rider", rider_id=event.rider_id))
            case Battery.Reserved():
                row["reserved_for"] = event.session_id
            case Battery.ReservationReleased():
                row["reserved_for"] = None
            case Battery.HealthRecorded():
                _read(row, event)
            case Battery.Quarantined():
                row["grade"] = "quarantined"
            case Battery.Reinstated():
                row["grade"] = "ok"
            case Battery.SentToRepair():
                _move(row, custody("repair"))
            case Battery.Retired():
                row["grade"] = "retired"
                _move(row, custody("retired"))
            case _:
                return
        if isinstance(event, SEEN):
            row["last_seen_at"] = later(row["last_seen_at"], event.occurred_at)
        row["status"] = status(row)
        row["position"] = position
        uow.put("batteries", row)


def status(row: dict[str, Any]) -> str:
    """One word for custody and grade (see readmodels/batteries.py)."""
    kind = row["custody_kind"]
    if row["grade"] == "retired" or kind == "retired":
        return "retired"
    if row["grade"] == "quarantined":
        return "quarantined"
    if kind == "rider":
        return "in_use"
    if kind == "slot":
        return "reserved" if row["reserved_for"] else "docked"
    return str(kind)


def _describe(row: dict[str, Any], event: Any) -> None:
    row["battery_type"] = event.battery_type
    row["capacity_ah"] = event.capacity_ah
    row["manufactured_on"] = event.manufactured_on


def _move(row: dict[str, Any], where: dict[str, Any]) -> None:
    row["custody"] = where
    row["custody_kind"] = where["kind"]
    row["station_id"] = where["station_id"]
    row["slot"] = where["slot"]
    row["rider_id"] = where["rider_id"]


def _read(row: dict[str, Any], event: Any) -> None:
    if row["reading_at"] is not None and event.occurred_at < row["reading_at"]:
        return
    for name in ("soc", "soh", "temperature", "voltage", "cycle_count", "error_code"):
        value = getattr(event, name)
        if value is not None:
            row[name] = value
    if event.temperature is None and event.max_temp is not None:
        row["temperature"] = event.max_temp
    if event.voltage is None and event.pack_voltage is not None:
        row["voltage"] = event.pack_voltage
    row["reading_at"] = event.occurred_at

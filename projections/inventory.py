"""What sits in each slot and whether it may be issued: shared by the stations and analytics
projections, each over its own tables (``slots``, ``inv_batteries``, ``state``), so either
read model can be rebuilt alone.

Slot contents follow the station's stream (``SlotFilled`` / ``SlotEmptied``, reservations);
a battery's SOC/SOH/grade follow its own stream (the latest reading wins, as in the
aggregate); the issue minimums follow ``Policy.Changed``. Every change to a slot is passed
to ``on_change(uow, old, new, at)`` so the projection can keep its own totals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.battery import Battery
from domain.policy import DEFAULTS, Policy
from domain.station import Station
from projections.base import key_of
from projections.unitofwork import Row, UnitOfWork

TABLES = ("slots", "inv_batteries", "state")
HANDLES: tuple[type, ...] = (
    Policy.Changed,
    Station.Registered,
    Station.Updated,
    Station.SlotFilled,
    Station.SlotEmptied,
    Station.BatteryReserved,
    Station.ReservationReleased,
    Battery.Registered,
    Battery.HealthRecorded,
    Battery.Quarantined,
    Battery.Reinstated,
    Battery.Retired,
)
DEFAULT_POLICY = {"min_issue_soc": DEFAULTS.min_issue_soc, "min_issue_soh": DEFAULTS.min_issue_soh}

SlotChange = Callable[[UnitOfWork, Row | None, Row | None, datetime], None]


class Inventory:
    """Keeps ``slots`` and ``inv_batteries`` of one projection (see module docstring)."""

    def __init__(self, on_change: SlotChange, *, readings: bool = True) -> None:
        self.on_change = on_change
        self.readings = readings

    def apply(self, event: Any, uow: UnitOfWork) -> None:
        at = event.occurred_at
        battery: Row | None
        match event:
            case Policy.Changed():
                policy = {
                    "min_issue_soc": event.min_issue_soc,
                    "min_issue_soh": event.min_issue_soh,
                }
                uow.put("state", {"name": "policy", "value": policy})
                for key in sorted(uow.rows("slots")):
                    self.refresh(uow, key, at)
            case Station.Registered():
                self._resize(uow, key_of(event.originator_id), 0, event.slot_count, at)
            case Station.Updated():
                station_id = key_of(event.originator_id)
                count = sum(1 for s, _ in uow.rows("slots") if s == station_id)
                self._resize(uow, station_id, count, event.slot_count, at)
            case Station.SlotFilled():
                station_id = key_of(event.originator_id)
                battery = self._battery(uow, event.battery_id)
                battery["station_id"], battery["slot"] = station_id, event.slot
                uow.put("inv_batteries", battery)
                self.refresh(uow, (station_id, event.slot), at, battery_id=event.battery_id)
            case Station.SlotEmptied():
                station_id = key_of(event.originator_id)
                battery = uow.get("inv_batteries", event.battery_id)
                if battery is not None and battery["station_id"] == station_id:
                    battery["station_id"] = battery["slot"] = None
                    uow.put("inv_batteries", battery)
                self.refresh(uow, (station_id, event.slot), at, battery_id=None)
            case Station.BatteryReserved() | Station.ReservationReleased():
                reserved = event.session_id if isinstance(event, Station.BatteryReserved) else None
                where = self.slot_of(uow, event.battery_id)
                if where is not None and where[0] == key_of(event.originator_id):
                    self.refresh(uow, where, at, reserved_for=reserved)
            case Battery.Registered():
                battery = self._battery(uow, key_of(event.originator_id))
                battery.update(soc=event.soc, soh=event.soh, grade="ok", reading_at=at)
                if event.custody.get("kind") == "slot":
                    battery["station_id"] = event.custody["station_id"]
                    battery["slot"] = event.custody["slot"]
                uow.put("inv_batteries", battery)
                self._refresh_battery(uow, battery, at)
            case Battery.HealthRecorded():
                battery = self._battery(uow, key_of(event.originator_id))
                if battery["reading_at"] is not None and at < battery["reading_at"]:
                    return
                for name in ("soc", "soh"):
                    value = getattr(event, name)
                    if value is not None:
                        battery[name] = value
                temperature = event.temperature if event.temperature is not None else event.max_temp
                if temperature is not None:
                    battery["temperature"] = temperature
                battery["reading_at"] = at
                uow.put("inv_batteries", battery)
                self._refresh_battery(uow, battery, at)
            case Battery.Quarantined() | Battery.Reinstated() | Battery.Retired():
                battery = self._battery(uow, key_of(event.originator_id))
                battery["grade"] = _GRADES[type(event)]
                uow.put("inv_batteries", battery)
                self._refresh_battery(uow, battery, at)
            case _:
                pass

    # --- slots ---------------------------------------------------------------------------

    def refresh(
        self, uow: UnitOfWork, key: tuple[str, int], at: datetime, **changes: Any
    ) -> Row | None:
        """Apply ``changes`` to a slot and derive its state again; report the change."""
        old = uow.get("slots", key)
        if old is None:
            return None
        new = dict(old)
        new.update(changes)
        if "battery_id" in changes and changes["battery_id"] != old["battery_id"]:
            new["reserved_for"] = None
            new["reported_state"] = new["reported_at"] = None
        battery = uow.get("inv_batteries", new["battery_id"]) if new["battery_id"] else None
        derive(new, battery, self.policy(uow), readings=self.readings)
        if new == old:
            return old
        new["updated_at"] = at
        uow.put("slots", new)
        self.on_change(uow, old, new, at)
        return new

    def slot_of(self, uow: UnitOfWork, battery_id: str) -> tuple[str, int] | None:
        battery = uow.get("inv_batteries", battery_id)
        if battery is None or battery["station_id"] is None:
            return None
        return (battery["station_id"], int(battery["slot"]))

    def policy(self, uow: UnitOfWork) -> dict[str, Any]:
        row = uow.get("state", "policy")
        return DEFAULT_POLICY if row is None else dict(row["value"])

    def _refresh_battery(self, uow: UnitOfWork, battery: Row, at: datetime) -> None:
        if battery["station_id"] is None:
            return
        key = (battery["station_id"], int(battery["slot"]))
        slot = uow.get("slots", key)
        if slot is not None and slot["battery_id"] == battery["battery_id"]:
            self.refresh(uow, key, at)

    def _battery(self, uow: UnitOfWork, battery_id: str) -> Row:
        battery = uow.get("inv_batteries", battery_id)
        if battery is None:
            battery = uow.new("inv_batteries", battery_id=battery_id, grade="ok")
        return battery

    def _resize(self, uow: UnitOfWork, station_id: str, old: int, new: int, at: datetime) -> None:
        for number in range(old + 1, new + 1):
            slot = uow.new(
                "slots",
                station_id=station_id,
                slot=number,
                state="empty",
                state_source="derived",
                issuable=False,
                updated_at=at,
            )
            uow.put("slots", slot)
            self.on_change(uow, None, slot, at)
        for number in range(new + 1, old + 1):
            gone = uow.get("slots", (station_id, number))
            if gone is not None:
                uow.delete("slots", (station_id, number))
                self.on_change(uow, gone, None, at)


_GRADES = {Battery.Quarantined: "quarantined", Battery.Reinstated: "ok", Battery.Retired: "retired"}


def derive(
    slot: Row, battery: Row | None, policy: dict[str, Any], *, readings: bool = True
) -> None:
    """Fill a slot's battery figures, ``issuable`` and ``state`` (readmodels/stations.py).
    Without ``readings`` the slot keeps no SOC/SOH/temperature/grade of its own, so a
    reading that changes neither state nor issuability leaves the row as it was."""
    min_soc, min_soh = policy["min_issue_soc"], policy["min_issue_soh"]
    if slot["battery_id"] is None:
        slot.update(soc=None, soh=None, temperature=None, grade=None, issuable=False)
        derived = "empty"
    else:
        soc = battery["soc"] if battery else None
        soh = battery["soh"] if battery else None
        grade = battery["grade"] if battery else "ok"
        if readings:
            slot.update(soc=soc, soh=soh, temperature=battery["temperature"] if battery else None)
            slot["grade"] = grade
        healthy = grade == "ok" and not (soh is not None and soh < min_soh)
        charged = soc is not None and soc >= min_soc
        slot["issuable"] = bool(
            healthy and charged and soh is not None and slot["reserved_for"] is None
        )
        derived = "faulty" if not healthy else ("ready" if charged else "charging")
    if slot["reported_state"] is not None:
        slot["state"], slot["state_source"] = slot["reported_state"], "heartbeat"
    else:
        slot["state"], slot["state_source"] = derived, "derived"

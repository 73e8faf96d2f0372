"""A battery: what it is, where it is (custody), how healthy it is, and whether it may be issued.

Custody is exactly one of
``{"kind": "slot", "station_id", "slot"}``, ``{"kind": "rider", "rider_id"}``,
``{"kind": "warehouse"}``, ``{"kind": "repair"}``, ``{"kind": "retired"}``.
``issued_soc`` is the SOC when the current holder received it (rule 16); it is None
while no rider holds it, or when the SOC at hand-over was unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.base import Aggregate, DomainEvent, Stamp

GRADES = ("ok", "quarantined", "retired")
REMOVAL_REASONS = {"maintenance": "warehouse", "dispensed": "warehouse", "fault": "repair"}
READING_FIELDS = (
    "soc",
    "soh",
    "temperature",
    "voltage",
    "pack_voltage",
    "cell_voltage_min",
    "cell_voltage_max",
    "max_temp",
    "ambient_temp",
    "humidity",
    "internal_resist",
    "cycle_count",
    "error_code",
)


def in_slot(station_id: str, slot: int) -> dict[str, Any]:
    return {"kind": "slot", "station_id": station_id, "slot": slot}


def with_rider(rider_id: str) -> dict[str, Any]:
    return {"kind": "rider", "rider_id": rider_id}


def place(kind: str) -> dict[str, Any]:
    """Custody without details: warehouse, repair or retired."""
    return {"kind": kind}


class Battery(Aggregate):
    prefix = "battery"

    @dataclass(frozen=True, kw_only=True)
    class Registered(DomainEvent):
        battery_type: str
        capacity_ah: Decimal
        manufactured_on: str
        custody: dict[str, Any]
        soc: float | None = None
        soh: float | None = None

        def apply(self, aggregate: Battery) -> None:
            aggregate.describe(self.battery_type, self.capacity_ah, self.manufactured_on)
            aggregate.custody = dict(self.custody)
            aggregate.issued_soc = None
            aggregate.grade = "ok"
            aggregate.reserved_for = None
            aggregate.reading = {name: None for name in READING_FIELDS}
            aggregate.reading.update(soc=self.soc, soh=self.soh)
            aggregate.reading_at = self.occurred_at
            aggregate.slotted_at = self.occurred_at if self.custody["kind"] == "slot" else None

    @dataclass(frozen=True, kw_only=True)
    class Updated(DomainEvent):
        battery_type: str
        capacity_ah: Decimal
        manufactured_on: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.describe(self.battery_type, self.capacity_ah, self.manufactured_on)

    @dataclass(frozen=True, kw_only=True)
    class Docked(DomainEvent):
        """Put in a slot outside a swap (restocking, back from repair)."""

        station_id: str
        slot: int
        cause: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = in_slot(self.station_id, self.slot)
            aggregate.issued_soc = None
            aggregate.slotted_at = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class Removed(DomainEvent):
        """Taken out of a slot outside a swap; ``destination`` is warehouse or repair."""

        station_id: str
        slot: int
        reason: str
        destination: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = place(self.destination)

    @dataclass(frozen=True, kw_only=True)
    class HandedOver(DomainEvent):
        """Given to a rider outside a swap (at registration)."""

        rider_id: str
        soc: float | None

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = with_rider(self.rider_id)
            aggregate.issued_soc = self.soc

    @dataclass(frozen=True, kw_only=True)
    class Issued(DomainEvent):
        """Slot → rider at a completed swap (rule 14); ``soc`` starts the rider's usage."""

        rider_id: str
        session_id: str
        station_id: str
        slot: int
        soc: float | None
        policy_version: int

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = with_rider(self.rider_id)
            aggregate.issued_soc = self.soc

    @dataclass(frozen=True, kw_only=True)
    class Returned(DomainEvent):
        """Rider → slot at a swap, or taken back by rule 10."""

        rider_id: str
        session_id: str
        station_id: str
        slot: int
        soc: float | None
        policy_version: int

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = in_slot(self.station_id, self.slot)
            aggregate.issued_soc = None
            aggregate.slotted_at = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class Reserved(DomainEvent):
        session_id: str
        station_id: str
        policy_version: int

        def apply(self, aggregate: Battery) -> None:
            aggregate.reserved_for = self.session_id

    @dataclass(frozen=True, kw_only=True)
    class ReservationReleased(DomainEvent):
        session_id: str
        cause: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.reserved_for = None

    @dataclass(frozen=True, kw_only=True)
    class HealthRecorded(DomainEvent):
        """One reading. Every measurement is optional; a reading older than the latest one is
        kept as history but never overwrites the latest values."""

        source: str
        station_id: str | None = None
        slot: int | None = None
        soc: float | None = None
        soh: float | None = None
        temperature: float | None = None
        voltage: float | None = None
        pack_voltage: float | None = None
        cell_voltage_min: float | None = None
        cell_voltage_max: float | None = None
        max_temp: float | None = None
        ambient_temp: float | None = None
        humidity: float | None = None
        internal_resist: float | None = None
        cycle_count: int | None = None
        error_code: str | None = None

        def apply(self, aggregate: Battery) -> None:
            if aggregate.reading_at is not None and self.occurred_at < aggregate.reading_at:
                return
            for name in READING_FIELDS:
                value = getattr(self, name)
                if value is not None:
                    aggregate.reading[name] = value
            if self.temperature is None and self.max_temp is not None:
                aggregate.reading["temperature"] = self.max_temp
            if self.voltage is None and self.pack_voltage is not None:
                aggregate.reading["voltage"] = self.pack_voltage
            aggregate.reading_at = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class Quarantined(DomainEvent):
        reason: str
        policy_version: int

        def apply(self, aggregate: Battery) -> None:
            aggregate.grade = "quarantined"

    @dataclass(frozen=True, kw_only=True)
    class Reinstated(DomainEvent):
        reason: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.grade = "ok"

    @dataclass(frozen=True, kw_only=True)
    class SentToRepair(DomainEvent):
        reason: str

        def apply(self, aggregate: Battery) -> None:
            aggregate.custody = place("repair")

    @dataclass(frozen=True, kw_only=True)
    class Retired(DomainEvent):
        reason: str
        policy_version: int

        def apply(self, aggregate: Battery) -> None:
            aggregate.grade = "retired"
            aggregate.custody = place("retired")

    battery_type: str
    capacity_ah: Decimal
    manufactured_on: str
    custody: dict[str, Any]
    issued_soc: float | None
    grade: str
    reserved_for: str | None
    reading: dict[str, Any]
    reading_at: datetime | None
    slotted_at: datetime | None  # when it last went into a slot (it charges from then on)

    def describe(self, battery_type: str, capacity_ah: Decimal, manufactured_on: str) -> None:
        self.battery_type = battery_type
        self.capacity_ah = capacity_ah
        self.manufactured_on = manufactured_on

    # --- queries -------------------------------------------------------------------------

    @property
    def soc(self) -> float | None:
        return self.reading["soc"]

    @property
    def soh(self) -> float | None:
        return self.reading["soh"]

    @property
    def temperature(self) -> float | None:
        return self.reading["temperature"]

    @property
    def voltage(self) -> float | None:
        return self.reading["voltage"]

    @property
    def cycle_count(self) -> int | None:
        return self.reading["cycle_count"]

    @property
    def holder(self) -> str | None:
        """The rider holding it, if a rider does."""
        return self.custody.get("rider_id") if self.custody["kind"] == "rider" else None

    @property
    def charge_unobserved(self) -> bool:
        """Docked, and no reading since it went in: its latest SOC is the one it came back
        with, and it has been charging since. v1 stations never report charging, so only
        their own reading at issue time tells the truth."""
        if self.custody["kind"] != "slot" or self.slotted_at is None:
            return False
        return self.reading_at is None or self.reading_at <= self.slotted_at

    def docked_at(self, station_id: str) -> int | None:
        """The slot it sits in at this station, if it does."""
        custody = self.custody
        if custody["kind"] == "slot" and custody["station_id"] == station_id:
            return int(custody["slot"])
        return None

    # --- changes -------------------------------------------------------------------------

    def record_health(self, at: Stamp, source: str, **reading: Any) -> None:
        self.trigger(self.HealthRecorded, at, source=source, **reading)

    def release(self, at: Stamp, cause: str) -> None:
        if self.reserved_for is not None:
            self.trigger(self.ReservationReleased, at, session_id=self.reserved_for, cause=cause)

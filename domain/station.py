"""A swapping station: its description, status, slots, reservations and open sessions.

The station keeps the ids of its open sessions because a timeout sweep
(``TimeOutSessions``) must find them without a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.base import Aggregate, DomainEvent, InvalidTransition, Stamp

STATUSES = ("online", "offline", "maintenance")
STATUS_SOURCES = ("heartbeat", "will", "admin")


class Station(Aggregate):
    prefix = "station"

    @dataclass(frozen=True, kw_only=True)
    class Registered(DomainEvent):
        name: str
        location: str
        lat: float | None
        lng: float | None
        slot_count: int

        def apply(self, aggregate: Station) -> None:
            aggregate.describe(self.name, self.location, self.lat, self.lng)
            aggregate.slot_count = self.slot_count
            aggregate.status = "online"  # a station that never sent status counts as online
            aggregate.status_at = None
            aggregate.slots = {number: None for number in range(1, self.slot_count + 1)}
            aggregate.reservations = {}
            aggregate.open_sessions = {}

    @dataclass(frozen=True, kw_only=True)
    class Updated(DomainEvent):
        name: str
        location: str
        lat: float | None
        lng: float | None
        slot_count: int

        def apply(self, aggregate: Station) -> None:
            aggregate.describe(self.name, self.location, self.lat, self.lng)
            aggregate.slot_count = self.slot_count
            aggregate.slots = {
                number: aggregate.slots.get(number) for number in range(1, self.slot_count + 1)
            }

    @dataclass(frozen=True, kw_only=True)
    class StatusRecorded(DomainEvent):
        """A heartbeat, MQTT will or admin status; a late one (older than the status in force)
        is kept as history but does not change the status. ``slots`` is the station's own
        slot report and ``mismatches`` where it disagrees with the ledger's custody."""

        status: str
        source: str
        slots: list[dict[str, Any]]
        mismatches: list[dict[str, Any]]

        def apply(self, aggregate: Station) -> None:
            if aggregate.status_at is None or self.occurred_at >= aggregate.status_at:
                aggregate.status = self.status
                aggregate.status_at = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class SlotFilled(DomainEvent):
        slot: int
        battery_id: str
        cause: str

        def apply(self, aggregate: Station) -> None:
            aggregate.slots[self.slot] = self.battery_id

    @dataclass(frozen=True, kw_only=True)
    class SlotEmptied(DomainEvent):
        slot: int
        battery_id: str
        cause: str

        def apply(self, aggregate: Station) -> None:
            aggregate.slots[self.slot] = None

    @dataclass(frozen=True, kw_only=True)
    class BatteryReserved(DomainEvent):
        battery_id: str
        session_id: str
        policy_version: int

        def apply(self, aggregate: Station) -> None:
            aggregate.reservations[self.battery_id] = self.session_id

    @dataclass(frozen=True, kw_only=True)
    class ReservationReleased(DomainEvent):
        battery_id: str
        session_id: str
        cause: str

        def apply(self, aggregate: Station) -> None:
            aggregate.reservations.pop(self.battery_id, None)

    @dataclass(frozen=True, kw_only=True)
    class SessionOpened(DomainEvent):
        session_id: str
        rider_id: str

        def apply(self, aggregate: Station) -> None:
            aggregate.open_sessions[self.session_id] = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class SessionClosed(DomainEvent):
        session_id: str
        state: str

        def apply(self, aggregate: Station) -> None:
            aggregate.open_sessions.pop(self.session_id, None)

    name: str
    location: str
    lat: float | None
    lng: float | None
    slot_count: int
    status: str
    status_at: datetime | None
    slots: dict[int, str | None]
    reservations: dict[str, str]
    open_sessions: dict[str, datetime]

    def describe(self, name: str, location: str, lat: float | None, lng: float | None) -> None:
        self.name, self.location, self.lat, self.lng = name, location, lat, lng

    # --- queries -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Rule 4: not offline and not in maintenance."""
        return self.status == "online"

    def docked(self) -> dict[int, str]:
        """Occupied slots: slot number → battery id."""
        return {number: battery for number, battery in self.slots.items() if battery is not None}

    def empty_slots(self) -> list[int]:
        return sorted(number for number, battery in self.slots.items() if battery is None)

    def slot_of(self, battery_id: str) -> int | None:
        return next((n for n, b in self.slots.items() if b == battery_id), None)

    # --- changes -------------------------------------------------------------------------

    def update(self, at: Stamp, **values: Any) -> None:
        occupied = [n for n in self.docked() if n > values["slot_count"]]
        if occupied:
            raise InvalidTransition(
                f"station {self.key}: slots {occupied} still hold batteries", station_id=self.key
            )
        self.trigger(self.Updated, at, **values)

    def record_status(
        self, at: Stamp, status: str, source: str, slots: list[dict[str, Any]]
    ) -> None:
        mismatches = [
            {
                "slot": r["slot"],
                "reported": r.get("battery_id"),
                "ledger": self.slots.get(r["slot"]),
            }
            for r in slots
            if r.get("battery_id") != self.slots.get(r["slot"])
        ]
        self.trigger(
            self.StatusRecorded,
            at,
            status=status,
            source=source,
            slots=slots,
            mismatches=mismatches,
        )

    def fill_slot(self, at: Stamp, slot: int, battery_id: str, cause: str) -> None:
        if self.slots.get(slot) is not None:
            raise InvalidTransition(
                f"station {self.key}: slot {slot} already holds battery {self.slots[slot]}",
                station_id=self.key,
                slot=slot,
            )
        self.trigger(self.SlotFilled, at, slot=slot, battery_id=battery_id, cause=cause)

    def empty_slot(self, at: Stamp, battery_id: str, cause: str) -> int:
        """Take a battery out of whatever slot it is in; returns that slot."""
        slot = self.slot_of(battery_id)
        if slot is None:
            raise InvalidTransition(
                f"station {self.key}: battery {battery_id} is not docked here",
                station_id=self.key,
                battery_id=battery_id,
            )
        self.release(at, battery_id, cause)
        self.trigger(self.SlotEmptied, at, slot=slot, battery_id=battery_id, cause=cause)
        return slot

    def reserve(self, at: Stamp, battery_id: str, session_id: str, policy_version: int) -> None:
        self.trigger(
            self.BatteryReserved,
            at,
            battery_id=battery_id,
            session_id=session_id,
            policy_version=policy_version,
        )

    def release(self, at: Stamp, battery_id: str, cause: str) -> None:
        """Free a reservation of this battery, if there is one."""
        session_id = self.reservations.get(battery_id)
        if session_id is not None:
            self.trigger(
                self.ReservationReleased,
                at,
                battery_id=battery_id,
                session_id=session_id,
                cause=cause,
            )

    def open_session(self, at: Stamp, session_id: str, rider_id: str) -> None:
        self.trigger(self.SessionOpened, at, session_id=session_id, rider_id=rider_id)

    def close_session(self, at: Stamp, session_id: str, state: str) -> None:
        """Forget an open session and free whatever battery it had reserved."""
        for battery_id, holder in sorted(self.reservations.items()):
            if holder == session_id:
                self.release(at, battery_id, state)
        if session_id in self.open_sessions:
            self.trigger(self.SessionClosed, at, session_id=session_id, state=state)

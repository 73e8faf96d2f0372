"""A rider (the original system's "user").

Personal fields travel in events as ONE field, ``personal``, so the ledger can encrypt that
blob with the rider's own key; no rule reads it, so an erased rider still replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.base import Aggregate, DomainEvent, InvalidTransition, Stamp

PERSONAL_FIELDS = ("name", "email", "phone", "address", "licence")
ERASED: dict[str, str | None] = dict.fromkeys(PERSONAL_FIELDS)
"""What a rider's personal fields read as once erased (the ledger deleted the rider's key)."""
STATUSES = ("active", "suspended", "deactivated")


class Rider(Aggregate):
    prefix = "rider"

    @dataclass(frozen=True, kw_only=True)
    class Registered(DomainEvent):
        personal: dict[str, str | None]
        vehicle: str | None
        plan_id: str | None
        role: str

        def apply(self, aggregate: Rider) -> None:
            aggregate.describe(self.personal, self.vehicle, self.plan_id, self.role)
            aggregate.erased = False
            aggregate.status = "active"
            aggregate.batteries = []
            aggregate.open_session = None
            aggregate.bills = {}

    @dataclass(frozen=True, kw_only=True)
    class Updated(DomainEvent):
        """Carries the full values after the change (``personal`` included)."""

        personal: dict[str, str | None]
        vehicle: str | None
        plan_id: str | None
        role: str

        def apply(self, aggregate: Rider) -> None:
            aggregate.describe(self.personal, self.vehicle, self.plan_id, self.role)

    @dataclass(frozen=True, kw_only=True)
    class Suspended(DomainEvent):
        reason: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.status = "suspended"

    @dataclass(frozen=True, kw_only=True)
    class Reactivated(DomainEvent):
        reason: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.status = "active"

    @dataclass(frozen=True, kw_only=True)
    class Deactivated(DomainEvent):
        reason: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.status = "deactivated"

    @dataclass(frozen=True, kw_only=True)
    class Erased(DomainEvent):
        """The rider's personal data was erased: the ledger deletes the rider's key in the same
        transaction, so every earlier event's personal fields read as ERASED from then on,
        while custody, swaps, usage and bills stay and still replay."""

        reason: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.personal = dict(ERASED)
            aggregate.erased = True

    @dataclass(frozen=True, kw_only=True)
    class BatteryReceived(DomainEvent):
        battery_id: str
        session_id: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.batteries = sorted({*aggregate.batteries, self.battery_id})

    @dataclass(frozen=True, kw_only=True)
    class BatteryReturned(DomainEvent):
        battery_id: str
        session_id: str | None

        def apply(self, aggregate: Rider) -> None:
            aggregate.batteries = [b for b in aggregate.batteries if b != self.battery_id]

    @dataclass(frozen=True, kw_only=True)
    class SessionOpened(DomainEvent):
        session_id: str
        station_id: str

        def apply(self, aggregate: Rider) -> None:
            aggregate.open_session = {"session_id": self.session_id, "station_id": self.station_id}

    @dataclass(frozen=True, kw_only=True)
    class SessionClosed(DomainEvent):
        session_id: str
        state: str

        def apply(self, aggregate: Rider) -> None:
            aggregate.open_session = None

    @dataclass(frozen=True, kw_only=True)
    class BillIssued(DomainEvent):
        month: str
        amount_due: Decimal
        due_at: datetime

        def apply(self, aggregate: Rider) -> None:
            aggregate.bills[self.month] = self.due_at

    @dataclass(frozen=True, kw_only=True)
    class BillSettled(DomainEvent):
        month: str

        def apply(self, aggregate: Rider) -> None:
            aggregate.bills.pop(self.month, None)

    personal: dict[str, str | None]
    erased: bool
    vehicle: str | None
    plan_id: str | None
    role: str
    status: str
    batteries: list[str]
    open_session: dict[str, str] | None
    bills: dict[str, datetime]

    def describe(
        self, personal: dict[str, str | None], vehicle: str | None, plan_id: str | None, role: str
    ) -> None:
        self.personal = dict(personal)
        self.vehicle, self.plan_id, self.role = vehicle, plan_id, role

    @property
    def open_session_id(self) -> str | None:
        return None if self.open_session is None else self.open_session["session_id"]

    def change_status(self, at: Stamp, event: type[DomainEvent], reason: str | None) -> None:
        allowed = {
            Rider.Suspended: ("active",),
            Rider.Reactivated: ("suspended",),
            Rider.Deactivated: ("active", "suspended"),
        }[event]
        if self.status not in allowed:
            raise InvalidTransition(
                f"rider {self.key} is {self.status}", rider_id=self.key, status=self.status
            )
        if event is Rider.Deactivated and (self.batteries or self.open_session):
            raise InvalidTransition(
                f"rider {self.key} still holds batteries or has an open session", rider_id=self.key
            )
        self.trigger(event, at, reason=reason)

    def receive(self, at: Stamp, battery_id: str, session_id: str | None) -> None:
        self.trigger(self.BatteryReceived, at, battery_id=battery_id, session_id=session_id)

    def give_back(self, at: Stamp, battery_id: str, session_id: str | None) -> None:
        self.trigger(self.BatteryReturned, at, battery_id=battery_id, session_id=session_id)

    def open(self, at: Stamp, session_id: str, station_id: str) -> None:
        self.trigger(self.SessionOpened, at, session_id=session_id, station_id=station_id)

    def close(self, at: Stamp, session_id: str, state: str) -> None:
        if self.open_session_id == session_id:
            self.trigger(self.SessionClosed, at, session_id=session_id, state=state)

"""An RFID card, keyed by its code, belonging to one rider."""

from __future__ import annotations

from dataclasses import dataclass

from domain.base import Aggregate, DomainEvent, InvalidTransition, Stamp

STATUSES = ("active", "blocked", "lost")


class Card(Aggregate):
    prefix = "card"

    @dataclass(frozen=True, kw_only=True)
    class Issued(DomainEvent):
        rider_id: str

        def apply(self, aggregate: Card) -> None:
            aggregate.rider_id = self.rider_id
            aggregate.status = "active"

    @dataclass(frozen=True, kw_only=True)
    class Blocked(DomainEvent):
        """Blocked by an operator, or reported lost (``status`` says which)."""

        status: str
        reason: str | None

        def apply(self, aggregate: Card) -> None:
            aggregate.status = self.status

    @dataclass(frozen=True, kw_only=True)
    class Unblocked(DomainEvent):
        reason: str | None

        def apply(self, aggregate: Card) -> None:
            aggregate.status = "active"

    rider_id: str
    status: str

    @property
    def rfid_code(self) -> str:
        return self.key

    def block(self, at: Stamp, status: str, reason: str | None) -> None:
        if self.status == status:
            raise InvalidTransition(f"card {self.key} is already {status}", rfid_code=self.key)
        self.trigger(self.Blocked, at, status=status, reason=reason)

    def unblock(self, at: Stamp, reason: str | None) -> None:
        if self.status == "active":
            raise InvalidTransition(f"card {self.key} is already active", rfid_code=self.key)
        self.trigger(self.Unblocked, at, reason=reason)

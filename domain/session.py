"""A swap session: from the RFID auth to completion or one of the exits.

States follow the original kiosk: ``pending_rfid → authenticated → pending_return →
checking_returned → pending_collection → complete``, exits ``refused``, ``cancelled``,
``timed_out``. The ledger sees three steps (auth, initiate, completion), so a session it
records moves ``authenticated`` (auth) → ``pending_collection`` (returned battery accepted)
→ ``complete``; ``pending_rfid``, ``pending_return`` and ``checking_returned`` are station-side
states the ledger never observes. The attribute is ``status`` (``state()`` is the
aggregate's comparable snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.base import Aggregate, DomainEvent

STATES = (
    "pending_rfid",
    "authenticated",
    "pending_return",
    "checking_returned",
    "pending_collection",
    "complete",
    "refused",
    "cancelled",
    "timed_out",
)
OPEN_STATES = (
    "pending_rfid",
    "authenticated",
    "pending_return",
    "checking_returned",
    "pending_collection",
)


def reading(**values: Any) -> dict[str, Any]:
    return dict(values)


class SwapSession(Aggregate):
    prefix = "session"

    @dataclass(frozen=True, kw_only=True)
    class CardAuthorized(DomainEvent):
        station_id: str
        rfid_code: str
        rider_id: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.start(self, "authenticated", None)

    @dataclass(frozen=True, kw_only=True)
    class AuthDenied(DomainEvent):
        station_id: str
        rfid_code: str
        rider_id: str | None
        reason: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.start(self, "refused", self.reason)
            aggregate.closed_at = self.occurred_at

    @dataclass(frozen=True, kw_only=True)
    class ReturnAccepted(DomainEvent):
        """Rules 7-10 passed for the returned battery."""

        battery_id: str
        soc: float | None
        soh: float | None
        temperature: float | None
        voltage: float | None
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.status = "pending_collection"
            aggregate.initiated_at = self.occurred_at
            aggregate.returned_battery_id = self.battery_id
            aggregate.returned_reading = reading(
                soc=self.soc, soh=self.soh, temperature=self.temperature, voltage=self.voltage
            )
            aggregate.policy_version = self.policy_version

    @dataclass(frozen=True, kw_only=True)
    class ReturnedBatteryRefused(DomainEvent):
        """Rules 7-10 refused the returned battery; the session ends refused. With rule 10
        the battery was taken back into ``slot`` and the rider's usage is ``energy_used_ah``."""

        battery_id: str
        soc: float | None
        soh: float | None
        temperature: float | None
        voltage: float | None
        reason: str
        taken_back: bool
        slot: int | None
        energy_used_ah: Decimal
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.returned_battery_id = self.battery_id
            aggregate.returned_reading = reading(
                soc=self.soc, soh=self.soh, temperature=self.temperature, voltage=self.voltage
            )
            aggregate.energy_used_ah = self.energy_used_ah
            aggregate.finish(self, "refused", self.reason)

    @dataclass(frozen=True, kw_only=True)
    class BatteryPicked(DomainEvent):
        """v2: the ledger picked (rule 13) and reserved the battery to issue."""

        battery_id: str
        slot: int
        soc: float
        soh: float
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.picked_battery_id = self.battery_id
            aggregate.picked_slot = self.slot
            aggregate.policy_version = self.policy_version

    @dataclass(frozen=True, kw_only=True)
    class IssueRefused(DomainEvent):
        """v1: the battery the station chose breaks rule 11, 12 or 14; nothing was completed
        and the session stays open (the station may offer another battery, or it times out)."""

        battery_id: str
        reason: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.reason = self.reason
            aggregate.policy_version = self.policy_version

    @dataclass(frozen=True, kw_only=True)
    class PickRefused(DomainEvent):
        """v2: nothing at the station may be issued (rule 5 at pick time); session refused."""

        reason: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.finish(self, "refused", self.reason)

    @dataclass(frozen=True, kw_only=True)
    class Completed(DomainEvent):
        """The swap: returned battery back in a slot, issued battery with the rider.
        ``energy_used_ah`` = (returned_issue_soc - returned_soc) / 100 * capacity_ah (rule 16)."""

        returned_battery_id: str
        returned_slot: int
        returned_soc: float | None
        returned_soh: float | None
        returned_issue_soc: float | None
        capacity_ah: Decimal
        issued_battery_id: str
        issued_slot: int
        issued_soc: float | None
        issued_soh: float | None
        energy_used_ah: Decimal
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.returned_battery_id = self.returned_battery_id
            aggregate.returned_slot = self.returned_slot
            if aggregate.returned_reading is None or self.returned_soc is not None:
                aggregate.returned_reading = reading(soc=self.returned_soc, soh=self.returned_soh)
            aggregate.returned_issue_soc = self.returned_issue_soc
            aggregate.capacity_ah = self.capacity_ah
            aggregate.issued_battery_id = self.issued_battery_id
            aggregate.issued_slot = self.issued_slot
            aggregate.issued_reading = reading(soc=self.issued_soc, soh=self.issued_soh)
            aggregate.energy_used_ah = self.energy_used_ah
            aggregate.completed_version = self.originator_version
            aggregate.finish(self, "complete", None)

    @dataclass(frozen=True, kw_only=True)
    class StationRefused(DomainEvent):
        """The station refused the returned battery on its own (v1 ``swap/refused``)."""

        battery_id: str | None
        station_reason: str | None
        soc: float | None
        soh: float | None
        temperature: float | None
        reason: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.returned_battery_id = self.battery_id
            aggregate.returned_reading = reading(
                soc=self.soc, soh=self.soh, temperature=self.temperature, voltage=None
            )
            aggregate.finish(self, "refused", self.reason)

    @dataclass(frozen=True, kw_only=True)
    class Cancelled(DomainEvent):
        """Closed because the rider authenticated at another station (rule 6)."""

        reason: str
        superseded_by: str | None
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.finish(self, "cancelled", self.reason)

    @dataclass(frozen=True, kw_only=True)
    class TimedOut(DomainEvent):
        """Open longer than the policy's timeout (rule 15)."""

        reason: str
        timeout_s: int
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.finish(self, "timed_out", self.reason)

    @dataclass(frozen=True, kw_only=True)
    class Corrected(DomainEvent):
        """A correction of a completed swap's SOC values; the Completed event stays as it was.
        ``delta_ah`` = new energy - energy in force before this correction."""

        original_version: int
        returned_issue_soc: float | None
        returned_soc: float | None
        energy_used_ah: Decimal
        delta_ah: Decimal
        note: str
        policy_version: int

        def apply(self, aggregate: SwapSession) -> None:
            aggregate.returned_issue_soc = self.returned_issue_soc
            aggregate.returned_reading = {
                **(aggregate.returned_reading or {}),
                "soc": self.returned_soc,
            }
            aggregate.energy_used_ah = self.energy_used_ah
            aggregate.corrections.append(
                {"version": self.originator_version, "delta_ah": self.delta_ah, "note": self.note}
            )

    station_id: str
    rider_id: str | None
    rfid_code: str
    status: str
    outcome: str | None
    reason: str | None
    opened_at: datetime
    opened_recorded_at: datetime
    initiated_at: datetime | None
    closed_at: datetime | None
    returned_battery_id: str | None
    returned_reading: dict[str, Any] | None
    returned_slot: int | None
    returned_issue_soc: float | None
    capacity_ah: Decimal | None
    issued_battery_id: str | None
    issued_reading: dict[str, Any] | None
    issued_slot: int | None
    picked_battery_id: str | None
    picked_slot: int | None
    energy_used_ah: Decimal | None
    completed_version: int | None
    corrections: list[dict[str, Any]]
    policy_version: int

    def start(self, event: Any, state: str, reason: str | None) -> None:
        self.station_id, self.rider_id, self.rfid_code = (
            event.station_id,
            event.rider_id,
            event.rfid_code,
        )
        self.status, self.reason, self.policy_version = state, reason, event.policy_version
        self.outcome = "refused" if state == "refused" else None
        self.opened_at, self.initiated_at, self.closed_at = event.occurred_at, None, None
        self.opened_recorded_at = event.recorded_at
        self.returned_battery_id = self.returned_reading = self.returned_slot = None
        self.returned_issue_soc = self.capacity_ah = None
        self.issued_battery_id = self.issued_reading = self.issued_slot = None
        self.picked_battery_id = self.picked_slot = None
        self.energy_used_ah = self.completed_version = None
        self.corrections = []

    def finish(self, event: Any, state: str, reason: str | None) -> None:
        self.status, self.reason, self.policy_version = state, reason, event.policy_version
        self.outcome = "completed" if state == "complete" else state
        self.closed_at = event.occurred_at

    # --- queries -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    def expired(self, at: datetime, timeout_s: int) -> bool:
        """Rule 15 as the station sees it: open for longer than the timeout, on the station's
        clock (``at`` is the occurred_at of the station's next message)."""
        return self.is_open and at - self.opened_at > timedelta(seconds=timeout_s)

    def overdue(self, ledger_now: datetime, timeout_s: int) -> bool:
        """Rule 15 as the ledger's sweeper sees it: open for longer than the timeout on the
        ledger's clock, measured from when the ledger recorded the session's start. A
        station whose clock is off does not make its sessions time out early or late."""
        return self.is_open and ledger_now - self.opened_recorded_at > timedelta(seconds=timeout_s)

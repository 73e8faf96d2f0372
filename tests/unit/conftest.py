"""Given / when / then over the in-memory ledger.

``world.given(Command, ...)`` sets the scene (and must be accepted), ``world.when(...)`` runs
the command under test, ``world.then()`` lists the names of the events it appended
(``"SwapSession.AuthDenied"``), ``world.new_events()`` the events themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from domain.base import Aggregate, DomainError, DomainEvent, Outcome
from domain.commands import (
    AuthorizeCard,
    Command,
    DefinePlan,
    RegisterBattery,
    RegisterRider,
    RegisterStation,
)
from tests.support.memory import MemoryLedger

T0 = datetime(2025, 7, 14, 10, 0, tzinfo=UTC)
A = TypeVar("A", bound=Aggregate)


class World:
    def __init__(self) -> None:
        self.now = T0
        # The ledger's recording clock follows the scenario's time, as in production where
        # the sweeper's occurred_at and recorded_at are both the ledger's clock.
        self.ledger = MemoryLedger(clock=lambda: self.now)
        self.mark = 0

    # --- time ------------------------------------------------------------------------------

    def tick(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    # --- given / when / then ---------------------------------------------------------------

    def run(self, cls: type[Command], key: str | None = None, **fields: Any) -> Outcome:
        if "occurred_at" not in fields:
            fields["occurred_at"] = self.tick()
        return self.ledger.execute(cls(**fields), key)

    def given(self, cls: type[Command], **fields: Any) -> Outcome:
        outcome = self.run(cls, **fields)
        assert outcome.ok, outcome
        self.mark = len(self.ledger.events())
        return outcome

    def when(self, cls: type[Command], key: str | None = None, **fields: Any) -> Outcome:
        self.mark = len(self.ledger.events())
        return self.run(cls, key, **fields)

    def new_events(self) -> list[DomainEvent]:
        return self.ledger.events()[self.mark :]

    def then(self) -> list[str]:
        return [type(event).__qualname__ for event in self.new_events()]

    def event(self, name: str) -> Any:
        """The one new event with this qualified name."""
        found = [e for e in self.new_events() if type(e).__qualname__ == name]
        assert len(found) == 1, (name, self.then())
        return found[0]

    def stream(self, stream_id: str) -> list[DomainEvent]:
        return self.ledger.stream(stream_id)

    @contextmanager
    def raises(self, error: type[DomainError], field: str | None = None) -> Iterator[None]:
        """The command raises ``error`` (naming ``field``) and appends nothing."""
        before = len(self.ledger.events())
        with pytest.raises(error) as caught:
            yield
        if field is not None:
            assert caught.value.ids.get("field") == field, caught.value
        assert len(self.ledger.events()) == before

    def get(self, cls: type[A], key: str) -> A:
        found = self.ledger.get(cls, key)
        assert found is not None, (cls, key)
        return found

    # --- scenery ---------------------------------------------------------------------------

    def station(self, station_id: str = "S1", slots: int = 4) -> None:
        self.given(
            RegisterStation,
            station_id=station_id,
            name=f"Station {station_id}",
            slot_count=slots,
            location="Kigali",
        )

    def battery(
        self,
        battery_id: str,
        station_id: str | None = None,
        slot: int | None = None,
        soc: float | None = 95,
        soh: float | None = 90,
        capacity: str = "30",
    ) -> None:
        self.given(
            RegisterBattery,
            battery_id=battery_id,
            battery_type="48V20Ah",
            capacity_ah=Decimal(capacity),
            manufactured_on="2024-03-01",
            station_id=station_id,
            slot=slot,
            soc=soc,
            soh=soh,
        )

    def plan(
        self, plan_id: str = "basic", fee: str = "10.00", included: str = "20", rate: str = "0.50"
    ) -> None:
        self.given(
            DefinePlan,
            plan_id=plan_id,
            name=plan_id.title(),
            monthly_fee=Decimal(fee),
            included_ah=Decimal(included),
            extra_ah_rate=Decimal(rate),
        )

    def rider(
        self,
        rider_id: str = "R1",
        rfid: str | None = "C1",
        battery_id: str | None = None,
        plan_id: str | None = "basic",
    ) -> None:
        self.given(
            RegisterRider,
            rider_id=rider_id,
            personal={"name": f"Rider {rider_id}"},
            plan_id=plan_id,
            rfid_code=rfid,
            battery_id=battery_id,
        )

    def ready(self) -> None:
        """Station S1 (4 slots): B1 95%/90% in slot 1, B2 85%/95% in slot 2; plan basic;
        rider R1 with card C1 holding B9 (handed over at 100%, capacity 30 Ah)."""
        self.station()
        self.battery("B1", "S1", 1, soc=95, soh=90)
        self.battery("B2", "S1", 2, soc=85, soh=95)
        self.battery("B9", soc=100, soh=90)
        self.plan()
        self.rider(battery_id="B9")

    def authorized(self, session_id: str = "s1", rfid: str = "C1", station_id: str = "S1") -> None:
        self.given(AuthorizeCard, station_id=station_id, rfid_code=rfid, session_id=session_id)


@pytest.fixture
def world() -> World:
    return World()

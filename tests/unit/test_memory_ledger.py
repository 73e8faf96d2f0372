"""The in-memory ledger fake behaves like the real one where the domain can tell."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.base import ConcurrencyConflict, InvalidTransition, Outcome
from domain.battery import Battery
from domain.commands import AuthorizeCard, RegisterStation, UpdateStation
from domain.station import Station
from tests.support.memory import MemoryLedger, MemoryRepository, aggregate_class, stored_copy

pytestmark = pytest.mark.unit

T = datetime(2025, 7, 14, tzinfo=UTC)


def test_a_repeated_idempotency_key_returns_the_stored_outcome_and_appends_nothing() -> None:
    ledger = MemoryLedger()
    first = ledger.execute(
        RegisterStation(occurred_at=T, station_id="S1", name="A", slot_count=2), "k1"
    )
    count = len(ledger.events())
    again = ledger.execute(
        RegisterStation(occurred_at=T, station_id="S1", name="A", slot_count=2), "k1"
    )
    assert again == first
    assert len(ledger.events()) == count


def test_a_command_that_raises_changes_nothing(world) -> None:
    world.station()
    world.battery("B1", "S1", 4)
    before = world.get(Station, "S1").state()
    with world.raises(InvalidTransition):
        world.when(UpdateStation, station_id="S1", name="Renamed", slot_count=2)
    assert world.get(Station, "S1").state() == before


def test_outcomes_are_json_only(world) -> None:
    world.ready()
    outcome = world.when(AuthorizeCard, station_id="S1", rfid_code="C1", session_id="s1")
    assert Outcome.from_dict(outcome.to_dict()) == outcome


def test_expected_versions_are_checked() -> None:
    ledger = MemoryLedger()
    ledger.execute(RegisterStation(occurred_at=T, station_id="S1", name="A", slot_count=2))
    stale = MemoryRepository({})
    station = Station.create(
        "S1", Station.Registered, _stamp(), name="B", location="", lat=None, lng=None, slot_count=1
    )
    stale.add(station)
    with pytest.raises(ConcurrencyConflict):
        ledger._commit(stale.changed())


def test_stored_events_went_through_json_and_replay_to_the_same_state(world) -> None:
    world.ready()
    for stream_id in ("station:S1", "battery:B9", "rider:R1", "card:C1", "plan:basic"):
        events = world.stream(stream_id)
        assert events == [stored_copy(e) for e in events]
        rebuilt = aggregate_class(stream_id).replay(events)
        assert rebuilt is not None
        assert (
            rebuilt.state()
            == world.ledger.get(aggregate_class(stream_id), stream_id.split(":", 1)[1]).state()
        )


def test_given_seeds_events() -> None:
    ledger = MemoryLedger()
    event = Battery.Registered(
        originator_id="battery:B1",
        originator_version=1,
        occurred_at=T,
        recorded_at=T,
        battery_type="48V",
        capacity_ah=Decimal("30"),
        manufactured_on="2024-01-01",
        custody={"kind": "warehouse"},
    )
    ledger.given([event])
    battery = ledger.get(Battery, "B1")
    assert battery is not None
    assert battery.custody == {"kind": "warehouse"}


def _stamp():
    from domain.base import Stamp

    return Stamp(occurred_at=T, recorded_at=T)

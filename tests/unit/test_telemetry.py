"""What stations report outside swaps: status, docking, removal, health readings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.base import InvalidTransition
from domain.battery import Battery
from domain.commands import (
    DockBattery,
    InitiateSwap,
    RecordHealthReading,
    RecordStationStatus,
    RemoveBattery,
    SendBatteryToRepair,
    SlotReport,
)
from domain.station import Station

pytestmark = pytest.mark.unit


# --- station status ------------------------------------------------------------------------


def test_heartbeat_sets_status_and_records_the_slot_report(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    outcome = world.when(
        RecordStationStatus,
        station_id="S1",
        status="maintenance",
        slots=(
            SlotReport(slot=1, battery_id="B1", state="ready"),
            SlotReport(slot=2, battery_id="B7", state="charging"),
        ),
    )
    assert outcome.data == {"station_id": "S1", "status": "maintenance"}
    recorded = world.event("Station.StatusRecorded")
    assert recorded.source == "heartbeat"
    assert recorded.slots[1] == {"slot": 2, "battery_id": "B7", "state": "charging"}
    assert recorded.mismatches == [{"slot": 2, "reported": "B7", "ledger": None}]
    assert world.get(Station, "S1").slots[2] is None  # custody moves only by events


def test_a_late_heartbeat_is_recorded_but_does_not_override(world) -> None:
    world.station()
    world.given(RecordStationStatus, station_id="S1", status="offline", source="will")
    outcome = world.when(
        RecordStationStatus,
        station_id="S1",
        status="online",
        occurred_at=world.now - timedelta(minutes=5),
    )
    assert world.then() == ["Station.StatusRecorded"]
    assert outcome.data["status"] == "offline"
    assert world.get(Station, "S1").status == "offline"


# --- docking and removal -------------------------------------------------------------------


def test_dock_from_the_warehouse_with_a_reading(world) -> None:
    world.station()
    world.battery("B1")
    outcome = world.when(
        DockBattery,
        station_id="S1",
        slot=3,
        battery_id="B1",
        soc=50,
        soh=88,
        temperature=25,
        voltage=52.0,
    )
    assert outcome.data == {"battery_id": "B1", "station_id": "S1", "slot": 3, "moved": True}
    assert world.get(Battery, "B1").custody == {"kind": "slot", "station_id": "S1", "slot": 3}
    assert world.get(Station, "S1").slots[3] == "B1"
    assert world.event("Battery.HealthRecorded").source == "dock"


def test_dock_back_from_repair_and_between_stations(world) -> None:
    world.station("S1")
    world.station("S2")
    world.battery("B1", "S1", 1)
    world.given(SendBatteryToRepair, battery_id="B1", reason="x")
    world.given(DockBattery, station_id="S2", slot=2, battery_id="B1")
    world.when(DockBattery, station_id="S1", slot=4, battery_id="B1")  # moved without a removal
    assert world.get(Station, "S2").slots[2] is None
    assert world.get(Station, "S1").slots[4] == "B1"


def test_dock_again_in_the_same_slot_only_records_the_reading(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    outcome = world.when(DockBattery, station_id="S1", slot=1, battery_id="B1", soc=99)
    assert outcome.data["moved"] is False
    assert world.then() == ["Battery.HealthRecorded"]


def test_dock_refusals(world) -> None:
    world.ready()
    with world.raises(InvalidTransition):  # B9 is with rider R1: only a swap brings it back
        world.when(DockBattery, station_id="S1", slot=4, battery_id="B9")
    with world.raises(InvalidTransition):  # slot 1 holds B1
        world.when(DockBattery, station_id="S1", slot=1, battery_id="B2")


@pytest.mark.parametrize(
    ("reason", "custody"),
    [("maintenance", "warehouse"), ("dispensed", "warehouse"), ("fault", "repair")],
)
def test_remove(world, reason, custody) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    outcome = world.when(RemoveBattery, station_id="S1", slot=1, battery_id="B1", reason=reason)
    assert outcome.data == {"battery_id": "B1", "custody": {"kind": custody}}
    assert world.event("Battery.Removed").destination == custody
    assert world.get(Station, "S1").slots[1] is None


def test_remove_from_the_wrong_slot(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    with world.raises(InvalidTransition):
        world.when(RemoveBattery, station_id="S1", slot=2, battery_id="B1", reason="fault")


def test_removing_a_reserved_battery_frees_the_reservation(world) -> None:
    world.ready()
    world.authorized("s1")
    world.given(
        InitiateSwap,
        station_id="S1",
        session_id="s1",
        battery_in_id="B9",
        soc=40,
        soh=90,
        pick_battery=True,
    )
    world.when(RemoveBattery, station_id="S1", slot=1, battery_id="B1", reason="fault")
    assert world.get(Station, "S1").reservations == {}
    assert world.get(Battery, "B1").reserved_for is None


# --- health readings -----------------------------------------------------------------------


def test_reading_updates_the_latest_values(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=90, soh=90)
    outcome = world.when(
        RecordHealthReading,
        battery_id="B1",
        station_id="S1",
        slot=1,
        soc=92,
        pack_voltage=53.1,
        max_temp=31.5,
        cycle_count=120,
        error_code="E0",
        humidity=40,
        internal_resist=0.02,
    )
    assert outcome.data == {"battery_id": "B1", "latest": True}
    battery = world.get(Battery, "B1")
    assert (battery.soc, battery.soh, battery.cycle_count) == (92, 90, 120)
    assert (battery.reading["temperature"], battery.reading["voltage"]) == (31.5, 53.1)


def test_a_late_reading_is_recorded_but_never_overwrites_a_newer_one(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=90)
    world.given(RecordHealthReading, battery_id="B1", soc=80)
    newest = world.now
    outcome = world.when(
        RecordHealthReading,
        battery_id="B1",
        soc=99,
        soh=50,
        occurred_at=newest - timedelta(minutes=10),
    )
    assert outcome.data["latest"] is False
    assert world.then() == ["Battery.HealthRecorded"]
    battery = world.get(Battery, "B1")
    assert (battery.soc, battery.soh, battery.reading_at) == (80, 90, newest)

"""Admin commands: stations, batteries, riders, cards, plans and the policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.base import AlreadyExists, InvalidCommand, InvalidTransition, NotFound
from domain.battery import Battery
from domain.card import Card
from domain.commands import (
    BlockCard,
    ChangePolicy,
    DeactivateRider,
    InitiateSwap,
    IssueCard,
    QuarantineBattery,
    ReactivateRider,
    ReinstateBattery,
    RetireBattery,
    SendBatteryToRepair,
    SuspendRider,
    UnblockCard,
    UpdateBattery,
    UpdatePlan,
    UpdateRider,
    UpdateStation,
)
from domain.plan import Plan
from domain.policy import DEFAULTS, Policy
from domain.rider import Rider
from domain.station import Station

pytestmark = pytest.mark.unit


# --- stations ------------------------------------------------------------------------------


def test_register_station(world) -> None:
    world.station("S1", slots=3)
    station = world.get(Station, "S1")
    assert (station.name, station.location, station.slot_count, station.status) == (
        "Station S1",
        "Kigali",
        3,
        "online",
    )
    assert station.slots == {1: None, 2: None, 3: None}


def test_register_station_twice(world) -> None:
    world.station()
    with world.raises(AlreadyExists, "station_id"):
        world.station()


def test_update_station_keeps_what_is_not_given(world) -> None:
    world.station()
    world.when(UpdateStation, station_id="S1", lat=-1.95, lng=30.06, slot_count=6)
    station = world.get(Station, "S1")
    assert (station.name, station.lat, station.lng, station.slot_count) == (
        "Station S1",
        -1.95,
        30.06,
        6,
    )
    assert list(station.slots) == [1, 2, 3, 4, 5, 6]


def test_shrinking_a_station_over_a_docked_battery_is_invalid(world) -> None:
    world.station()
    world.battery("B1", "S1", 4)
    with world.raises(InvalidTransition):
        world.when(UpdateStation, station_id="S1", slot_count=3)


# --- batteries -----------------------------------------------------------------------------


def test_register_battery_docked_or_in_the_warehouse(world) -> None:
    world.station()
    world.battery("B1", "S1", 2)
    world.battery("B2")
    b1, b2 = world.get(Battery, "B1"), world.get(Battery, "B2")
    assert b1.custody == {"kind": "slot", "station_id": "S1", "slot": 2}
    assert b2.custody == {"kind": "warehouse"}
    assert (b1.capacity_ah, b1.manufactured_on, b1.grade, b1.soc) == (
        Decimal("30"),
        "2024-03-01",
        "ok",
        95,
    )
    assert world.get(Station, "S1").slots[2] == "B1"


def test_register_battery_into_an_occupied_slot(world) -> None:
    world.station()
    world.battery("B1", "S1", 2)
    with world.raises(InvalidTransition):
        world.battery("B2", "S1", 2)


def test_update_battery(world) -> None:
    world.battery("B1")
    world.when(UpdateBattery, battery_id="B1", capacity_ah="31.5")
    assert world.get(Battery, "B1").capacity_ah == Decimal("31.5")


def test_quarantine_and_reinstate(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.when(QuarantineBattery, battery_id="B1", reason="swollen")
    assert world.event("Battery.Quarantined").policy_version == 0
    assert world.get(Battery, "B1").grade == "quarantined"
    assert world.get(Battery, "B1").custody["kind"] == "slot"
    with world.raises(InvalidTransition):
        world.when(QuarantineBattery, battery_id="B1", reason="again")
    world.when(ReinstateBattery, battery_id="B1", reason="checked")
    assert world.get(Battery, "B1").grade == "ok"


def test_quarantining_a_reserved_battery_frees_the_reservation(world) -> None:
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
    world.when(QuarantineBattery, battery_id="B1", reason="smoke")
    assert world.get(Station, "S1").reservations == {}
    assert world.get(Battery, "B1").reserved_for is None


def test_send_to_repair_empties_the_slot(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.when(SendBatteryToRepair, battery_id="B1", reason="cell imbalance")
    assert world.get(Battery, "B1").custody == {"kind": "repair"}
    assert world.get(Station, "S1").slots[1] is None
    with world.raises(InvalidTransition):
        world.when(SendBatteryToRepair, battery_id="B1", reason="again")


def test_retire_takes_it_out_of_circulation(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.when(RetireBattery, battery_id="B1", reason="end of life")
    battery = world.get(Battery, "B1")
    assert (battery.grade, battery.custody) == ("retired", {"kind": "retired"})
    assert world.get(Station, "S1").slots[1] is None
    with world.raises(InvalidTransition):
        world.when(RetireBattery, battery_id="B1", reason="again")


@pytest.mark.parametrize("command", [RetireBattery, SendBatteryToRepair])
def test_a_battery_a_rider_holds_must_come_back_first(world, command) -> None:
    world.ready()
    with world.raises(InvalidTransition):
        world.when(command, battery_id="B9", reason="x")


# --- riders and cards ----------------------------------------------------------------------


def test_register_rider_with_card_and_a_battery_from_a_slot(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=97)
    world.plan()
    world.rider("R1", "C1", battery_id="B1")
    rider = world.get(Rider, "R1")
    assert (rider.status, rider.batteries, rider.plan_id, rider.role) == (
        "active",
        ["B1"],
        "basic",
        "rider",
    )
    assert rider.personal == {
        "name": "Rider R1",
        "email": None,
        "phone": None,
        "address": None,
        "licence": None,
    }
    assert world.get(Card, "C1").rider_id == "R1"
    battery = world.get(Battery, "B1")
    assert (battery.custody, battery.issued_soc) == ({"kind": "rider", "rider_id": "R1"}, 97)
    assert world.get(Station, "S1").slots[1] is None


def test_personal_data_travels_as_one_field(world) -> None:
    world.rider(plan_id=None, rfid=None)
    registered = world.stream("rider:R1")[0]
    assert isinstance(registered.personal, dict)
    world.when(UpdateRider, rider_id="R1", personal={"email": "r@example.org"}, vehicle="EV-1")
    updated = world.event("Rider.Updated")
    assert updated.personal["name"] == "Rider R1"
    assert updated.personal["email"] == "r@example.org"
    assert updated.vehicle == "EV-1"


@pytest.mark.parametrize("custody", ["rider", "repair", "quarantined"])
def test_hand_over_only_a_free_healthy_battery(world, custody) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.plan()
    if custody == "rider":
        world.rider("R0", "C0", battery_id="B1")
    elif custody == "repair":
        world.given(SendBatteryToRepair, battery_id="B1", reason="x")
    else:
        world.given(QuarantineBattery, battery_id="B1", reason="x")
    with world.raises(InvalidTransition):
        world.rider("R1", "C1", battery_id="B1")


def test_register_rider_twice_or_with_a_used_card(world) -> None:
    world.plan()
    world.rider("R1", "C1")
    with world.raises(AlreadyExists, "rider_id"):
        world.rider("R1", "C9")
    with world.raises(AlreadyExists, "rfid_code"):
        world.rider("R2", "C1")


def test_rider_status_transitions(world) -> None:
    world.plan()
    world.rider()
    world.when(SuspendRider, rider_id="R1", reason="fraud check")
    with world.raises(InvalidTransition):
        world.when(SuspendRider, rider_id="R1")
    world.when(ReactivateRider, rider_id="R1")
    with world.raises(InvalidTransition):
        world.when(ReactivateRider, rider_id="R1")
    world.when(DeactivateRider, rider_id="R1")
    assert world.get(Rider, "R1").status == "deactivated"
    with world.raises(InvalidTransition):
        world.when(ReactivateRider, rider_id="R1")
    with world.raises(InvalidTransition):
        world.when(IssueCard, rfid_code="C7", rider_id="R1")


def test_deactivating_a_rider_who_holds_a_battery(world) -> None:
    world.ready()
    with world.raises(InvalidTransition):
        world.when(DeactivateRider, rider_id="R1")


def test_cards(world) -> None:
    world.plan()
    world.rider()
    world.when(IssueCard, rfid_code="C2", rider_id="R1")
    world.when(BlockCard, rfid_code="C2", status="lost", reason="stolen")
    assert world.get(Card, "C2").status == "lost"
    world.when(BlockCard, rfid_code="C2", status="blocked")
    with world.raises(InvalidTransition):
        world.when(BlockCard, rfid_code="C2", status="blocked")
    world.when(UnblockCard, rfid_code="C2")
    with world.raises(InvalidTransition):
        world.when(UnblockCard, rfid_code="C2")
    with world.raises(InvalidCommand, "status"):
        world.when(BlockCard, rfid_code="C2", status="gone")
    with world.raises(NotFound, "rider_id"):
        world.when(IssueCard, rfid_code="C3", rider_id="R404")


# --- plans and policy ----------------------------------------------------------------------


def test_plans(world) -> None:
    world.plan("basic", fee="12.5")
    world.when(UpdatePlan, plan_id="basic", extra_ah_rate=Decimal("0.75"))
    plan = world.get(Plan, "basic")
    assert (plan.monthly_fee, plan.included_ah, plan.extra_ah_rate) == (
        Decimal("12.5"),
        Decimal("20"),
        Decimal("0.75"),
    )
    with world.raises(AlreadyExists, "plan_id"):
        world.plan("basic")


def test_policy_starts_at_the_defaults_version_0(world) -> None:
    assert world.ledger.get(Policy, "current") is None
    assert (
        DEFAULTS.min_return_soh,
        DEFAULTS.max_return_temp_c,
        DEFAULTS.retire_soh,
        DEFAULTS.min_issue_soc,
        DEFAULTS.min_issue_soh,
        DEFAULTS.session_timeout_s,
    ) == (70, 55, 60, 80, 70, 120)


def test_policy_changes_carry_every_value_and_bump_the_version(world) -> None:
    first = world.when(ChangePolicy, min_issue_soc=85, note="summer")
    assert first.data["policy_version"] == 1
    changed = world.event("Policy.Changed")
    assert (changed.min_issue_soc, changed.min_return_soh, changed.session_timeout_s) == (
        85,
        70,
        120,
    )
    second = world.when(ChangePolicy, session_timeout_s=90)
    assert second.data["policy_version"] == 2
    assert second.data["min_issue_soc"] == 85
    assert world.get(Policy, "current").values.session_timeout_s == 90


def test_retirement_soh_above_the_return_minimum_is_invalid(world) -> None:
    with world.raises(InvalidCommand, "retire_soh"):
        world.when(ChangePolicy, retire_soh=75)

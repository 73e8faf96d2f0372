"""Rules 7-14: the returned battery, the issued battery, and custody at a swap."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.base import InvalidCommand, InvalidTransition
from domain.battery import Battery
from domain.billing import BillingPeriod
from domain.commands import (
    AuthorizeCard,
    ChangePolicy,
    CompleteSwap,
    InitiateSwap,
    QuarantineBattery,
    RecordHealthReading,
    RemoveBattery,
    StationRefusedSwap,
)
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station

pytestmark = pytest.mark.unit


def initiate(world, session_id="s1", battery="B9", soc=40, soh=90, temperature=30.0, **kw):
    return world.when(
        InitiateSwap,
        station_id="S1",
        session_id=session_id,
        battery_in_id=battery,
        soc=soc,
        soh=soh,
        temperature=temperature,
        **kw,
    )


def complete(world, session_id="s1", battery_in="B9", battery_out="B1", **kw):
    return world.when(
        CompleteSwap,
        station_id="S1",
        session_id=session_id,
        battery_in_id=battery_in,
        battery_out_id=battery_out,
        **kw,
    )


@pytest.fixture
def authorized(world):
    world.ready()
    world.authorized("s1")
    return world


# --- the returned battery (rules 7-10) -----------------------------------------------------


def test_returned_battery_accepted_v1(authorized) -> None:
    outcome = initiate(authorized)
    assert outcome.ok
    assert outcome.data == {
        "session_id": "s1",
        "rider_id": "R1",
        "battery_out_id": None,
        "slot_out": None,
    }
    assert sorted(authorized.then()) == ["Battery.HealthRecorded", "SwapSession.ReturnAccepted"]
    assert authorized.get(SwapSession, "s1").status == "pending_collection"
    assert authorized.get(Battery, "B9").custody == {"kind": "rider", "rider_id": "R1"}


def test_rule7_battery_not_held_by_this_rider(authorized) -> None:
    outcome = initiate(authorized, battery="B2")
    assert (outcome.reason, outcome.message) == (
        "battery_not_held",
        "This battery is not assigned to you",
    )
    refused = authorized.event("SwapSession.ReturnedBatteryRefused")
    assert (refused.reason, refused.taken_back, refused.policy_version) == (
        "battery_not_held",
        False,
        0,
    )
    assert authorized.get(SwapSession, "s1").status == "refused"
    assert authorized.get(Rider, "R1").open_session is None
    assert authorized.get(Station, "S1").open_sessions == {}


def test_rule7_unknown_battery_is_not_held(authorized) -> None:
    assert initiate(authorized, battery="GHOST").reason == "battery_not_held"


def test_rule8_returned_soh_below_minimum(authorized) -> None:
    outcome = initiate(authorized, soh=65)
    assert (outcome.reason, outcome.message) == (
        "battery_health_low",
        "Battery health below threshold",
    )
    assert outcome.data["taken_back"] is False
    assert authorized.get(Battery, "B9").holder == "R1"  # the rider keeps it
    assert authorized.get(Battery, "B9").grade == "ok"


def test_rule8_threshold_is_inclusive(authorized) -> None:
    assert initiate(authorized, soh=70).ok


def test_rule9_returned_battery_too_hot(authorized) -> None:
    outcome = initiate(authorized, temperature=55.5)
    assert (outcome.reason, outcome.message) == ("battery_too_hot", "Battery too hot")
    assert authorized.event("SwapSession.ReturnedBatteryRefused").temperature == 55.5


def test_rule9_at_the_limit_and_unknown_temperature_pass(authorized) -> None:
    assert initiate(authorized, temperature=55).ok


def test_rule9_limit_comes_from_policy(world) -> None:
    world.ready()
    world.given(ChangePolicy, max_return_temp_c=40)
    world.authorized("s1")
    assert initiate(world, temperature=45).reason == "battery_too_hot"
    assert world.event("SwapSession.ReturnedBatteryRefused").policy_version == 1


def test_rule10_below_retire_soh_is_taken_back_quarantined_and_refused(authorized) -> None:
    outcome = initiate(authorized, soh=55, soc=70)
    assert outcome.reason == "battery_health_low"
    assert outcome.data == {"session_id": "s1", "taken_back": True, "slot": 3}
    battery = authorized.get(Battery, "B9")
    assert battery.custody == {"kind": "slot", "station_id": "S1", "slot": 3}
    assert battery.grade == "quarantined"
    assert authorized.get(Station, "S1").slots[3] == "B9"
    assert authorized.get(Rider, "R1").batteries == []
    refused = authorized.event("SwapSession.ReturnedBatteryRefused")
    assert refused.taken_back
    assert refused.energy_used_ah == Decimal("9.000")  # (100-70)% of 30 Ah
    quarantined = authorized.event("Battery.Quarantined")
    assert (quarantined.reason, quarantined.policy_version) == ("below_retire_soh", 0)
    period = authorized.get(BillingPeriod, "R1:2025-07")
    assert period.used_ah == Decimal("9.000")
    assert period.lines[0]["kind"] == "take_back"


def test_rule10_with_a_full_station_the_battery_stays_with_the_rider(world) -> None:
    world.station(slots=1)
    world.battery("B1", "S1", 1)
    world.battery("B9")
    world.plan()
    world.rider(battery_id="B9")
    world.authorized("s1")
    outcome = initiate(world, soh=50)
    assert outcome.reason == "battery_health_low"
    assert outcome.data["taken_back"] is False
    battery = world.get(Battery, "B9")
    assert (battery.holder, battery.grade) == ("R1", "quarantined")


def test_returned_reading_is_recorded_on_the_battery(authorized) -> None:
    initiate(authorized, soc=41, soh=88, temperature=31, voltage=51.0)
    reading = authorized.event("Battery.HealthRecorded")
    assert (reading.source, reading.soc, reading.soh, reading.voltage) == ("return", 41, 88, 51.0)
    assert authorized.get(Battery, "B9").soc == 41


# --- picking (rule 13) and reserving -------------------------------------------------------


def test_rule13_v2_picks_highest_soc_and_reserves_it(authorized) -> None:
    outcome = initiate(authorized, pick_battery=True)
    assert outcome.data == {
        "session_id": "s1",
        "rider_id": "R1",
        "battery_out_id": "B1",
        "slot_out": 1,
    }
    picked = authorized.event("SwapSession.BatteryPicked")
    assert (picked.battery_id, picked.slot, picked.policy_version) == ("B1", 1, 0)
    assert authorized.get(Battery, "B1").reserved_for == "s1"
    assert authorized.get(Station, "S1").reservations == {"B1": "s1"}


def test_rule13_ties_break_on_soh_then_cycles_then_slot(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=90, soh=80)
    world.battery("B2", "S1", 2, soc=90, soh=85)
    world.battery("B3", "S1", 3, soc=90, soh=85)
    world.battery("B4", "S1", 4, soc=90, soh=85)
    world.given(RecordHealthReading, battery_id="B2", cycle_count=300)
    world.given(RecordHealthReading, battery_id="B3", cycle_count=100)
    world.battery("B9", soc=100)
    world.plan()
    world.rider(battery_id="B9")
    world.authorized("s1")
    assert initiate(world, pick_battery=True).data["battery_out_id"] == "B3"


def test_rule13_v2_nothing_to_pick_refuses(authorized) -> None:
    authorized.given(RemoveBattery, station_id="S1", slot=1, battery_id="B1", reason="fault")
    authorized.given(RemoveBattery, station_id="S1", slot=2, battery_id="B2", reason="fault")
    outcome = initiate(authorized, pick_battery=True)
    assert outcome.reason == "no_battery_available"
    assert authorized.event("SwapSession.PickRefused").policy_version == 0
    assert authorized.get(SwapSession, "s1").status == "refused"


def test_a_reserved_battery_is_not_picked_for_another_session(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=99)
    world.battery("B2", "S1", 2, soc=90)
    world.battery("B8", soc=100)
    world.battery("B9", soc=100)
    world.plan()
    world.rider("R1", "C1", battery_id="B8")
    world.rider("R2", "C2", battery_id="B9")
    world.authorized("s1", rfid="C1")
    world.given(
        InitiateSwap,
        station_id="S1",
        session_id="s1",
        battery_in_id="B8",
        soc=40,
        soh=90,
        pick_battery=True,
    )
    world.authorized("s2", rfid="C2")
    assert initiate(world, "s2", pick_battery=True).data["battery_out_id"] == "B2"


def test_initiate_sent_again_returns_the_same_decision(authorized) -> None:
    first = initiate(authorized, pick_battery=True)
    again = initiate(authorized, pick_battery=True)
    assert again.data == first.data
    assert authorized.then() == []


def test_initiate_with_another_battery_after_acceptance_is_invalid(authorized) -> None:
    initiate(authorized)
    with authorized.raises(InvalidTransition):
        initiate(authorized, battery="B2")


# --- completing (rules 11, 12, 14) ---------------------------------------------------------


def test_v2_completion_moves_both_custodies(authorized) -> None:
    initiate(authorized, pick_battery=True)
    outcome = complete(authorized, battery_out=None)
    assert outcome.ok
    assert outcome.data == {
        "swap_id": "s1",
        "session_id": "s1",
        "rider_id": "R1",
        "battery_in_id": "B9",
        "battery_out_id": "B1",
        "slot_in": 3,
        "slot_out": 1,
        "energy_used_ah": "18.000",
    }
    b1, b9 = authorized.get(Battery, "B1"), authorized.get(Battery, "B9")
    assert b1.custody == {"kind": "rider", "rider_id": "R1"}
    assert (b1.issued_soc, b1.reserved_for) == (95, None)
    assert b9.custody == {"kind": "slot", "station_id": "S1", "slot": 3}
    station = authorized.get(Station, "S1")
    assert station.slots == {1: None, 2: "B2", 3: "B9", 4: None}
    assert (station.reservations, station.open_sessions) == ({}, {})
    rider = authorized.get(Rider, "R1")
    assert (rider.batteries, rider.open_session) == (["B1"], None)
    done = authorized.event("SwapSession.Completed")
    assert (done.issued_battery_id, done.returned_issue_soc, done.policy_version) == ("B1", 100, 0)
    assert authorized.get(SwapSession, "s1").status == "complete"
    issued = authorized.event("Battery.Issued")
    assert (issued.slot, issued.soc, issued.session_id) == (1, 95, "s1")


def test_v1_completion_after_initiate_validates_the_station_pick(authorized) -> None:
    initiate(authorized)
    outcome = complete(authorized, battery_out="B2", out_soc=88, out_soh=94, in_soc=39)
    assert outcome.ok
    assert outcome.data["energy_used_ah"] == "18.300"  # (100-39)% of 30 Ah
    assert authorized.get(Battery, "B2").issued_soc == 88


def test_v1_completion_without_initiate_checks_the_return_too(authorized) -> None:
    outcome = complete(authorized, in_soc=40, in_soh=65)
    assert outcome.reason == "battery_health_low"
    assert authorized.get(SwapSession, "s1").status == "refused"
    assert "SwapSession.Completed" not in authorized.then()


def test_v1_completion_found_by_rider_id(authorized) -> None:
    outcome = authorized.when(
        CompleteSwap,
        station_id="S1",
        rider_id="R1",
        battery_in_id="B9",
        battery_out_id="B1",
        in_soc=40,
        in_soh=90,
    )
    assert outcome.ok
    assert outcome.data["swap_id"] == "s1"


def test_returned_battery_goes_to_the_lowest_empty_slot_else_the_leaving_one(world) -> None:
    world.station(slots=2)
    world.battery("B1", "S1", 1)
    world.battery("B2", "S1", 2)
    world.battery("B9", soc=100)
    world.plan()
    world.rider(battery_id="B9")
    world.authorized("s1")
    outcome = complete(world, battery_out="B2", in_soc=40, in_soh=90)
    assert (outcome.data["slot_in"], outcome.data["slot_out"]) == (2, 2)
    assert world.get(Station, "S1").slots == {1: "B1", 2: "B9"}


def test_station_may_name_the_slot_of_the_returned_battery(authorized) -> None:
    outcome = complete(authorized, in_soc=40, in_soh=90, slot_in=4)
    assert outcome.data["slot_in"] == 4


@pytest.mark.parametrize(
    ("setup", "battery_out", "reason"),
    [
        (None, "B3", "battery_not_charged"),  # rule 12: 60% < 80%
        (None, "B4", "battery_health_low"),  # rule 12: SOH 60% < 70%
        (None, "GHOST", "battery_unavailable"),  # unknown
        (None, "B5", "battery_unavailable"),  # rule 11: docked at another station
        ("quarantine", "B1", "battery_unavailable"),  # rule 11: grade not ok
        ("reserve", "B1", "battery_unavailable"),  # rule 11/14: reserved for another session
    ],
)
def test_rules_11_12_14_a_bad_station_pick_is_refused_and_nothing_completes(
    world, setup, battery_out, reason
) -> None:
    world.ready()
    world.battery("B3", "S1", 3, soc=60)
    world.given(RecordHealthReading, battery_id="B3", soc=60)  # seen at 60 % while docked
    world.battery("B4", "S1", 4, soc=99, soh=60)
    world.station("S2")
    world.battery("B5", "S2", 1)
    if setup == "quarantine":
        world.given(QuarantineBattery, battery_id="B1", reason="x")
    if setup == "reserve":
        world.battery("B8", soc=100)
        world.rider("R2", "C2", battery_id="B8")
        world.authorized("s0", rfid="C2")
        world.given(
            InitiateSwap,
            station_id="S1",
            session_id="s0",
            battery_in_id="B8",
            soc=50,
            soh=90,
            pick_battery=True,
        )
    world.authorized("s1")
    world.given(InitiateSwap, station_id="S1", session_id="s1", battery_in_id="B9", soc=40, soh=90)
    outcome = complete(world, battery_out=battery_out)
    assert outcome.reason == reason
    assert outcome.data == {"session_id": "s1", "battery_out_id": battery_out}
    assert world.then() == ["SwapSession.IssueRefused"]
    refused = world.event("SwapSession.IssueRefused")
    assert (refused.reason, refused.policy_version) == (reason, 0)
    assert world.get(SwapSession, "s1").status == "pending_collection"  # still open
    assert world.get(Battery, "B9").holder == "R1"


def test_rule12_the_reading_on_completion_counts(authorized) -> None:
    initiate(authorized)
    assert complete(authorized, battery_out="B1", out_soc=70).reason == "battery_not_charged"


def test_rule14_after_a_refused_pick_another_battery_completes(authorized) -> None:
    initiate(authorized, pick_battery=True)
    assert complete(authorized, battery_out="B1", out_soc=10).reason == "battery_not_charged"
    outcome = complete(authorized, battery_out="B2")
    assert outcome.ok
    assert authorized.get(Battery, "B1").reserved_for is None  # the pick's reservation freed
    assert authorized.get(Station, "S1").reservations == {}


def test_rule14_a_battery_is_never_issued_twice(world) -> None:
    world.ready()
    world.battery("B8", soc=100)
    world.rider("R2", "C2", battery_id="B8")
    world.authorized("s1", rfid="C1")
    world.given(
        CompleteSwap, station_id="S1", session_id="s1", battery_in_id="B9", battery_out_id="B1"
    )
    world.authorized("s2", rfid="C2")
    outcome = world.when(
        CompleteSwap, station_id="S1", session_id="s2", battery_in_id="B8", battery_out_id="B1"
    )
    assert outcome.reason == "battery_unavailable"
    assert world.get(Battery, "B1").holder == "R1"


def test_completion_with_the_same_battery_in_and_out_is_invalid(authorized) -> None:
    with authorized.raises(InvalidCommand, "battery_out_id"):
        complete(authorized, battery_out="B9")


def test_completion_without_a_battery_out_and_no_pick_is_invalid(authorized) -> None:
    with authorized.raises(InvalidCommand, "battery_out_id"):
        complete(authorized, battery_out=None)


def test_completion_must_return_the_battery_accepted_at_initiate(world) -> None:
    world.ready()
    world.battery("B7", soc=100)
    world.authorized("s1")
    initiate(world)
    with world.raises(InvalidCommand, "battery_in_id"):
        complete(world, battery_in="B7")


# --- sessions that are not there -----------------------------------------------------------


def test_session_unknown(authorized) -> None:
    outcome = initiate(authorized, session_id="nope")
    assert (outcome.reason, outcome.message) == ("session_unknown", "No open swap session")
    assert authorized.then() == []


def test_session_unknown_for_a_rider_without_an_open_session_here(authorized) -> None:
    authorized.station("S2")
    outcome = authorized.when(
        InitiateSwap, station_id="S2", rider_id="R1", battery_in_id="B9", soc=40, soh=90
    )
    assert outcome.reason == "session_unknown"


def test_session_at_another_station_is_unknown_here(authorized) -> None:
    authorized.station("S2")
    outcome = authorized.when(
        InitiateSwap, station_id="S2", session_id="s1", battery_in_id="B9", soc=40, soh=90
    )
    assert outcome.reason == "session_unknown"


def test_a_closed_session_is_unknown(authorized) -> None:
    complete(authorized)
    assert complete(authorized, battery_out="B2").reason == "session_unknown"


def test_session_timed_out_at_initiate(authorized) -> None:
    outcome = initiate(authorized, occurred_at=authorized.now + timedelta(seconds=121))
    assert (outcome.reason, outcome.message) == ("session_timed_out", "Session timed out")
    assert sorted(authorized.then()) == [
        "Rider.SessionClosed",
        "Station.SessionClosed",
        "SwapSession.TimedOut",
    ]
    again = initiate(authorized)
    assert again.reason == "session_timed_out"
    assert authorized.then() == []


def test_session_needs_an_id_or_a_rider(authorized) -> None:
    with authorized.raises(InvalidCommand, "session_id"):
        authorized.when(InitiateSwap, station_id="S1", battery_in_id="B9", soc=40, soh=90)


# --- the station refusing on its own -------------------------------------------------------


def test_station_refused_swap_is_recorded_and_closes_the_session(authorized) -> None:
    initiate(authorized, pick_battery=True)
    outcome = authorized.when(
        StationRefusedSwap,
        station_id="S1",
        rider_id="R1",
        battery_id="B9",
        station_reason="Battery health below threshold",
        soc=82,
        soh=65,
        temperature=34.5,
    )
    assert outcome.ok
    assert outcome.data == {"session_id": "s1", "status": "refused", "reason": "station_refused"}
    refused = authorized.event("SwapSession.StationRefused")
    assert (refused.reason, refused.station_reason, refused.soh, refused.policy_version) == (
        "station_refused",
        "Battery health below threshold",
        65,
        0,
    )
    session = authorized.get(SwapSession, "s1")
    assert (session.status, session.reason) == ("refused", "station_refused")
    assert authorized.get(Station, "S1").reservations == {}
    assert authorized.get(Battery, "B9").holder == "R1"


def test_station_refusal_without_open_session(authorized) -> None:
    outcome = authorized.when(StationRefusedSwap, station_id="S1", rider_id="R2")
    assert outcome.reason == "session_unknown"


def test_next_auth_after_a_swap_opens_a_new_session(authorized) -> None:
    complete(authorized)
    outcome = authorized.when(AuthorizeCard, station_id="S1", rfid_code="C1", session_id="s2")
    assert outcome.data["session_id"] == "s2"


def test_a_v1_pick_of_a_battery_charging_unobserved_is_judged_by_the_stations_reading(
    world,
) -> None:
    """No reading since it was docked at 60 %: without a reported SOC the station's pick is
    taken (it watched the battery charge); with one, rule 12 uses the reported value."""
    world.ready()
    world.battery("B3", "S1", 3, soc=60)
    world.authorized("s1")
    world.given(InitiateSwap, station_id="S1", session_id="s1", battery_in_id="B9", soc=40, soh=90)
    assert complete(world, battery_out="B3", out_soc=40).reason == "battery_not_charged"
    assert complete(world, battery_out="B3").ok

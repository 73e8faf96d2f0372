"""Rules 1-6: an RFID card at a station."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.base import AlreadyExists, NotFound
from domain.commands import (
    AuthorizeCard,
    BlockCard,
    ChangePolicy,
    CloseBillingPeriod,
    DeactivateRider,
    InitiateSwap,
    QuarantineBattery,
    RecordHealthReading,
    RecordPayment,
    RecordStationStatus,
    SuspendRider,
)
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station

pytestmark = pytest.mark.unit


def auth(world, session_id="s1", rfid="C1", station_id="S1", **kw):
    return world.when(
        AuthorizeCard, station_id=station_id, rfid_code=rfid, session_id=session_id, **kw
    )


def test_a_known_active_card_opens_a_session(world) -> None:
    world.ready()
    outcome = auth(world)
    assert outcome.ok
    assert outcome.data == {
        "session_id": "s1",
        "rider_id": "R1",
        "station_id": "S1",
        "repeated": False,
    }
    assert sorted(world.then()) == [
        "Rider.SessionOpened",
        "Station.SessionOpened",
        "SwapSession.CardAuthorized",
    ]
    assert world.event("SwapSession.CardAuthorized").policy_version == 0
    assert world.get(SwapSession, "s1").status == "authenticated"
    assert "s1" in world.get(Station, "S1").open_sessions
    assert world.get(Rider, "R1").open_session == {"session_id": "s1", "station_id": "S1"}


def test_rule1_unknown_card_is_a_refused_session_not_an_error(world) -> None:
    world.ready()
    outcome = auth(world, rfid="NOPE")
    assert not outcome.ok
    assert (outcome.reason, outcome.message) == ("card_unknown", "Card not found")
    assert outcome.data == {"session_id": "s1", "rider_id": None}
    assert world.then() == ["SwapSession.AuthDenied"]
    denied = world.event("SwapSession.AuthDenied")
    assert (denied.reason, denied.rfid_code, denied.policy_version) == ("card_unknown", "NOPE", 0)
    session = world.get(SwapSession, "s1")
    assert (session.status, session.outcome, session.reason) == (
        "refused",
        "refused",
        "card_unknown",
    )


@pytest.mark.parametrize("status", ["blocked", "lost"])
def test_rule1_blocked_or_lost_card(world, status) -> None:
    world.ready()
    world.given(BlockCard, rfid_code="C1", status=status)
    outcome = auth(world)
    assert (outcome.reason, outcome.message) == ("card_blocked", "Card blocked or reported lost")
    assert outcome.data["rider_id"] == "R1"
    assert world.then() == ["SwapSession.AuthDenied"]


@pytest.mark.parametrize("command", [SuspendRider, DeactivateRider])
def test_rule2_suspended_or_deactivated_rider(world, command) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.plan()
    world.rider()
    world.given(command, rider_id="R1")
    outcome = auth(world)
    assert (outcome.reason, outcome.message) == ("rider_suspended", "Account suspended")
    assert world.then() == ["SwapSession.AuthDenied"]


def overdue_world(world, grace_days=15):
    world.ready()
    world.given(
        CloseBillingPeriod,
        rider_id="R1",
        month="2025-07",
        occurred_at=world.now.replace(month=8, day=1),
        due_at=world.now.replace(month=8, day=5),
    )
    world.now = world.now.replace(month=8, day=5) + timedelta(days=grace_days)


def test_rule3_unpaid_bill_within_grace_is_fine(world) -> None:
    overdue_world(world)
    assert auth(world, occurred_at=world.now).ok  # exactly at due_at + grace: not yet overdue


def test_rule3_unpaid_bill_past_grace_is_payment_overdue(world) -> None:
    overdue_world(world)
    outcome = auth(world, occurred_at=world.now + timedelta(seconds=1))
    assert (outcome.reason, outcome.message) == ("payment_overdue", "Payment overdue")
    assert world.then() == ["SwapSession.AuthDenied"]


def test_rule3_paying_the_bill_lifts_the_refusal(world) -> None:
    overdue_world(world)
    world.given(RecordPayment, rider_id="R1", month="2025-07", amount=Decimal("10.00"))
    assert auth(world).ok


def test_rule3_grace_comes_from_the_policy(world) -> None:
    overdue_world(world, grace_days=3)
    world.given(ChangePolicy, payment_grace_days=2)
    outcome = auth(world)
    assert outcome.reason == "payment_overdue"
    assert world.event("SwapSession.AuthDenied").policy_version == 1


@pytest.mark.parametrize("status", ["offline", "maintenance"])
def test_rule4_station_offline_or_in_maintenance(world, status) -> None:
    world.ready()
    world.given(RecordStationStatus, station_id="S1", status=status, source="will")
    outcome = auth(world)
    assert (outcome.reason, outcome.message) == ("station_unavailable", "Station unavailable")


def test_rule4_station_that_never_sent_status_is_online(world) -> None:
    world.ready()
    assert world.get(Station, "S1").status == "online"
    assert auth(world).ok


def test_rule4_back_online_after_a_heartbeat(world) -> None:
    world.ready()
    world.given(RecordStationStatus, station_id="S1", status="offline", source="will")
    world.given(RecordStationStatus, station_id="S1", status="online")
    assert auth(world).ok


def test_rule5_no_issuable_battery(world) -> None:
    world.station()
    world.battery("B1", "S1", 1, soc=50)  # not charged
    world.battery("B2", "S1", 2, soc=95, soh=50)  # unhealthy
    world.battery("B3", "S1", 3, soc=99)
    world.given(QuarantineBattery, battery_id="B3", reason="swelling")  # grade not ok
    world.battery("B4", "S1", 4, soc=None)  # SOC unknown
    # Readings taken while docked: what the station last saw is what counts.
    world.given(RecordHealthReading, battery_id="B1", soc=50)
    world.given(RecordHealthReading, battery_id="B4", temperature=25.0)
    world.plan()
    world.rider()
    outcome = auth(world)
    assert (outcome.reason, outcome.message) == (
        "no_battery_available",
        "No charged battery available",
    )


def test_rule5_a_battery_charging_unobserved_counts_as_available(world) -> None:
    """A v1 station reports no charging: a battery returned at 30 % and docked since, with no
    reading after, may be charged by now. The auth is granted; the station's own reading
    settles it when it picks the battery (rule 12)."""
    world.station()
    world.battery("B1", "S1", 1, soc=30)  # docked with the SOC it came back with
    world.plan()
    world.rider()
    assert auth(world).ok
    world.given(RecordHealthReading, battery_id="B1", soc=30)  # now seen, still flat
    world.rider("R2", "C2")
    assert auth(world, session_id="s2", rfid="C2").reason == "no_battery_available"


def test_rule5_empty_station(world) -> None:
    world.station()
    world.plan()
    world.rider()
    assert auth(world).reason == "no_battery_available"


def test_rule6_repeat_at_the_same_station_returns_the_same_session(world) -> None:
    world.ready()
    world.authorized("s1")
    outcome = auth(world, session_id="s2")
    assert outcome.ok
    assert outcome.data["session_id"] == "s1"
    assert outcome.data["repeated"] is True
    assert world.then() == []
    assert world.ledger.get(SwapSession, "s2") is None


def test_rule6_repeat_with_the_same_proposed_id(world) -> None:
    world.ready()
    world.authorized("s1")
    assert auth(world, session_id="s1").data["session_id"] == "s1"
    assert world.then() == []


def test_rule6_open_session_elsewhere_is_cancelled_first(world) -> None:
    world.ready()
    world.station("S2")
    world.battery("B5", "S2", 1)
    world.authorized("s1")
    outcome = auth(world, session_id="s2", station_id="S2")
    assert outcome.ok
    assert outcome.data["session_id"] == "s2"
    old = world.get(SwapSession, "s1")
    assert (old.status, old.reason) == ("cancelled", "superseded")
    assert world.event("SwapSession.Cancelled").superseded_by == "s2"
    assert "s1" not in world.get(Station, "S1").open_sessions
    assert world.get(Rider, "R1").open_session == {"session_id": "s2", "station_id": "S2"}
    assert world.stream("session:s1")[-1] == world.event("SwapSession.Cancelled")


def test_rule6_cancelling_frees_the_reserved_battery(world) -> None:
    world.ready()
    world.station("S2")
    world.battery("B5", "S2", 1)
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
    assert world.get(Station, "S1").reservations == {"B1": "s1"}
    auth(world, session_id="s2", station_id="S2")
    assert world.get(Station, "S1").reservations == {}
    assert world.get(SwapSession, "s1").status == "cancelled"


def test_rule6_stale_session_here_times_out_and_a_new_one_opens(world) -> None:
    world.ready()
    world.authorized("s1")
    outcome = auth(world, session_id="s2", occurred_at=world.now + timedelta(seconds=121))
    assert outcome.data == {
        "session_id": "s2",
        "rider_id": "R1",
        "station_id": "S1",
        "repeated": False,
    }
    assert world.get(SwapSession, "s1").status == "timed_out"


def test_unknown_station_is_not_found(world) -> None:
    world.ready()
    with world.raises(NotFound, "station_id"):
        auth(world, station_id="S9")


def test_a_taken_session_id_is_rejected(world) -> None:
    world.ready()
    world.rider("R2", rfid="C2")
    world.authorized("s1")
    with world.raises(AlreadyExists, "session_id"):
        auth(world, session_id="s1", rfid="C2")
    with world.raises(AlreadyExists, "session_id"):
        auth(world, session_id="s1", rfid="UNKNOWN")

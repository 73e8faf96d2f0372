"""Rule 15: sessions open longer than the policy's timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.base import NotFound
from domain.battery import Battery
from domain.commands import AuthorizeCard, ChangePolicy, InitiateSwap, TimeOutSessions
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station

pytestmark = pytest.mark.unit


def sweep(world, after_s: float, station_id: str = "S1"):
    return world.when(
        TimeOutSessions, station_id=station_id, occurred_at=world.now + timedelta(seconds=after_s)
    )


def test_open_session_older_than_the_timeout_times_out_and_frees_its_battery(world) -> None:
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
    outcome = sweep(world, 121)
    assert outcome.data == {"station_id": "S1", "timed_out": ["s1"]}
    timed_out = world.event("SwapSession.TimedOut")
    assert (timed_out.reason, timed_out.timeout_s, timed_out.policy_version) == (
        "session_timed_out",
        120,
        0,
    )
    assert world.get(SwapSession, "s1").status == "timed_out"
    assert world.get(Station, "S1").reservations == {}
    assert world.get(Station, "S1").open_sessions == {}
    assert world.get(Battery, "B1").reserved_for is None
    assert world.get(Rider, "R1").open_session is None
    assert world.get(Battery, "B9").holder == "R1"  # custody did not move


def test_a_session_within_the_timeout_stays_open(world) -> None:
    world.ready()
    world.authorized("s1")
    assert sweep(world, 100).data["timed_out"] == []
    assert world.then() == []


def test_timeout_comes_from_the_policy(world) -> None:
    world.ready()
    world.given(ChangePolicy, session_timeout_s=30)
    world.authorized("s1")
    sweep(world, 31)
    assert world.event("SwapSession.TimedOut").policy_version == 1


def test_only_this_stations_sessions_time_out(world) -> None:
    world.ready()
    world.station("S2")
    world.battery("B5", "S2", 1)
    world.authorized("s1")
    assert sweep(world, 500, "S2").data["timed_out"] == []


def test_unknown_station(world) -> None:
    with world.raises(NotFound, "station_id"):
        sweep(world, 1, "nowhere")


def test_the_sweeper_measures_age_on_the_ledgers_clock_not_the_stations(world) -> None:
    """A v1 station whose clock is a year behind: its session is not timed out by the next
    sweep, only once the ledger's own clock says it has been open too long."""
    world.ready()
    world.given(
        AuthorizeCard,
        station_id="S1",
        rfid_code="C1",
        session_id="s1",
        occurred_at=world.now - timedelta(days=365),
    )
    assert sweep(world, after_s=5).data["timed_out"] == []
    assert world.get(SwapSession, "s1").is_open
    assert sweep(world, after_s=121).data["timed_out"] == ["s1"]

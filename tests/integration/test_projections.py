"""Projections on the real MariaDB and on SQLite: rows from real commands, the query
functions over them, exactly-once under duplicate delivery and racing runners, and the
supervisor restarting a crashed runner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from adapters.store import Store, open_store
from bench.fleet import Fleet, drive
from domain import commands as c
from ledger.service import Ledger
from projections import NAMES, make
from projections.runner import Worker
from projections.status import projection_status
from projections.supervisor import Supervisor
from readmodels import analytics, batteries, billing, health, rejected, riders, stations, swaps
from readmodels.generations import ACTIVE, read_active
from readmodels.schema import create_all
from replay.rebuild import rebuild
from replay.verify import differences, snapshot

T0 = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)


@pytest.fixture(params=["mariadb", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("fresh_mysql_url" if request.param == "mariadb" else "sqlite_url")
    opened = open_store(url, init=True)
    create_all(opened.engine)
    yield opened
    ACTIVE.invalidate(opened.engine)
    opened.close()


class Scene:
    """Commands through the real ledger, on a clock the test moves."""

    def __init__(self, store: Store) -> None:
        self.ledger = Ledger(store)
        self.now = T0

    def ok(self, cls: type[c.Command], seconds: float = 1, **fields: Any) -> Any:
        self.now += timedelta(seconds=seconds)
        result = self.ledger.execute(cls(occurred_at=self.now, **fields))
        assert result.outcome is not None
        assert result.outcome.ok, result.outcome
        return result.outcome

    def run(self, cls: type[c.Command], seconds: float = 1, **fields: Any) -> Any:
        self.now += timedelta(seconds=seconds)
        return self.ledger.execute(cls(occurred_at=self.now, **fields)).outcome


def catch_up(store: Store, names: list[str] | None = None) -> None:
    for projection in make(names):
        Worker(store, projection).catch_up()


def fleet_events(store: Store, commands: int, seed: int = 5) -> Fleet:
    ledger = Ledger(store)
    fleet = Fleet(stations=4, slots=6, batteries=36, riders=14, seed=seed, swap_weight=0.15)

    def execute(cmds: list[c.Command]) -> list[Any]:
        return ledger.execute_many([(cmd, None) for cmd in cmds])

    drive(fleet, execute, fleet.setup(), commands=10**9, batch=50)
    drive(fleet, execute, fleet.actions(), commands=commands, batch=50)
    return fleet


def snapshots(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        active = read_active(conn)
    return {model: snapshot(store.engine, model, active[model]) for model in NAMES}


def fresh_differences(store: Store) -> dict[str, list[str]]:
    """Build every read model afresh beside the live one and compare (then drop it)."""
    from replay.rebuild import drop_generation

    results = rebuild(store, switch=False)
    with store.engine.connect() as conn:
        active = read_active(conn)
    try:
        return {
            r.model: differences(store.engine, r.model, active[r.model], r.new_generation)
            for r in results
        }
    finally:
        for r in results:
            drop_generation(store, r.model, r.new_generation)


# --- rows from real commands --------------------------------------------------------------


def test_projections_make_the_expected_rows_and_queries_return_them(store: Store) -> None:
    s = Scene(store)
    s.ok(
        c.DefinePlan,
        plan_id="basic",
        name="Basic",
        monthly_fee=Decimal("30"),
        included_ah=Decimal("10"),
        extra_ah_rate=Decimal("0.5"),
    )
    s.ok(c.RegisterStation, station_id="S1", name="Main St", slot_count=3, lat=48.1, lng=11.5)
    for battery_id, slot, soc in (("B1", 1, 95), ("B2", 2, 50)):
        s.ok(
            c.RegisterBattery,
            battery_id=battery_id,
            battery_type="LFP",
            capacity_ah=Decimal("40"),
            manufactured_on="2024-01-01",
            station_id="S1",
            slot=slot,
            soc=soc,
            soh=90,
        )
    s.ok(
        c.RegisterBattery,
        battery_id="B9",
        battery_type="LFP",
        capacity_ah=Decimal("40"),
        manufactured_on="2024-01-01",
        soc=90,
        soh=88,
    )
    s.ok(
        c.RegisterRider,
        rider_id="R1",
        personal={"name": "Ines", "email": "i@x.org"},
        plan_id="basic",
        rfid_code="C1",
        battery_id="B9",
    )
    s.ok(
        c.RecordHealthReading,
        battery_id="B2",
        station_id="S1",
        slot=2,
        soc=60,
        soh=89.5,
        max_temp=31.0,
        pack_voltage=52.2,
        internal_resist=14.5,
        cycle_count=40,
    )
    s.ok(c.AuthorizeCard, station_id="S1", rfid_code="C1", session_id="s1")
    s.ok(
        c.InitiateSwap,
        seconds=10,
        station_id="S1",
        battery_in_id="B9",
        soc=30,
        soh=88,
        temperature=30,
        session_id="s1",
    )
    s.ok(
        c.CompleteSwap,
        seconds=20,
        station_id="S1",
        battery_in_id="B9",
        battery_out_id="B1",
        session_id="s1",
    )
    s.run(c.AuthorizeCard, station_id="S1", rfid_code="LOST", session_id="s2")
    s.ok(c.CloseBillingPeriod, rider_id="R1", month="2025-03", seconds=3600)
    from domain.rejection import RecordRejectedMessage

    s.ok(
        RecordRejectedMessage,
        rejection_id="rj1",
        reason="invalid_json",
        message="Bad JSON",
        topic="bss/S1/swap/initiate",
        station_id="S1",
        payload_b64="e2JhZA==",
        payload_size=5,
        received_at=s.now,
    )
    catch_up(store)
    engine = store.engine

    rider = riders.get_rider(engine, "R1")
    assert rider is not None
    assert rider["personal"] == {
        "name": "Ines",
        "email": "i@x.org",
        "phone": None,
        "address": None,
        "licence": None,
    }
    assert (rider["status"], rider["battery_id"], rider["swap_count"]) == ("active", "B1", 1)
    assert rider["last_swap_at"] == T0 + timedelta(seconds=38)
    assert rider["last_swap_at"].tzinfo is not None
    assert [card["rfid_code"] for card in rider["cards"]] == ["C1"]
    assert riders.get_card(engine, "C1")["status"] == "active"  # type: ignore[index]

    b1 = batteries.get_battery(engine, "B1")
    assert b1 is not None
    assert b1["custody"] == {"kind": "rider", "station_id": None, "slot": None, "rider_id": "R1"}
    assert b1["capacity_ah"] == Decimal("40")
    b2 = batteries.get_battery(engine, "B2")
    assert b2 is not None
    assert (b2["soc"], b2["soh"], b2["temperature"], b2["voltage"], b2["cycle_count"]) == (
        60,
        89.5,
        31.0,
        52.2,
        40,
    )
    assert batteries.count_by_status(engine) == {"docked": 2, "in_use": 1}
    docked = batteries.list_batteries(engine, custody_kind="slot", sort="soc", descending=True)
    assert [b["battery_id"] for b in docked["items"]] == ["B2", "B9"]

    history = health.health_history(engine, "B2")["items"]
    assert [(h["soc"], h["internal_resist"], h["source"]) for h in history] == [
        (60, 14.5, "telemetry")
    ]
    assert [p["soh"] for p in health.soh_series(engine, "B9")] == [88]

    station = stations.get_station(engine, "S1")
    assert station is not None
    assert [(x["slot"], x["battery_id"], x["state"]) for x in station["slots"]] == [
        (1, None, "empty"),
        (2, "B2", "charging"),
        (3, "B9", "charging"),
    ]
    assert (station["batteries_docked"], station["batteries_available"]) == (2, 0)
    assert stations.inventory_summary(engine)["charging"] == 2

    swap = swaps.get_swap(engine, "s1")
    assert swap is not None
    assert (swap["outcome"], swap["returned_battery_id"], swap["issued_battery_id"]) == (
        "completed",
        "B9",
        "B1",
    )
    assert (swap["returned_soc"], swap["energy_used_ah"], swap["duration_s"]) == (
        30,
        Decimal("24.000"),
        30,
    )
    refused = swaps.list_swaps(engine, outcome="refused")["items"]
    assert [(r["session_id"], r["reason"]) for r in refused] == [("s2", "card_unknown")]
    assert [r["session_id"] for r in swaps.list_swaps(engine, battery_id="B9")["items"]] == ["s1"]

    hours = analytics.station_hourly(engine, "S1")
    assert [(h["hour"], h["swaps"], h["refusals"]) for h in hours] == [
        (datetime(2025, 3, 31, 23, tzinfo=UTC), 1, 1)
    ]
    assert hours[0]["refusals_by_reason"] == {"card_unknown": 1}
    assert analytics.station_totals(engine)[0]["swaps"] == 1

    bill = billing.get_bill(engine, "R1", "2025-03")
    assert bill is not None
    assert (bill["status"], bill["amount_due"], bill["used_ah"]) == (
        "closed",
        Decimal("37.00"),
        Decimal("24.000"),
    )
    assert [line["session_id"] for line in bill["lines"]] == ["s1"]
    assert [b["month"] for b in billing.list_bills(engine, unpaid=True)["items"]] == ["2025-03"]
    assert [p["plan_id"] for p in billing.list_plans(engine)] == ["basic"]

    found = rejected.list_rejected(engine, station_id="S1")["items"]
    assert [(r["reason"], r["raw_b64"]) for r in found] == [("invalid_json", "e2JhZA==")]


def test_list_queries_page_with_cursors(store: Store) -> None:
    fleet_events(store, 600)
    catch_up(store, ["swaps", "riders"])
    engine = store.engine
    everything = swaps.list_swaps(engine, limit=1000)["items"]
    assert len(everything) > 20
    seen: list[str] = []
    cursor = None
    while True:
        page = swaps.list_swaps(engine, cursor=cursor, limit=7)
        seen += [r["session_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["session_id"] for r in everything]
    by_count = riders.list_riders(engine, sort="last_swap_at", limit=5)
    rest = riders.list_riders(
        engine, sort="last_swap_at", limit=100, cursor=by_count["next_cursor"]
    )
    ids = [r["rider_id"] for r in by_count["items"] + rest["items"]]
    assert sorted(ids) == sorted(r["rider_id"] for r in riders.list_riders(engine)["items"])
    assert len(ids) == len(set(ids))


# --- exactly once ---------------------------------------------------------------------------


def test_a_runner_restarted_from_an_older_position_changes_nothing(store: Store) -> None:
    fleet_events(store, 800)
    catch_up(store)
    before = snapshots(store)
    head = store.recorder.head()
    for projection in make():
        stale = Worker(store, projection, batch_size=97)
        stale.resolve()
        stale.position = head // 3  # as if it had crashed before saving where it was
        stale.catch_up()
        assert stale.applied_total == 0
        assert stale.position == head
    assert snapshots(store) == before


def test_two_runners_racing_on_one_projection_apply_each_event_once(store: Store) -> None:
    fleet_events(store, 1500)
    errors: list[BaseException] = []

    def run(batch_size: int) -> None:
        try:
            for projection in make():
                Worker(store, projection, batch_size=batch_size).catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(size,)) for size in (41, 67)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert fresh_differences(store) == {model: [] for model in NAMES}


def test_runners_restarted_after_every_batch_end_as_one_that_ran_through(store: Store) -> None:
    """Every batch with a cold cache: rows read back from the tables (types as the columns
    store them) must give the same results as rows kept in memory."""
    fleet_events(store, 800)
    head = store.recorder.head()
    for projection in make():
        while True:
            worker = Worker(store, type(projection)(), batch_size=157)
            worker.resolve()
            if (worker.position or 0) >= head:
                break
            worker.step()
    assert fresh_differences(store) == {model: [] for model in NAMES}


def test_live_runners_keep_up_while_commands_arrive(store: Store) -> None:
    fleet = Fleet(stations=3, slots=5, batteries=20, riders=8, seed=11, swap_weight=0.2)
    ledger = Ledger(store)

    def execute(cmds: list[c.Command]) -> list[Any]:
        return ledger.execute_many([(cmd, None) for cmd in cmds])

    with Supervisor(store, interval=0.05, batch_size=50) as supervisor:
        drive(fleet, execute, fleet.setup(), commands=10**9, batch=10)
        drive(fleet, execute, fleet.actions(), commands=800, batch=10)
        assert supervisor.wait_caught_up(60)
    assert fresh_differences(store) == {model: [] for model in NAMES}


# --- supervision and status ---------------------------------------------------------------


def test_a_crashing_projection_is_restarted_and_reported(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.swaps import SwapsProjection

    fleet_events(store, 300)
    failures = {"left": 3}
    original = SwapsProjection.apply

    def flaky(self: Any, event: Any, uow: Any, position: int) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("projection bug")
        original(self, event, uow, position)

    monkeypatch.setattr(SwapsProjection, "apply", flaky)
    supervisor = Supervisor(store, ["swaps", "riders"], interval=0.05, backoff_min=0.05)
    with supervisor:
        assert supervisor.wait_caught_up(60)
        state = {s["name"]: s for s in supervisor.status()}
        status = {s["name"]: s for s in projection_status(store, supervisor)}
    assert state["swaps"]["restarts"] == 3
    assert state["swaps"]["last_error"] == "RuntimeError: projection bug"
    assert state["riders"]["restarts"] == 0
    assert status["swaps"]["state"] == "running"
    assert status["swaps"]["lag"] == 0
    assert (REGISTRY.get_sample_value("bss_projection_crashes_total", {"name": "swaps"}) or 0) >= 3
    found = fresh_differences(store)
    assert found["swaps"] == [], found["swaps"]


def test_status_reports_positions_lag_and_gauges(store: Store) -> None:
    fleet_events(store, 200)
    catch_up(store, ["riders"])
    head = store.recorder.head()
    status = {s["name"]: s for s in projection_status(store)}
    assert status["riders"]["position"] == head
    assert status["riders"]["lag"] == 0
    assert status["health"]["position"] == 0
    assert status["health"]["lag"] == head
    assert status["riders"]["tracking"] == "rm:riders:g1"
    assert status["riders"]["outdated"] is False
    assert status["riders"]["rebuilding"] is None
    assert REGISTRY.get_sample_value("bss_projection_lag_events", {"name": "health"}) == head
    assert REGISTRY.get_sample_value("bss_projection_position", {"name": "riders"}) == head

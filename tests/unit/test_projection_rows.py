"""Given the events of real commands (in-memory ledger), each projection makes these rows.

No database: the unit of work starts from a cache that knows the (new) tables are empty,
so every read is answered from memory, and the rows are read back from it unwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from domain import commands as c
from domain.rider import Rider
from projections import make
from projections.analytics import hour_of, percentile
from projections.base import Projection
from projections.unitofwork import RowCache, UnitOfWork
from readmodels.schema import model_tables
from tests.support.memory import MemoryLedger

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 31, 23, 58, tzinfo=UTC)
Rows = dict[str, dict[Any, dict[str, Any]]]


class Scene:
    def __init__(self) -> None:
        self.now = T0
        self.ledger = MemoryLedger(clock=lambda: self.now)  # the ledger's clock: scene time

    def at(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def run(self, cls: type[c.Command], seconds: float = 1, **fields: Any) -> Any:
        outcome = self.ledger.execute(cls(occurred_at=self.at(seconds), **fields))
        return outcome

    def ok(self, cls: type[c.Command], seconds: float = 1, **fields: Any) -> Any:
        outcome = self.run(cls, seconds, **fields)
        assert outcome.ok, outcome
        return outcome

    def rows(self, model: str) -> Rows:
        return project(make([model])[0], self.ledger.events())


def project(projection: Projection, events: list[Any]) -> Rows:
    tables = model_tables(projection.model, 1)
    cache = RowCache()
    cache.mark_empty(tables)
    uow = UnitOfWork(SimpleNamespace(dialect=SimpleNamespace(name="sqlite")), tables, cache)  # type: ignore[arg-type]
    projection.begin(uow)
    for position, event in enumerate(events, start=1):
        if projection.wants(get_topic(type(event))):
            projection.apply(event, uow, position)
    projection.end(uow)
    found: Rows = {name: {} for name in tables}
    for name, working in uow.working.items():
        found[name] = {k: v for k, v in working.items() if v is not None}
    for name, appended in uow.appended.items():
        for row in appended:
            found[name][uow.specs[name].key(row)] = row
    return found


@pytest.fixture
def scene() -> Scene:
    s = Scene()
    s.ok(
        c.DefinePlan,
        plan_id="basic",
        name="Basic",
        monthly_fee=Decimal("30"),
        included_ah=Decimal("10"),
        extra_ah_rate=Decimal("0.5"),
    )
    s.ok(c.RegisterStation, station_id="S1", name="One", slot_count=3)
    s.ok(
        c.RegisterBattery,
        battery_id="B1",
        battery_type="LFP",
        capacity_ah=Decimal("40"),
        manufactured_on="2024-01-01",
        station_id="S1",
        slot=1,
        soc=95,
        soh=90,
    )
    s.ok(
        c.RegisterBattery,
        battery_id="B2",
        battery_type="LFP",
        capacity_ah=Decimal("40"),
        manufactured_on="2024-01-01",
        station_id="S1",
        slot=2,
        soc=50,
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
    return s


def swap(s: Scene, session: str, back_soc: float = 30, out: str = "B1") -> None:
    s.ok(c.AuthorizeCard, station_id="S1", rfid_code="C1", session_id=session)
    rider = s.ledger.get(Rider, "R1")
    assert rider is not None
    held = rider.batteries[0]
    s.ok(
        c.InitiateSwap,
        seconds=10,
        station_id="S1",
        battery_in_id=held,
        soc=back_soc,
        soh=88,
        temperature=30,
        session_id=session,
    )
    s.ok(
        c.CompleteSwap,
        seconds=20,
        station_id="S1",
        battery_in_id=held,
        battery_out_id=out,
        session_id=session,
    )


def test_slots_derive_ready_charging_empty_faulty_and_heartbeats_override(scene: Scene) -> None:
    rows = scene.rows("stations")
    slots = rows["slots"]
    assert [slots[("S1", n)]["state"] for n in (1, 2, 3)] == ["ready", "charging", "empty"]
    assert [slots[("S1", n)]["issuable"] for n in (1, 2, 3)] == [True, False, False]
    station = rows["stations"]["S1"]
    assert (station["slots_ready"], station["slots_charging"], station["slots_empty"]) == (1, 1, 1)
    assert (station["batteries_docked"], station["batteries_available"]) == (2, 1)

    scene.ok(c.RecordHealthReading, battery_id="B2", station_id="S1", slot=2, soc=85)
    scene.ok(c.QuarantineBattery, battery_id="B1", reason="swollen")
    scene.ok(
        c.RecordStationStatus,
        station_id="S1",
        status="online",
        slots=(c.SlotReport(slot=3, state="faulty"),),
    )
    rows = scene.rows("stations")
    slots = rows["slots"]
    assert [slots[("S1", n)]["state"] for n in (1, 2, 3)] == ["faulty", "ready", "faulty"]
    assert slots[("S1", 3)]["state_source"] == "heartbeat"
    assert rows["stations"]["S1"]["batteries_available"] == 1
    assert rows["stations"]["S1"]["last_heartbeat_at"] == scene.now

    scene.ok(c.ChangePolicy, min_issue_soc=90)
    slots = scene.rows("stations")["slots"]
    assert slots[("S1", 2)]["state"] == "charging"
    assert slots[("S1", 2)]["issuable"] is False


def test_a_late_heartbeat_changes_neither_status_nor_slots(scene: Scene) -> None:
    scene.ok(c.RecordStationStatus, station_id="S1", status="maintenance")
    scene.ledger.execute(
        c.RecordStationStatus(
            occurred_at=T0,
            station_id="S1",
            status="online",
            slots=(c.SlotReport(slot=1, state="empty"),),
        )
    )
    rows = scene.rows("stations")
    assert rows["stations"]["S1"]["status"] == "maintenance"
    assert rows["slots"][("S1", 1)]["state"] == "ready"


def test_battery_custody_has_four_keys_and_late_readings_are_history_only(scene: Scene) -> None:
    scene.ok(
        c.RecordHealthReading,
        battery_id="B1",
        station_id="S1",
        slot=1,
        soc=97,
        soh=89,
        max_temp=33.5,
        pack_voltage=52.1,
        cycle_count=12,
    )
    scene.ledger.execute(c.RecordHealthReading(occurred_at=T0, battery_id="B1", soc=10, soh=50))
    batteries = scene.rows("batteries")["batteries"]
    b1 = batteries["B1"]
    assert b1["custody"] == {"kind": "slot", "station_id": "S1", "slot": 1, "rider_id": None}
    assert (b1["soc"], b1["soh"], b1["temperature"], b1["voltage"], b1["cycle_count"]) == (
        97,
        89,
        33.5,
        52.1,
        12,
    )
    assert b1["status"] == "docked"
    assert batteries["B9"]["custody"] == {
        "kind": "rider",
        "station_id": None,
        "slot": None,
        "rider_id": "R1",
    }
    assert batteries["B9"]["status"] == "in_use"
    health = scene.rows("health")["readings"]
    assert sorted((r["battery_id"], r["soc"]) for r in health.values()) == [("B1", 10), ("B1", 97)]


def test_a_swap_makes_one_session_row_moves_custody_and_counts_for_the_rider(scene: Scene) -> None:
    swap(scene, "s1", back_soc=30)
    row = scene.rows("swaps")["swaps"]["s1"]
    assert (row["state"], row["outcome"], row["reason"]) == ("complete", "completed", None)
    assert (row["returned_battery_id"], row["issued_battery_id"]) == ("B9", "B1")
    assert row["returned_slot"] == 3
    assert row["issued_slot"] == 1
    assert row["energy_used_ah"] == Decimal("24.000")  # (90 - 30) / 100 * 40
    assert row["duration_s"] == 30
    rider = scene.rows("riders")["riders"]["R1"]
    assert (rider["swap_count"], rider["battery_id"], rider["last_swap_station_id"]) == (
        1,
        "B1",
        "S1",
    )
    assert rider["open_session_id"] is None
    assert rider["personal"]["name"] == "Ines"
    batteries = scene.rows("batteries")["batteries"]
    assert batteries["B9"]["custody"]["kind"] == "slot"
    assert batteries["B1"]["custody"]["rider_id"] == "R1"


def test_refusals_and_corrections_show_on_the_session(scene: Scene) -> None:
    scene.ok(c.AuthorizeCard, station_id="S1", rfid_code="C1", session_id="s1")
    scene.run(
        c.InitiateSwap,
        station_id="S1",
        battery_in_id="B9",
        soc=30,
        soh=88,
        temperature=70,
        session_id="s1",
    )
    scene.run(c.AuthorizeCard, station_id="S1", rfid_code="nope", session_id="s2")
    swap(scene, "s3", back_soc=30)
    scene.ok(c.CorrectSwap, session_id="s3", returned_soc=20, note="recalibrated")
    swaps = scene.rows("swaps")["swaps"]
    assert (swaps["s1"]["outcome"], swaps["s1"]["reason"]) == ("refused", "battery_too_hot")
    assert swaps["s1"]["returned_temperature"] == 70
    assert (swaps["s2"]["outcome"], swaps["s2"]["reason"], swaps["s2"]["rider_id"]) == (
        "refused",
        "card_unknown",
        None,
    )
    corrected = swaps["s3"]
    assert corrected["energy_used_ah"] == Decimal("28.000")
    assert corrected["correction_count"] == 1
    assert corrected["corrections"][0]["delta_ah"] == "4.000"


def test_analytics_count_by_hour_with_percentiles_and_busy_time(scene: Scene) -> None:
    swap(scene, "s1")  # opens 23:58:xx on March 31, completes 30 s later
    scene.run(c.AuthorizeCard, station_id="S1", rfid_code="nope", session_id="s2", seconds=120)
    hourly = scene.rows("analytics")["hourly"]
    first = hourly[("S1", datetime(2025, 3, 31, 23, tzinfo=UTC))]
    assert (first["sessions"], first["swaps"], first["refusals"]) == (1, 1, 0)
    assert first["durations"] == [30.0]
    assert first["duration_p50_s"] == first["duration_p95_s"] == 30.0
    assert first["busy_s"] == 30.0
    later = hourly[("S1", datetime(2025, 4, 1, 0, tzinfo=UTC))]
    assert later["refusals_by_reason"] == {"card_unknown": 1}


def test_busy_time_is_split_over_the_hours_a_session_spans(scene: Scene) -> None:
    scene.ok(c.AuthorizeCard, station_id="S1", rfid_code="C1", session_id="s1")  # 23:59:xx
    opened = scene.now
    scene.ok(c.TimeOutSessions, station_id="S1", seconds=300)
    hourly = scene.rows("analytics")["hourly"]
    before = hourly[("S1", datetime(2025, 3, 31, 23, tzinfo=UTC))]
    after = hourly[("S1", datetime(2025, 4, 1, 0, tzinfo=UTC))]
    assert before["busy_s"] + after["busy_s"] == pytest.approx(300)
    assert before["busy_s"] == pytest.approx((datetime(2025, 4, 1, tzinfo=UTC) - opened).seconds)
    assert after["timed_out"] == 1


def test_bills_track_usage_close_payment_and_late_adjustments(scene: Scene) -> None:
    swap(scene, "s1", back_soc=30)  # March: 24 Ah
    scene.ok(c.CloseBillingPeriod, rider_id="R1", month="2025-03", seconds=120)
    bills = scene.rows("billing")["bills"]
    march = bills[("R1", "2025-03")]
    assert march["status"] == "closed"
    assert (march["used_ah"], march["included_ah"], march["excess_ah"]) == (
        Decimal("24.000"),
        Decimal("10"),
        Decimal("14.000"),
    )
    assert march["amount_due"] == Decimal("37.00")  # 30 + 14 * 0.5
    scene.ok(c.CorrectSwap, session_id="s1", returned_soc=20, note="late upload")
    scene.ok(c.RecordPayment, rider_id="R1", month="2025-03", amount=Decimal("37.00"))
    billing = scene.rows("billing")
    march = billing["bills"][("R1", "2025-03")]
    april = billing["bills"][("R1", "2025-04")]
    assert (march["status"], march["paid"], march["outstanding"]) == (
        "paid",
        Decimal("37.00"),
        Decimal("0.00"),
    )
    assert (april["adjustment_ah"], april["adjustment_lines"], april["status"]) == (
        Decimal("4.000"),
        1,
        "open",
    )
    assert april["estimated_due"] == Decimal("30.00")
    late = [line for line in billing["lines"].values() if line["adjustment"]]
    assert [(line["month"], line["for_month"], line["kind"]) for line in late] == [
        ("2025-04", "2025-03", "correction")
    ]


def test_rejected_messages_are_kept_with_their_payload(scene: Scene) -> None:
    from domain.rejection import RecordRejectedMessage

    scene.ok(
        RecordRejectedMessage,
        rejection_id="x1",
        reason="invalid_json",
        message="Bad JSON",
        topic="bss/S1/swap/initiate",
        station_id="S1",
        payload_b64="e2JhZA==",
        payload_size=5,
        received_at=scene.now,
    )
    row = next(iter(scene.rows("rejected")["rejected"].values()))
    assert (row["station_id"], row["reason"], row["mqtt_topic"], row["raw_b64"]) == (
        "S1",
        "invalid_json",
        "bss/S1/swap/initiate",
        "e2JhZA==",
    )
    assert row["truncated"] is False


def test_percentiles_and_hours() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
    local = datetime(2025, 1, 1, 1, 30, tzinfo=__import__("datetime").timezone(timedelta(hours=2)))
    assert hour_of(local) == datetime(2024, 12, 31, 23, tzinfo=UTC)


def test_rows_are_kept_as_the_columns_store_them() -> None:
    tables = model_tables("swaps", 1)
    cache = RowCache()
    cache.mark_empty(tables)
    conn = SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))
    uow = UnitOfWork(conn, tables, cache)  # type: ignore[arg-type]
    row = uow.new(
        "swaps", session_id="s1", station_reason="x" * 1500, energy_used_ah=Decimal("1.5")
    )
    uow.put("swaps", row)
    stored = uow.get("swaps", "s1")
    assert stored is not None
    assert len(stored["station_reason"]) == 1000
    assert str(stored["energy_used_ah"]) == "1.500"

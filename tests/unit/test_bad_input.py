"""Bad input raises a DomainError naming the field, and nothing is appended."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from domain.base import DomainError, InvalidCommand, NotFound
from domain.commands import (
    AuthorizeCard,
    BlockCard,
    ChangePolicy,
    CloseBillingPeriod,
    CompleteSwap,
    DefinePlan,
    DockBattery,
    InitiateSwap,
    IssueCard,
    QuarantineBattery,
    RecordHealthReading,
    RecordPayment,
    RecordStationStatus,
    RegisterBattery,
    RegisterRider,
    RegisterStation,
    RemoveBattery,
    SlotReport,
    StationRefusedSwap,
    SuspendRider,
    TimeOutSessions,
    UpdateBattery,
    UpdatePlan,
    UpdateRider,
    UpdateStation,
)

pytestmark = pytest.mark.unit

STATION = {"station_id": "S9", "name": "New", "slot_count": 4}
BATTERY = {
    "battery_id": "B77",
    "battery_type": "48V",
    "capacity_ah": Decimal("30"),
    "manufactured_on": "2024-01-01",
}
RIDER = {"rider_id": "R9", "personal": {"name": "Ada"}}
PLAN = {
    "plan_id": "gold",
    "name": "Gold",
    "monthly_fee": Decimal("20"),
    "included_ah": Decimal("50"),
    "extra_ah_rate": Decimal("0.4"),
}
AUTH = {"station_id": "S1", "rfid_code": "C1", "session_id": "s1"}
INITIATE = {"station_id": "S1", "session_id": "s1", "battery_in_id": "B9", "soc": 40, "soh": 90}
COMPLETE = {"station_id": "S1", "session_id": "s1", "battery_in_id": "B9", "battery_out_id": "B1"}


def case(cls, base, field, error=InvalidCommand, **changes):
    return pytest.param(
        cls,
        {**base, **changes},
        field,
        error,
        id=f"{cls.__name__}-{field}-{'-'.join(map(str, changes.values()))}",
    )


CASES = [
    case(RegisterStation, STATION, "station_id", station_id=" "),
    case(RegisterStation, STATION, "name", name=""),
    case(RegisterStation, STATION, "slot_count", slot_count=0),
    case(RegisterStation, STATION, "slot_count", slot_count=True),
    case(RegisterStation, STATION, "lat", lat=91.0),
    case(RegisterStation, STATION, "lng", lng=-181.0),
    case(UpdateStation, {"station_id": "S1"}, "slot_count", slot_count=-1),
    case(UpdateStation, {"station_id": "S404"}, "station_id", NotFound),
    case(RecordStationStatus, {"station_id": "S1"}, "status", status="asleep"),
    case(RecordStationStatus, {"station_id": "S1", "status": "online"}, "source", source="x"),
    case(
        RecordStationStatus,
        {"station_id": "S1", "status": "online"},
        "slots.slot",
        slots=(SlotReport(slot=9),),
    ),
    case(RecordStationStatus, {"station_id": "S404", "status": "online"}, "station_id", NotFound),
    case(RegisterBattery, BATTERY, "battery_id", battery_id=""),
    case(RegisterBattery, BATTERY, "battery_type", battery_type=None),
    case(RegisterBattery, BATTERY, "capacity_ah", capacity_ah=Decimal("-1")),
    case(RegisterBattery, BATTERY, "capacity_ah", capacity_ah=0),
    case(RegisterBattery, BATTERY, "capacity_ah", capacity_ah="lots"),
    case(RegisterBattery, BATTERY, "manufactured_on", manufactured_on="2024-13-01"),
    case(RegisterBattery, BATTERY, "soc", soc=100.5),
    case(RegisterBattery, BATTERY, "soh", soh=-1),
    case(RegisterBattery, BATTERY, "soc", soc=float("nan")),
    case(RegisterBattery, BATTERY, "slot", station_id="S1", slot=5),
    case(RegisterBattery, BATTERY, "station_id", NotFound, station_id="S404", slot=1),
    case(UpdateBattery, {"battery_id": "B1"}, "capacity_ah", capacity_ah="-3"),
    case(UpdateBattery, {"battery_id": "B404"}, "battery_id", NotFound),
    case(QuarantineBattery, {"battery_id": "B1"}, "reason", reason=""),
    case(DockBattery, {"station_id": "S1", "battery_id": "B2"}, "slot", slot=0),
    case(DockBattery, {"station_id": "S1", "slot": 4}, "battery_id", NotFound, battery_id="B404"),
    case(
        DockBattery,
        {"station_id": "S1", "slot": 4, "battery_id": "B1"},
        "temperature",
        temperature=900,
    ),
    case(
        RemoveBattery,
        {"station_id": "S1", "slot": 1, "battery_id": "B1"},
        "reason",
        reason="stolen",
    ),
    case(RecordHealthReading, {"battery_id": "B1"}, "soc", soc=101),
    case(RecordHealthReading, {"battery_id": "B1"}, "cycle_count", cycle_count=-1),
    case(RecordHealthReading, {"battery_id": "B1"}, "cycle_count", cycle_count=1.5),
    case(RecordHealthReading, {"battery_id": "B1"}, "humidity", humidity=120),
    case(RecordHealthReading, {"battery_id": "B1"}, "pack_voltage", pack_voltage=-1),
    case(RecordHealthReading, {"battery_id": "B1", "station_id": "S1"}, "slot", slot=9),
    case(RecordHealthReading, {"battery_id": "B404"}, "battery_id", NotFound),
    case(RecordHealthReading, {"battery_id": "B1"}, "station_id", NotFound, station_id="S404"),
    case(RegisterRider, RIDER, "rider_id", rider_id=""),
    case(RegisterRider, RIDER, "personal.name", personal={"email": "a@b.c"}),
    case(RegisterRider, RIDER, "personal", personal={"shoe_size": "44"}),
    case(RegisterRider, RIDER, "personal", personal="Ada"),
    case(RegisterRider, RIDER, "personal.phone", personal={"name": "Ada", "phone": 123}),
    case(RegisterRider, RIDER, "rfid_code", rfid_code=" "),
    case(RegisterRider, RIDER, "role", role=""),
    case(RegisterRider, RIDER, "plan_id", NotFound, plan_id="platinum"),
    case(RegisterRider, RIDER, "battery_id", NotFound, battery_id="B404"),
    case(UpdateRider, {"rider_id": "R1"}, "plan_id", NotFound, plan_id="platinum"),
    case(UpdateRider, {"rider_id": "R404"}, "rider_id", NotFound),
    case(SuspendRider, {"rider_id": "R404"}, "rider_id", NotFound),
    case(IssueCard, {"rider_id": "R1"}, "rfid_code", rfid_code=""),
    case(BlockCard, {"rfid_code": "C1"}, "status", status="melted"),
    case(BlockCard, {"rfid_code": "C404"}, "rfid_code", NotFound),
    case(DefinePlan, PLAN, "monthly_fee", monthly_fee=Decimal("-0.01")),
    case(DefinePlan, PLAN, "included_ah", included_ah="some"),
    case(DefinePlan, PLAN, "extra_ah_rate", extra_ah_rate=None),
    case(DefinePlan, PLAN, "name", name=""),
    case(UpdatePlan, {"plan_id": "basic"}, "monthly_fee", monthly_fee=Decimal("-5")),
    case(UpdatePlan, {"plan_id": "gold"}, "plan_id", NotFound),
    case(ChangePolicy, {}, "min_issue_soc", min_issue_soc=101),
    case(ChangePolicy, {}, "session_timeout_s", session_timeout_s=0),
    case(ChangePolicy, {}, "payment_grace_days", payment_grace_days=-1),
    case(ChangePolicy, {}, "max_return_temp_c", max_return_temp_c="hot"),
    case(AuthorizeCard, AUTH, "rfid_code", rfid_code=""),
    case(AuthorizeCard, AUTH, "session_id", session_id=""),
    case(AuthorizeCard, AUTH, "station_id", NotFound, station_id="S404"),
    case(InitiateSwap, INITIATE, "soc", soc=120),
    case(InitiateSwap, INITIATE, "soh", soh=None),
    case(InitiateSwap, INITIATE, "temperature", temperature=500),
    case(InitiateSwap, INITIATE, "battery_in_id", battery_in_id=""),
    case(InitiateSwap, INITIATE, "slot_in", slot_in=9),
    case(InitiateSwap, INITIATE, "station_id", NotFound, station_id="S404"),
    case(CompleteSwap, COMPLETE, "in_soc", in_soc=-1),
    case(CompleteSwap, COMPLETE, "out_soh", out_soh=101),
    case(CompleteSwap, COMPLETE, "battery_in_id", battery_in_id=""),
    case(StationRefusedSwap, {"station_id": "S1", "session_id": "s1"}, "soc", soc=200),
    case(TimeOutSessions, {}, "station_id", station_id=""),
    case(CloseBillingPeriod, {"rider_id": "R1"}, "month", month="July"),
    case(CloseBillingPeriod, {"rider_id": "R404"}, "rider_id", NotFound, month="2025-07"),
    case(RecordPayment, {"rider_id": "R1", "month": "2025-07"}, "amount", amount=Decimal(0)),
    case(RecordPayment, {"rider_id": "R1", "month": "2025-07"}, "amount", amount=-5),
    case(RecordPayment, {"rider_id": "R1", "amount": 5}, "month", month="2025-13"),
    case(RegisterStation, STATION, "occurred_at", occurred_at=datetime(2025, 7, 14, 10)),
]


@pytest.mark.parametrize(("cls", "fields", "field", "error"), CASES)
def test_bad_input_names_the_field_and_appends_nothing(world, cls, fields, field, error) -> None:
    world.ready()
    world.authorized("s1")
    with world.raises(error, field):
        world.when(cls, **fields)


def test_every_error_says_raised_when() -> None:
    import domain.base as base

    errors = [v for v in vars(base).values() if isinstance(v, type) and issubclass(v, DomainError)]
    assert len(errors) >= 6
    for error in errors:
        assert (error.__doc__ or "").startswith("Raised when"), error

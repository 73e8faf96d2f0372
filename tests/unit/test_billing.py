"""Rules 16-17: energy used per swap, monthly bills, late usage, payments, corrections."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.base import InvalidCommand, InvalidTransition, NotFound
from domain.billing import BillingPeriod
from domain.commands import (
    AuthorizeCard,
    CloseBillingPeriod,
    CompleteSwap,
    CorrectSwap,
    RecordPayment,
    UpdatePlan,
)
from domain.rider import Rider
from domain.session import SwapSession

pytestmark = pytest.mark.unit

AUG = datetime(2025, 8, 1, tzinfo=UTC)


def swap(world, session_id="s1", battery_in="B9", battery_out="B1", in_soc=40, at=None):
    at = at or world.tick()
    world.given(
        AuthorizeCard, station_id="S1", rfid_code="C1", session_id=session_id, occurred_at=at
    )
    return world.given(
        CompleteSwap,
        station_id="S1",
        session_id=session_id,
        battery_in_id=battery_in,
        battery_out_id=battery_out,
        in_soc=in_soc,
        in_soh=90,
        occurred_at=at,
    )


def close(world, month="2025-07", at=AUG, **kw):
    return world.when(CloseBillingPeriod, rider_id="R1", month=month, occurred_at=at, **kw)


# --- rule 16 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued", "returned", "capacity", "energy"),
    [
        (100, 40, "30", "18.000"),
        (95.5, 12.25, "20.5", "17.066"),  # 83.25% of 20.5 = 17.06625, half up
        (80, 80, "30", "0.000"),
        (60, 75, "30", "0.000"),  # charged at the rider's home: never negative
    ],
)
def test_rule16_energy_is_exact_and_never_negative(
    world, issued, returned, capacity, energy
) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.battery("B9", soc=issued, capacity=capacity)
    world.plan()
    world.rider(battery_id="B9")
    outcome = swap(world, in_soc=returned)
    assert outcome.data["energy_used_ah"] == energy
    assert world.get(SwapSession, "s1").energy_used_ah == Decimal(energy)
    assert world.get(BillingPeriod, "R1:2025-07").used_ah == Decimal(energy)


def test_rule16_energy_uses_the_soc_at_issue_to_this_rider(world) -> None:
    world.ready()
    swap(world, "s1", "B9", "B1", in_soc=40)  # R1 now holds B1, issued at 95 %
    outcome = swap(world, "s2", "B1", "B2", in_soc=45)
    assert outcome.data["energy_used_ah"] == "15.000"  # (95-45)% of 30
    assert world.get(BillingPeriod, "R1:2025-07").used_ah == Decimal("33.000")


def test_rule16_unknown_soc_at_hand_over_counts_nothing(world) -> None:
    world.station()
    world.battery("B1", "S1", 1)
    world.battery("B9", soc=None)
    world.plan()
    world.rider(battery_id="B9")
    assert swap(world).data["energy_used_ah"] == "0.000"


# --- rule 17 -------------------------------------------------------------------------------


def test_rule17_bill_is_fee_plus_extra_ah_at_the_rate(world) -> None:
    world.ready()  # plan: 10.00 a month, 20 Ah included, 0.50 per extra Ah
    swap(world, "s1", "B9", "B1", in_soc=40)  # 18 Ah
    swap(world, "s2", "B1", "B2", in_soc=45)  # 15 Ah -> 33 Ah, 13 extra
    outcome = close(world)
    assert outcome.data == {
        "rider_id": "R1",
        "month": "2025-07",
        "amount_due": "16.50",
        "due_at": AUG.isoformat(),
    }
    closed = world.event("BillingPeriod.Closed")
    assert (closed.used_ah, closed.billable_ah, closed.amount_due) == (
        Decimal("33.000"),
        Decimal("33.000"),
        Decimal("16.50"),
    )
    assert (closed.monthly_fee, closed.included_ah, closed.extra_ah_rate, closed.plan_id) == (
        Decimal("10.00"),
        Decimal("20"),
        Decimal("0.50"),
        "basic",
    )
    assert world.event("Rider.BillIssued").amount_due == Decimal("16.50")
    assert world.get(Rider, "R1").bills == {"2025-07": AUG}


def test_rule17_usage_within_the_allowance_costs_the_fee(world) -> None:
    world.ready()
    swap(world)
    assert close(world).data["amount_due"] == "10.00"


def test_rule17_amount_is_rounded_to_cents_half_up(world) -> None:
    world.ready()
    world.given(
        UpdatePlan, plan_id="basic", included_ah=Decimal("0"), extra_ah_rate=Decimal("0.125")
    )
    swap(world, in_soc=99.9)  # 0.1 % of 30 Ah = 0.030 Ah * 0.125 = 0.00375
    assert close(world).data["amount_due"] == "10.00"
    assert world.get(BillingPeriod, "R1:2025-07").amount_due == Decimal("10.00")


def test_rule17_a_month_without_swaps_is_billed_the_fee(world) -> None:
    world.ready()
    close(world)
    assert sorted(world.then()) == [
        "BillingPeriod.Closed",
        "BillingPeriod.Opened",
        "Rider.BillIssued",
    ]


def test_rule17_free_plan_issues_no_bill(world) -> None:
    world.station()
    world.plan("free", fee="0", included="1000", rate="0")
    world.rider(plan_id="free")
    assert close(world).data["amount_due"] == "0.00"
    assert world.get(Rider, "R1").bills == {}


def test_rule17_late_usage_goes_to_the_next_open_period_as_an_adjustment(world) -> None:
    world.ready()
    swap(world, "s1", in_soc=40, at=datetime(2025, 7, 20, tzinfo=UTC))
    close(world)
    july = world.get(BillingPeriod, "R1:2025-07")
    late = swap(world, "s2", "B1", "B2", in_soc=45, at=datetime(2025, 7, 31, 23, tzinfo=UTC))
    assert late.data["energy_used_ah"] == "15.000"
    assert world.get(BillingPeriod, "R1:2025-07").state() == july.state()  # untouched
    august = world.get(BillingPeriod, "R1:2025-08")
    assert (august.used_ah, august.adjustment_ah) == (Decimal("0"), Decimal("15.000"))
    assert august.lines == [
        {"session_id": "s2", "energy_ah": Decimal("15.000"), "kind": "swap", "for_month": "2025-07"}
    ]
    adjustment = world.stream("billing:R1:2025-08")[-1]
    assert (type(adjustment).__name__, adjustment.for_month) == ("AdjustmentRecorded", "2025-07")
    closed = close(world, "2025-08", datetime(2025, 9, 1, tzinfo=UTC))
    assert closed.data["amount_due"] == "10.00"  # 15 Ah within August's 20 Ah


def test_rule17_adjustment_skips_every_closed_month(world) -> None:
    world.ready()
    close(world, "2025-07", AUG)
    close(world, "2025-08", datetime(2025, 9, 1, tzinfo=UTC))
    swap(world, at=datetime(2025, 7, 30, tzinfo=UTC))
    assert world.get(BillingPeriod, "R1:2025-09").adjustment_ah == Decimal("18.000")


def test_closing_a_month_that_is_not_over(world) -> None:
    world.ready()
    with world.raises(InvalidTransition):
        close(world, "2025-07", datetime(2025, 7, 31, 23, 59, tzinfo=UTC))


def test_closing_twice(world) -> None:
    world.ready()
    close(world)
    with world.raises(InvalidTransition):
        close(world)


def test_closing_for_a_rider_without_a_plan(world) -> None:
    world.station()
    world.rider(plan_id=None)
    with world.raises(InvalidTransition):
        close(world)


# --- payments ------------------------------------------------------------------------------


def test_partial_then_full_payment_settles_the_bill(world) -> None:
    world.ready()
    close(world)
    part = world.when(
        RecordPayment, rider_id="R1", month="2025-07", amount=Decimal("4"), reference="mpesa-1"
    )
    assert part.data == {
        "rider_id": "R1",
        "month": "2025-07",
        "outstanding": "6.00",
        "settled": False,
    }
    rest = world.when(RecordPayment, rider_id="R1", month="2025-07", amount=Decimal("6.00"))
    assert rest.data["settled"] is True
    assert sorted(world.then()) == ["BillingPeriod.PaymentRecorded", "Rider.BillSettled"]
    assert world.get(Rider, "R1").bills == {}


def test_overpaying_is_invalid(world) -> None:
    world.ready()
    close(world)
    with world.raises(InvalidCommand, "amount"):
        world.when(RecordPayment, rider_id="R1", month="2025-07", amount=Decimal("10.01"))


def test_paying_an_open_or_missing_month(world) -> None:
    world.ready()
    swap(world)
    with world.raises(InvalidTransition):
        world.when(RecordPayment, rider_id="R1", month="2025-07", amount=Decimal("1"))
    with world.raises(NotFound, "month"):
        world.when(RecordPayment, rider_id="R1", month="2025-01", amount=Decimal("1"))


# --- corrections ---------------------------------------------------------------------------


def test_correction_appends_and_the_original_stays(world) -> None:
    world.ready()
    swap(world, in_soc=40)  # 18 Ah
    completed = world.stream("session:s1")[-1]
    assert isinstance(completed, SwapSession.Completed)
    outcome = world.when(CorrectSwap, session_id="s1", returned_soc=50, note="sensor glitch")
    assert outcome.data == {"swap_id": "s1", "energy_used_ah": "15.000", "delta_ah": "-3.000"}
    corrected = world.event("SwapSession.Corrected")
    assert corrected.original_version == completed.originator_version
    assert corrected.policy_version == 0
    assert completed in world.stream("session:s1")
    assert world.get(SwapSession, "s1").energy_used_ah == Decimal("15.000")
    assert world.get(BillingPeriod, "R1:2025-07").used_ah == Decimal("15.000")


def test_correction_of_a_closed_month_is_an_adjustment(world) -> None:
    world.ready()
    swap(world, in_soc=40)
    close(world)
    world.when(CorrectSwap, session_id="s1", returned_issue_soc=90, note="issue SOC misread")
    august = world.get(BillingPeriod, "R1:2025-08")
    assert august.adjustment_ah == Decimal("-3.000")
    assert august.lines[0]["kind"] == "correction"


def test_only_completed_swaps_are_corrected(world) -> None:
    world.ready()
    world.authorized("s1")
    with world.raises(InvalidTransition):
        world.when(CorrectSwap, session_id="s1", returned_soc=50, note="x")
    with world.raises(NotFound, "session_id"):
        world.when(CorrectSwap, session_id="nope", returned_soc=50, note="x")


def test_correction_needs_a_value_and_a_note(world) -> None:
    world.ready()
    swap(world)
    with world.raises(InvalidCommand, "returned_soc"):
        world.when(CorrectSwap, session_id="s1", note="nothing to correct")
    with world.raises(InvalidCommand, "note"):
        world.when(CorrectSwap, session_id="s1", returned_soc=50, note=" ")

"""Usage, bills, payments and swap corrections (rules 16-17)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain import rules
from domain import validation as v
from domain.base import InvalidCommand, InvalidTransition, NotFound, Outcome, Repository, Stamp
from domain.billing import BillingPeriod
from domain.commands import CloseBillingPeriod, CorrectSwap, RecordPayment
from domain.handlers.registry import existing, handles, stamp
from domain.plan import Plan
from domain.policy import current_policy
from domain.rider import Rider
from domain.session import SwapSession


def period(repo: Repository, rider_id: str, month: str, at: Stamp) -> BillingPeriod:
    """The rider's period for the month, opened (created) on first use."""
    key = BillingPeriod.key_of(rider_id, month)
    found = repo.get(BillingPeriod, key)
    if found is None:
        found = BillingPeriod.create(key, BillingPeriod.Opened, at, rider_id=rider_id, month=month)
        repo.add(found)
    return found


def post_usage(
    repo: Repository,
    rider_id: str,
    session_id: str,
    energy_ah: Decimal,
    kind: str,
    swap_at: datetime,
    at: Stamp,
) -> BillingPeriod:
    """Put a swap's energy on the bill of its month (UTC month of ``swap_at``). A closed month
    is never changed: the usage becomes an adjustment on the next month still open."""
    swap_month = month = v.month_of(swap_at)
    target = period(repo, rider_id, month, at)
    while target.closed:
        month = v.next_month(month)
        target = period(repo, rider_id, month, at)
    fields = {"session_id": session_id, "energy_ah": energy_ah, "kind": kind, "swap_at": swap_at}
    if month == swap_month:
        target.trigger(BillingPeriod.UsageRecorded, at, **fields)
    else:
        target.trigger(BillingPeriod.AdjustmentRecorded, at, for_month=swap_month, **fields)
    return target


@handles(CloseBillingPeriod)
def close_billing_period(
    cmd: CloseBillingPeriod, repo: Repository, recorded_at: datetime
) -> Outcome:
    """Bill a month once it is over (at occurred_at), with the rider's plan in force then."""
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    month = v.month("month", cmd.month)
    due_at = cmd.occurred_at if cmd.due_at is None else v.aware("due_at", cmd.due_at)
    if cmd.occurred_at < v.month_start(v.next_month(month)):
        raise InvalidTransition(f"month {month} is not over yet", month=month)
    found = repo.get(BillingPeriod, BillingPeriod.key_of(rider.key, month))
    if found is not None and found.closed:
        raise InvalidTransition(f"month {month} is already closed", month=month)
    if rider.plan_id is None:
        raise InvalidTransition(f"rider {rider.key} has no plan", rider_id=rider.key)
    plan = existing(repo, Plan, rider.plan_id, "plan_id")
    _, version = current_policy(repo)
    at = stamp(cmd, recorded_at)
    bill = period(repo, rider.key, month, at)
    billable = bill.total_ah
    amount = rules.bill_amount(plan.monthly_fee, billable, plan.included_ah, plan.extra_ah_rate)
    bill.trigger(
        BillingPeriod.Closed,
        at,
        plan_id=plan.key,
        monthly_fee=plan.monthly_fee,
        included_ah=plan.included_ah,
        extra_ah_rate=plan.extra_ah_rate,
        used_ah=bill.used_ah,
        adjustment_ah=bill.adjustment_ah,
        billable_ah=billable,
        amount_due=amount,
        due_at=due_at,
        policy_version=version,
    )
    if amount > 0:
        rider.trigger(Rider.BillIssued, at, month=month, amount_due=amount, due_at=due_at)
    return Outcome.accepted(
        rider_id=rider.key, month=month, amount_due=str(amount), due_at=due_at.isoformat()
    )


@handles(RecordPayment)
def record_payment(cmd: RecordPayment, repo: Repository, recorded_at: datetime) -> Outcome:
    """A payment towards a closed bill; the bill is settled once paid in full."""
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    month = v.month("month", cmd.month)
    amount = v.decimal("amount", cmd.amount, positive=True)
    reference = v.optional_text("reference", cmd.reference)
    bill = repo.get(BillingPeriod, BillingPeriod.key_of(rider.key, month))
    if bill is None:
        raise NotFound(
            f"month: rider {rider.key} has no bill for {month}", field="month", month=month
        )
    if not bill.closed:
        raise InvalidTransition(f"month {month} is not closed yet", month=month)
    if amount > bill.outstanding:
        raise InvalidCommand("amount", f"exceeds the {bill.outstanding} outstanding")
    at = stamp(cmd, recorded_at)
    bill.trigger(BillingPeriod.PaymentRecorded, at, amount=amount, reference=reference)
    settled = bill.outstanding == 0
    if settled and month in rider.bills:
        rider.trigger(Rider.BillSettled, at, month=month)
    return Outcome.accepted(
        rider_id=rider.key, month=month, outstanding=str(bill.outstanding), settled=settled
    )


@handles(CorrectSwap)
def correct_swap(cmd: CorrectSwap, repo: Repository, recorded_at: datetime) -> Outcome:
    """Re-compute a completed swap's energy from corrected SOC values; the difference goes
    on the bill like any usage of the swap's month (or its adjustment if that month closed)."""
    session = existing(repo, SwapSession, v.text("session_id", cmd.session_id), "session_id")
    note = v.text("note", cmd.note)
    returned_soc = v.percent("returned_soc", cmd.returned_soc)
    issue_soc = v.percent("returned_issue_soc", cmd.returned_issue_soc)
    if returned_soc is None and issue_soc is None:
        raise InvalidCommand("returned_soc", "a corrected SOC is required")
    if session.status != "complete" or session.capacity_ah is None:
        raise InvalidTransition(
            f"session {session.key} is not a completed swap", session_id=session.key
        )
    assert session.rider_id is not None
    assert session.closed_at is not None
    issue_soc = session.returned_issue_soc if issue_soc is None else issue_soc
    if returned_soc is None:
        returned_soc = (session.returned_reading or {}).get("soc")
    energy = rules.energy_used(issue_soc, returned_soc, session.capacity_ah)
    delta = energy - (session.energy_used_ah or Decimal("0"))
    _, version = current_policy(repo)
    at = stamp(cmd, recorded_at)
    session.trigger(
        SwapSession.Corrected,
        at,
        original_version=session.completed_version,
        returned_issue_soc=issue_soc,
        returned_soc=returned_soc,
        energy_used_ah=energy,
        delta_ah=delta,
        note=note,
        policy_version=version,
    )
    post_usage(repo, session.rider_id, session.key, delta, "correction", session.closed_at, at)
    return Outcome.accepted(swap_id=session.key, energy_used_ah=str(energy), delta_ah=str(delta))

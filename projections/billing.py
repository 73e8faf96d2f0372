"""Bills, bill lines and plans (readmodels/billing.py) from BillingPeriod, Plan and Rider
events. An open bill's preview (included, excess, estimated due) uses the rider's plan as
of the bill's latest change; a closed bill carries the terms it was closed with."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from domain.billing import BillingPeriod
from domain.plan import Plan
from domain.rider import Rider
from domain.rules import bill_amount
from projections.base import Projection, key_of
from projections.decode import Delivered
from projections.unitofwork import Row, UnitOfWork

B = BillingPeriod
ZERO = Decimal("0")


def bill_key(originator_id: str) -> tuple[str, str]:
    rider_id, month = key_of(originator_id).rsplit(":", 1)
    return rider_id, month


class BillingProjection(Projection):
    model = "billing"
    handles = (
        Plan.Defined,
        Plan.Updated,
        Rider.Registered,
        Rider.Updated,
        B.Opened,
        B.UsageRecorded,
        B.AdjustmentRecorded,
        B.Closed,
        B.PaymentRecorded,
    )
    preload = ("plans",)

    def prefetch(self, batch: list[Delivered]) -> dict[str, Iterable[Any]]:
        bills = [
            bill_key(d.event.originator_id)
            for d in batch
            if d.event.originator_id.startswith("billing:")
        ]
        riders = [
            key_of(d.event.originator_id)
            for d in batch
            if d.event.originator_id.startswith("rider:")
        ]
        riders += [key[0] for key in bills]
        return {"bills": bills, "rider_plans": riders}

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        bill: Row | None
        match event:
            case Plan.Defined() | Plan.Updated():
                plan_id = key_of(event.originator_id)
                plan = uow.get("plans", plan_id) or uow.new(
                    "plans", plan_id=plan_id, defined_at=event.occurred_at
                )
                plan.update(
                    name=event.name,
                    monthly_fee=event.monthly_fee,
                    included_ah=event.included_ah,
                    extra_ah_rate=event.extra_ah_rate,
                    updated_at=event.occurred_at,
                )
                uow.put("plans", plan)
            case Rider.Registered() | Rider.Updated():
                uow.put(
                    "rider_plans",
                    {"rider_id": key_of(event.originator_id), "plan_id": event.plan_id},
                )
            case B.Opened():
                bill = uow.new(
                    "bills",
                    rider_id=event.rider_id,
                    month=event.month,
                    status="open",
                    used_ah=ZERO,
                    adjustment_ah=ZERO,
                    total_ah=ZERO,
                    paid=ZERO,
                    payments=[],
                    usage_lines=0,
                    adjustment_lines=0,
                    opened_at=event.occurred_at,
                )
                self._save(uow, bill, event, position)
            case B.UsageRecorded() | B.AdjustmentRecorded():
                if (bill := uow.get("bills", bill_key(event.originator_id))) is None:
                    return
                late = isinstance(event, B.AdjustmentRecorded)
                if late:
                    bill["adjustment_ah"] += event.energy_ah
                    bill["adjustment_lines"] += 1
                else:
                    bill["used_ah"] += event.energy_ah
                    bill["usage_lines"] += 1
                uow.insert(
                    "lines",
                    {
                        "event_id": position,
                        "rider_id": bill["rider_id"],
                        "month": bill["month"],
                        "for_month": getattr(event, "for_month", bill["month"]),
                        "adjustment": late,
                        "session_id": event.session_id,
                        "kind": event.kind,
                        "energy_ah": event.energy_ah,
                        "swap_at": event.swap_at,
                        "recorded_at": event.recorded_at,
                    },
                )
                self._save(uow, bill, event, position)
            case B.Closed():
                if (bill := uow.get("bills", bill_key(event.originator_id))) is None:
                    return
                bill.update(
                    status="closed",
                    plan_id=event.plan_id,
                    monthly_fee=event.monthly_fee,
                    included_ah=event.included_ah,
                    extra_ah_rate=event.extra_ah_rate,
                    excess_ah=max(event.billable_ah - event.included_ah, ZERO),
                    amount_due=event.amount_due,
                    estimated_due=event.amount_due,
                    due_at=event.due_at,
                    closed_at=event.occurred_at,
                )
                self._save(uow, bill, event, position)
            case B.PaymentRecorded():
                if (bill := uow.get("bills", bill_key(event.originator_id))) is None:
                    return
                bill["paid"] += event.amount
                bill["payments"] = [
                    *bill["payments"],
                    {
                        "amount": str(event.amount),
                        "reference": event.reference,
                        "paid_at": event.occurred_at.isoformat(),
                    },
                ]
                self._save(uow, bill, event, position)
            case _:
                pass

    def _save(self, uow: UnitOfWork, bill: Row, event: Any, position: int) -> None:
        bill["total_ah"] = bill["used_ah"] + bill["adjustment_ah"]
        if bill["amount_due"] is None:
            self._preview(uow, bill)
            bill["outstanding"] = None
        else:
            bill["outstanding"] = bill["amount_due"] - bill["paid"]
            bill["status"] = "paid" if bill["outstanding"] <= 0 else "closed"
        bill["updated_at"] = event.occurred_at
        bill["position"] = position
        uow.put("bills", bill)

    def _preview(self, uow: UnitOfWork, bill: Row) -> None:
        rider = uow.get("rider_plans", bill["rider_id"])
        plan_id = rider["plan_id"] if rider else None
        plan = uow.get("plans", plan_id) if plan_id else None
        bill["plan_id"] = plan_id
        if plan is None:
            bill.update(
                included_ah=None,
                excess_ah=None,
                monthly_fee=None,
                extra_ah_rate=None,
                estimated_due=None,
            )
            return
        included = plan["included_ah"]
        bill.update(
            included_ah=included,
            excess_ah=max(bill["total_ah"] - included, ZERO),
            monthly_fee=plan["monthly_fee"],
            extra_ah_rate=plan["extra_ah_rate"],
            estimated_due=bill_amount(
                plan["monthly_fee"], bill["total_ah"], included, plan["extra_ah_rate"]
            ),
        )

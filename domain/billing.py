"""A rider's billing month, keyed ``<rider_id>:<YYYY-MM>``.

Usage lines come from swaps (and rule-10 take-backs and corrections). Once a period is
closed nothing is added to it: usage of a closed month arrives as an explicit adjustment line
on the rider's next open period, and counts in that period's used Ah (rule 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.base import Aggregate, DomainEvent

ZERO = Decimal("0")


class BillingPeriod(Aggregate):
    prefix = "billing"

    @staticmethod
    def key_of(rider_id: str, month: str) -> str:
        return f"{rider_id}:{month}"

    @dataclass(frozen=True, kw_only=True)
    class Opened(DomainEvent):
        rider_id: str
        month: str

        def apply(self, aggregate: BillingPeriod) -> None:
            aggregate.rider_id, aggregate.month = self.rider_id, self.month
            aggregate.lines = []
            aggregate.used_ah = aggregate.adjustment_ah = ZERO
            aggregate.closed = False
            aggregate.terms = None
            aggregate.amount_due = None
            aggregate.due_at = None
            aggregate.paid = ZERO
            aggregate.payments = []

    @dataclass(frozen=True, kw_only=True)
    class UsageRecorded(DomainEvent):
        """Energy of one swap (``kind`` swap, take_back or correction) in this month."""

        session_id: str
        energy_ah: Decimal
        kind: str
        swap_at: datetime

        def apply(self, aggregate: BillingPeriod) -> None:
            aggregate.used_ah += self.energy_ah
            aggregate.lines.append(
                {
                    "session_id": self.session_id,
                    "energy_ah": self.energy_ah,
                    "kind": self.kind,
                    "for_month": aggregate.month,
                }
            )

    @dataclass(frozen=True, kw_only=True)
    class AdjustmentRecorded(DomainEvent):
        """Usage of ``for_month``, which was already closed when it arrived."""

        session_id: str
        energy_ah: Decimal
        kind: str
        swap_at: datetime
        for_month: str

        def apply(self, aggregate: BillingPeriod) -> None:
            aggregate.adjustment_ah += self.energy_ah
            aggregate.lines.append(
                {
                    "session_id": self.session_id,
                    "energy_ah": self.energy_ah,
                    "kind": self.kind,
                    "for_month": self.for_month,
                }
            )

    @dataclass(frozen=True, kw_only=True)
    class Closed(DomainEvent):
        """The bill (rule 17): fee + max(0, used + adjustments - included) * rate, to 0.01."""

        plan_id: str
        monthly_fee: Decimal
        included_ah: Decimal
        extra_ah_rate: Decimal
        used_ah: Decimal
        adjustment_ah: Decimal
        billable_ah: Decimal
        amount_due: Decimal
        due_at: datetime
        policy_version: int

        def apply(self, aggregate: BillingPeriod) -> None:
            aggregate.closed = True
            aggregate.terms = {
                "plan_id": self.plan_id,
                "monthly_fee": self.monthly_fee,
                "included_ah": self.included_ah,
                "extra_ah_rate": self.extra_ah_rate,
                "billable_ah": self.billable_ah,
            }
            aggregate.amount_due = self.amount_due
            aggregate.due_at = self.due_at

    @dataclass(frozen=True, kw_only=True)
    class PaymentRecorded(DomainEvent):
        amount: Decimal
        reference: str | None

        def apply(self, aggregate: BillingPeriod) -> None:
            aggregate.paid += self.amount
            aggregate.payments.append(
                {"amount": self.amount, "reference": self.reference, "paid_at": self.occurred_at}
            )

    rider_id: str
    month: str
    lines: list[dict[str, Any]]
    used_ah: Decimal
    adjustment_ah: Decimal
    closed: bool
    terms: dict[str, Any] | None
    amount_due: Decimal | None
    due_at: datetime | None
    paid: Decimal
    payments: list[dict[str, Any]]

    @property
    def outstanding(self) -> Decimal:
        return ZERO if self.amount_due is None else self.amount_due - self.paid

    @property
    def total_ah(self) -> Decimal:
        return self.used_ah + self.adjustment_ah

"""A tariff plan: monthly fee, Ah included, price of each extra Ah (exact decimals)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.base import Aggregate, DomainEvent


class Plan(Aggregate):
    prefix = "plan"

    @dataclass(frozen=True, kw_only=True)
    class Defined(DomainEvent):
        name: str
        monthly_fee: Decimal
        included_ah: Decimal
        extra_ah_rate: Decimal

        def apply(self, aggregate: Plan) -> None:
            aggregate.set_terms(self.name, self.monthly_fee, self.included_ah, self.extra_ah_rate)

    @dataclass(frozen=True, kw_only=True)
    class Updated(DomainEvent):
        """Carries the full terms after the change; bills closed afterwards use them."""

        name: str
        monthly_fee: Decimal
        included_ah: Decimal
        extra_ah_rate: Decimal

        def apply(self, aggregate: Plan) -> None:
            aggregate.set_terms(self.name, self.monthly_fee, self.included_ah, self.extra_ah_rate)

    name: str
    monthly_fee: Decimal
    included_ah: Decimal
    extra_ah_rate: Decimal

    def set_terms(self, name: str, fee: Decimal, included: Decimal, rate: Decimal) -> None:
        self.name, self.monthly_fee = name, fee
        self.included_ah, self.extra_ah_rate = included, rate

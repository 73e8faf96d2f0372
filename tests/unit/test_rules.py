"""The pure rule functions, with properties over many values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import rules, validation

pytestmark = pytest.mark.unit

soc = st.floats(min_value=0, max_value=100, allow_nan=False) | st.integers(0, 100)
capacity = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("500"), places=2)
money = st.decimals(min_value=Decimal(0), max_value=Decimal("1000"), places=3)


@given(issued=soc, returned=soc, capacity=capacity)
def test_energy_is_never_negative_and_to_the_milliamp_hour(issued, returned, capacity) -> None:
    energy = rules.energy_used(issued, returned, capacity)
    assert energy >= 0
    assert energy.as_tuple().exponent == -3
    assert energy <= capacity


@given(issued=st.integers(0, 100), returned=st.integers(0, 100), capacity=capacity)
def test_energy_is_the_exact_formula(issued, returned, capacity) -> None:
    exact = Decimal(max(issued - returned, 0)) / 100 * capacity
    assert abs(rules.energy_used(issued, returned, capacity) - exact) <= Decimal("0.0005")


def test_energy_with_an_unknown_soc_is_zero() -> None:
    assert rules.energy_used(None, 40, Decimal("30")) == Decimal("0.000")
    assert rules.energy_used(90, None, Decimal("30")) == Decimal("0.000")


@given(fee=money, used=money, included=money, rate=money)
def test_bill_is_at_least_the_fee_and_in_cents(fee, used, included, rate) -> None:
    amount = rules.bill_amount(fee, used, included, rate)
    assert amount.as_tuple().exponent == -2
    assert amount >= fee.quantize(Decimal("0.01")) - Decimal("0.005")
    if used <= included:
        assert amount == fee.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def test_bill_examples() -> None:
    assert rules.bill_amount(Decimal("10"), Decimal("33"), Decimal("20"), Decimal("0.5")) == (
        Decimal("16.50")
    )
    assert rules.bill_amount(Decimal("0"), Decimal("1.005"), Decimal("0"), Decimal("1")) == (
        Decimal("1.01")  # half up, not banker's rounding
    )


@pytest.mark.parametrize(
    ("month", "following"), [("2025-07", "2025-08"), ("2025-12", "2026-01"), ("1999-01", "1999-02")]
)
def test_next_month(month, following) -> None:
    assert validation.next_month(month) == following
    assert validation.month_start(following) > validation.month_start(month)

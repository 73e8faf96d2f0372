"""Plans, bills, payments and the swap policy."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.models.common import StrictModel

Money = Field(ge=0, le=10**9, max_digits=14, decimal_places=4)
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
BillStatus = Literal["open", "closed", "paid"]


class PlanCreate(StrictModel):
    """A tariff plan (exact decimals)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["basic"])
    name: str = Field(min_length=1, max_length=200, examples=["Basic"])
    monthly_fee: Decimal = Field(ge=0, le=10**9, max_digits=14, decimal_places=2, examples=["20"])
    included_ah: Decimal = Field(ge=0, le=10**9, max_digits=14, decimal_places=3, examples=["100"])
    extra_ah_rate: Decimal = Field(
        ge=0, le=10**6, max_digits=14, decimal_places=4, examples=["0.25"]
    )


class PlanUpdate(StrictModel):
    """Terms given replace the current ones (bills closed afterwards use them)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    monthly_fee: Decimal | None = Field(
        default=None, ge=0, le=10**9, max_digits=14, decimal_places=2
    )
    included_ah: Decimal | None = Field(
        default=None, ge=0, le=10**9, max_digits=14, decimal_places=3
    )
    extra_ah_rate: Decimal | None = Field(
        default=None, ge=0, le=10**6, max_digits=14, decimal_places=4
    )


class PlanPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(validation_alias="plan_id")
    name: str
    monthly_fee: Decimal
    included_ah: Decimal
    extra_ah_rate: Decimal
    defined_at: datetime | None = None
    updated_at: datetime | None = None


class BillPublic(BaseModel):
    """A rider's billing month: usage, the bill once closed, payments."""

    model_config = ConfigDict(extra="ignore")

    user_id: str = Field(validation_alias="rider_id")
    month: str
    status: str
    plan_id: str | None = None
    used_ah: Decimal
    adjustment_ah: Decimal
    total_ah: Decimal
    included_ah: Decimal | None = None
    excess_ah: Decimal | None = None
    monthly_fee: Decimal | None = None
    extra_ah_rate: Decimal | None = None
    amount_due: Decimal | None = None
    estimated_due: Decimal | None = None
    paid: Decimal
    outstanding: Decimal | None = None
    payments: list[dict[str, Any]] = []
    usage_lines: int = 0
    adjustment_lines: int = 0
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    due_at: datetime | None = None
    position: int = 0


class BillDetail(BillPublic):
    """A bill with its usage lines (one per swap, take-back or correction)."""

    lines: list[dict[str, Any]] = []


class BillClose(StrictModel):
    """Bill a finished month for a rider."""

    user_id: str = Field(min_length=1, max_length=64)
    month: str = Field(pattern=MONTH, examples=["2025-07"])
    due_at: datetime | None = None


class PaymentCreate(StrictModel):
    """A payment towards a closed bill."""

    amount: Decimal = Field(gt=0, le=10**9, max_digits=14, decimal_places=2, examples=["20.00"])
    reference: str | None = Field(default=None, min_length=1, max_length=200)


class PolicyPublic(BaseModel):
    """The swap policy in force; ``version`` 0 means the defaults (never changed)."""

    version: int
    min_return_soh: float
    max_return_temp_c: float
    retire_soh: float
    min_issue_soc: float
    min_issue_soh: float
    session_timeout_s: int
    payment_grace_days: int
    note: str | None = None
    changed_at: datetime | None = None


class PolicyUpdate(StrictModel):
    """Values given replace those in force; the change is an event with a new version."""

    min_return_soh: float | None = Field(default=None, ge=0, le=100)
    max_return_temp_c: float | None = Field(default=None, ge=-40, le=150)
    retire_soh: float | None = Field(default=None, ge=0, le=100)
    min_issue_soc: float | None = Field(default=None, ge=0, le=100)
    min_issue_soh: float | None = Field(default=None, ge=0, le=100)
    session_timeout_s: int | None = Field(default=None, ge=1, le=86400)
    payment_grace_days: int | None = Field(default=None, ge=0, le=365)
    note: str | None = Field(default=None, min_length=1, max_length=200)

"""Bills and payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from adapters.http import reads, writes
from adapters.http.cache import cached
from adapters.http.deps import (
    AdminOnly,
    AnalyticsReaders,
    Cursor,
    EngineDep,
    IdempotencyKey,
    LedgerDep,
    Limit,
    fresh,
)
from adapters.http.models.billing import (
    MONTH,
    BillClose,
    BillDetail,
    BillPublic,
    BillStatus,
    PaymentCreate,
)
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.problems import ERROR_RESPONSES
from domain.commands import CloseBillingPeriod, RecordPayment
from readmodels import billing as model

router = APIRouter(prefix="/api/billing", tags=["billing"], responses=ERROR_RESPONSES)

UserId = Annotated[str, Path(min_length=1, max_length=64)]
Month = Annotated[str, Path(pattern=MONTH, examples=["2025-07"])]


@router.get("", response_model=Page[BillPublic], dependencies=[Depends(fresh("billing"))])
@cached("billing")
def list_bills(
    engine: EngineDep,
    who: AnalyticsReaders,
    user_id: str | None = None,
    month: Annotated[str | None, Query(pattern=MONTH)] = None,
    status: BillStatus | None = None,
    unpaid: bool = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BillPublic]:
    """List billing months, newest first; ``unpaid=true`` for closed bills still owed."""
    found = reads.call(
        model.list_bills,
        engine,
        rider_id=user_id,
        month=month,
        status=status,
        unpaid=unpaid,
        cursor=cursor,
        limit=limit,
    )
    return Page[BillPublic](
        items=[BillPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )


@router.post("/close", response_model=WriteReceipt)
def close_month(
    body: BillClose,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Close (bill) a rider's finished month with their plan in force."""
    command = CloseBillingPeriod(
        occurred_at=writes.now(ledger),
        rider_id=body.user_id,
        month=body.month,
        due_at=body.due_at,
    )
    return writes.receipt(writes.execute(ledger, command, key), response)


@router.get(
    "/{user_id}/{month}", response_model=BillDetail, dependencies=[Depends(fresh("billing"))]
)
@cached("billing")
def get_bill(user_id: UserId, month: Month, engine: EngineDep, who: AnalyticsReaders) -> BillDetail:
    """One rider's billing month with its usage lines."""
    row = reads.found(
        reads.call(model.get_bill, engine, user_id, month), "bill", f"{user_id}/{month}"
    )
    return BillDetail.model_validate(row)


@router.get(
    "/{user_id}/{month}/payments",
    response_model=list[dict[str, object]],
    dependencies=[Depends(fresh("billing"))],
)
@cached("billing")
def list_payments(
    user_id: UserId, month: Month, engine: EngineDep, who: AnalyticsReaders
) -> list[dict[str, object]]:
    """The payments made towards one bill."""
    row = reads.found(
        reads.call(model.get_bill, engine, user_id, month), "bill", f"{user_id}/{month}"
    )
    return list(row.get("payments") or [])


@router.post("/{user_id}/{month}/payments", status_code=201, response_model=WriteReceipt)
def record_payment(
    user_id: UserId,
    month: Month,
    body: PaymentCreate,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Record a payment towards a closed bill."""
    command = RecordPayment(
        occurred_at=writes.now(ledger),
        rider_id=user_id,
        month=month,
        amount=body.amount,
        reference=body.reference,
    )
    return writes.receipt(writes.execute(ledger, command, key), response)

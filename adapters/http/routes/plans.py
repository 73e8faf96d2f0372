"""Tariff plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from adapters.http import reads, writes
from adapters.http.cache import cached
from adapters.http.deps import AdminOnly, EngineDep, IdempotencyKey, LedgerDep, Readers, fresh
from adapters.http.models.billing import PlanCreate, PlanPublic, PlanUpdate
from adapters.http.models.common import WriteReceipt
from adapters.http.problems import ERROR_RESPONSES
from domain.commands import DefinePlan, UpdatePlan
from domain.plan import Plan
from readmodels import billing as model

router = APIRouter(prefix="/api/plans", tags=["plans"], responses=ERROR_RESPONSES)

PlanId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=list[PlanPublic], dependencies=[Depends(fresh("billing"))])
@cached("billing")
def list_plans(engine: EngineDep, who: Readers) -> list[PlanPublic]:
    """Every plan with its current terms."""
    return [PlanPublic.model_validate(r) for r in reads.call(model.list_plans, engine)]


@router.post("", status_code=201, response_model=WriteReceipt)
def create_plan(
    body: PlanCreate,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Define a tariff plan."""
    command = DefinePlan(
        occurred_at=writes.now(ledger),
        plan_id=body.id,
        name=body.name,
        monthly_fee=body.monthly_fee,
        included_ah=body.included_ah,
        extra_ah_rate=body.extra_ah_rate,
    )
    result = writes.execute(ledger, command, key)
    response.headers["Location"] = f"/api/plans/{body.id}"
    return writes.receipt(result, response, "plan_id")


@router.get("/{plan_id}", response_model=PlanPublic, dependencies=[Depends(fresh("billing"))])
@cached("billing")
def get_plan(plan_id: PlanId, engine: EngineDep, who: Readers) -> PlanPublic:
    """One plan."""
    rows = [r for r in reads.call(model.list_plans, engine) if r["plan_id"] == plan_id]
    return PlanPublic.model_validate(reads.found(rows[0] if rows else None, "plan", plan_id))


@router.put("/{plan_id}", response_model=WriteReceipt)
def update_plan(
    plan_id: PlanId,
    body: PlanUpdate,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Change a plan's terms; no change appends nothing."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response, "plan_id")
    current = ledger.get(Plan, plan_id)
    reads.found(current, "plan", plan_id)
    given = body.model_dump(exclude_none=True)
    changes = {k: v for k, v in given.items() if getattr(current, k) != v}
    if not changes:
        return writes.unchanged(ledger, response, plan_id)
    command = UpdatePlan(occurred_at=writes.now(ledger), plan_id=plan_id, **changes)
    return writes.receipt(writes.execute(ledger, command, key), response, "plan_id")

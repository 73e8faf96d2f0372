"""Riders (the original API's /api/users): register, change, suspend, deactivate, read."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response

from adapters.http import reads, writes
from adapters.http.cache import cached
from adapters.http.deps import (
    AdminOnly,
    Cursor,
    EngineDep,
    IdempotencyKey,
    LedgerDep,
    Limit,
    Operators,
    Readers,
    fresh,
)
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.models.users import (
    RiderStatus,
    UserCreate,
    UserDetail,
    UserExport,
    UserPublic,
    UserUpdate,
)
from adapters.http.problems import ERROR_RESPONSES
from adapters.http.security import mask_rfid
from domain.commands import (
    DeactivateRider,
    EraseRider,
    ReactivateRider,
    RegisterRider,
    SuspendRider,
    UpdateRider,
)
from domain.rider import PERSONAL_FIELDS, Rider
from readmodels import riders as model
from readmodels import swaps as swap_model

router = APIRouter(prefix="/api/users", tags=["users"], responses=ERROR_RESPONSES)

UserId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[UserPublic], dependencies=[Depends(fresh("riders"))])
@cached("riders")
def list_users(
    engine: EngineDep,
    who: Readers,
    status: RiderStatus | None = None,
    plan_id: str | None = None,
    holding: str | None = None,
    sort: Literal["registered_at", "rider_id", "swap_count", "last_swap_at"] = "registered_at",
    order: Literal["asc", "desc"] = "asc",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[UserPublic]:
    """List riders, filtered by status, plan or the battery they hold."""
    found = reads.call(
        model.list_riders,
        engine,
        status=status,
        plan_id=plan_id,
        holding=holding,
        sort=sort,
        descending=order == "desc",
        cursor=cursor,
        limit=limit,
    )
    return Page[UserPublic](
        items=[UserPublic.of(r, who) for r in found["items"]], next_cursor=found["next_cursor"]
    )


@router.post("", status_code=201, response_model=WriteReceipt)
def create_user(
    body: UserCreate,
    ledger: LedgerDep,
    who: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Register a rider with their first card and a battery handed over, in one command."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response, "rider_id")
    rider_id = body.id or str(ledger.next_id("rider"))
    command = RegisterRider(
        occurred_at=writes.now(ledger),
        rider_id=rider_id,
        personal={name: getattr(body, name) for name in PERSONAL_FIELDS},
        vehicle=body.vehicle,
        plan_id=body.plan_id,
        role=body.role,
        rfid_code=body.rfid_code,
        battery_id=body.battery_id,
    )
    result = writes.execute(ledger, command, key)
    response.headers["Location"] = f"/api/users/{rider_id}"
    receipt = writes.receipt(result, response, "rider_id")
    if isinstance(receipt.data.get("rfid_code"), str):
        receipt.data["rfid_code"] = mask_rfid(receipt.data["rfid_code"], who)
    return receipt


@router.get("/{user_id}", response_model=UserDetail, dependencies=[Depends(fresh("riders"))])
@cached("riders")
def get_user(user_id: UserId, engine: EngineDep, who: Readers) -> UserDetail:
    """One rider with their cards."""
    row = reads.found(reads.call(model.get_rider, engine, user_id), "user", user_id)
    return UserDetail.of(row, who)


@router.put("/{user_id}", response_model=WriteReceipt)
def update_user(
    user_id: UserId,
    body: UserUpdate,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Change a rider's details, plan or status; no change appends nothing."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response, "rider_id")
    current = ledger.get(Rider, user_id)
    reads.found(current, "user", user_id)
    assert current is not None
    given = body.model_dump(exclude_unset=True, exclude_none=True)
    personal = {
        k: given[k] for k in PERSONAL_FIELDS if k in given and current.personal.get(k) != given[k]
    }
    others = {
        k: given[k]
        for k in ("vehicle", "plan_id", "role")
        if k in given and getattr(current, k) != given[k]
    }
    at = writes.now(ledger)
    commands: list[object] = []
    if personal or others:
        commands.append(
            UpdateRider(occurred_at=at, rider_id=user_id, personal=personal or None, **others)
        )
    if body.status is not None and body.status != current.status:
        status_command = SuspendRider if body.status == "suspended" else ReactivateRider
        commands.append(status_command(occurred_at=at, rider_id=user_id, reason=body.reason))
    if not commands:
        return writes.unchanged(ledger, response, user_id)
    result = None
    for step, command in enumerate(commands):
        result = writes.execute(ledger, command, key, step=str(step) if step else None)
    assert result is not None
    return writes.receipt(result, response, "rider_id")


@router.delete("/{user_id}", response_model=WriteReceipt)
def deactivate_user(
    user_id: UserId,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    reason: str | None = None,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Deactivate a rider (final); their history stays in the ledger."""
    command = DeactivateRider(occurred_at=writes.now(ledger), rider_id=user_id, reason=reason)
    return writes.receipt(writes.execute(ledger, command, key), response, "rider_id")


@router.post("/{user_id}/erase", response_model=WriteReceipt)
def erase_user(
    user_id: UserId,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    reason: str | None = None,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Erase a rider's personal data for good (their data key is deleted); history stays."""
    command = EraseRider(occurred_at=writes.now(ledger), rider_id=user_id, reason=reason)
    return writes.receipt(writes.execute(ledger, command, key), response, "rider_id")


@router.get(
    "/{user_id}/export",
    response_model=UserExport,
    dependencies=[Depends(fresh("riders", "swaps"))],
)
def export_user(user_id: UserId, engine: EngineDep, who: AdminOnly) -> UserExport:
    """Everything held about one rider: profile, cards, swaps, bills (personal-data export)."""
    row = reads.found(reads.call(model.get_rider, engine, user_id), "user", user_id)
    swaps: list[dict[str, object]] = []
    cursor = None
    while len(swaps) < 10_000:
        found = reads.call(
            swap_model.list_swaps, engine, rider_id=user_id, cursor=cursor, limit=1000
        )
        swaps.extend(found["items"])
        cursor = found["next_cursor"]
        if cursor is None:
            break
    return UserExport(user=UserDetail.of(row, who), swaps=swaps, bills=_bills(engine, user_id))


def _bills(engine: object, user_id: str) -> list[dict[str, object]]:
    try:
        from readmodels import billing
    except ModuleNotFoundError:
        return []
    found = reads.call(billing.list_bills, engine, rider_id=user_id, limit=1000)
    return list(found["items"])

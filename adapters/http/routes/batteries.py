"""Batteries: register, change, quarantine, repair, dock, retire, read, health logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response

from adapters.http import reads, writes
from adapters.http.cache import cached
from adapters.http.deps import (
    Cursor,
    EngineDep,
    IdempotencyKey,
    LedgerDep,
    Limit,
    Operators,
    Readers,
    fresh,
)
from adapters.http.models.batteries import (
    BatteryAction,
    BatteryCreate,
    BatteryDock,
    BatteryPublic,
    BatteryStatus,
    BatteryUpdate,
    CustodyKind,
    Grade,
    HealthLogPublic,
)
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.problems import ERROR_RESPONSES
from domain.battery import Battery
from domain.commands import (
    DockBattery,
    QuarantineBattery,
    RegisterBattery,
    ReinstateBattery,
    RetireBattery,
    SendBatteryToRepair,
    UpdateBattery,
)
from readmodels import batteries as model
from readmodels import health as health_model

router = APIRouter(prefix="/api/batteries", tags=["batteries"], responses=ERROR_RESPONSES)

BatteryId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[BatteryPublic], dependencies=[Depends(fresh("batteries"))])
@cached("batteries")
def list_batteries(
    engine: EngineDep,
    who: Readers,
    station_id: str | None = None,
    status: BatteryStatus | None = None,
    grade: Grade | None = None,
    custody: CustodyKind | None = None,
    rider_id: str | None = None,
    soh_below: float | None = None,
    sort: Literal[
        "battery_id", "soc", "soh", "cycle_count", "last_seen_at", "registered_at"
    ] = "battery_id",
    order: Literal["asc", "desc"] = "asc",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BatteryPublic]:
    """List batteries, filtered by station, status, grade, custody or holder."""
    found = reads.call(
        model.list_batteries,
        engine,
        station_id=station_id,
        status=status,
        grade=grade,
        custody_kind=custody,
        rider_id=rider_id,
        soh_below=soh_below,
        sort=sort,
        descending=order == "desc",
        cursor=cursor,
        limit=limit,
    )
    return Page[BatteryPublic](
        items=[BatteryPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )


@router.post("", status_code=201, response_model=WriteReceipt)
def create_battery(
    body: BatteryCreate,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Register a battery, docked in a slot or in the warehouse."""
    at = writes.now(ledger)
    made = body.manufactured_on or at.date()
    command = RegisterBattery(
        occurred_at=at,
        battery_id=body.battery_id,
        battery_type=body.battery_type,
        capacity_ah=body.capacity_ah,
        manufactured_on=made.isoformat(),
        station_id=body.station_id,
        slot=body.slot,
        soc=body.soc,
        soh=body.soh,
    )
    result = writes.execute(ledger, command, key)
    response.headers["Location"] = f"/api/batteries/{body.battery_id}"
    return writes.receipt(result, response, "battery_id")


@router.get(
    "/{battery_id}", response_model=BatteryPublic, dependencies=[Depends(fresh("batteries"))]
)
@cached("batteries")
def get_battery(battery_id: BatteryId, engine: EngineDep, who: Readers) -> BatteryPublic:
    """One battery: where it is, its grade and latest reading."""
    row = reads.found(reads.call(model.get_battery, engine, battery_id), "battery", battery_id)
    return BatteryPublic.model_validate(row)


@router.put("/{battery_id}", response_model=WriteReceipt)
def update_battery(
    battery_id: BatteryId,
    body: BatteryUpdate,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Change a battery's description or grade; no change appends nothing."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response, "battery_id")
    current = ledger.get(Battery, battery_id)
    reads.found(current, "battery", battery_id)
    assert current is not None
    changes: dict[str, object] = {}
    if body.battery_type is not None and body.battery_type != current.battery_type:
        changes["battery_type"] = body.battery_type
    if body.capacity_ah is not None and body.capacity_ah != current.capacity_ah:
        changes["capacity_ah"] = body.capacity_ah
    made = None if body.manufactured_on is None else body.manufactured_on.isoformat()
    if made is not None and made != current.manufactured_on:
        changes["manufactured_on"] = made
    at = writes.now(ledger)
    commands: list[object] = []
    if changes:
        commands.append(UpdateBattery(occurred_at=at, battery_id=battery_id, **changes))  # type: ignore[arg-type]
    if body.grade is not None and body.grade != current.grade:
        reason = body.reason or "changed through the API"
        grade_command = QuarantineBattery if body.grade == "quarantined" else ReinstateBattery
        commands.append(grade_command(occurred_at=at, battery_id=battery_id, reason=reason))
    if not commands:
        return writes.unchanged(ledger, response, battery_id)
    result = None
    for step, command in enumerate(commands):
        result = writes.execute(ledger, command, key, step=str(step) if step else None)
    assert result is not None
    return writes.receipt(result, response, "battery_id")


@router.delete("/{battery_id}", response_model=WriteReceipt)
def retire_battery(
    battery_id: BatteryId,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    reason: str = "retired through the API",
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Retire a battery: it leaves circulation; its history stays."""
    command = RetireBattery(occurred_at=writes.now(ledger), battery_id=battery_id, reason=reason)
    return writes.receipt(writes.execute(ledger, command, key), response, "battery_id")


@router.post("/{battery_id}/repair", response_model=WriteReceipt)
def send_to_repair(
    battery_id: BatteryId,
    body: BatteryAction,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Send a battery to repair (out of its slot or the warehouse)."""
    command = SendBatteryToRepair(
        occurred_at=writes.now(ledger), battery_id=battery_id, reason=body.reason
    )
    return writes.receipt(writes.execute(ledger, command, key), response, "battery_id")


@router.post("/{battery_id}/dock", response_model=WriteReceipt)
def dock_battery(
    battery_id: BatteryId,
    body: BatteryDock,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Put a battery in an empty slot (restocking, back from repair)."""
    command = DockBattery(
        occurred_at=writes.now(ledger),
        station_id=body.station_id,
        slot=body.slot,
        battery_id=battery_id,
    )
    return writes.receipt(writes.execute(ledger, command, key), response, "battery_id")


@router.get(
    "/{battery_id}/health-logs",
    response_model=Page[HealthLogPublic],
    dependencies=[Depends(fresh("health"))],
)
@cached("health", "batteries")
def health_logs(
    battery_id: BatteryId,
    engine: EngineDep,
    who: Readers,
    since: datetime | None = None,
    until: datetime | None = None,
    order: Literal["asc", "desc"] = "asc",
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[HealthLogPublic]:
    """A battery's health readings, oldest first (``order=desc`` for newest first)."""
    found = reads.call(
        health_model.health_history,
        engine,
        battery_id,
        since=since,
        until=until,
        descending=order == "desc",
        cursor=cursor,
        limit=limit,
    )
    if not found["items"] and cursor is None:
        reads.found(reads.call(model.get_battery, engine, battery_id), "battery", battery_id)
    return Page[HealthLogPublic](
        items=[HealthLogPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )

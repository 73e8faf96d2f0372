"""Stations: register, change, read, and their batteries and slots."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
from adapters.http.models.batteries import BatteryPublic
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.models.stations import (
    SlotPublic,
    StationCreate,
    StationDetail,
    StationPublic,
    StationStatus,
    StationUpdate,
)
from adapters.http.problems import ERROR_RESPONSES
from domain.commands import RecordStationStatus, RegisterStation, UpdateStation
from domain.station import Station
from readmodels import batteries as battery_model
from readmodels import stations as model

router = APIRouter(prefix="/api/stations", tags=["stations"], responses=ERROR_RESPONSES)

StationId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[StationPublic], dependencies=[Depends(fresh("stations"))])
@cached("stations")
def list_stations(
    engine: EngineDep,
    who: Readers,
    status: StationStatus | None = None,
    sort: Literal["station_id", "name", "batteries_available", "last_heartbeat_at"] = "station_id",
    order: Literal["asc", "desc"] = "asc",
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[StationPublic]:
    """List stations with their live inventory counts."""
    found = reads.call(
        model.list_stations,
        engine,
        status=status,
        sort=sort,
        descending=order == "desc",
        cursor=cursor,
        limit=limit,
    )
    return Page[StationPublic](
        items=[StationPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )


@router.post("", status_code=201, response_model=WriteReceipt)
def create_station(
    body: StationCreate,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Register a station with its number of slots."""
    command = RegisterStation(
        occurred_at=writes.now(ledger),
        station_id=body.id,
        name=body.name,
        slot_count=body.slots,
        location=body.location,
        lat=body.lat,
        lng=body.lng,
    )
    result = writes.execute(ledger, command, key)
    response.headers["Location"] = f"/api/stations/{body.id}"
    return writes.receipt(result, response, "station_id")


@router.get(
    "/{station_id}", response_model=StationDetail, dependencies=[Depends(fresh("stations"))]
)
@cached("stations")
def get_station(station_id: StationId, engine: EngineDep, who: Readers) -> StationDetail:
    """One station with its slots."""
    row = reads.found(reads.call(model.get_station, engine, station_id), "station", station_id)
    return StationDetail.model_validate(row)


@router.put("/{station_id}", response_model=WriteReceipt)
def update_station(
    station_id: StationId,
    body: StationUpdate,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Change a station's name, location, slot count or status; no change appends nothing."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response, "station_id")
    current = ledger.get(Station, station_id)
    reads.found(current, "station", station_id)
    assert current is not None
    changes: dict[str, Any] = {
        "name": body.name,
        "location": body.location,
        "slot_count": body.slots,
        "lat": body.lat,
        "lng": body.lng,
    }
    changes = {k: v for k, v in changes.items() if v is not None and getattr(current, k) != v}
    status_change = body.status is not None and body.status != current.status
    if not changes and not status_change:
        return writes.unchanged(ledger, response, station_id)
    commands: list[object] = []
    at = writes.now(ledger)
    if changes:
        commands.append(UpdateStation(occurred_at=at, station_id=station_id, **changes))
    if status_change:
        assert body.status is not None
        commands.append(
            RecordStationStatus(
                occurred_at=at, station_id=station_id, status=body.status, source="admin"
            )
        )
    result = None
    for step, command in enumerate(commands):
        result = writes.execute(ledger, command, key, step=str(step) if step else None)
    assert result is not None
    return writes.receipt(result, response, "station_id")


@router.get(
    "/{station_id}/batteries",
    response_model=Page[BatteryPublic],
    dependencies=[Depends(fresh("batteries"))],
)
@cached("batteries")
def station_batteries(
    station_id: StationId,
    engine: EngineDep,
    who: Readers,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[BatteryPublic]:
    """The batteries docked at a station."""
    found = reads.call(
        battery_model.list_batteries,
        engine,
        station_id=station_id,
        custody_kind="slot",
        cursor=cursor,
        limit=limit,
    )
    return Page[BatteryPublic](
        items=[BatteryPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )


@router.get(
    "/{station_id}/slots",
    response_model=list[SlotPublic],
    dependencies=[Depends(fresh("stations"))],
)
@cached("stations")
def station_slots(station_id: StationId, engine: EngineDep, who: Readers) -> list[SlotPublic]:
    """A station's live inventory, slot by slot."""
    rows = reads.call(model.station_slots, engine, station_id)
    if not rows:
        reads.found(reads.call(model.get_station, engine, station_id), "station", station_id)
    return [SlotPublic.model_validate(r) for r in rows]

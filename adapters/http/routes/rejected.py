"""MQTT messages the ledger could not accept."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends

from adapters.http import reads
from adapters.http.cache import cached
from adapters.http.deps import Cursor, EngineDep, Limit, StaffReaders, fresh
from adapters.http.models.common import Page
from adapters.http.models.events import RejectedPublic
from adapters.http.problems import ERROR_RESPONSES
from readmodels import rejected as model

router = APIRouter(
    prefix="/api/rejected-messages", tags=["rejected-messages"], responses=ERROR_RESPONSES
)


@router.get("", response_model=Page[RejectedPublic], dependencies=[Depends(fresh("rejected"))])
@cached("rejected")
def list_rejected(
    engine: EngineDep,
    who: StaffReaders,
    station_id: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[RejectedPublic]:
    """Rejected station messages, newest first, with reason and raw bytes (base64, capped)."""
    found = reads.call(
        model.list_rejected,
        engine,
        station_id=station_id,
        reason=reason,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Page[RejectedPublic](
        items=[RejectedPublic.model_validate(r) for r in found["items"]],
        next_cursor=found["next_cursor"],
    )

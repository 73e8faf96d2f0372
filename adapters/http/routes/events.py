"""The stored events themselves, in the ledger's global order (auditors and admins)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from eventsourcing.persistence import StoredEvent
from fastapi import APIRouter, Query
from sqlalchemy import select

from adapters.http.deps import Auditors, LedgerDep, Limit
from adapters.http.models.common import Page
from adapters.http.models.events import EventPublic
from adapters.http.problems import ERROR_RESPONSES, ProblemException
from adapters.http.security import Principal, mask_rfid
from adapters.store.schema import events as events_table
from adapters.store.writer import db_time
from ledger.service import Ledger

router = APIRouter(prefix="/api/events", tags=["events"], responses=ERROR_RESPONSES)

TYPE_NAME = re.compile(r"^[A-Za-z0-9_.]{1,100}$")
ENVELOPE = ("originator_id", "originator_version", "occurred_at", "recorded_at")


def type_of(topic: str) -> str:
    """``domain.session:SwapSession.Completed`` → ``SwapSession.Completed``."""
    return topic.rsplit(":", 1)[-1]


def _mask_stream(stream: str, who: Principal) -> str:
    if stream.startswith("card:") and not who.sees_rfid:
        return "card:" + (mask_rfid(stream[5:], who) or "")
    return stream


def _mask(value: Any, who: Principal) -> Any:
    if who.sees_rfid:
        return value
    if isinstance(value, dict):
        return {
            k: mask_rfid(v, who) if k == "rfid_code" and isinstance(v, str) else _mask(v, who)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v, who) for v in value]
    return value


def decode(ledger: Ledger, row: Any, who: Principal) -> EventPublic:
    """A stored row as the API shows it; an event this code cannot decode shows no data."""
    stored = StoredEvent(
        originator_id=row.originator_id,
        originator_version=int(row.originator_version),
        topic=row.topic,
        state=bytes(row.state),
    )
    data: dict[str, Any] | None = None
    occurred_at = None
    try:
        event: Any = ledger.mapper.to_domain_event(stored)
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        occurred_at = fields.get("occurred_at")
        data = _mask({k: v for k, v in fields.items() if k not in ENVELOPE}, who)
    except Exception:  # an unknown or old topic: still listed, without data
        data = None
    recorded = row.recorded_at
    if isinstance(recorded, str):
        recorded = datetime.fromisoformat(recorded)
    return EventPublic(
        position=int(row.id),
        type=type_of(row.topic),
        stream=_mask_stream(str(row.originator_id), who),
        version=int(row.originator_version),
        recorded_at=recorded if recorded.tzinfo else recorded.replace(tzinfo=UTC),
        occurred_at=occurred_at,
        data=data,
    )


@router.get("", response_model=Page[EventPublic])
def list_events(
    ledger: LedgerDep,
    who: Auditors,
    stream: Annotated[
        str | None, Query(max_length=160, description="Only this aggregate (`battery:7`).")
    ] = None,
    type: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Only this event type (`Completed` or `SwapSession.Completed`).",
        ),
    ] = None,
    since: Annotated[datetime | None, Query(description="recorded_at at or after")] = None,
    until: Annotated[datetime | None, Query(description="recorded_at before")] = None,
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Limit = 100,
) -> Page[EventPublic]:
    """Stored events in global order, with their two times and decoded data."""
    t = events_table
    stmt = select(
        t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state, t.c.recorded_at
    )
    if stream is not None:
        stmt = stmt.where(t.c.originator_id == stream)
    if type is not None:
        if not TYPE_NAME.match(type):
            raise ProblemException(422, "invalid_request", "type: letters, digits, _ and . only")
        escaped = type.replace("_", "\\_")
        stmt = stmt.where(
            t.c.topic.like(f"%:{escaped}", escape="\\")
            | t.c.topic.like(f"%.{escaped}", escape="\\")
        )
    if since is not None:
        stmt = stmt.where(t.c.recorded_at >= db_time(since))
    if until is not None:
        stmt = stmt.where(t.c.recorded_at < db_time(until))
    if cursor is not None:
        stmt = stmt.where(t.c.id < int(cursor) if order == "desc" else t.c.id > int(cursor))
    stmt = stmt.order_by(t.c.id.desc() if order == "desc" else t.c.id).limit(limit + 1)
    with ledger.store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [decode(ledger, r, who) for r in rows]
    return Page[EventPublic](items=items, next_cursor=str(rows[-1].id) if more and rows else None)

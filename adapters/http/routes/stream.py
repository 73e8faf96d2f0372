"""Live changes as server-sent events: one station's, or everything (admin stream)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from adapters.http.deps import Auditors, Readers
from adapters.http.problems import ERROR_RESPONSES
from adapters.http.security import Principal
from adapters.http.stream import StreamHub, frames

router = APIRouter(prefix="/api/stream", tags=["stream"], responses=ERROR_RESPONSES)

SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."}
}


async def _stream(request: Request, station: str | None, who: Principal) -> StreamingResponse:
    hub: StreamHub = request.app.state.api.hub
    sub = await hub.subscribe(station, who)
    return StreamingResponse(
        frames(hub, sub, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("", response_class=StreamingResponse, responses=SSE)
async def station_stream(
    request: Request,
    who: Readers,
    station: Annotated[str, Query(min_length=1, max_length=64, description="Station id.")],
) -> StreamingResponse:
    """One station's live changes: session steps, inventory and battery health (SSE)."""
    return await _stream(request, station, who)


@router.get("/all", response_class=StreamingResponse, responses=SSE)
async def admin_stream(request: Request, who: Auditors) -> StreamingResponse:
    """Every live change of every station and aggregate (SSE; admins and auditors)."""
    return await _stream(request, None, who)

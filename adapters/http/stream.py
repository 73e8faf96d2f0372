"""Live streams (SSE) derived from the stored events, so they work in any API process.

One :class:`StreamHub` per app tails the notification log from the head. It reads only up
to the position the live read models (stations, swaps, batteries, health) have applied, so
a client that queries after an event arrives sees that event in the read models too. Each
event is mapped to its station (session events through their session's first event), and
sent to the subscribers of that station and to the admin stream. Polling runs only while
someone listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import orjson
from fastapi.encoders import jsonable_encoder

from adapters.http import consistency
from adapters.http.routes.events import _mask, _mask_stream, type_of
from adapters.http.security import Principal
from adapters.http.state import ApiState

log = logging.getLogger(__name__)

STREAM_MODELS = ("stations", "swaps", "batteries", "health")
QUEUE_SIZE = 2000
BATCH = 1000

KINDS = {"session": "session", "station": "inventory", "battery": "battery"}
HEALTH_TYPES = {"Battery.HealthRecorded"}


@dataclass(eq=False)
class Subscriber:
    station_id: str | None  # None: the admin stream (everything)
    principal: Principal
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False


class StreamHub:
    """Tails the log and fans events out to subscribers (see the module docstring)."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        self.subscribers: set[Subscriber] = set()
        self.cursor: int | None = None
        self.sessions: OrderedDict[str, str] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- subscribers ------------------------------------------------------------------

    async def subscribe(self, station_id: str | None, principal: Principal) -> Subscriber:
        if self.cursor is None or not self.subscribers:
            # A stream starts at the ledger's head when the first listener arrives: nothing
            # older is sent (clients read the past from the queries).
            self.cursor = await anyio.to_thread.run_sync(self.state.ledger.recorder.head)
        sub = Subscriber(station_id, principal)
        self.subscribers.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="bss-stream-hub")
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def close(self) -> None:
        for sub in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # --- the tail ---------------------------------------------------------------------

    async def _run(self) -> None:
        interval = self.state.options.stream_poll_seconds
        while True:
            if not self.subscribers:  # nobody listens: no polling until someone does
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                messages = await anyio.to_thread.run_sync(self._poll)
            except Exception:
                log.exception("stream hub: reading the log failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                self._fan_out(message)
            if len(messages) < BATCH:
                await asyncio.sleep(interval)

    def _poll(self) -> list[dict[str, Any]]:
        assert self.cursor is not None
        ledger = self.state.ledger
        stop = consistency.read_position(self.state, STREAM_MODELS)
        if stop <= self.cursor:
            return []
        notes = ledger.recorder.select_notifications(
            start=self.cursor, stop=stop, limit=BATCH, inclusive_of_start=False
        )
        messages = []
        for note in notes:
            message = self._message(note)
            if message is not None:
                messages.append(message)
        self.cursor = notes[-1].id if notes else stop
        return messages

    def _message(self, note: Any) -> dict[str, Any] | None:
        try:
            event: Any = self.state.ledger.mapper.to_domain_event(note)
        except Exception:  # a topic this code does not know: not streamed
            return None
        data = {
            f.name: getattr(event, f.name)
            for f in dataclasses.fields(event)
            if f.name not in ("originator_id", "originator_version", "occurred_at", "recorded_at")
        }
        stream = str(note.originator_id)
        prefix = stream.split(":", 1)[0]
        event_type = type_of(note.topic)
        station_id = self._station_of(stream, prefix, event_type, data)
        kind = "health" if event_type in HEALTH_TYPES else KINDS.get(prefix, prefix)
        occurred: datetime | None = getattr(event, "occurred_at", None)
        return {
            "position": note.id,
            "type": event_type,
            "kind": kind,
            "stream": stream,
            "version": note.originator_version,
            "station_id": station_id,
            "occurred_at": occurred,
            "data": data,
        }

    def _station_of(
        self, stream: str, prefix: str, event_type: str, data: dict[str, Any]
    ) -> str | None:
        if prefix not in ("station", "session", "battery"):
            return None  # riders, cards, bills, plans, policy: only on the admin stream
        if prefix == "station":
            return stream.split(":", 1)[1]
        station = data.get("station_id")
        if station is None and isinstance(data.get("custody"), dict):
            station = data["custody"].get("station_id")
        if prefix == "session":
            key = stream.split(":", 1)[1]
            if station is not None:
                self._remember(key, str(station))
            else:
                station = self._session_station(key)
        return None if station is None else str(station)

    def _remember(self, session_id: str, station_id: str) -> None:
        self.sessions[session_id] = station_id
        self.sessions.move_to_end(session_id)
        while len(self.sessions) > 100_000:
            self.sessions.popitem(last=False)

    def _session_station(self, session_id: str) -> str | None:
        found = self.sessions.get(session_id)
        if found is not None:
            return found
        first = self.state.ledger.recorder.select_events(f"session:{session_id}", limit=1)
        if not first:
            return None
        try:
            event = self.state.ledger.mapper.to_domain_event(first[0])
        except Exception:
            return None
        station = getattr(event, "station_id", None)
        if station is not None:
            self._remember(session_id, str(station))
        return None if station is None else str(station)

    def _fan_out(self, message: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if sub.station_id is not None and sub.station_id != message["station_id"]:
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.overflowed = True
                self.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)


def render(message: dict[str, Any], principal: Principal) -> bytes:
    """One SSE frame; RFID codes masked as the caller's role requires."""
    shown = dict(message)
    shown["data"] = _mask(message["data"], principal)
    shown["stream"] = _mask_stream(message["stream"], principal)
    body = orjson.dumps(jsonable_encoder(shown)).decode()
    return f"id: {message['position']}\nevent: {message['type']}\ndata: {body}\n\n".encode()


async def frames(hub: StreamHub, sub: Subscriber, is_disconnected: Any) -> AsyncIterator[bytes]:
    """The frames of one subscriber until it leaves (or falls too far behind)."""
    heartbeat = hub.state.options.stream_heartbeat_seconds
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    try:
        ready = {"position": hub.cursor, "station_id": sub.station_id}
        yield f"event: ready\ndata: {orjson.dumps(ready).decode()}\n\n".encode()
        while True:
            try:
                message = await asyncio.wait_for(sub.queue.get(), timeout=min(heartbeat, 1.0))
            except TimeoutError:
                if await is_disconnected():
                    return
                if loop.time() - last_sent >= heartbeat:
                    last_sent = loop.time()
                    yield b": keep-alive\n\n"
                continue
            if message is None:
                if sub.overflowed:
                    yield b'event: overflow\ndata: {"detail": "client too slow; reconnect"}\n\n'
                return
            last_sent = loop.time()
            yield render(message, sub.principal)
    finally:
        hub.unsubscribe(sub)

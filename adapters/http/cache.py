"""A response cache keyed by the read models' positions (the version of the data they hold).

A query's answer can only change when a projection applies events to the read models it
reads, so an answer computed at positions P stays right until one of those positions
moves. Positions are read at most every ``ttl`` seconds per process (one small query,
whatever the request rate), so a cached answer is at most ``ttl`` older than the read
model, which is itself eventually consistent; ``?after=`` requests wait for their position
first, as always. Answers are cached serialised, per caller role (masking differs), so a
hit costs no database round trip and no model validation.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import orjson
from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from adapters.http.security import Principal


class PositionCache:
    """Read-model positions, re-read at most every ``ttl`` seconds."""

    def __init__(self, read: Callable[[], dict[str, int]], ttl: float = 0.02) -> None:
        self._read = read
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._positions: dict[str, int] = {}

    def stale(self) -> bool:
        return time.monotonic() - self._at >= self.ttl

    def get(self, fresh: bool = False) -> dict[str, int]:
        """The positions; ``fresh`` re-reads them now (after a read-your-writes wait)."""
        now = time.monotonic()
        if fresh:
            self._at = -1e9
        elif now - self._at < self.ttl:
            return self._positions
        with self._lock:
            if now - self._at >= self.ttl:
                self._positions = self._read()
                self._at = time.monotonic()
            return self._positions


class ResponseCache:
    """Serialised answers by (role, path, query), valid while their positions stand still."""

    def __init__(self, positions: PositionCache, size: int = 20_000, enabled: bool = True) -> None:
        self.positions = positions
        self.enabled = enabled
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[tuple[int, ...], bytes]] = (
            OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    async def answer(
        self,
        request: Request,
        response: Response,
        who: Principal,
        models: Iterable[str],
        compute: Callable[[], BaseModel | list[Any]],
    ) -> Response:
        """The cached answer for this request, or ``compute()``'s (run on a worker thread),
        cached. Headers set on ``response`` (e.g. X-Read-Position) are kept. A hit runs on
        the event loop without I/O."""
        headers = dict(response.headers)
        headers.pop("content-length", None)
        if not self.enabled:
            body = await anyio.to_thread.run_sync(lambda: _dump(compute()))
            return Response(body, media_type="application/json", headers=headers)
        # After a ?after= wait the read models are at least there: the cached positions may
        # be older than that, and an answer cached at them would hide the caller's write.
        fresh = "after" in request.query_params
        if fresh or self.positions.stale():
            found = await anyio.to_thread.run_sync(self.positions.get, fresh)
        else:
            found = self.positions.get()
        version = tuple(found.get(m, -1) for m in models)
        key = (who.role.value, request.url.path, request.url.query)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                self.hits += 1
                return Response(entry[1], media_type="application/json", headers=headers)
        self.misses += 1
        body = await anyio.to_thread.run_sync(lambda: _dump(compute()))
        with self._lock:
            self._entries[key] = (version, bytes(body))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return Response(body, media_type="application/json", headers=headers)


def _dump(value: BaseModel | list[Any]) -> bytes:
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    if all(isinstance(v, BaseModel) for v in value):
        return b"[" + b",".join(v.model_dump_json().encode() for v in value) + b"]"
    return orjson.dumps(jsonable_encoder(value))


def cached(*models: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a (sync) GET route whose answer depends only on its URL, the caller's role and
    ``models``: answers come from the app's ResponseCache. The route must take the caller
    as a parameter named ``who``."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        from adapters.http.deps import StateDep

        hints = typing.get_type_hints(func, include_extras=True)
        signature = inspect.signature(func)
        params = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
        ]
        assert any(p.name == "who" for p in params), f"{func.__name__} needs a 'who' parameter"
        extra = [
            inspect.Parameter("cache_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
            inspect.Parameter(
                "cache_response", inspect.Parameter.KEYWORD_ONLY, annotation=Response
            ),
            inspect.Parameter("cache_state", inspect.Parameter.KEYWORD_ONLY, annotation=StateDep),
        ]

        @functools.wraps(func)
        async def wrapper(
            *args: Any,
            cache_request: Request,
            cache_response: Response,
            cache_state: Any,
            **kwargs: Any,
        ) -> Response:
            return await cache_state.cache.answer(  # type: ignore[no-any-return]
                cache_request,
                cache_response,
                kwargs["who"],
                models,
                lambda: func(*args, **kwargs),
            )

        ordered = sorted(params, key=lambda p: p.kind) + extra
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=_keyword_only(ordered), return_annotation=Response
        )
        wrapper.__annotations__ = {}
        return wrapper

    return wrap


def _keyword_only(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """Every parameter keyword-only (FastAPI passes them by name; defaults may interleave)."""
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

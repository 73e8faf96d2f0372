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
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

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


@dataclass(frozen=True)
class Entry:
    """A serialised answer, the read-model positions it was computed at, and its route."""

    version: tuple[int, ...]
    body: bytes
    models: tuple[str, ...]
    route: str | None


def key_of(role: str, scope: Scope) -> tuple[str, str, str]:
    return role, scope["path"], scope["query_string"].decode("latin-1")


class ResponseCache:
    """Serialised answers by (role, path, query), valid while their positions stand still."""

    def __init__(self, positions: PositionCache, size: int = 20_000, enabled: bool = True) -> None:
        self.positions = positions
        self.enabled = enabled
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()
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
        models = tuple(models)
        version = tuple(found.get(m, -1) for m in models)
        key = key_of(who.role.value, request.scope)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.version == version:
                self._entries.move_to_end(key)
                self.hits += 1
                return Response(entry.body, media_type="application/json", headers=headers)
        self.misses += 1
        body = await anyio.to_thread.run_sync(lambda: _dump(compute()))
        route = getattr(request.scope.get("route"), "path", None)
        with self._lock:
            self._entries[key] = Entry(version, bytes(body), models, route)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return Response(body, media_type="application/json", headers=headers)

    def peek(self, key: tuple[str, str, str]) -> Entry | None:
        """The entry for this key if it is still current (no I/O), else None."""
        if not self.enabled or self.positions.stale():
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        found = self.positions.get()
        if tuple(found.get(m, -1) for m in entry.models) != entry.version:
            return None
        self.hits += 1
        return entry


class CachedAnswers:
    """An ASGI middleware answering cache hits before routing: a GET by a known (cached)
    token whose role already got this exact URL, with the read models unmoved since. An
    entry only exists for a role the route admitted, so this cannot widen access; anything
    else (no or unknown token, ``?after=``, a miss) goes on to the app as usual."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            entry = self._hit(scope)
            if entry is not None:
                if entry.route is not None:
                    scope["route"] = _Route(entry.route)  # for the metrics' route label
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(entry.body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": entry.body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _hit(scope: Scope) -> Entry | None:
        state = getattr(getattr(scope.get("app"), "state", None), "api", None)
        cache: ResponseCache | None = getattr(state, "cache", None)
        if state is None or cache is None or b"after=" in scope["query_string"]:
            return None
        token = _bearer(scope)
        if token is None or not state.tokens.is_cached(token):
            return None
        info = state.tokens.verify(token)
        if info is None:
            return None
        return cache.peek(key_of(info.role.value, scope))


@dataclass(frozen=True)
class _Route:
    path: str


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


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

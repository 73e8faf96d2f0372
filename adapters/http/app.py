"""The FastAPI app: built from a Ledger (writes) and the read-model engine (queries)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine

from adapters.http import consistency, problems
from adapters.http.cache import CachedAnswers, PositionCache, ResponseCache
from adapters.http.middleware import MetricsMiddleware
from adapters.http.routes import (
    analytics,
    batteries,
    billing,
    cards,
    events,
    health,
    plans,
    policy,
    rejected,
    stations,
    stream,
    swaps,
    users,
)
from adapters.http.security import RoleGuard
from adapters.http.state import ApiOptions, ApiState
from adapters.http.stream import StreamHub
from adapters.http.tokens import TokenStore
from ledger.service import Ledger

ROUTERS = (
    users,
    cards,
    stations,
    batteries,
    swaps,
    plans,
    billing,
    analytics,
    events,
    rejected,
    policy,
    stream,
    health,
)

DESCRIPTION = """An event-sourced ledger for battery swapping stations.

Every write is a command that appends events (its answer carries the ledger `position`, also
in the `X-Ledger-Position` header); every query reads a read model (pass `?after=<position>`
to read your own write). Send `Authorization: Bearer <token>` (made by `bss tokens create`);
each operation lists the roles it admits under `x-roles`. Errors are
`application/problem+json`. See docs/api.md.
"""


def create_app(
    ledger: Ledger,
    *,
    engine: Engine | None = None,
    tokens: TokenStore | None = None,
    options: ApiOptions | None = None,
    ingest_status: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """The HTTP API over ``ledger``; queries read the read models on ``engine`` (default: the
    ledger's own database). ``ingest_status`` is shown by /api/health when given."""
    read_engine = engine or ledger.store.engine
    state = ApiState(
        ledger=ledger,
        engine=read_engine,
        tokens=tokens or TokenStore(ledger.store.engine),
        options=options or ApiOptions(),
        ingest_status=ingest_status,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.hub = StreamHub(state)
        try:
            yield
        finally:
            await state.hub.close()

    # Swagger UI's scripts and styles come from the fastapi-offline package, not a CDN:
    # nothing the ledger serves fetches anything from the internet.
    app = FastAPIOffline(
        title="BSS swap ledger",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-static",
    )

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    app.state.api = state
    from readmodels.schema import MODELS

    positions = PositionCache(
        lambda: consistency.positions(state, MODELS), ttl=state.options.read_cache_seconds
    )
    state.cache = ResponseCache(positions, enabled=state.options.read_cache_seconds > 0)
    state.hub = StreamHub(state)  # replaced at startup; here for apps used without lifespan
    problems.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_middleware(CachedAnswers)  # inside the metrics, so hits are counted too
    app.add_middleware(MetricsMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def route_roles(route: APIRoute) -> list[str] | None:
    """The roles a route admits (from its RoleGuard dependency), or None if it is open."""
    for dependant in _walk(route.dependant):
        if isinstance(dependant.call, RoleGuard):
            return [role.value for role in dependant.call.roles]
    extra = route.openapi_extra or {}
    return extra.get("x-roles")


def _walk(dependant: Any) -> Any:
    for sub in dependant.dependencies:
        yield sub
        yield from _walk(sub)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = {
        "type": "http",
        "scheme": "bearer",
    }
    # The routers' own routes (FastAPI may wrap included routers in app.routes).
    routes = [r for module in ROUTERS for r in module.router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        roles = route_roles(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            operation["x-roles"] = roles or []
            if roles:
                operation["security"] = [{"HTTPBearer": []}]
                responses = operation.setdefault("responses", {})
                for status in ("401", "403"):
                    responses.setdefault(
                        status,
                        {
                            "description": problems.TITLES[int(status)],
                            "content": {
                                problems.PROBLEM_TYPE: {
                                    "schema": {"$ref": "#/components/schemas/Problem"}
                                }
                            },
                        },
                    )
    app.openapi_schema = schema
    return schema

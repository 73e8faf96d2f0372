"""Health (no token needed) and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from adapters.http.deps import StateDep
from adapters.http.models.health import Health, ProjectionHealth
from adapters.http.security import ANY_ROLE, authenticate
from adapters.http.state import ApiState
from adapters.http.tokens import Role

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def projection_health(state: ApiState, head: int) -> list[ProjectionHealth]:
    """Each read model's position and lag (from projections.status when installed)."""
    try:
        from projections.status import projection_status
    except ModuleNotFoundError:
        return _from_tracking(state, head)
    found = []
    for r in projection_status(state.ledger.store):
        position = int(r.get("position") or 0)
        lag = r.get("lag")
        found.append(
            ProjectionHealth(
                name=str(r.get("name") or r.get("model")),
                position=position,
                lag=int(lag) if lag is not None else max(0, head - position),
                tracking=r.get("tracking"),
            )
        )
    return found


def _from_tracking(state: ApiState, head: int) -> list[ProjectionHealth]:
    from readmodels.generations import ACTIVE
    from readmodels.schema import MODELS, tracking_name

    active = ACTIVE.all(state.engine)
    tracked = state.ledger.recorder.tracking_positions()
    found = []
    for model in MODELS:
        if model not in active:
            continue
        name = tracking_name(model, active[model])
        position = tracked.get(name, 0)
        found.append(
            ProjectionHealth(
                name=model, position=position, lag=max(0, head - position), tracking=name
            )
        )
    return found


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is not reachable."}},
)
def health(state: StateDep) -> Any:
    """Is the ledger up: database, store head, each projection's position and lag, ingest."""
    try:
        head = state.ledger.recorder.head()
    except Exception as error:
        log.warning("health: database unreachable: %s", error)
        body = Health(status="unavailable", database=False, detail="database unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    try:
        projections = projection_health(state, head)
    except Exception as error:
        log.warning("health: projection status failed: %s", error)
        projections = []
    ingest = None
    if state.ingest_status is not None:
        try:
            ingest = state.ingest_status()
        except Exception as error:
            ingest = {"status": "unknown", "error": str(error)}
    status = "ok" if projections or head == 0 else "degraded"
    return Health(status=status, database=True, head=head, projections=projections, ingest=ingest)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    openapi_extra={"x-roles": [Role.admin.value, *(r.value for r in ANY_ROLE)]},
)
def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus metrics of this process (events, commands, projections, ingest, HTTP)."""
    if not state.options.metrics_public:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        credentials = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
            if scheme and token.strip()
            else None
        )
        authenticate(request, credentials)  # any valid token may scrape
    try:
        projection_health(state, state.ledger.recorder.head())  # refreshes the lag gauges
    except Exception as error:
        log.warning("metrics: projection status failed: %s", error)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

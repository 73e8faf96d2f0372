"""Errors as RFC 9457 ``application/problem+json``: the one place that turns exceptions into
HTTP answers.

Domain errors map by type (NotFound → 404, AlreadyExists/InvalidTransition/ConcurrencyConflict
→ 409, InvalidCommand and other refusals → 422); request validation → 422; an unreachable
database → 503; anything else is a bug: logged with an id and answered as a 500 problem, so a
client never sees a traceback or an HTML page.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.store.engine import is_transient
from domain.base import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    InvalidCommand,
    InvalidTransition,
    NotFound,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://bss-ledger.invalid/problems/"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """An error, as RFC 9457 problem details plus a stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[TYPE_BASE + "not_found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["battery_id: no battery 'B-9'"])
    code: str = Field(examples=["not_found"])
    instance: str | None = None


class ProblemException(Exception):
    """Raised by routes to answer a problem that is not a domain error (auth, paging, ...)."""

    def __init__(self, status: int, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


def problem_response(
    request: Request | None,
    status: int,
    code: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
    for key, value in (extra or {}).items():
        body[key if key not in body else f"{key}_"] = value  # never shadow a standard member
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=headers, media_type=PROBLEM_TYPE
    )


def domain_status(error: DomainError) -> int:
    """HTTP status of a domain error: by its type, in one place."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, AlreadyExists | InvalidTransition | ConcurrencyConflict):
        return 409
    if isinstance(error, InvalidCommand):
        return 422
    if error.code == "internal_error":
        return 500
    return 422


def _jsonable_ids(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in ids.items()
    }


def install(app: FastAPI) -> None:
    """Register every exception handler on ``app``."""

    @app.exception_handler(ProblemException)
    async def _problem(request: Request, exc: ProblemException) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.code, exc.detail, headers=exc.headers or None, extra=exc.extra
        )

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status = domain_status(exc)
        if status == 500:
            log.error("internal error in %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            request, status, exc.code, exc.message, extra=_jsonable_ids(exc.ids)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem_response(
            request, 422, "invalid_request", f"{where}: {first['msg']}", extra={"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, TITLES.get(exc.status_code, "error").lower().replace(" ", "_")
        )
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            request, exc.status_code, code, detail, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError) or (
            is_transient(exc)
        ):
            log.warning("database unavailable in %s %s: %s", request.method, request.url, exc)
            return problem_response(
                request,
                503,
                "database_unavailable",
                "the database is not reachable; retry",
                headers={"Retry-After": "1"},
            )
        error_id = secrets.token_hex(6)
        log.exception("unexpected error %s in %s %s", error_id, request.method, request.url)
        return problem_response(
            request,
            500,
            "internal_error",
            f"unexpected error (id {error_id}); it was logged",
            extra={"error_id": error_id},
        )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_TYPE: {}}, "description": TITLES[status]}
    for status in (400, 401, 403, 404, 409, 422)
}

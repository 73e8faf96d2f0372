"""Typed dependencies the routes declare (FastAPI full-stack template style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy.engine import Engine

from adapters.http import consistency
from adapters.http.security import (
    ADMIN,
    ANY_ROLE,
    AUDITORS,
    OPERATOR,
    READERS,
    Principal,
    require,
)
from adapters.http.state import ApiState
from adapters.http.tokens import Role
from ledger.service import Ledger

# Trivial dependencies are ``async`` so FastAPI does not send each to the thread pool.


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def get_ledger(request: Request) -> Ledger:
    return (await get_state(request)).ledger


async def get_engine(request: Request) -> Engine:
    return (await get_state(request)).engine


StateDep = Annotated[ApiState, Depends(get_state)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
EngineDep = Annotated[Engine, Depends(get_engine)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a write safely: the same key returns the first answer and "
        "appends nothing.",
    ),
]

# Who may call: admin always; the names say who else.
AdminOnly = Annotated[Principal, Depends(require(*ADMIN))]
Operators = Annotated[Principal, Depends(require(*OPERATOR))]
Readers = Annotated[Principal, Depends(require(*READERS))]
Auditors = Annotated[Principal, Depends(require(*AUDITORS))]
AnyRole = Annotated[Principal, Depends(require(*ANY_ROLE))]
StaffReaders = Annotated[Principal, Depends(require(Role.operator, Role.auditor))]
OperatorsAndAnalysts = Annotated[Principal, Depends(require(Role.operator, Role.analyst))]
AnalyticsReaders = Annotated[Principal, Depends(require(Role.auditor, Role.analyst))]


def fresh(*models: str) -> Callable[..., Any]:
    """A dependency: honour ``?after=<position>`` for queries reading ``models``."""

    async def wait(
        state: StateDep,
        response: Response,
        after: Annotated[
            int | None,
            Query(
                ge=0,
                le=2**62,
                description="Ledger position of a write to read after: waits (at most "
                "2 s) until this read model has applied it.",
            ),
        ] = None,
    ) -> None:
        if after is not None:
            await anyio.to_thread.run_sync(consistency.wait_for, state, after, models, response)

    return wait


Cursor = Annotated[
    str | None,
    Query(max_length=500, description="`next_cursor` of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1-1000).")]

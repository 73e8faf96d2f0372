"""Running a command for a request: the clock, the idempotency key, the receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Response

from adapters.http.models.common import WriteReceipt
from adapters.http.problems import ProblemException
from domain.base import Outcome
from ledger.service import Ledger, Result, normalise_key

KEY_PREFIX = "http:"


def now(ledger: Ledger) -> datetime:
    """The time an operator's command happened: the ledger's clock, when it arrives."""
    return ledger.clock()


def key_for(key: str | None, step: str | None = None) -> str | None:
    """The ledger key of a request's Idempotency-Key (own namespace; one per step)."""
    if key is None:
        return None
    return f"{KEY_PREFIX}{key}" + (f":{step}" if step else "")


def execute(ledger: Ledger, command: Any, key: str | None, step: str | None = None) -> Result:
    """Run the command; a DomainError propagates (problems.py answers it)."""
    return ledger.execute(command, key_for(key, step))


def receipt(
    result: Result, response: Response, id_field: str | None = None, status: int | None = None
) -> WriteReceipt:
    """The receipt of an accepted command; a refused outcome becomes a 409 problem."""
    outcome = result.outcome
    response.headers["X-Ledger-Position"] = str(result.position)
    if result.duplicate:
        response.headers["Idempotent-Replayed"] = "true"
    if outcome is not None and not outcome.ok:
        raise refused(result)
    data = dict(outcome.data) if outcome is not None else {}
    if status is not None:
        response.status_code = status
    ident = data.get(id_field) if id_field else None
    return WriteReceipt(
        position=result.position,
        replayed=result.duplicate,
        id=None if ident is None else str(ident),
        data=data,
    )


def refused(result: Result) -> ProblemException:
    """A rule refused the command (DOMAIN.md): recorded as events, answered as 409."""
    outcome = result.outcome
    assert outcome is not None
    problem = ProblemException(
        409,
        outcome.reason or "refused",
        outcome.message,
        reason=outcome.reason,
        position=result.position,
        data=outcome.data,
        refused=True,
    )
    problem.headers = {"X-Ledger-Position": str(result.position)}
    return problem


def unchanged(ledger: Ledger, response: Response, ident: str) -> WriteReceipt:
    """A PUT that changes nothing: nothing appended; the position is the current head."""
    position = ledger.recorder.head()
    response.headers["X-Ledger-Position"] = str(position)
    return WriteReceipt(position=position, id=ident, data={"changed": False})


def prior(ledger: Ledger, key: str | None, step: str | None = None) -> Result | None:
    """The stored answer of an Idempotency-Key already used, else None."""
    full = key_for(key, step)
    if full is None:
        return None
    stored = ledger.recorder.get_commands([normalise_key(full)])
    if not stored:
        return None
    position, outcome = next(iter(stored.values()))
    return Result(Outcome.from_dict(orjson.loads(outcome)), position=position, duplicate=True)

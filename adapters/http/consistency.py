"""Read-your-writes: a query with ``?after=<position>`` waits (bounded) until the read models
it reads have applied that ledger position.

Positions come from the store's tracking table (one row per projection, ``rm:<model>:g<n>``
for the active generation of each read model).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import Response

from adapters.http.problems import ProblemException
from adapters.http.state import ApiState

POLL_SECONDS = 0.01


def _active_names(state: ApiState, models: Iterable[str]) -> dict[str, str]:
    try:
        from readmodels.generations import ACTIVE
        from readmodels.schema import tracking_name
    except ModuleNotFoundError:  # read models not installed: nothing to wait for
        return {}
    active = ACTIVE.all(state.engine)
    return {m: tracking_name(m, active[m]) for m in models if m in active}


def positions(state: ApiState, models: Iterable[str]) -> dict[str, int]:
    """Each read model's applied position (0 when its projection never ran)."""
    names = _active_names(state, models)
    tracked = state.ledger.recorder.tracking_positions()
    return {model: tracked.get(name, 0) for model, name in names.items()}


def read_position(state: ApiState, models: Iterable[str]) -> int:
    found = positions(state, models)
    return min(found.values()) if found else state.ledger.recorder.head()


def wait_for(state: ApiState, after: int | None, models: Iterable[str], response: Response) -> None:
    """Block until ``models`` have applied ``after`` (or ``timeout`` passes). Sets
    ``X-Read-Position``, and ``X-Read-Stale: true`` when the wait ran out."""
    if after is None:
        return
    models = list(models)
    head = state.ledger.recorder.head()
    if after > head:
        raise ProblemException(
            422,
            "position_not_written",
            f"after={after} is beyond the ledger head {head}",
            head=head,
        )
    deadline = time.monotonic() + state.options.read_wait_seconds
    reached = read_position(state, models)
    while reached < after and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        reached = read_position(state, models)
    response.headers["X-Read-Position"] = str(reached)
    if reached < after:
        response.headers["X-Read-Stale"] = "true"

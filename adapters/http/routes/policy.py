"""The swap policy: thresholds the rules use, versioned by the events that changed them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from adapters.http import writes
from adapters.http.deps import AdminOnly, IdempotencyKey, LedgerDep, Readers
from adapters.http.models.billing import PolicyPublic, PolicyUpdate
from adapters.http.models.common import WriteReceipt
from adapters.http.problems import ERROR_RESPONSES
from domain.commands import ChangePolicy
from domain.policy import DEFAULTS, Policy, PolicyValues
from ledger.service import Ledger

router = APIRouter(prefix="/api/policy", tags=["policy"], responses=ERROR_RESPONSES)


def current(ledger: Ledger) -> PolicyPublic:
    """The policy in force: the last Policy.Changed event carries every value, so one row
    is read (no replay)."""
    stored = ledger.recorder.select_events(Policy.stream_id(Policy.KEY), desc=True, limit=1)
    if not stored:
        return PolicyPublic(version=0, **DEFAULTS.as_dict())
    event: Any = ledger.mapper.to_domain_event(stored[0])
    values = {name: getattr(event, name) for name in PolicyValues.names()}
    return PolicyPublic(
        version=event.originator_version,
        note=getattr(event, "note", None),
        changed_at=event.occurred_at,
        **values,
    )


@router.get("", response_model=PolicyPublic)
def get_policy(ledger: LedgerDep, _: Readers) -> PolicyPublic:
    """The policy in force and its version."""
    return current(ledger)


@router.put("", response_model=WriteReceipt)
def change_policy(
    body: PolicyUpdate,
    ledger: LedgerDep,
    _: AdminOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Change policy values; a new version is recorded; no change appends nothing."""
    replay = writes.prior(ledger, key)
    if replay is not None:
        return writes.receipt(replay, response)
    now = current(ledger)
    given = body.model_dump(exclude_none=True)
    note = given.pop("note", None)
    changes = {k: v for k, v in given.items() if getattr(now, k) != v}
    if not changes:
        return writes.unchanged(ledger, response, "current")
    command = ChangePolicy(occurred_at=writes.now(ledger), note=note, **changes)
    return writes.receipt(writes.execute(ledger, command, key), response)

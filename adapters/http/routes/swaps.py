"""Swaps: read sessions, record a manual swap, correct a completed one."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response

from adapters.http import consistency, reads, writes
from adapters.http.cache import cached
from adapters.http.deps import (
    Cursor,
    EngineDep,
    IdempotencyKey,
    LedgerDep,
    Limit,
    Operators,
    Readers,
    StateDep,
    fresh,
)
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.models.swaps import SwapCorrection, SwapCreate, SwapOutcome, SwapPublic
from adapters.http.problems import ERROR_RESPONSES, ProblemException
from adapters.http.security import mask_rfid
from adapters.http.state import ApiState
from domain.commands import AuthorizeCard, CompleteSwap, CorrectSwap, InitiateSwap
from ledger.service import Ledger, Result
from readmodels import riders as rider_model
from readmodels import swaps as model

router = APIRouter(prefix="/api/swaps", tags=["swaps"], responses=ERROR_RESPONSES)

SwapId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[SwapPublic], dependencies=[Depends(fresh("swaps"))])
@cached("swaps")
def list_swaps(
    engine: EngineDep,
    who: Readers,
    station_id: str | None = None,
    user_id: str | None = None,
    battery_id: str | None = None,
    outcome: SwapOutcome | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: Literal["opened_at", "closed_at", "duration_s", "energy_used_ah"] = "opened_at",
    order: Literal["asc", "desc"] = "desc",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[SwapPublic]:
    """List swap sessions, newest first; filter by station, rider, battery, outcome, time."""
    found = reads.call(
        model.list_swaps,
        engine,
        station_id=station_id,
        rider_id=user_id,
        battery_id=battery_id,
        outcome=outcome,
        reason=reason,
        since=since,
        until=until,
        sort=sort,
        descending=order == "desc",
        cursor=cursor,
        limit=limit,
    )
    return Page[SwapPublic](
        items=[SwapPublic.of(r, who) for r in found["items"]], next_cursor=found["next_cursor"]
    )


@router.get("/{swap_id}", response_model=SwapPublic, dependencies=[Depends(fresh("swaps"))])
@cached("swaps")
def get_swap(swap_id: SwapId, engine: EngineDep, who: Readers) -> SwapPublic:
    """One swap session."""
    row = reads.found(reads.call(model.get_swap, engine, swap_id), "swap", swap_id)
    return SwapPublic.of(row, who)


def _card_of(state: ApiState, user_id: str, response: Response) -> str:
    # The rider may have been registered a moment ago: read the cards as of the head.
    head = state.ledger.recorder.head()
    consistency.wait_for(state, head, ("riders",), response)
    found = reads.call(
        rider_model.list_cards, state.engine, rider_id=user_id, status="active", limit=1
    )
    if not found["items"]:
        raise ProblemException(422, "no_active_card", f"user {user_id!r} has no active card")
    return str(found["items"][0]["rfid_code"])


def _step(ledger: Ledger, command: object, key: str | None, step: str) -> Result:
    result = writes.execute(ledger, command, key, step)
    if result.outcome is not None and not result.outcome.ok:
        raise writes.refused(result)
    return result


@router.post("", status_code=201, response_model=WriteReceipt)
def create_swap(
    body: SwapCreate,
    ledger: LedgerDep,
    state: StateDep,
    who: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Record a manual swap (auth, return check, issue) under the same rules as a station."""
    rfid = body.rfid_code or _card_of(state, body.user_id or "", response)
    at = writes.now(ledger)
    new_session = f"api-{secrets.token_hex(8)}"
    auth = _step(
        ledger,
        AuthorizeCard(
            occurred_at=at, station_id=body.station_id, rfid_code=rfid, session_id=new_session
        ),
        key,
        "auth",
    )
    assert auth.outcome is not None
    session_id = str(auth.outcome.data["session_id"])
    _step(
        ledger,
        InitiateSwap(
            occurred_at=at,
            station_id=body.station_id,
            battery_in_id=body.battery_in_id,
            soc=body.soc,
            soh=body.soh,
            temperature=body.temperature,
            voltage=body.voltage,
            session_id=session_id,
            pick_battery=body.battery_out_id is None,
        ),
        key,
        "initiate",
    )
    done = _step(
        ledger,
        CompleteSwap(
            occurred_at=at,
            station_id=body.station_id,
            battery_in_id=body.battery_in_id,
            battery_out_id=body.battery_out_id,
            session_id=session_id,
            in_soc=body.soc,
            in_soh=body.soh,
            out_soc=body.out_soc,
            out_soh=body.out_soh,
        ),
        key,
        "complete",
    )
    response.headers["Location"] = f"/api/swaps/{session_id}"
    receipt = writes.receipt(done, response, "session_id", status=201)
    receipt.id = session_id
    if isinstance(receipt.data.get("rfid_code"), str):
        receipt.data["rfid_code"] = mask_rfid(receipt.data["rfid_code"], who)
    return receipt


@router.put("/{swap_id}", response_model=WriteReceipt)
def correct_swap(
    swap_id: SwapId,
    body: SwapCorrection,
    ledger: LedgerDep,
    _: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Correct a completed swap's SOC values: a correction event pointing at the original,
    which stays; the energy difference is billed."""
    command = CorrectSwap(
        occurred_at=writes.now(ledger),
        session_id=swap_id,
        note=body.note,
        returned_soc=body.returned_soc,
        returned_issue_soc=body.returned_issue_soc,
    )
    receipt = writes.receipt(writes.execute(ledger, command, key), response, "swap_id")
    return receipt

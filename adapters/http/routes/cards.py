"""RFID cards: issue, block (or report lost), unblock, read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from adapters.http import reads, writes
from adapters.http.cache import cached
from adapters.http.deps import (
    Cursor,
    EngineDep,
    IdempotencyKey,
    LedgerDep,
    Limit,
    Operators,
    Readers,
    fresh,
)
from adapters.http.models.common import Page, WriteReceipt
from adapters.http.models.users import CardBlock, CardCreate, CardPublic, CardStatus, CardUnblock
from adapters.http.problems import ERROR_RESPONSES
from adapters.http.security import Principal, mask_rfid
from domain.commands import BlockCard, IssueCard, UnblockCard
from ledger.service import Result
from readmodels import riders as model

router = APIRouter(prefix="/api/rfid-cards", tags=["rfid-cards"], responses=ERROR_RESPONSES)

RfidCode = Annotated[str, Path(min_length=1, max_length=64)]


def _masked(receipt: WriteReceipt, who: Principal) -> WriteReceipt:
    """Receipts carry the code back: masked like everywhere else for non-admins."""
    if receipt.id is not None:
        receipt.id = mask_rfid(receipt.id, who)
    if isinstance(receipt.data.get("rfid_code"), str):
        receipt.data["rfid_code"] = mask_rfid(receipt.data["rfid_code"], who)
    return receipt


def _answer(result: Result, response: Response, who: Principal) -> WriteReceipt:
    return _masked(writes.receipt(result, response, "rfid_code"), who)


@router.get("", response_model=Page[CardPublic], dependencies=[Depends(fresh("riders"))])
@cached("riders")
def list_cards(
    engine: EngineDep,
    who: Readers,
    user_id: str | None = None,
    status: CardStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CardPublic]:
    """List RFID cards, filtered by rider and status, in issue order."""
    found = reads.call(
        model.list_cards, engine, rider_id=user_id, status=status, cursor=cursor, limit=limit
    )
    return Page[CardPublic](
        items=[CardPublic.of(r, who) for r in found["items"]], next_cursor=found["next_cursor"]
    )


@router.post("", status_code=201, response_model=WriteReceipt)
def issue_card(
    body: CardCreate,
    ledger: LedgerDep,
    who: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Issue an RFID card to a rider."""
    command = IssueCard(
        occurred_at=writes.now(ledger), rfid_code=body.rfid_code, rider_id=body.user_id
    )
    return _answer(writes.execute(ledger, command, key), response, who)


@router.get("/{rfid_code}", response_model=CardPublic, dependencies=[Depends(fresh("riders"))])
@cached("riders")
def get_card(rfid_code: RfidCode, engine: EngineDep, who: Readers) -> CardPublic:
    """One RFID card."""
    row = reads.found(reads.call(model.get_card, engine, rfid_code), "card", rfid_code)
    return CardPublic.of(row, who)


@router.post("/{rfid_code}/block", response_model=WriteReceipt)
def block_card(
    rfid_code: RfidCode,
    body: CardBlock,
    ledger: LedgerDep,
    who: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Block a card (or record it lost): its next authorisation is refused."""
    command = BlockCard(
        occurred_at=writes.now(ledger),
        rfid_code=rfid_code,
        status=body.status,
        reason=body.reason,
    )
    return _answer(writes.execute(ledger, command, key), response, who)


@router.post("/{rfid_code}/unblock", response_model=WriteReceipt)
def unblock_card(
    rfid_code: RfidCode,
    body: CardUnblock,
    ledger: LedgerDep,
    who: Operators,
    response: Response,
    key: IdempotencyKey = None,
) -> WriteReceipt:
    """Make a blocked or lost card active again."""
    command = UnblockCard(occurred_at=writes.now(ledger), rfid_code=rfid_code, reason=body.reason)
    return _answer(writes.execute(ledger, command, key), response, who)

"""Replies to stations, rendered from the stored Outcome (PROTOCOL.md bodies, field order kept).

A reply is a pure function of the request, the Outcome the ledger stored with the request's
idempotency key, and the time the ledger recorded that key, so a redelivered request gets the
original reply byte for byte. ``timestamp``: the auth response echoes the request's timestamp
as it was sent (v1 stations expect that); every other reply carries the time the ledger
recorded the request (``bss_commands.recorded_at``, ISO 8601 UTC with ``Z``), which is the
same for every repeat. v2 replies carry ``in_reply_to`` when the request had a
``message_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.mqtt.keys import message_id_of
from adapters.mqtt.topics import Kind, Reply, reply_topic
from domain.base import Outcome

SWAP_RECORDED = "Swap recorded successfully"
ACCESS_GRANTED = "Access granted"


@dataclass(frozen=True)
class Outgoing:
    """One reply to publish (QoS 1, never retained)."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class Request:
    """What a reply needs to know about the message it answers."""

    station_id: str
    kind: Kind
    data: dict[str, Any]  # the payload object as received
    v2: bool = False  # the message named its message or session
    recorded_at: str | None = None  # when the ledger recorded the request (reply timestamps)

    @property
    def message_id(self) -> str | None:
        return message_id_of(self.data)

    @property
    def timestamp(self) -> Any:
        """The request's own timestamp, as sent (echoed by auth responses)."""
        return self.data.get("timestamp")

    @property
    def echo(self) -> Any:
        """What an auth response echoes: the request's timestamp, else the ledger's time."""
        value = self.timestamp
        return value if isinstance(value, str) else self.recorded_at


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def user_id(rider_id: str) -> int | str:
    """v1 stations read ``user_id`` as a number: a numeric rider id goes out as one."""
    if rider_id.isascii() and rider_id.isdigit() and str(int(rider_id)) == rider_id:
        return int(rider_id)
    return rider_id


def _tagged(body: dict[str, Any], request: Request) -> dict[str, Any]:
    if request.message_id is not None:
        body["in_reply_to"] = request.message_id
    return body


def _send(request: Request, reply: Reply, body: dict[str, Any]) -> Outgoing:
    return Outgoing(reply_topic(request.station_id, reply), encode(_tagged(body, request)))


def auth_reply(
    request: Request, outcome: Outcome, name_of: Callable[[str], str | None]
) -> Outgoing:
    """``user/auth/response`` (or ``auth/response`` for the README's spelling)."""
    topic = Reply.AUTH if request.kind is Kind.AUTH else Reply.AUTH_README
    if not outcome.ok:
        return _send(request, topic, auth_failure(outcome.message, outcome.reason, request))
    rider_id = str(outcome.data["rider_id"])
    user = {"id": user_id(rider_id), "name": name_of(rider_id)}
    body = {
        "status": "success",
        "user_id": user["id"],
        "sessionId": outcome.data["session_id"],
        "rfidCard": {"rfid_code": request.data.get("rfid"), "user_id": user["id"], "user": user},
        "user": dict(user),
        "message": ACCESS_GRANTED,
        "timestamp": request.echo,
    }
    return _send(request, topic, body)


def auth_failure(message: str | None, reason: str | None, request: Request) -> dict[str, Any]:
    return {
        "status": "failure",
        "message": message,
        "reason": reason,
        "timestamp": request.echo,
    }


def decision_replies(request: Request, outcome: Outcome) -> list[Outgoing]:
    """``swap/decision`` for every initiate; a refused v1 initiate also gets ``swap/error``
    (the topic v1 stations listen on)."""
    data = outcome.data
    body: dict[str, Any] = {
        "status": "accepted" if outcome.ok else "refused",
        "session_id": data.get("session_id") or request.data.get("session_id"),
    }
    if not outcome.ok:
        body["reason"] = outcome.reason
        body["message"] = outcome.message
    for name in ("battery_out_id", "slot_out"):
        if outcome.ok and data.get(name) is not None:
            body[name] = data[name]
    body["timestamp"] = request.recorded_at
    replies = [_send(request, Reply.SWAP_DECISION, body)]
    if not outcome.ok and not request.v2:
        replies.append(swap_error(request, outcome.reason, outcome.message))
    return replies


def completion_reply(request: Request, outcome: Outcome) -> Outgoing:
    """``swap/confirmation`` with the swap id, or ``swap/error`` with the reason."""
    if not outcome.ok:
        return swap_error(request, outcome.reason, outcome.message)
    body = {
        "status": "success",
        "message": SWAP_RECORDED,
        "swap_id": outcome.data["swap_id"],
        "timestamp": request.recorded_at,
    }
    return _send(request, Reply.SWAP_CONFIRMATION, body)


def swap_error(request: Request, code: str | None, message: str | None) -> Outgoing:
    body = {"status": "error", "message": message, "error": code, "timestamp": request.recorded_at}
    return _send(request, Reply.SWAP_ERROR, body)


ANSWERED = frozenset(
    {Kind.AUTH, Kind.AUTH_README, Kind.SWAP_INITIATE, Kind.SWAP_ACTIVITY, Kind.SWAP_RESULT}
)
"""The kinds of message :func:`replies_to` answers when accepted (the others get no reply)."""


def replies_to(
    request: Request, outcome: Outcome, name_of: Callable[[str], str | None]
) -> list[Outgoing]:
    """What the ledger answers to a message it accepted for processing (no reply to
    ``swap/refused``, battery and status messages: v1 defines none and v2 adds none)."""
    if request.kind in (Kind.AUTH, Kind.AUTH_README):
        return [auth_reply(request, outcome, name_of)]
    if request.kind is Kind.SWAP_INITIATE:
        return decision_replies(request, outcome)
    if request.kind in (Kind.SWAP_ACTIVITY, Kind.SWAP_RESULT):
        return [completion_reply(request, outcome)]
    return []


def rejection_replies(request: Request, kind: Kind | None, outcome: Outcome) -> list[Outgoing]:
    """``bss/{s}/error`` for a rejected message. A v1 request that waits for an answer on
    its own reply topic gets that too, so it does not hang: a failure auth response, or
    ``swap/error``."""
    code, message = outcome.data["reason"], outcome.data["message"]
    body: dict[str, Any] = {
        "status": "error",
        "error": code,
        "message": message,
        "topic": outcome.data["topic"],
    }
    if request.message_id is not None:
        body["in_reply_to"] = request.message_id
    body["timestamp"] = request.recorded_at
    replies = [Outgoing(reply_topic(request.station_id, Reply.ERROR), encode(body))]
    if kind in (Kind.AUTH, Kind.AUTH_README):
        topic = Reply.AUTH if kind is Kind.AUTH else Reply.AUTH_README
        replies.append(_send(request, topic, auth_failure(message, code, request)))
    elif kind in (Kind.SWAP_INITIATE, Kind.SWAP_ACTIVITY, Kind.SWAP_RESULT):
        replies.append(swap_error(request, code, message))
    return replies

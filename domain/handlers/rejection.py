"""Rejected station messages: recorded as events, answered by the adapter from the Outcome."""

from __future__ import annotations

from datetime import datetime

from domain import validation as v
from domain.base import InvalidCommand, Outcome, Repository
from domain.handlers.registry import absent, handles, stamp
from domain.rejection import MAX_PAYLOAD_B64, RecordRejectedMessage, RejectedMessage


@handles(RecordRejectedMessage)
def record_rejected_message(
    cmd: RecordRejectedMessage, repo: Repository, recorded_at: datetime
) -> Outcome:
    """The Outcome carries everything the error reply needs, so a redelivered rejected
    message gets the same reply from the stored Outcome."""
    rejection_id = v.text("rejection_id", cmd.rejection_id)
    received_at = v.aware("received_at", cmd.received_at)
    fields = {
        "reason": v.text("reason", cmd.reason),
        "message": v.text("message", cmd.message[:200]),
        "topic": v.text("topic", cmd.topic[:200]),
        "station_id": v.optional_text("station_id", cmd.station_id),
        "payload_b64": cmd.payload_b64,
        "payload_size": v.count("payload_size", cmd.payload_size),
        "received_at": received_at,
    }
    if not isinstance(cmd.payload_b64, str) or len(cmd.payload_b64) > MAX_PAYLOAD_B64:
        raise InvalidCommand("payload_b64", f"must be text of at most {MAX_PAYLOAD_B64} chars")
    absent(repo, RejectedMessage, rejection_id, "rejection_id")
    repo.add(
        RejectedMessage.create(
            rejection_id, RejectedMessage.Recorded, stamp(cmd, recorded_at), **fields
        )
    )
    return Outcome.accepted(
        rejection_id=rejection_id,
        reason=fields["reason"],
        message=fields["message"],
        topic=fields["topic"],
        station_id=fields["station_id"],
        received_at=received_at.isoformat(),
    )

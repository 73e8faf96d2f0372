"""Rejected station messages: their reason codes, and the command that records one.

Reason codes (stable; ``bss_mqtt_rejected_total{reason}`` counts them):

==================== =============================================================
payload_too_large    the payload is over 64 KiB
invalid_json         not UTF-8 JSON, or not a JSON object
missing_field        a required field is absent
invalid_type         a field has the wrong JSON type (a string for a number, ...)
invalid_value        a field's value is not allowed (unknown status, empty id, ...)
out_of_range         a number outside its range (SOC/SOH outside 0-100, slot 0, ...)
invalid_timestamp    a timestamp that is not ISO 8601
timestamp_in_future  a timestamp more than a day ahead of the ledger's clock
unknown_topic        a topic under bss/{s}/ that the protocol does not define
unknown_station      the station of the topic is not registered
unknown_battery      a battery id the ledger does not know
unknown_rider        a user id the ledger does not know
unknown_session      a session id the ledger does not know
invalid_state        the message does not fit the current state (e.g. docking a
                     battery into an occupied slot)
not_found / ...      other domain errors keep their own code
internal_error       the ledger failed on this message (a bug): recorded, not retried
==================== =============================================================
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from domain.base import DomainError, InvalidCommand, InvalidTransition, NotFound
from domain.rejection import RecordRejectedMessage

PAYLOAD_KEPT = 4 * 1024

_NOT_FOUND = {
    "station_id": "unknown_station",
    "battery_id": "unknown_battery",
    "battery_in_id": "unknown_battery",
    "battery_out_id": "unknown_battery",
    "rider_id": "unknown_rider",
    "session_id": "unknown_session",
}


def reason_of(error: DomainError) -> str:
    """The rejection reason of a domain error the ledger raised for a message."""
    if isinstance(error, NotFound):
        return _NOT_FOUND.get(str(error.ids.get("field")), "not_found")
    if isinstance(error, InvalidCommand):
        return "invalid_value"
    if isinstance(error, InvalidTransition):
        return "invalid_state"
    return str(error.code)


def rejection_id(key: str) -> str:
    """The rejected message's aggregate id: derived from its idempotency key."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def record(
    *,
    key: str,
    reason: str,
    message: str,
    topic: str,
    station_id: str | None,
    payload: bytes,
    received_at: datetime,
) -> RecordRejectedMessage:
    return RecordRejectedMessage(
        occurred_at=received_at,
        rejection_id=rejection_id(key),
        reason=reason,
        message=message.strip()[:200] or reason,
        topic=topic[:200],
        station_id=station_id,
        payload_b64=base64.b64encode(payload[:PAYLOAD_KEPT]).decode(),
        payload_size=len(payload),
        received_at=received_at,
    )

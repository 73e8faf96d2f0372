"""Idempotency keys of station messages (PROTOCOL.md, delivery rules).

- a message with a v2 ``message_id``: ``(station, message_id)``, whatever the topic;
- any other message (v1): SHA-256 of ``(station, topic, the payload's canonical JSON)``, so a
  redelivered or repeated copy of the same payload is a duplicate whatever its key order or
  spacing; a payload that is not JSON at all is hashed as raw bytes;
- the rejection of a message: ``rejected:`` + the message's key, so a redelivered rejected
  message is recorded once, and a corrected message with the same ``message_id`` still counts.

Keys longer than the store's column are stored as their SHA-256 by the ledger.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from adapters.mqtt.protocol import MAX_MESSAGE_ID


def canonical(data: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal payloads give equal bytes."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def message_id_of(data: dict[str, Any] | None) -> str | None:
    """The payload's v2 message id, when it has a usable one."""
    value = data.get("message_id") if data is not None else None
    if isinstance(value, str) and 0 < len(value) <= MAX_MESSAGE_ID:
        return value
    return None


def message_key(station_id: str, topic: str, data: dict[str, Any] | None, raw: bytes) -> str:
    message_id = message_id_of(data)
    if message_id is not None:
        return "mqtt2:" + canonical([station_id, message_id]).decode()
    if data is not None:
        hashed = canonical([station_id, topic, data])
    else:
        hashed = canonical([station_id, topic]) + b"\n" + raw
    return "mqtt1:" + hashlib.sha256(hashed).hexdigest()


def raw_key(topic: str, raw: bytes) -> str:
    """The key of a message outside the station tree (no station to name)."""
    return "mqtt0:" + hashlib.sha256(topic.encode() + b"\n" + raw).hexdigest()


def rejection_key(key: str) -> str:
    return "rejected:" + key

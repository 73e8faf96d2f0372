"""RecordRejectedMessage: a rejected station message as an event, answered from its Outcome."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from adapters.mqtt import rejections
from domain.base import AlreadyExists, InvalidCommand, InvalidTransition, NotFound
from domain.rejection import RejectedMessage
from tests.support.memory import MemoryLedger

RECEIVED = datetime(2025, 7, 14, 10, 30, tzinfo=UTC)


def record(key: str = "mqtt1:abc", payload: bytes = b'{"soc": 182}', **changes: object):
    fields = {
        "key": key,
        "reason": "out_of_range",
        "message": "soc: must be from 0 to 100",
        "topic": "bss/1/swap/initiate",
        "station_id": "1",
        "payload": payload,
        "received_at": RECEIVED,
    }
    fields.update(changes)
    return rejections.record(**fields)  # type: ignore[arg-type]


def test_a_rejected_message_is_recorded_with_its_bytes() -> None:
    ledger = MemoryLedger()
    outcome = ledger.execute(record(), "rejected:mqtt1:abc")
    rejection_id = rejections.rejection_id("mqtt1:abc")
    assert outcome.ok
    assert outcome.data == {
        "rejection_id": rejection_id,
        "reason": "out_of_range",
        "message": "soc: must be from 0 to 100",
        "topic": "bss/1/swap/initiate",
        "station_id": "1",
        "received_at": RECEIVED.isoformat(),
    }
    [event] = ledger.events()
    assert isinstance(event, RejectedMessage.Recorded)
    assert base64.b64decode(event.payload_b64) == b'{"soc": 182}'
    assert (event.payload_size, event.received_at, event.occurred_at) == (12, RECEIVED, RECEIVED)
    assert ledger.get(RejectedMessage, rejection_id).reason == "out_of_range"


def test_only_the_first_4_kib_are_kept_but_the_size_is_the_whole() -> None:
    command = record(payload=b"x" * 70_000)
    assert len(base64.b64decode(command.payload_b64)) == rejections.PAYLOAD_KEPT
    assert command.payload_size == 70_000
    assert MemoryLedger().execute(command).ok


def test_the_same_rejection_id_twice_without_the_key_is_refused() -> None:
    ledger = MemoryLedger()
    ledger.execute(record())
    with pytest.raises(AlreadyExists):
        ledger.execute(record())


def test_a_station_outside_the_tree_is_none() -> None:
    outcome = MemoryLedger().execute(record(station_id=None, topic="elsewhere"))
    assert outcome.data["station_id"] is None


def test_bad_fields_are_invalid() -> None:
    with pytest.raises(InvalidCommand):
        MemoryLedger().execute(record(reason=" "))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotFound("x", field="station_id"), "unknown_station"),
        (NotFound("x", field="battery_out_id"), "unknown_battery"),
        (NotFound("x", field="rider_id"), "unknown_rider"),
        (NotFound("x", field="plan_id"), "not_found"),
        (InvalidCommand("slot", "must be a slot number from 1 to 4"), "invalid_value"),
        (InvalidTransition("slot 4 holds battery 9"), "invalid_state"),
    ],
)
def test_domain_errors_map_to_rejection_reasons(error: Exception, reason: str) -> None:
    assert rejections.reason_of(error) == reason  # type: ignore[arg-type]

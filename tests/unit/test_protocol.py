"""The station protocol without a broker or database: wire models, keys, commands, replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.mqtt import keys, topics
from adapters.mqtt.protocol import (
    MAX_PAYLOAD,
    AuthRequest,
    ProtocolError,
    StationStatus,
    SwapCompletion,
    load_object,
    validate,
)
from adapters.mqtt.replies import Request, rejection_replies, replies_to, user_id
from adapters.mqtt.topics import Kind
from adapters.mqtt.translate import Arrival, to_command
from domain.base import Outcome
from domain.commands import (
    AuthorizeCard,
    CompleteSwap,
    InitiateSwap,
    RecordHealthReading,
    RecordStationStatus,
    StationRefusedSwap,
)
from domain.reasons import Reason

NOW = datetime(2025, 7, 14, 10, 31, tzinfo=UTC)
ARRIVAL = Arrival(NOW)

# The v1 payloads of PROTOCOL.md, byte for byte.
V1 = {
    "user/auth/request": b'{"rfid": "A1B2C3D4", "timestamp": "2025-07-14T10:30:00.123456Z"}',
    "swap/initiate": (
        b'{"user_id": 12, "battery_in_id": "7", "battery_in_health_status": "accepted", '
        b'"soc": 82, "voltage": 52.3, "temperature": 34.5, "soh": 80, '
        b'"timestamp": "2025-07-14T10:30:20Z"}'
    ),
    "swap/refused": (
        b'{"user_id": 12, "battery_id": "1", "status": "rejected", '
        b'"reason": "Battery health below threshold", "soc": 82, "soh": 65, '
        b'"temperature": 34.5, "timestamp": "2025-07-14T10:30:20Z"}'
    ),
    "swap/activity": (
        b'{"battery_in_id": "7", "battery_out_id": "3", "user_id": 12, '
        b'"battery_in_data": {"soc": 82, "soh": 80}, "battery_out_data": {"soc": 95, "soh": 90}, '
        b'"status": "completed", "timestamp": "2025-07-14T10:30:40Z"}'
    ),
    "swap/result": (
        b'{"user_id": 123, "battery_in_id": "BAT001", "battery_out_id": "BAT002", '
        b'"timestamp": "2025-07-14T10:30:40Z", "station_id": 1, "status": "success"}'
    ),
}


def parse(kind: Kind, payload: bytes | dict[str, Any]) -> Any:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return validate(kind, load_object(raw))


def reason_of(kind: Kind, payload: bytes | dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as raised:
        parse(kind, payload)
    return raised.value.reason


# --- topics ----------------------------------------------------------------------------------


def test_topics_name_the_station_and_the_kind() -> None:
    assert topics.parse("bss/1/user/auth/request") == ("1", Kind.AUTH)
    assert topics.parse("bss/ST-0042/auth/request") == ("ST-0042", Kind.AUTH_README)
    assert topics.parse("bss/1/battery/exploded") == ("1", None)
    assert topics.parse("other/1/swap/initiate") == (None, None)
    assert topics.shared("bss/+/swap/initiate", "g") == "$share/g/bss/+/swap/initiate"


def test_the_ingest_never_subscribes_to_its_own_replies() -> None:
    replies = [f"bss/1/{reply}" for reply in topics.Reply]
    for topic_filter in topics.INBOUND_FILTERS:
        pattern = topic_filter.split("/")
        for reply in replies:
            parts = reply.split("/")
            matches = len(parts) == len(pattern) and all(
                p in ("+", part) for p, part in zip(pattern, parts, strict=True)
            )
            assert not matches, (topic_filter, reply)


# --- wire models -----------------------------------------------------------------------------


@pytest.mark.parametrize("topic", sorted(V1))
def test_every_v1_payload_is_accepted_as_sent(topic: str) -> None:
    _, kind = topics.parse(f"bss/1/{topic}")
    assert kind is not None
    parse(kind, V1[topic])


def test_numbers_on_the_wire_become_string_ids() -> None:
    body = parse(Kind.SWAP_RESULT, V1["swap/result"])
    assert isinstance(body, SwapCompletion)
    assert (body.user_id, body.battery_in_id) == ("123", "BAT001")
    assert parse(Kind.AUTH, {"rfid": 12345678}).rfid == "12345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-14T10:30:00.123456Z", datetime(2025, 7, 14, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2025-07-14T12:30:00+02:00", datetime(2025, 7, 14, 10, 30, tzinfo=UTC)),
        ("2025-07-14T10:30:00", datetime(2025, 7, 14, 10, 30, tzinfo=UTC)),
        ("2025-07-14 10:30:00", datetime(2025, 7, 14, 10, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_with_z_an_offset_or_naive(text: str, expected: datetime) -> None:
    body = parse(Kind.AUTH, {"rfid": "A", "timestamp": text})
    assert body.timestamp == expected
    assert body.timestamp.tzinfo is not None


def test_unknown_fields_are_ignored_and_v2_fields_are_optional() -> None:
    body = parse(Kind.AUTH, {"rfid": "A", "firmware": "2.1", "extra": {"x": [1]}})
    assert isinstance(body, AuthRequest)
    assert (body.message_id, body.session_id, body.timestamp) == (None, None, None)
    assert parse(Kind.AUTH, {"rfid": "A", "message_id": "m" * 64}).message_id == "m" * 64


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        (Kind.AUTH, b"{not json", "invalid_json"),
        (Kind.AUTH, b"\xff\xfe{}", "invalid_json"),
        (Kind.AUTH, b"[1, 2]", "invalid_json"),
        (Kind.AUTH, b'{"rfid": NaN}', "invalid_json"),
        (Kind.AUTH, {}, "missing_field"),
        (Kind.AUTH, {"rfid": True}, "invalid_type"),
        (Kind.AUTH, {"rfid": 1.5}, "invalid_type"),
        (Kind.AUTH, {"rfid": "  "}, "invalid_value"),
        (Kind.AUTH, {"rfid": "A", "message_id": "m" * 65}, "invalid_value"),
        (Kind.AUTH, {"rfid": "A", "timestamp": "14/07/2025"}, "invalid_timestamp"),
        (Kind.AUTH, {"rfid": "A", "timestamp": 1752489000}, "invalid_type"),
        (Kind.SWAP_INITIATE, {"battery_in_id": "7", "soc": "82", "soh": 80}, "invalid_type"),
        (Kind.SWAP_INITIATE, {"battery_in_id": "7", "soc": 101, "soh": 80}, "out_of_range"),
        (Kind.SWAP_INITIATE, {"battery_in_id": "7", "soc": 82, "soh": -1}, "out_of_range"),
        (Kind.SWAP_INITIATE, {"battery_in_id": "7", "soc": 82}, "missing_field"),
        (Kind.SWAP_ACTIVITY, {"battery_in_id": "7", "battery_in_data": 5}, "invalid_type"),
        (Kind.BATTERY_INSERTED, {"slot": 0, "battery_id": "7"}, "out_of_range"),
        (Kind.BATTERY_REMOVED, {"slot": 1, "battery_id": "7", "reason": "lost"}, "invalid_value"),
        (Kind.BATTERY_TELEMETRY, {"battery_id": "7"}, "missing_field"),
        (
            Kind.BATTERY_TELEMETRY,
            {"battery_id": "7", "timestamp": "2025-07-14T10:30:00Z", "humidity": 140},
            "out_of_range",
        ),
        (Kind.STATION_STATUS, {"status": "asleep"}, "invalid_value"),
        (Kind.STATION_STATUS, {"status": "online", "slots": "all"}, "invalid_type"),
    ],
)
def test_what_is_rejected_and_why(kind: Kind, payload: Any, reason: str) -> None:
    assert reason_of(kind, payload) == reason


def test_a_payload_over_64_kib_is_rejected_before_parsing() -> None:
    assert reason_of(Kind.AUTH, b" " * (MAX_PAYLOAD + 1)) == "payload_too_large"


@settings(max_examples=300)
@given(
    kind=st.sampled_from(list(Kind)),
    raw=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=10), children, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_anything_parses_or_raises_protocol_error(kind: Kind, raw: bytes) -> None:
    try:
        parse(kind, raw)
    except ProtocolError as error:
        reason, message = error.reason, error.message
    else:
        return
    assert reason
    assert message


# --- idempotency keys ------------------------------------------------------------------------


def test_v1_keys_follow_the_canonical_json() -> None:
    a = keys.message_key("1", "bss/1/swap/initiate", {"soc": 82, "soh": 80}, b"")
    b = keys.message_key("1", "bss/1/swap/initiate", orjson.loads(b'{ "soh":80,  "soc":82 }'), b"")
    assert a == b
    assert a != keys.message_key("2", "bss/2/swap/initiate", {"soc": 82, "soh": 80}, b"")
    assert a != keys.message_key("1", "bss/1/swap/initiate", {"soc": 83, "soh": 80}, b"")
    assert a != keys.message_key("1", "bss/1/swap/result", {"soc": 82, "soh": 80}, b"")


def test_v2_keys_are_station_and_message_id_whatever_the_body() -> None:
    a = keys.message_key("1", "bss/1/swap/initiate", {"message_id": "m1", "soc": 1}, b"")
    b = keys.message_key("1", "bss/1/swap/activity", {"message_id": "m1", "soc": 2}, b"")
    assert a == b
    assert a != keys.message_key("2", "bss/2/swap/initiate", {"message_id": "m1"}, b"")
    assert keys.rejection_key(a) != a


# --- commands --------------------------------------------------------------------------------


def command(topic: str, payload: bytes | dict[str, Any], arrival: Arrival = ARRIVAL) -> Any:
    station_id, kind = topics.parse(topic)
    assert station_id is not None
    assert kind is not None
    return to_command(station_id, kind, parse(kind, payload), arrival, lambda: "new-session")


def test_v1_messages_become_commands() -> None:
    auth = command("bss/1/user/auth/request", V1["user/auth/request"])
    assert auth == AuthorizeCard(
        occurred_at=datetime(2025, 7, 14, 10, 30, 0, 123456, tzinfo=UTC),
        station_id="1",
        rfid_code="A1B2C3D4",
        session_id="new-session",
    )
    initiate = command("bss/1/swap/initiate", V1["swap/initiate"])
    assert isinstance(initiate, InitiateSwap)
    assert (initiate.rider_id, initiate.battery_in_id, initiate.soc, initiate.soh) == (
        "12",
        "7",
        82,
        80,
    )
    assert (initiate.temperature, initiate.voltage, initiate.pick_battery) == (34.5, 52.3, False)
    done = command("bss/1/swap/activity", V1["swap/activity"])
    assert isinstance(done, CompleteSwap)
    assert (done.battery_out_id, done.in_soc, done.out_soc, done.out_soh) == ("3", 82, 95, 90)
    refused = command("bss/1/swap/refused", V1["swap/refused"])
    assert isinstance(refused, StationRefusedSwap)
    assert (refused.battery_id, refused.station_reason) == ("1", "Battery health below threshold")
    result = command("bss/1/swap/result", V1["swap/result"])
    assert (result.station_id, result.rider_id, result.battery_out_id) == ("1", "123", "BAT002")


def test_a_v2_initiate_asks_the_ledger_to_pick() -> None:
    initiate = command(
        "bss/ST-9/swap/initiate",
        {"session_id": "s1", "message_id": "m", "battery_in_id": "7", "soc": 20, "soh": 90},
    )
    assert (initiate.pick_battery, initiate.session_id, initiate.occurred_at) == (True, "s1", NOW)
    assert command("bss/1/user/auth/request", {"rfid": "A", "session_id": "s9"}).session_id == "s9"


def test_a_completion_that_reports_failure_is_not_a_swap() -> None:
    with pytest.raises(ProtocolError) as raised:
        command("bss/1/swap/activity", {"battery_in_id": "7", "status": "failed"})
    assert raised.value.reason == "invalid_value"


def test_a_timestamp_more_than_a_day_ahead_is_rejected() -> None:
    ahead = (NOW + timedelta(days=1, minutes=1)).isoformat()
    with pytest.raises(ProtocolError) as raised:
        command("bss/1/user/auth/request", {"rfid": "A", "timestamp": ahead})
    assert raised.value.reason == "timestamp_in_future"
    soon = (NOW + timedelta(hours=23)).isoformat()
    assert command("bss/1/user/auth/request", {"rfid": "A", "timestamp": soon}).occurred_at > NOW


def test_telemetry_becomes_a_health_reading() -> None:
    reading = command(
        "bss/1/battery/telemetry",
        {
            "battery_id": 7,
            "slot": 2,
            "soc": 80.5,
            "cycle_count": 311,
            "error_code": 0,
            "max_temp": 31,
            "timestamp": "2025-07-14T10:29:00Z",
        },
    )
    assert isinstance(reading, RecordHealthReading)
    assert (reading.battery_id, reading.station_id, reading.slot) == ("7", "1", 2)
    assert (reading.soc, reading.cycle_count, reading.error_code, reading.max_temp) == (
        80.5,
        311,
        "0",
        31,
    )


def test_a_heartbeat_and_a_will() -> None:
    beat = command(
        "bss/1/station/status",
        {
            "status": "online",
            "timestamp": "2025-07-14T10:30:59Z",
            "slots": [
                {"slot": 1, "battery_id": "3", "state": "ready"},
                {"slot": 2, "battery_id": None, "state": "empty"},
            ],
        },
    )
    assert isinstance(beat, RecordStationStatus)
    assert (beat.status, beat.source, len(beat.slots)) == ("online", "heartbeat", 2)
    # A will carries the time the station connected: recorded when the broker published it.
    will = command(
        "bss/1/station/status", {"status": "offline", "timestamp": "2025-07-14T08:00:00Z"}
    )
    assert (will.source, will.occurred_at) == ("will", NOW)
    retained = command(
        "bss/1/station/status",
        {"status": "offline", "timestamp": NOW.isoformat()},
        Arrival(NOW, retained=True),
    )
    assert retained.source == "will"
    # Delivered retained because the ingest (re)subscribed: old news at its own time, so a
    # newer "online" heartbeat of the station still wins (domain: latest occurred_at wins).
    stale = command(
        "bss/1/station/status",
        {"status": "offline", "timestamp": "2025-07-14T08:00:00Z"},
        Arrival(NOW, retained=True),
    )
    assert (stale.source, stale.occurred_at) == ("will", datetime(2025, 7, 14, 8, tzinfo=UTC))
    bye = command("bss/1/station/status", {"status": "offline", "timestamp": NOW.isoformat()})
    assert bye.source == "heartbeat"
    assert isinstance(parse(Kind.STATION_STATUS, {"status": "maintenance"}), StationStatus)


def test_an_offset_time_is_kept_as_the_same_instant() -> None:
    auth = command("bss/1/auth/request", {"rfid": "A", "timestamp": "2025-07-14T12:30:00+02:00"})
    assert auth.occurred_at == datetime(2025, 7, 14, 12, 30, tzinfo=timezone(timedelta(hours=2)))


# --- replies ---------------------------------------------------------------------------------


def request(kind: Kind, data: dict[str, Any], v2: bool = False) -> Request:
    return Request("1", kind, data, v2, recorded_at="2025-07-14T10:31:00.000001Z")


def body(reply: Any) -> Any:
    return orjson.loads(reply.payload)


def test_granted_auth_reply_is_the_v1_body() -> None:
    outcome = Outcome.accepted(session_id="s1", rider_id="12", station_id="1", repeated=False)
    data = orjson.loads(V1["user/auth/request"])
    [reply] = replies_to(request(Kind.AUTH, data), outcome, lambda rider: "Ines")
    assert reply.topic == "bss/1/user/auth/response"
    assert reply.payload == orjson.dumps(
        {
            "status": "success",
            "user_id": 12,
            "sessionId": "s1",
            "rfidCard": {
                "rfid_code": "A1B2C3D4",
                "user_id": 12,
                "user": {"id": 12, "name": "Ines"},
            },
            "user": {"id": 12, "name": "Ines"},
            "message": "Access granted",
            "timestamp": "2025-07-14T10:30:00.123456Z",
        }
    )


def test_denied_auth_reply_on_the_readme_spelling_with_in_reply_to() -> None:
    outcome = Outcome.refused(Reason.CARD_BLOCKED, session_id="s1", rider_id="12")
    data = {"rfid": "A", "timestamp": "t0", "message_id": "m7"}
    [reply] = replies_to(request(Kind.AUTH_README, data), outcome, lambda rider: None)
    assert reply.topic == "bss/1/auth/response"
    assert body(reply) == {
        "status": "failure",
        "message": "Card blocked or reported lost",
        "reason": "card_blocked",
        "timestamp": "t0",
        "in_reply_to": "m7",
    }


def test_user_ids_are_numbers_only_when_they_are_numbers() -> None:
    assert (user_id("12"), user_id("R-12"), user_id("012")) == (12, "R-12", "012")


def test_decision_and_confirmation_bodies() -> None:
    accepted = Outcome.accepted(session_id="s1", rider_id="12", battery_out_id="3", slot_out=1)
    [decision] = replies_to(
        request(Kind.SWAP_INITIATE, {"message_id": "m1"}, True), accepted, lambda rider: None
    )
    assert decision.topic == "bss/1/swap/decision"
    assert decision.payload == orjson.dumps(
        {
            "status": "accepted",
            "session_id": "s1",
            "battery_out_id": "3",
            "slot_out": 1,
            "timestamp": "2025-07-14T10:31:00.000001Z",
            "in_reply_to": "m1",
        }
    )
    done = Outcome.accepted(swap_id="s1", session_id="s1")
    [confirmation] = replies_to(request(Kind.SWAP_RESULT, {}), done, lambda rider: None)
    assert confirmation.topic == "bss/1/swap/confirmation"
    assert body(confirmation) == {
        "status": "success",
        "message": "Swap recorded successfully",
        "swap_id": "s1",
        "timestamp": "2025-07-14T10:31:00.000001Z",
    }


def test_a_refused_v1_initiate_also_gets_swap_error() -> None:
    refused = Outcome.refused(Reason.BATTERY_HEALTH_LOW, session_id="s1")
    v1 = replies_to(request(Kind.SWAP_INITIATE, {}), refused, lambda rider: None)
    assert [r.topic for r in v1] == ["bss/1/swap/decision", "bss/1/swap/error"]
    assert body(v1[1]) == {
        "status": "error",
        "message": "Battery health below threshold",
        "error": "battery_health_low",
        "timestamp": "2025-07-14T10:31:00.000001Z",
    }
    v2 = replies_to(
        request(Kind.SWAP_INITIATE, {"session_id": "s1"}, True), refused, lambda rider: None
    )
    assert [r.topic for r in v2] == ["bss/1/swap/decision"]


def test_no_reply_to_refusals_batteries_and_status() -> None:
    for kind in (
        Kind.SWAP_REFUSED,
        Kind.BATTERY_INSERTED,
        Kind.BATTERY_TELEMETRY,
        Kind.STATION_STATUS,
    ):
        assert replies_to(request(kind, {}), Outcome.accepted(), lambda rider: None) == []


def test_rejection_replies() -> None:
    stored = Outcome.accepted(
        reason="out_of_range",
        message="soc: must be from 0 to 100",
        topic="bss/1/swap/activity",
        received_at="x",
    )
    replies = rejection_replies(
        request(Kind.SWAP_ACTIVITY, {"message_id": "m2"}), Kind.SWAP_ACTIVITY, stored
    )
    assert [r.topic for r in replies] == ["bss/1/error", "bss/1/swap/error"]
    assert replies[0].payload == orjson.dumps(
        {
            "status": "error",
            "error": "out_of_range",
            "message": "soc: must be from 0 to 100",
            "topic": "bss/1/swap/activity",
            "in_reply_to": "m2",
            "timestamp": "2025-07-14T10:31:00.000001Z",
        }
    )
    auth = rejection_replies(request(Kind.AUTH, {"timestamp": "t9"}), Kind.AUTH, stored)
    assert body(auth[1]) == {
        "status": "failure",
        "message": "soc: must be from 0 to 100",
        "reason": "out_of_range",
        "timestamp": "t9",
    }
    assert len(rejection_replies(request(Kind.BATTERY_TELEMETRY, {}), None, stored)) == 1

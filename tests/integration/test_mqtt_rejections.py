"""Garbage on every topic (Hypothesis): each message recorded as rejected with its reason and
answered on bss/{s}/error; the consumer goes on, and a valid swap afterwards succeeds."""

from __future__ import annotations

import base64
import json
import string
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mqtt.processor import BatchProcessor, Incoming
from adapters.mqtt.protocol import MAX_PAYLOAD
from adapters.mqtt.rejections import rejection_id
from domain.battery import Battery
from domain.rejection import RejectedMessage
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    Received,
    StationClient,
    now,
    running_ingest,
    seed_battery,
    seed_rider,
    seed_station,
    stamp,
)

STATION = "G1"
BATTERY = "G1-A"

VALID: dict[str, dict[str, Any]] = {
    "user/auth/request": {"rfid": "GCARD"},
    "auth/request": {"rfid": "GCARD"},
    "swap/initiate": {"user_id": 77, "battery_in_id": "G1-R", "soc": 40, "soh": 85},
    "swap/refused": {
        "user_id": 77,
        "battery_id": "G1-R",
        "status": "rejected",
        "soc": 40,
        "soh": 60,
    },
    "swap/activity": {"battery_in_id": "G1-R", "battery_out_id": BATTERY, "user_id": 77},
    "swap/result": {"battery_in_id": "G1-R", "battery_out_id": BATTERY, "user_id": 77},
    "battery/inserted": {"slot": 3, "battery_id": BATTERY, "soc": 50},
    "battery/removed": {"slot": 1, "battery_id": BATTERY, "reason": "maintenance"},
    "battery/telemetry": {"battery_id": BATTERY, "soc": 50},
    "station/status": {"status": "online", "slots": []},
}
REQUIRED = {
    "user/auth/request": ["rfid"],
    "auth/request": ["rfid"],
    "swap/initiate": ["battery_in_id", "soc", "soh"],
    "swap/activity": ["battery_in_id"],
    "swap/result": ["battery_in_id"],
    "battery/inserted": ["slot", "battery_id"],
    "battery/removed": ["slot", "battery_id", "reason"],
    "battery/telemetry": ["battery_id", "timestamp"],
    "station/status": ["status"],
}
PERCENTS = {
    "swap/initiate": ["soc", "soh"],
    "swap/refused": ["soc", "soh"],
    "battery/inserted": ["soc", "soh"],
    "battery/telemetry": ["soc", "soh", "humidity"],
}
IDS = {
    "user/auth/request": ["rfid"],
    "swap/initiate": ["battery_in_id", "user_id"],
    "swap/activity": ["battery_in_id", "battery_out_id"],
    "battery/telemetry": ["battery_id"],
}
TOPICS = sorted(VALID)

small_ints = st.integers(-1000, 1000)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=5)  # UTF-8 encodable
not_a_number = st.one_of(
    st.booleans(),
    texts,
    st.lists(small_ints, max_size=2),
    st.dictionaries(texts, small_ints, max_size=2),
)
not_an_id = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(small_ints, max_size=2),
    st.just({}),
)
out_of_range = st.one_of(
    st.floats(min_value=100.001, max_value=1e9),
    st.floats(max_value=-0.001, min_value=-1e9),
    st.integers(101, 10**9),
)


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def body(topic: str, **changes: Any) -> dict[str, Any]:
    return {**VALID[topic], "timestamp": stamp(), **changes}


@st.composite
def garbage(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(topic, payload, the reason the ledger must give)."""
    kind = draw(
        st.sampled_from(
            [
                "not_json",
                "not_object",
                "too_large",
                "wrong_type",
                "out_of_range",
                "missing",
                "unknown_station",
                "unknown_battery",
                "future",
                "bad_time",
                "unknown_topic",
                "bad_id",
            ]
        )
    )
    topic = draw(st.sampled_from(TOPICS))
    at = f"bss/{STATION}/{topic}"
    if kind == "not_json":
        raw = draw(st.binary(min_size=1, max_size=80).filter(lambda b: not _is_json_object(b)))
        return at, raw, "invalid_json"
    if kind == "not_object":
        value = draw(
            st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(), st.none())
        )
        return at, json.dumps(value).encode(), "invalid_json"  # big ints too
    if kind == "too_large":
        size = draw(st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 3000))
        return at, orjson.dumps({"rfid": "x" * size}), "payload_too_large"
    if kind == "wrong_type":
        percent_topic = draw(st.sampled_from(sorted(PERCENTS)))
        name = draw(st.sampled_from(PERCENTS[percent_topic]))
        payload = body(percent_topic, **{name: draw(not_a_number)})
        return f"bss/{STATION}/{percent_topic}", orjson.dumps(payload), "invalid_type"
    if kind == "bad_id":
        id_topic = draw(st.sampled_from(sorted(IDS)))
        name = draw(st.sampled_from(IDS[id_topic]))
        payload = body(id_topic, **{name: draw(not_an_id)})
        return f"bss/{STATION}/{id_topic}", orjson.dumps(payload), "invalid_type"
    if kind == "out_of_range":
        percent_topic = draw(st.sampled_from(sorted(PERCENTS)))
        name = draw(st.sampled_from(PERCENTS[percent_topic]))
        payload = body(percent_topic, **{name: draw(out_of_range)})
        return f"bss/{STATION}/{percent_topic}", orjson.dumps(payload), "out_of_range"
    if kind == "missing":
        required_topic = draw(st.sampled_from(sorted(REQUIRED)))
        payload = body(required_topic)
        payload.pop(draw(st.sampled_from(REQUIRED[required_topic])))
        return f"bss/{STATION}/{required_topic}", orjson.dumps(payload), "missing_field"
    if kind == "unknown_station":
        station = "U" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=12))
        return (
            f"bss/{station}/user/auth/request",
            orjson.dumps(body("user/auth/request")),
            ("unknown_station"),
        )
    if kind == "unknown_battery":
        battery = "NB" + draw(st.text(string.ascii_letters, min_size=1, max_size=10))
        payload = body("battery/telemetry", battery_id=battery)
        return f"bss/{STATION}/battery/telemetry", orjson.dumps(payload), "unknown_battery"
    if kind == "future":
        ahead = draw(st.integers(2, 400))
        when = (now() + timedelta(days=ahead)).isoformat()
        return at, orjson.dumps(body(topic, timestamp=when)), "timestamp_in_future"
    if kind == "bad_time":
        text = draw(
            st.sampled_from(
                [
                    "yesterday",
                    "2025-13-45T99:00:00Z",
                    "14/07/2025 10:30",
                    "",
                    "2025-07-14T10:30:00ZZ",
                ]
            )
        )
        return at, orjson.dumps(body(topic, timestamp=text)), "invalid_timestamp"
    level = draw(st.sampled_from(["battery", "station"]))
    name = draw(
        st.text(string.ascii_lowercase, min_size=1, max_size=10).filter(
            lambda n: n not in ("inserted", "removed", "telemetry", "status")
        )
    )
    return (
        f"bss/{STATION}/{level}/{name}",
        orjson.dumps(body("battery/telemetry")),
        ("unknown_topic"),
    )


def is_error_reply(message: Received) -> bool:
    parts = message.topic.split("/")
    return len(parts) == 3 and parts[2] == "error"


@pytest.fixture
def ledger(mariadb_ledger: Ledger) -> Ledger:
    return mariadb_ledger


def test_garbage_on_every_topic_is_recorded_and_the_consumer_goes_on(
    ledger: Ledger, private_mosquitto: Any
) -> None:
    broker = private_mosquitto()
    seed_station(ledger, STATION, 4, {1: (BATTERY, 96, 91)})
    seed_battery(ledger, "G1-R", 40, 85)
    seed_rider(ledger, "77", "GCARD", "G1-R")
    client = StationClient(broker.host, broker.port, filters=("bss/+/#",))
    sent: list[tuple[str, bytes, str]] = []
    try:
        with running_ingest(ledger, broker.host, broker.port, sweep_interval=0) as ingest:

            @settings(
                max_examples=150,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(garbage())
            def publish_garbage(message: tuple[str, bytes, str]) -> None:
                topic, payload, _reason = message
                sent.append(message)
                client.client.publish(topic, payload, qos=1)

            publish_garbage()
            client.wait_for_count(len(sent), is_error_reply, timeout=60)
            assert ingest.wait_idle(30)
            # The consumer went on: the original flow still works at the same station.
            auth = client.request(
                f"bss/{STATION}/user/auth/request",
                {"rfid": "GCARD", "timestamp": stamp()},
                f"bss/{STATION}/user/auth/response",
            )
            assert auth["status"] == "success", auth
            decision = client.request(
                f"bss/{STATION}/swap/initiate",
                body("swap/initiate", soc=41, soh=86),
                f"bss/{STATION}/swap/decision",
            )
            assert decision["status"] == "accepted", decision
            confirmation = client.request(
                f"bss/{STATION}/swap/activity",
                body("swap/activity"),
                f"bss/{STATION}/swap/confirmation",
            )
            assert confirmation["swap_id"] == auth["sessionId"]
            stats = ingest.stats
    finally:
        client.close()
    assert ledger.get(Battery, BATTERY).custody == {"kind": "rider", "rider_id": "77"}
    parse = BatchProcessor(ledger).parse
    expected: dict[str, str] = {}
    for topic, payload, reason in sent:
        work = parse(Incoming(topic, payload, now()))
        expected[rejection_id(work.key)] = reason
    for rid, reason in expected.items():
        rejected = ledger.get(RejectedMessage, rid)
        assert rejected is not None, (rid, reason)
        assert rejected.reason == reason, (rejected.topic, rejected.message)
        assert rejected.payload_size > 0
    assert stats.rejected == len(expected)
    assert stats.rejected + stats.duplicates == len(sent)


def test_a_rejected_message_records_its_bytes_and_is_answered(
    ledger: Ledger, private_mosquitto: Any
) -> None:
    broker = private_mosquitto()
    seed_station(ledger, STATION, 4)
    client = StationClient(broker.host, broker.port, filters=(f"bss/{STATION}/#",))
    payload = orjson.dumps(
        {"battery_in_id": "7", "soc": 182, "soh": 80, "message_id": "bad-1", "timestamp": stamp()}
    )
    try:
        with running_ingest(ledger, broker.host, broker.port, sweep_interval=0) as ingest:
            client.publish(f"bss/{STATION}/swap/initiate", payload)
            error = client.wait_for(f"bss/{STATION}/error")[0].body
            swap_error = client.wait_for(f"bss/{STATION}/swap/error")[0].body
            client.publish(f"bss/{STATION}/swap/initiate", payload)  # a redelivery
            again = client.wait_for(f"bss/{STATION}/error", 2)[1].body
            assert ingest.wait_idle()
            stats = ingest.stats
    finally:
        client.close()
    assert error == {
        "status": "error",
        "error": "out_of_range",
        "message": "soc: must be from 0 to 100",
        "topic": f"bss/{STATION}/swap/initiate",
        "in_reply_to": "bad-1",
        "timestamp": error["timestamp"],
    }
    assert again == error
    assert swap_error["error"] == "out_of_range"
    assert (stats.rejected, stats.duplicates) == (1, 1)
    parse = BatchProcessor(ledger).parse
    work = parse(Incoming(f"bss/{STATION}/swap/initiate", payload, now()))
    rejected = ledger.get(RejectedMessage, rejection_id(work.key))
    assert rejected is not None
    assert (rejected.station_id, rejected.payload_size) == (STATION, len(payload))
    assert base64.b64decode(rejected.payload_b64) == payload

"""Every message delivered twice (bursts interleaved over 20 stations, and again later):
exactly one swap per station, and every repeat answered with the original reply's bytes."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson
import pytest

from adapters.store import open_store
from domain.session import SwapSession
from ledger.service import Ledger
from tests.integration.test_mqtt_support import Fleet, StationClient, running_ingest, stamp
from tests.support.services import MqttBroker

STATIONS = 20


@pytest.fixture(params=["mariadb", "sqlite"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    url = request.getfixturevalue("fresh_mysql_url" if request.param == "mariadb" else "sqlite_url")
    store = open_store(url, init=True)
    try:
        yield Ledger(store)
    finally:
        store.close()


def burst(client: StationClient, messages: list[tuple[str, bytes]], seed: int) -> None:
    """Each message twice, all shuffled together, published without waiting in between."""
    doubled = messages + messages
    random.Random(seed).shuffle(doubled)
    for topic, payload in doubled:
        client.client.publish(topic, payload, qos=1)


def test_every_message_twice_gives_one_swap_and_the_same_reply(
    ledger: Ledger, mqtt_broker: MqttBroker
) -> None:
    fleet = Fleet.seed(ledger, STATIONS)
    client = StationClient(*mqtt_broker, filters=tuple(f"bss/{s}/#" for s in fleet.stations))
    steps: dict[str, list[tuple[str, bytes]]] = {}
    try:
        with running_ingest(ledger, *mqtt_broker, sweep_interval=0) as ingest:
            for index, (step, reply) in enumerate(
                [
                    ("auth", "user/auth/response"),
                    ("initiate", "swap/decision"),
                    ("activity", "swap/confirmation"),
                ]
            ):
                messages = [
                    (f"bss/{sid}/{_topic(step)}", _body(step, s))
                    for sid, s in fleet.stations.items()
                ]
                steps[reply] = messages
                burst(client, messages, seed=index)
                for sid in fleet.stations:
                    client.wait_for(f"bss/{sid}/{reply}", 2)
            assert ingest.wait_idle(10)
            head = ledger.store.recorder.head()
            # Much later, every message once more (a station repeating itself, a redelivery).
            for messages in steps.values():
                for topic, payload in messages:
                    client.client.publish(topic, payload, qos=1)
            for sid in fleet.stations:
                for reply in steps:
                    client.wait_for(f"bss/{sid}/{reply}", 3)
            assert ingest.wait_idle(10)
            stats = ingest.stats
    finally:
        client.close()
    assert ledger.store.recorder.head() == head, "a repeat appended something"
    assert stats.duplicates == 2 * 3 * STATIONS
    # Retained will messages other tests left on the shared broker arrive too (rejected as
    # unknown stations here); none of this fleet's messages may be rejected.
    assert _rejected_for(ledger, set(fleet.stations)) == []
    for sid in fleet.stations:
        for reply in steps:
            copies = {m.payload for m in client.replies(f"bss/{sid}/{reply}")}
            assert len(copies) == 1, (sid, reply, copies)
        session_id = orjson.loads(client.replies(f"bss/{sid}/swap/confirmation")[0].payload)[
            "swap_id"
        ]
        completed = [
            e
            for e in ledger.load_events(SwapSession.stream_id(session_id))
            if isinstance(e, SwapSession.Completed)
        ]
        assert len(completed) == 1
        assert client.replies(f"bss/{sid}/swap/error") == []
        assert client.replies(f"bss/{sid}/error") == []


def _rejected_for(ledger: Ledger, stations: set[str]) -> list[str]:
    found = []
    for note in ledger.store.recorder.select_notifications(0, 1_000_000):
        if note.originator_id.startswith("rejected:"):
            event = ledger.store.mapper.to_domain_event(note)
            if event.station_id in stations:
                found.append(f"{event.topic}: {event.reason}")
    return found


def _topic(step: str) -> str:
    return {"auth": "user/auth/request", "initiate": "swap/initiate", "activity": "swap/activity"}[
        step
    ]


def _body(step: str, s: dict[str, str]) -> bytes:
    user = int(s["rider"])
    if step == "auth":
        return orjson.dumps({"rfid": s["rfid"], "timestamp": stamp()})
    if step == "initiate":
        return orjson.dumps(
            {
                "user_id": user,
                "battery_in_id": s["held"],
                "battery_in_health_status": "accepted",
                "soc": 35,
                "voltage": 52.3,
                "temperature": 30.0,
                "soh": 85,
                "timestamp": stamp(),
            }
        )
    return orjson.dumps(
        {
            "battery_in_id": s["held"],
            "battery_out_id": s["docked"],
            "user_id": user,
            "battery_in_data": {"soc": 35, "soh": 85},
            "battery_out_data": {"soc": 95, "soh": 90},
            "status": "completed",
            "timestamp": stamp(),
        }
    )

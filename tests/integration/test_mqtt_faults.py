"""A bug on one message (here: a parser that blows up on it) must not stop the ingest or
hold back the other messages of its batch: it is recorded as rejected (internal_error),
whether the ingest decides in its own thread or in a deciding process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from adapters.mqtt.deciding import DecidingProcess
from adapters.mqtt.ingest import Ingest, IngestConfig, Processor
from adapters.mqtt.processor import BatchProcessor, Incoming
from adapters.store import open_store
from domain.rejection import RejectedMessage
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    StationClient,
    clear_retained_statuses,
    seed_battery,
    seed_station,
    stamp,
    token,
)
from tests.support.services import MqttBroker


class Faulty(BatchProcessor):
    """Fails on every payload that mentions BOOM, wherever it parses it."""

    def parse(self, incoming: Incoming) -> Any:
        if b"BOOM" in incoming.payload:
            raise RuntimeError("a bug")
        return super().parse(incoming)


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    store = open_store(sqlite_url, init=True)
    try:
        yield Ledger(store)
    finally:
        store.close()


@pytest.mark.parametrize("deciding", ["thread", "process"])
def test_a_message_that_breaks_the_code_is_set_aside(
    ledger: Ledger, mqtt_broker: MqttBroker, sqlite_url: str, deciding: str
) -> None:
    station_id = f"X{token()}"
    seed_station(ledger, station_id, 4, {1: (f"{station_id}-1", 90, 90)})
    seed_battery(ledger, f"{station_id}-W", 50, 90)
    client = StationClient(*mqtt_broker, filters=(f"bss/{station_id}/#",))
    config = IngestConfig(
        host=mqtt_broker.host,
        port=mqtt_broker.port,
        client_id=f"ingest-{token()}",
        session_expiry=60,
        sweep_interval=0,
        batch_wait=0.2,
    )
    clear_retained_statuses(*mqtt_broker)
    processor: Processor = (
        DecidingProcess(sqlite_url, processor=f"{__name__}:Faulty")
        if deciding == "process"
        else Faulty(ledger)
    )
    ingest = Ingest(ledger, config, processor=processor).start()
    try:
        readings = [
            {"battery_id": f"{station_id}-1", "soc": 80 + n, "timestamp": stamp()} for n in range(5)
        ]
        for n, reading in enumerate(readings):
            client.client.publish(
                f"bss/{station_id}/battery/telemetry", orjson.dumps(reading), qos=1
            )
            if n == 2:
                client.client.publish(f"bss/{station_id}/battery/telemetry", b'{"BOOM": 1}', qos=1)
        error = client.wait_for(f"bss/{station_id}/error")[0].body
        assert ingest.wait_idle(10)
        stats = ingest.stats
    finally:
        ingest.stop()
        client.close()
    assert error["error"] == "internal_error"
    assert (stats.accepted, stats.rejected, stats.committed, stats.acked) == (5, 1, 6, 6)
    rejected = [
        e
        for e in ledger.store.recorder.select_notifications(1, 1000)
        if e.originator_id.startswith("rejected:")
    ]
    assert len(rejected) == 1
    found = ledger.get(RejectedMessage, rejected[0].originator_id.split(":", 1)[1])
    assert found is not None
    assert found.reason == "internal_error"

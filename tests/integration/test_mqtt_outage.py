"""MariaDB stopped for 10 s in the middle of a run: the ingest backs off, acknowledges and
answers nothing meanwhile, and the run completes when MariaDB is back, every swap once; both
with the deciding in the ingest's own thread and in a deciding process (``bss ingest``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from adapters.mqtt.deciding import DecidingProcess
from adapters.store import open_store
from domain.session import SwapSession
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    Fleet,
    SwapDriver,
    completed_swaps,
    running_ingest,
)
from tests.support.services import MqttBroker

STATIONS = 10
SWAPS = 20
OUTAGE = 10.0


@pytest.mark.parametrize("deciding", ["thread", "process"])
def test_mariadb_away_for_ten_seconds(
    private_mariadb: Any, mqtt_broker: MqttBroker, deciding: str
) -> None:
    server = private_mariadb()
    store = open_store(server.url, init=True)
    ledger = Ledger(store)
    processor = DecidingProcess(server.url) if deciding == "process" else None
    fleet = Fleet.seed(ledger, STATIONS)
    started = threading.Event()
    driver = SwapDriver(
        *mqtt_broker,
        fleet,
        SWAPS,
        resend_after=30,
        on_confirmed=lambda n: started.set() if n >= STATIONS * 3 else None,
    )
    try:
        with running_ingest(ledger, *mqtt_broker, processor, sweep_interval=0) as ingest:
            run = threading.Thread(target=driver.run, args=(120,))
            run.start()
            assert started.wait(60), "the run did not get going"
            server.stop()
            time.sleep(0.5)  # a batch that committed before the stop may still be answered
            acked, confirmed = ingest.stats.acked, len(driver.confirmed)
            time.sleep(OUTAGE)
            during = ingest.stats
            assert during.acked == acked, "acknowledged while the database was away"
            assert len(driver.confirmed) == confirmed, "confirmed while the database was away"
            assert during.db_retries > 0
            server.start()
            run.join(120)
            assert not run.is_alive()
            assert ingest.wait_idle(30)
            stats = ingest.stats
        assert driver.failures == []
        assert len(driver.confirmed) == STATIONS * SWAPS
        assert stats.rejected == 0
        swap_ids = [swap_id for _station, swap_id in driver.confirmed]
        assert len(set(swap_ids)) == len(swap_ids)
        for swap_id in swap_ids:
            completed = [
                e
                for e in ledger.load_events(SwapSession.stream_id(swap_id))
                if isinstance(e, SwapSession.Completed)
            ]
            assert len(completed) == 1, swap_id
        assert completed_swaps(store) == STATIONS * SWAPS
    finally:
        store.close()

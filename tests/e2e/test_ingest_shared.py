"""Two ``bss ingest`` processes share the load through one shared subscription on one
mosquitto: a simulated run, no swap lost or duplicated, both processes did work."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.store import Store, open_store
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    Fleet,
    IngestProcess,
    SwapDriver,
    completed_sessions,
    completed_swaps,
    sessions_completed_more_than_once,
    token,
)
from tests.support.services import MqttBroker

STATIONS = 20
SWAPS = 15


@pytest.fixture
def store(fresh_mysql_url: str) -> Iterator[Store]:
    store = open_store(fresh_mysql_url, init=True)
    try:
        yield store
    finally:
        store.close()


def final_stats(process: IngestProcess) -> dict[str, object]:
    line = next(line for line in process.text().splitlines() if "stopped; stats" in line)
    return ast.literal_eval(line.split("stopped; stats ", 1)[1])


def test_two_ingests_share_one_subscription(
    store: Store,
    fresh_mysql_url: str,
    mqtt_broker: MqttBroker,
    tmp_path: Path,
) -> None:
    fleet = Fleet.seed(Ledger(store), STATIONS)
    group = f"bss-ingest-{token()}"
    workers = [
        IngestProcess(
            fresh_mysql_url,
            mqtt_broker,
            tmp_path / f"ingest-{n}.log",
            client_id=f"ingest-{n}-{token()}",
            shared_group=group,
        )
        for n in (1, 2)
    ]
    try:
        for worker in workers:
            worker.wait_subscribed()
        driver = SwapDriver(*mqtt_broker, fleet, SWAPS, resend_after=15)
        run = threading.Thread(target=driver.run, args=(180,))
        run.start()
        run.join(180)
        assert not run.is_alive(), f"the run did not finish: {len(driver.confirmed)} confirmed"
        assert [worker.terminate() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.ensure_stopped()
    assert driver.failures == []
    swap_ids = [swap_id for _station, swap_id in driver.confirmed]
    assert len(swap_ids) == STATIONS * SWAPS
    assert len(set(swap_ids)) == len(swap_ids)
    assert sessions_completed_more_than_once(store) == []
    assert completed_sessions(store) == set(swap_ids)
    assert completed_swaps(store) == STATIONS * SWAPS
    handled = [final_stats(worker)["committed"] for worker in workers]
    assert all(isinstance(n, int) and n > 0 for n in handled), handled
    assert sum(handled) >= 3 * STATIONS * SWAPS  # type: ignore[arg-type]

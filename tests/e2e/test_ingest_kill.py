"""``bss ingest`` as a real process (deciding in its child process, as on MariaDB by default):
kill -9 in the middle of a 2,000-swap run, restart, and every swap the stations saw confirmed
is in the ledger exactly once; Ctrl-C stops it and its child cleanly."""

from __future__ import annotations

import threading
import time
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

STATIONS = 40
SWAPS = 50  # per station: 2,000 swaps, 6,000 station messages


@pytest.fixture
def store(fresh_mysql_url: str) -> Iterator[Store]:
    store = open_store(fresh_mysql_url, init=True)
    try:
        yield store
    finally:
        store.close()


def test_kill_9_mid_run_and_restart(
    store: Store, fresh_mysql_url: str, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    fleet = Fleet.seed(Ledger(store), STATIONS)
    client_id = f"ingest-kill-{token()}"
    log = tmp_path / "ingest.log"
    first = IngestProcess(fresh_mysql_url, mqtt_broker, log, client_id=client_id)
    second: IngestProcess | None = None
    try:
        first.wait_subscribed()
        midway = threading.Event()
        driver = SwapDriver(
            *mqtt_broker,
            fleet,
            SWAPS,
            resend_after=15,
            on_confirmed=lambda n: midway.set() if n >= 700 else None,
        )
        run = threading.Thread(target=driver.run, args=(240,))
        run.start()
        assert midway.wait(120), f"the run did not get going:\n{first.text()[-3000:]}"
        first.kill()
        confirmed_at_kill = len(driver.confirmed)
        time.sleep(1.0)
        second = IngestProcess(fresh_mysql_url, mqtt_broker, log, client_id=client_id)
        second.wait_subscribed()
        run.join(240)
        assert not run.is_alive(), f"the run did not finish: {len(driver.confirmed)} confirmed"
        assert second.interrupt() == 0
        assert "(deciding in a child process)" in second.text()
        assert "stopped; stats" in second.text()
        assert "Traceback" not in second.text()  # the child ignored the Ctrl-C: not lost
        assert "lost" not in second.text()
    finally:
        first.ensure_stopped()
        if second is not None:
            second.ensure_stopped()
    assert driver.failures == []
    assert confirmed_at_kill < STATIONS * SWAPS
    swap_ids = [swap_id for _station, swap_id in driver.confirmed]
    assert len(swap_ids) == STATIONS * SWAPS
    assert len(set(swap_ids)) == len(swap_ids)
    assert sessions_completed_more_than_once(store) == []
    assert completed_sessions(store) == set(swap_ids)
    assert completed_swaps(store) == STATIONS * SWAPS

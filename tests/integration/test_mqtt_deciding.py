"""The ingest's deciding process (what ``bss ingest`` runs by default), on MariaDB and mosquitto:
swaps go through it exactly once, its death mid-run loses and doubles nothing, a failed
pipelined batch holds back the ones behind it, and it does not outlive a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest

from adapters.mqtt.deciding import DecidingFailed, DecidingProcess, Skipped
from adapters.mqtt.processor import Incoming
from adapters.store import open_store
from domain.battery import Battery
from domain.session import SwapSession
from ledger import metrics
from ledger.service import Ledger, utcnow
from tests.integration.test_mqtt_support import (
    Fleet,
    SwapDriver,
    completed_swaps,
    running_ingest,
    seed_battery,
    seed_station,
    stamp,
    token,
)
from tests.support.services import MqttBroker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ledger(mariadb_ledger: Ledger) -> Ledger:
    return mariadb_ledger


def _each_swap_once(ledger: Ledger, driver: SwapDriver, expected: int) -> None:
    assert driver.failures == []
    assert len(driver.confirmed) == expected
    swap_ids = [swap_id for _station, swap_id in driver.confirmed]
    assert len(set(swap_ids)) == expected
    for swap_id in swap_ids:
        completed = [
            e
            for e in ledger.load_events(SwapSession.stream_id(swap_id))
            if isinstance(e, SwapSession.Completed)
        ]
        assert len(completed) == 1, swap_id
    assert completed_swaps(ledger.store) == expected


def test_swaps_go_through_the_deciding_process_once_each(
    ledger: Ledger, fresh_mysql_url: str, mqtt_broker: MqttBroker
) -> None:
    fleet = Fleet.seed(ledger, 10)
    driver = SwapDriver(*mqtt_broker, fleet, 8, resend_after=30)
    appended = metrics.EVENTS_APPENDED._value.get()
    seeded = len(ledger.store.recorder.select_notifications(1, 100_000))
    processor = DecidingProcess(fresh_mysql_url)
    with running_ingest(ledger, *mqtt_broker, processor, sweep_interval=0) as ingest:
        assert processor.pid is not None
        assert processor.pid != os.getpid()
        driver.run(120)
        assert ingest.wait_idle(30)
        stats = ingest.stats
    assert processor.pid is None  # stopped with the ingest
    _each_swap_once(ledger, driver, 80)
    assert (stats.rejected, stats.refused) == (0, 0)
    assert stats.acked == stats.committed == stats.received
    # The child's ledger metrics are counted in this process (which serves /metrics).
    stored = len(ledger.store.recorder.select_notifications(1, 100_000))
    assert metrics.EVENTS_APPENDED._value.get() - appended == stored - seeded


def test_a_killed_deciding_process_is_replaced_and_nothing_is_lost_or_doubled(
    ledger: Ledger, fresh_mysql_url: str, mqtt_broker: MqttBroker
) -> None:
    stations, swaps = 10, 12
    fleet = Fleet.seed(ledger, stations)
    going = threading.Event()
    driver = SwapDriver(
        *mqtt_broker,
        fleet,
        swaps,
        resend_after=30,
        on_confirmed=lambda n: going.set() if n >= stations * 3 else None,
    )
    processor = DecidingProcess(fresh_mysql_url)
    with running_ingest(ledger, *mqtt_broker, processor, sweep_interval=0) as ingest:
        run = threading.Thread(target=driver.run, args=(180,))
        run.start()
        assert going.wait(60), "the run did not get going"
        first = processor.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        run.join(180)
        assert not run.is_alive()
        assert ingest.wait_idle(30)
    assert processor.restarts >= 1
    _each_swap_once(ledger, driver, stations * swaps)


def _reading(battery_id: str, soc: float) -> Incoming:
    station_id = battery_id.split("-")[0]
    body = {"battery_id": battery_id, "soc": soc, "timestamp": stamp()}
    return Incoming(f"bss/{station_id}/battery/telemetry", orjson.dumps(body), received_at=utcnow())


def test_after_a_failed_pipelined_batch_the_ones_behind_it_are_skipped(
    ledger: Ledger, fresh_mysql_url: str
) -> None:
    station_id = f"P{token()}"
    battery_id = f"{station_id}-1"
    seed_station(ledger, station_id, 4, {1: (battery_id, 50, 90)})
    seed_battery(ledger, f"{station_id}-2", 50, 90)
    processor = DecidingProcess(
        fresh_mysql_url, processor="tests.integration.test_mqtt_faults:Faulty"
    ).start()
    boom = Incoming(f"bss/{station_id}/battery/telemetry", b'{"BOOM": 1}', received_at=utcnow())
    try:
        failing = processor.submit([_reading(battery_id, 61), boom])
        behind = processor.submit([_reading(battery_id, 62)])
        with pytest.raises(DecidingFailed, match="a bug"):
            processor.outcome(failing)
        with pytest.raises(Skipped):
            processor.outcome(behind)
        # A plain call goes on: the held-back batch, decided now, in its turn.
        done = processor.process(behind.batch)
        assert [h.result for h in done.handled] == ["accepted"]
        again = processor.submit([_reading(battery_id, 63)])
        assert [h.result for h in processor.outcome(again).handled] == ["accepted"]
    finally:
        processor.close()
    readings = [
        e.soc
        for e in ledger.load_events(Battery.stream_id(battery_id))
        if isinstance(e, Battery.HealthRecorded)
    ]
    assert readings[-2:] == [62, 63]
    assert 61 not in readings  # its batch failed as a whole: nothing of it was committed


CHILD_OF_A_PARENT = textwrap.dedent(
    """
    import sys, time
    from adapters.mqtt.deciding import DecidingProcess
    processor = DecidingProcess(sys.argv[1]).start()
    print(processor.pid, flush=True)
    time.sleep(600)
    """
)


def test_the_deciding_process_ends_when_its_parent_is_killed(fresh_mysql_url: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD_OF_A_PARENT, fresh_mysql_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the deciding process outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_where_the_ingest_decides_follows_the_settings(
    fresh_mysql_url: str, sqlite_url: str
) -> None:
    from adapters.mqtt.deciding import for_settings
    from ledger.settings import Settings

    mariadb, sqlite = open_store(fresh_mysql_url), open_store(sqlite_url)
    memory = open_store("sqlite://")
    try:
        auto = Settings(ingest_deciding="auto")
        chosen = for_settings(auto, mariadb)
        assert isinstance(chosen, DecidingProcess)
        assert chosen.pid is None  # nothing started before the ingest starts it
        assert chosen.url == mariadb.engine.url.render_as_string(hide_password=False)
        assert for_settings(auto, sqlite) is None
        assert isinstance(for_settings(auto, sqlite, "process"), DecidingProcess)
        assert for_settings(auto, memory, "process") is None  # not shared between processes
        assert for_settings(Settings(ingest_deciding="thread"), mariadb) is None
        assert for_settings(auto, mariadb, "thread") is None
        with pytest.raises(ValueError, match="auto, process or thread"):
            for_settings(auto, mariadb, "fork")
    finally:
        for store in (mariadb, sqlite, memory):
            store.close()

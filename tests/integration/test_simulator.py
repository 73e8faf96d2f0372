"""The simulator against the real ingest, mosquitto and MariaDB: swaps happen, refusals have
their reasons, faults change nothing, and the ledger's custody ends where the stations think.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from adapters.mqtt.ingest import Ingest, IngestConfig
from adapters.mqtt.simulator import Simulator, SimulatorConfig, Summary
from adapters.mqtt.simulator.world import generate
from adapters.store import Store, open_store
from domain.rider import Rider
from domain.station import Station
from ledger.service import Ledger
from tests.support.services import MqttBroker

REASONS = {
    "card_unknown",
    "card_blocked",
    "no_battery_available",
    "battery_health_low",
    "battery_too_hot",
    "battery_not_charged",
    "battery_unavailable",
}


@dataclass
class Run:
    summary: Summary
    sim: Simulator
    ingest: Ingest


@pytest.fixture
def store(fresh_mysql_url: str) -> Iterator[Store]:
    store = open_store(fresh_mysql_url, init=True)
    yield store
    store.close()


def _prefix() -> str:
    """Station ids of this test only: the shared broker keeps other tests' retained status."""
    return f"T{secrets.token_hex(3)}-"


def run_fleet(broker: MqttBroker, store: Store, **options: Any) -> Run:
    ledger = Ledger(store)
    ingest = Ingest(
        ledger,
        IngestConfig(
            host=broker.host,
            port=broker.port,
            client_id=f"test-ingest-{secrets.token_hex(4)}",
            session_expiry=5,
        ),
    ).start()
    try:
        config = SimulatorConfig(
            host=broker.host,
            port=broker.port,
            station_prefix=options.pop("station_prefix", _prefix()),
            **options,
        )
        sim = Simulator(config, ledger=ledger)
        summary = sim.run()
        assert ingest.wait_idle(30)
    finally:
        ingest.stop()
    return Run(summary, sim, ingest)


def assert_custody_agrees(run: Run, store: Store) -> None:
    """Every station's slots and every rider's batteries, as the stations believe them, are
    what the ledger recorded."""
    ledger = Ledger(store)
    for agent in run.sim.agents:
        station = ledger.get(Station, agent.id)
        assert station is not None
        assert {int(n): b for n, b in station.slots.items()} == agent.slots, agent.id
    for rider in run.sim.riders:
        if rider.rider_id is None:
            continue
        known = ledger.get(Rider, rider.rider_id)
        assert known is not None
        assert sorted(known.batteries) == sorted(rider.batteries), rider.rider_id


def completed_swaps(store: Store) -> int:
    rows = store.recorder._query(
        "SELECT COUNT(*) FROM bss_events WHERE topic LIKE %s", ["%SwapSession.Completed"]
    )
    return int(rows[0][0])


def test_the_same_seed_makes_the_same_fleet() -> None:
    a = generate(SimulatorConfig(stations=5, riders=40, seed=3))
    b = generate(SimulatorConfig(stations=5, riders=40, seed=3))
    c = generate(SimulatorConfig(stations=5, riders=40, seed=4))
    assert a == b
    assert a != c
    socs = [bat.soh for bat in a.batteries.values()]
    assert min(socs) < 70 < max(socs)  # some worn batteries in every fleet of this size
    assert sum(r.blocked for r in generate(SimulatorConfig(riders=400)).riders) > 0


def test_v2_fleet_swaps_and_the_ledger_agrees(mqtt_broker: MqttBroker, store: Store) -> None:
    run = run_fleet(
        mqtt_broker,
        store,
        stations=4,
        riders=40,
        swaps=80,
        rate=40,  # spread over ~2 s, so chargers tick and report
        seed=11,
        dialect="v2",
        charge_rate=50,
        telemetry_interval=0.5,
        blocked_cards=0.1,
        unknown_cards=0.1,
        low_soh_batteries=0.15,
        hot_batteries=0.1,
    )
    s = run.summary
    assert s.attempts == 80
    assert s.finished == 80
    assert not s.errors, s.errors
    assert s.completed >= 20
    assert set(s.refused) <= REASONS
    assert {"card_unknown", "card_blocked"} <= set(s.refused)
    assert s.telemetry > 0
    assert s.heartbeats >= 8  # birth and goodbye of each station at least
    assert s.latency["auth"].summary()["count"] == 80
    assert completed_swaps(store) == s.completed
    assert_custody_agrees(run, store)


def test_v1_fleet_picks_its_own_batteries(mqtt_broker: MqttBroker, store: Store) -> None:
    run = run_fleet(
        mqtt_broker,
        store,
        stations=3,
        riders=30,
        swaps=40,
        rate=0,
        seed=12,
        dialect="v1",
        low_soh_batteries=0.2,
        v1_initiate_wait=0.1,
    )
    s = run.summary
    assert s.finished == s.attempts == 40
    assert not s.errors, s.errors
    assert s.completed >= 10
    assert s.refused["battery_health_low"] > 0  # the station refused worn batteries itself
    assert completed_swaps(store) == s.completed
    assert_custody_agrees(run, store)


def test_faults_duplicates_and_lost_replies_change_nothing(
    mqtt_broker: MqttBroker, store: Store
) -> None:
    run = run_fleet(
        mqtt_broker,
        store,
        stations=4,
        riders=40,
        swaps=60,
        rate=0,
        seed=13,
        dialect="mixed",
        charge_rate=50,
        faults=True,
        fault_rate=0.4,
        reply_timeout=0.5,
        max_retries=10,  # a slow (loaded) machine must not turn re-sends into errors
        v1_initiate_wait=0.1,
    )
    s = run.summary
    assert s.finished == s.attempts == 60
    assert not s.errors, s.errors
    assert s.duplicates_sent > 0
    assert s.replies_dropped > 0
    assert s.resent > 0
    assert run.ingest.stats.duplicates > 0  # the ledger saw the copies and answered again
    assert completed_swaps(store) == s.completed  # and recorded each swap once
    assert_custody_agrees(run, store)


def test_a_rerun_registers_nothing_and_resumes(mqtt_broker: MqttBroker, store: Store) -> None:
    prefix = _prefix()
    options: dict[str, Any] = {
        "stations": 3, "riders": 20, "swaps": 20, "rate": 0, "seed": 14, "charge_rate": 50,
    }  # fmt: skip
    first = run_fleet(mqtt_broker, store, station_prefix=prefix, **options)
    again = run_fleet(mqtt_broker, store, station_prefix=prefix, **options)
    assert first.summary.registered > 0
    assert again.summary.registered == 0
    assert again.summary.already_registered > 0
    ids = [r.rider_id for r in first.sim.riders]
    assert [r.rider_id for r in again.sim.riders] == ids
    assert again.summary.completed > 0
    assert completed_swaps(store) == first.summary.completed + again.summary.completed
    assert_custody_agrees(again, store)


def test_v2_stations_leave_a_retained_offline_status(mqtt_broker: MqttBroker, store: Store) -> None:
    run = run_fleet(mqtt_broker, store, stations=2, riders=10, swaps=4, rate=0, seed=15)
    station_id = run.sim.agents[0].id
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(m.payload) if m.retain else None
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.subscribe(f"bss/{station_id}/station/status", 1)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    assert got
    assert b'"status":"offline"' in got[0]

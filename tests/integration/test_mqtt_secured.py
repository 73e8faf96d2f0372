"""The ingest on a secured broker: TLS, the ledger's own MQTT user, stations confined by the
ACL that ``bss stations credentials`` writes; settings read from the environment names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt.credentials import BrokerOptions, TlsListener, write_credentials
from adapters.mqtt.ingest import Ingest, IngestConfig
from adapters.store import open_store
from domain.battery import Battery
from ledger.service import Ledger
from ledger.settings import Settings
from tests.integration.test_mqtt_support import (
    StationClient,
    certificates,
    seed_battery,
    seed_rider,
    seed_station,
    stamp,
    token,
)
from tests.support.services import HOST, free_port


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    store = open_store(sqlite_url, init=True)
    try:
        yield Ledger(store)
    finally:
        store.close()


def test_tls_and_credentials_from_settings(
    ledger: Ledger, private_mosquitto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = certificates(tmp_path / "pki")
    tls_port = free_port()
    broker = private_mosquitto(config="", start=False)
    issued = write_credentials(
        broker.dir / "creds",
        ["A"],
        options=BrokerOptions(
            port=broker.port, bind=HOST, tls=TlsListener(tls_port, cert, key, bind=HOST)
        ),
    )
    broker.custom_config = issued.config.read_text()
    broker.start()
    seed_station(ledger, "A", 4, {1: ("A-1", 96, 90)})
    seed_battery(ledger, "A-R", 40, 85)
    seed_rider(ledger, "5", "CARD-A", "A-R")
    for name, value in {
        "MQTT_BROKER_HOST": HOST,
        "MQTT_BROKER_PORT": str(tls_port),
        "BSS_MQTT_USERNAME": "bss-ledger",
        "BSS_MQTT_PASSWORD": issued.passwords["bss-ledger"],
        "BSS_MQTT_TLS_CA_FILE": str(ca),
        "BSS_MQTT_CLIENT_ID": f"ingest-{token()}",
    }.items():
        monkeypatch.setenv(name, value)
    config = IngestConfig.from_settings(Settings(), session_expiry=60, sweep_interval=0)
    assert config.tls
    station = StationClient(
        HOST, tls_port, ("bss/A/#",), username="A", password=issued.passwords["A"], ca_file=ca
    )
    try:
        with Ingest(ledger, config).start():
            auth = station.request(
                "bss/A/user/auth/request",
                {"rfid": "CARD-A", "timestamp": stamp()},
                "bss/A/user/auth/response",
            )
            assert (auth["status"], auth["user_id"]) == ("success", 5)
            station.request(
                "bss/A/swap/initiate",
                {"user_id": 5, "battery_in_id": "A-R", "soc": 40, "soh": 85, "timestamp": stamp()},
                "bss/A/swap/decision",
            )
            done = station.request(
                "bss/A/swap/activity",
                {
                    "battery_in_id": "A-R",
                    "battery_out_id": "A-1",
                    "user_id": 5,
                    "timestamp": stamp(),
                },
                "bss/A/swap/confirmation",
            )
            assert done["swap_id"] == auth["sessionId"]
    finally:
        station.close()
    assert ledger.get(Battery, "A-1").custody == {"kind": "rider", "rider_id": "5"}


def test_a_broker_that_refuses_the_ledger_fails_the_start(
    ledger: Ledger, private_mosquitto: Any
) -> None:
    broker = private_mosquitto(config="", start=False)
    issued = write_credentials(
        broker.dir / "creds", ["A"], options=BrokerOptions(port=broker.port, bind=HOST)
    )
    broker.custom_config = issued.config.read_text()
    broker.start()
    config = IngestConfig(
        host=HOST,
        port=broker.port,
        username="bss-ledger",
        password="wrong",
        client_id=f"ingest-{token()}",
    )
    with pytest.raises(TimeoutError):
        Ingest(ledger, config).start(wait=3)

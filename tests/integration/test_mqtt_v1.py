"""The original stations' v1 flow over real mosquitto, on MariaDB and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.store import open_store
from domain.battery import Battery
from domain.session import SwapSession
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    StationClient,
    running_ingest,
    seed_battery,
    seed_rider,
    seed_station,
    stamp,
    token,
)
from tests.support.services import MqttBroker

AUTH_TIMESTAMP = "2025-07-14T10:30:00.123456Z"


@pytest.fixture(params=["mariadb", "sqlite"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    url = request.getfixturevalue("fresh_mysql_url" if request.param == "mariadb" else "sqlite_url")
    store = open_store(url, init=True)
    try:
        yield Ledger(store)
    finally:
        store.close()


@pytest.fixture
def station(ledger: Ledger, mqtt_broker: MqttBroker) -> Iterator[StationClient]:
    client = StationClient(*mqtt_broker)
    yield client
    client.close()


def seed_original(ledger: Ledger, station_id: str = "1") -> None:
    """Station 1 with slots, battery 7 with rider 12 (card A1B2C3D4), battery 3 docked."""
    seed_station(ledger, station_id, 4, {1: ("3", 95, 90)})
    seed_battery(ledger, "7", 60, 85)
    seed_rider(ledger, "12", "A1B2C3D4", "7", name="Ines")


def initiate(timestamp: str = "2025-07-14T10:30:20.500000Z") -> dict[str, object]:
    return {
        "user_id": 12,
        "battery_in_id": "7",
        "battery_in_health_status": "accepted",
        "soc": 82,
        "voltage": 52.3,
        "temperature": 34.5,
        "soh": 80,
        "timestamp": timestamp,
    }


def activity(
    out: str = "3", out_soc: float = 95, timestamp: str = "2025-07-14T10:30:41.250000Z"
) -> dict[str, object]:
    return {
        "battery_in_id": "7",
        "battery_out_id": out,
        "user_id": 12,
        "battery_in_data": {"soc": 82, "soh": 80},
        "battery_out_data": {"soc": out_soc, "soh": 90},
        "status": "completed",
        "timestamp": timestamp,
    }


def test_the_original_station_flow(
    ledger: Ledger, station: StationClient, mqtt_broker: MqttBroker
) -> None:
    seed_original(ledger)
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        auth = station.request(
            "bss/1/user/auth/request",
            {"rfid": "A1B2C3D4", "timestamp": AUTH_TIMESTAMP},
            "bss/1/user/auth/response",
        )
        session_id = auth["sessionId"]
        assert auth == {
            "status": "success",
            "user_id": 12,
            "sessionId": session_id,
            "rfidCard": {
                "rfid_code": "A1B2C3D4",
                "user_id": 12,
                "user": {"id": 12, "name": "Ines"},
            },
            "user": {"id": 12, "name": "Ines"},
            "message": "Access granted",
            "timestamp": AUTH_TIMESTAMP,
        }
        decision = station.request("bss/1/swap/initiate", initiate(), "bss/1/swap/decision")
        assert (decision["status"], decision["session_id"]) == ("accepted", session_id)
        confirmation = station.request("bss/1/swap/activity", activity(), "bss/1/swap/confirmation")
        assert confirmation["status"] == "success"
        assert confirmation["message"] == "Swap recorded successfully"
        assert confirmation["swap_id"] == session_id
    assert ledger.get(Battery, "7").custody == {"kind": "slot", "station_id": "1", "slot": 2}
    assert ledger.get(Battery, "3").custody == {"kind": "rider", "rider_id": "12"}
    assert ledger.get(SwapSession, session_id).status == "complete"
    assert station.replies("bss/1/swap/error") == []
    assert station.replies("bss/1/error") == []


def test_the_readme_spelling(
    ledger: Ledger, station: StationClient, mqtt_broker: MqttBroker
) -> None:
    seed_original(ledger)
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        auth = station.request(
            "bss/1/auth/request",
            {"rfid": "A1B2C3D4", "timestamp": "2025-07-14T10:30:00+02:00"},
            "bss/1/auth/response",
        )
        assert (auth["status"], auth["user_id"]) == ("success", 12)
        assert auth["timestamp"] == "2025-07-14T10:30:00+02:00"
        result = station.request(
            "bss/1/swap/result",
            {
                "user_id": 12,
                "battery_in_id": "7",
                "battery_out_id": "3",
                "timestamp": "2025-07-14T08:31:00",
                "station_id": 1,
                "status": "success",
            },
            "bss/1/swap/confirmation",
        )
        assert result["swap_id"] == auth["sessionId"]
    assert station.replies("bss/1/user/auth/response") == []  # answered on its own spelling
    assert ledger.get(Battery, "7").custody["kind"] == "slot"
    assert ledger.get(Battery, "3").custody == {"kind": "rider", "rider_id": "12"}


@pytest.mark.parametrize(
    ("pick", "reason"),
    [
        ({"out": "9"}, "battery_unavailable"),  # battery 9 sits at another station
        ({"out_soc": 40}, "battery_not_charged"),
    ],
)
def test_a_v1_pick_that_breaks_a_rule_is_a_swap_error(
    ledger: Ledger,
    station: StationClient,
    mqtt_broker: MqttBroker,
    pick: dict[str, object],
    reason: str,
) -> None:
    seed_original(ledger)
    seed_station(ledger, "2", 2, {1: ("9", 99, 95)})
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        auth = station.request(
            "bss/1/user/auth/request",
            {"rfid": "A1B2C3D4", "timestamp": stamp()},
            "bss/1/user/auth/response",
        )
        station.request("bss/1/swap/initiate", initiate(stamp()), "bss/1/swap/decision")
        error = station.request(
            "bss/1/swap/activity", activity(**pick, timestamp=stamp()), "bss/1/swap/error"
        )
    assert error["status"] == "error"
    assert error["error"] == reason
    assert error["message"]
    assert station.replies("bss/1/swap/confirmation") == []
    session = ledger.get(SwapSession, auth["sessionId"])
    assert session.status != "complete"
    assert ledger.get(Battery, "3").custody == {"kind": "slot", "station_id": "1", "slot": 1}
    assert ledger.get(Battery, "7").custody == {"kind": "rider", "rider_id": "12"}


def test_denied_auth_body(ledger: Ledger, station: StationClient, mqtt_broker: MqttBroker) -> None:
    seed_original(ledger)
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        denied = station.request(
            "bss/1/user/auth/request",
            {"rfid": f"NOPE{token()}", "timestamp": AUTH_TIMESTAMP},
            "bss/1/user/auth/response",
        )
    assert denied == {
        "status": "failure",
        "message": "Card not found",
        "reason": "card_unknown",
        "timestamp": AUTH_TIMESTAMP,
    }

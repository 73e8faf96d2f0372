"""v2 over real mosquitto and MariaDB: the ledger picks and reserves, reason codes, message ids,
battery and status topics, wills, and the session timeout sweeper."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from domain.battery import Battery
from domain.commands import ChangePolicy
from domain.session import SwapSession
from domain.station import Station
from ledger.service import Ledger
from tests.integration.test_mqtt_support import (
    StationClient,
    now,
    running_ingest,
    seed_battery,
    seed_rider,
    seed_station,
    stamp,
    token,
)
from tests.support.services import MqttBroker


@pytest.fixture
def ledger(mariadb_ledger: Ledger) -> Ledger:
    return mariadb_ledger


@pytest.fixture
def site(ledger: Ledger) -> dict[str, str]:
    """Station S with batteries A (SOC 85), B (SOC 97) docked and C (SOC 60, not issuable);
    rider 42 holds battery R."""
    sid = f"S{token()}"
    seed_station(
        ledger, sid, 6, {1: (f"{sid}-A", 85, 90), 2: (f"{sid}-B", 97, 88), 3: (f"{sid}-C", 60, 95)}
    )
    seed_battery(ledger, f"{sid}-R", 30, 86)
    seed_rider(ledger, "42", f"K{sid}", f"{sid}-R", name="Nia")
    return {"station": sid, "rfid": f"K{sid}", "held": f"{sid}-R"}


@pytest.fixture
def station(site: dict[str, str], mqtt_broker: MqttBroker) -> Iterator[StationClient]:
    client = StationClient(*mqtt_broker, filters=(f"bss/{site['station']}/#",))
    yield client
    client.close()


def auth(station: StationClient, site: dict[str, str], message_id: str | None = None) -> dict:
    body: dict[str, object] = {"rfid": site["rfid"], "timestamp": stamp()}
    if message_id:
        body["message_id"] = message_id
    s = site["station"]
    return station.request(f"bss/{s}/user/auth/request", body, f"bss/{s}/user/auth/response")


def initiate(station: StationClient, site: dict[str, str], session: str, **changes: object) -> dict:
    s = site["station"]
    body: dict[str, object] = {
        "session_id": session,
        "message_id": f"m-{token()}",
        "battery_in_id": site["held"],
        "soc": 28,
        "soh": 86,
        "temperature": 33.0,
        "voltage": 51.9,
        "timestamp": stamp(),
    }
    body.update(changes)
    return station.request(f"bss/{s}/swap/initiate", body, f"bss/{s}/swap/decision")


def test_v2_swap_the_ledger_picks_and_reserves(
    ledger: Ledger, site: dict[str, str], station: StationClient, mqtt_broker: MqttBroker
) -> None:
    s = site["station"]
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        granted = auth(station, site, message_id="auth-1")
        assert granted["in_reply_to"] == "auth-1"
        session_id = granted["sessionId"]
        decision = initiate(station, site, session_id, message_id="init-1")
        assert decision == {
            "status": "accepted",
            "session_id": session_id,
            "battery_out_id": f"{s}-B",
            "slot_out": 2,
            "timestamp": decision["timestamp"],
            "in_reply_to": "init-1",
        }
        assert ledger.get(Battery, f"{s}-B").reserved_for == session_id
        confirmation = station.request(
            f"bss/{s}/swap/activity",
            {
                "session_id": session_id,
                "message_id": "done-1",
                "battery_in_id": site["held"],
                "timestamp": stamp(),
            },
            f"bss/{s}/swap/confirmation",
        )
        assert (confirmation["swap_id"], confirmation["in_reply_to"]) == (session_id, "done-1")
        # The same message id again, even with another body: the original reply, nothing new.
        head = ledger.store.recorder.head()
        again = station.request(
            f"bss/{s}/swap/activity",
            {
                "session_id": session_id,
                "message_id": "done-1",
                "battery_in_id": "other",
                "timestamp": stamp(),
            },
            f"bss/{s}/swap/confirmation",
        )
        assert again == confirmation
        assert ledger.store.recorder.head() == head
    assert ledger.get(Battery, f"{s}-B").custody == {"kind": "rider", "rider_id": "42"}
    assert ledger.get(Battery, site["held"]).custody["kind"] == "slot"
    assert station.replies(f"bss/{s}/swap/error") == []


@pytest.mark.parametrize(
    ("changes", "reason", "message"),
    [
        ({"soh": 65}, "battery_health_low", "Battery health below threshold"),
        ({"temperature": 60.5}, "battery_too_hot", "Battery too hot"),
        ({"battery_in_id": "STRANGER"}, "battery_not_held", "This battery is not assigned to you"),
        ({"session_id": "no-such-session"}, "session_unknown", "No open swap session"),
    ],
)
def test_v2_refusals_carry_the_domain_reason_codes(
    ledger: Ledger,
    site: dict[str, str],
    station: StationClient,
    mqtt_broker: MqttBroker,
    changes: dict[str, object],
    reason: str,
    message: str,
) -> None:
    s = site["station"]
    seed_battery(ledger, "STRANGER", 50, 90)
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        session_id = auth(station, site)["sessionId"]
        decision = initiate(station, site, session_id, **changes)
    assert decision["status"] == "refused"
    assert (decision["reason"], decision["message"]) == (reason, message)
    assert "battery_out_id" not in decision
    assert station.replies(f"bss/{s}/swap/error") == []  # a v2 station reads the decision


def test_a_refused_v1_initiate_also_gets_swap_error(
    ledger: Ledger, site: dict[str, str], station: StationClient, mqtt_broker: MqttBroker
) -> None:
    s = site["station"]
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0):
        auth(station, site)
        station.publish(
            f"bss/{s}/swap/initiate",
            {
                "user_id": 42,
                "battery_in_id": site["held"],
                "soc": 30,
                "soh": 50,
                "timestamp": stamp(),
            },
        )
        decision = station.wait_for(f"bss/{s}/swap/decision")[0].body
        error = station.wait_for(f"bss/{s}/swap/error")[0].body
    assert (decision["status"], decision["reason"]) == ("refused", "battery_health_low")
    assert error == {
        "status": "error",
        "message": "Battery health below threshold",
        "error": "battery_health_low",
        "timestamp": error["timestamp"],
    }


def test_status_heartbeats_and_the_will_decide_station_availability(
    ledger: Ledger, site: dict[str, str], station: StationClient, mqtt_broker: MqttBroker
) -> None:
    s = site["station"]
    topic = f"bss/{s}/station/status"
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0) as ingest:
        station.publish(
            topic,
            {
                "status": "maintenance",
                "timestamp": stamp(),
                "slots": [{"slot": 1, "battery_id": f"{s}-A", "state": "ready"}],
            },
        )
        ingest.wait_idle()
        denied = auth(station, site)
        assert (denied["status"], denied["reason"]) == ("failure", "station_unavailable")
        assert denied["message"] == "Station unavailable"
        station.publish(topic, {"status": "online", "timestamp": stamp()})
        ingest.wait_idle()
        assert auth(station, site)["status"] == "success"
        # The will: written at connect time (stale timestamp), retained, published by the
        # broker when the station vanishes.
        will_at = "2025-01-01T00:00:00Z"
        station.publish(topic, {"status": "offline", "timestamp": will_at}, retain=True)
        ingest.wait_idle()
        assert ledger.get(Station, s).status == "offline"
        station.publish(topic, b"", retain=True)  # clear the retained will again
    events = [
        e for e in ledger.load_events(Station.stream_id(s)) if isinstance(e, Station.StatusRecorded)
    ]
    assert [(e.status, e.source) for e in events] == [
        ("maintenance", "heartbeat"),
        ("online", "heartbeat"),
        ("offline", "will"),
    ]


def test_battery_topics_dock_remove_and_record_readings(
    ledger: Ledger, site: dict[str, str], station: StationClient, mqtt_broker: MqttBroker
) -> None:
    s = site["station"]
    seed_battery(ledger, f"{s}-W", 70, 92)  # in the warehouse
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0) as ingest:
        station.publish(
            f"bss/{s}/battery/inserted",
            {
                "slot": 4,
                "battery_id": f"{s}-W",
                "soc": 71,
                "soh": 92,
                "temperature": 25,
                "voltage": 52.0,
                "timestamp": stamp(),
            },
        )
        station.publish(
            f"bss/{s}/battery/removed",
            {"slot": 3, "battery_id": f"{s}-C", "reason": "fault", "timestamp": stamp()},
        )
        station.publish(
            f"bss/{s}/battery/telemetry",
            {
                "battery_id": f"{s}-A",
                "slot": 1,
                "soc": 88.5,
                "soh": 89,
                "pack_voltage": 53.1,
                "cell_voltage_min": 3.2,
                "cell_voltage_max": 3.4,
                "max_temp": 31,
                "ambient_temp": 22,
                "humidity": 40,
                "internal_resist": 0.02,
                "cycle_count": 311,
                "error_code": 0,
                "timestamp": stamp(),
            },
        )
        assert ingest.wait_idle()
        stats = ingest.stats
    assert stats.accepted == 3
    assert ledger.get(Battery, f"{s}-W").custody == {"kind": "slot", "station_id": s, "slot": 4}
    assert ledger.get(Battery, f"{s}-C").custody == {"kind": "repair"}
    a = ledger.get(Battery, f"{s}-A")
    assert (a.soc, a.cycle_count) == (88.5, 311)
    assert station.replies(f"bss/{s}/error") == []


def test_the_sweeper_times_out_open_sessions_and_frees_their_battery(
    ledger: Ledger, site: dict[str, str], station: StationClient, mqtt_broker: MqttBroker
) -> None:
    s = site["station"]
    ledger.execute(ChangePolicy(occurred_at=now(), session_timeout_s=2, note="test"))
    with running_ingest(ledger, *mqtt_broker, sweep_interval=0.5) as ingest:
        session_id = auth(station, site)["sessionId"]
        decision = initiate(station, site, session_id)
        picked = decision["battery_out_id"]
        assert ledger.get(Battery, picked).reserved_for == session_id
        deadline = time.monotonic() + 10
        while ledger.get(SwapSession, session_id).status != "timed_out":
            assert time.monotonic() < deadline, "the session was not timed out"
            time.sleep(0.2)
        assert ingest.stats.timed_out_sessions == 1
    assert ledger.get(Battery, picked).reserved_for is None
    assert session_id not in ledger.get(Station, s).open_sessions

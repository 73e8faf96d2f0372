"""`bss serve` as one process (ingest + projections + API) on MariaDB and mosquitto: a
rider, a station and batteries made through the API, the original v1 station flow over
MQTT, and the swap read back from the API."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from tests.support.cli import BSS, ROOT, bss
from tests.support.services import MqttBroker, free_port


@pytest.fixture
def served(
    fresh_mysql_url: str, mqtt_broker: MqttBroker, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        **os.environ,
        "BSS_DATABASE_URL": fresh_mysql_url,
        "MQTT_BROKER_HOST": mqtt_broker.host,
        "MQTT_BROKER_PORT": str(mqtt_broker.port),
        "BSS_MQTT_CLIENT_ID": f"serve-{uuid.uuid4().hex[:8]}",
        "BSS_HTTP_HOST": "127.0.0.1",
        "BSS_HTTP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    bss(env, "db", "init")
    token = (
        bss(env, "tokens", "create", "--role", "admin", "--name", "e2e").strip().splitlines()[-1]
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*BSS, "serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "bss serve did not answer"
            time.sleep(0.2)
        # On MariaDB the ingest decides in a child process (BSS_INGEST_DECIDING=auto).
        assert "(deciding in a child process)" in (tmp_path / "serve.log").read_text()
        yield url, {"Authorization": f"Bearer {token}"}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(30) == 0, (tmp_path / "serve.log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


def test_serve_runs_the_v1_flow_end_to_end(
    served: tuple[str, dict[str, str]], mqtt_broker: MqttBroker
) -> None:
    url, auth = served
    station = f"S{uuid.uuid4().hex[:6]}"
    rfid = uuid.uuid4().hex[:8].upper()
    with httpx.Client(base_url=url, headers=auth, timeout=15) as api:
        assert (
            api.post("/api/stations", json={"id": station, "name": "One", "slots": 6}).status_code
            == 201
        )
        for battery, extra in (
            (f"{station}-3", {"station_id": station, "slot": 1, "soc": 95, "soh": 90}),
            (f"{station}-7", {"soc": 90, "soh": 85}),
        ):
            created = api.post("/api/batteries", json={"id": battery, "capacity_ah": "30", **extra})
            assert created.status_code == 201, created.text
        user = api.post(
            "/api/users", json={"name": "Ines", "rfid_code": rfid, "battery_id": f"{station}-7"}
        )
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]

        replies: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"station-{station}")
        client.on_message = lambda _c, _u, m: replies.put((m.topic, json.loads(m.payload)))
        client.connect(mqtt_broker.host, mqtt_broker.port)
        client.loop_start()
        try:
            client.subscribe(f"bss/{station}/#", qos=1)
            time.sleep(0.3)

            def ask(topic: str, body: dict[str, Any], answer: str) -> dict[str, Any]:
                client.publish(f"bss/{station}/{topic}", json.dumps(body), qos=1)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    with contextlib.suppress(queue.Empty):
                        got_topic, got = replies.get(timeout=0.5)
                        if got_topic == f"bss/{station}/{answer}":
                            return got
                raise AssertionError(f"no reply on {answer}")

            stamp = "2025-07-14T10:30:00.123456Z"
            granted = ask(
                "user/auth/request", {"rfid": rfid, "timestamp": stamp}, "user/auth/response"
            )
            assert granted["status"] == "success"
            assert str(granted["user_id"]) == str(user_id)
            client.publish(
                f"bss/{station}/swap/initiate",
                json.dumps(
                    {
                        "user_id": granted["user_id"],
                        "battery_in_id": f"{station}-7",
                        "battery_in_health_status": "accepted",
                        "soc": 82,
                        "voltage": 52.3,
                        "temperature": 34.5,
                        "soh": 80,
                        "timestamp": stamp,
                    }
                ),
                qos=1,
            )
            confirmation = ask(
                "swap/activity",
                {
                    "battery_in_id": f"{station}-7",
                    "battery_out_id": f"{station}-3",
                    "user_id": granted["user_id"],
                    "battery_in_data": {"soc": 82, "soh": 80},
                    "battery_out_data": {"soc": 95, "soh": 90},
                    "status": "completed",
                    "timestamp": stamp,
                },
                "swap/confirmation",
            )
            assert confirmation["status"] == "success"
        finally:
            client.loop_stop()
            client.disconnect()

        deadline = time.monotonic() + 20
        while True:
            swap = api.get(f"/api/swaps/{confirmation['swap_id']}")
            # The session's row exists from the auth on; wait until the completion is projected.
            if swap.status_code == 200 and swap.json()["state"] == "complete":
                break
            assert time.monotonic() < deadline, swap.text
            time.sleep(0.2)
        body = swap.json()
        assert body["station_id"] == station
        assert body["issued_battery_id"] == f"{station}-3"
        assert body["returned_battery_id"] == f"{station}-7"
        assert body["state"] == "complete"
        assert body["energy_used_ah"] is not None
        battery = api.get(f"/api/batteries/{station}-3").json()
        assert battery["custody"]["kind"] == "rider"
        assert str(battery["custody"]["rider_id"]) == str(user_id)
        health = api.get("/api/health").json()
        assert health["database"] is True

"""`bss api` as its own process: tokens made with the CLI, health, and live SSE streams
derived from the stored events while MQTT ingest and projections run in another process
(this one). Swaps here come from the real MQTT ingest (v1 station messages)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from adapters.mqtt.ingest import Ingest, IngestConfig
from tests.integration.test_api_support import Projector, new_mysql_database, open_ledger, unique
from tests.support.cli import BSS, ROOT, bss
from tests.support.services import free_port


@dataclass
class ApiProcess:
    url: str
    env: dict[str, str]
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]

    def client(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=15, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )


@pytest.fixture(scope="module")
def db_url(mysql_url: str) -> Iterator[str]:
    url, drop = new_mysql_database(mysql_url)
    try:
        yield url
    finally:
        drop()


@pytest.fixture(scope="module")
def api_process(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    port = free_port()
    env = {
        **os.environ,
        "BSS_DATABASE_URL": db_url,
        "BSS_HTTP_HOST": "127.0.0.1",
        "BSS_HTTP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    bss(env, "db", "init")
    tokens = {}
    for role in ("admin", "operator", "auditor", "analyst"):
        out = bss(env, "tokens", "create", "--role", role, "--name", f"e2e {role}")
        tokens[role] = out.strip().splitlines()[-1]  # printed once, on the last line
        assert tokens[role].startswith("bss_")
    listed = bss(env, "tokens", "list")
    assert "e2e admin" in listed
    assert tokens["admin"] not in listed
    log = (tmp_path_factory.mktemp("api") / "api.log").open("wb")
    process = subprocess.Popen(
        [*BSS, "api"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                break
        assert process.poll() is None, "bss api exited"
        assert time.monotonic() < deadline, "bss api did not answer"
        time.sleep(0.2)
    try:
        yield ApiProcess(url, env, tokens, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_bss_api_serves_health_docs_and_tokens(api_process: ApiProcess) -> None:
    health = httpx.get(f"{api_process.url}/api/health").json()
    assert health["database"] is True
    assert health["status"] in ("ok", "degraded")
    assert httpx.get(f"{api_process.url}/docs").status_code == 200
    assert httpx.get(f"{api_process.url}/api/stations").status_code == 401
    with api_process.client("analyst") as c:
        assert c.get("/api/stations").status_code == 200
        assert c.post("/api/stations", json={"id": "x", "name": "x", "slots": 1}).status_code == 403
    out = bss(api_process.env, "tokens", "revoke", "e2e analyst")
    assert "revoked" in out
    time.sleep(2.3)
    with api_process.client("analyst") as c:
        assert c.get("/api/stations").status_code == 401


@dataclass
class Listener:
    """Reads one SSE stream on a thread and keeps its events."""

    url: str
    token: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    status: int | None = None

    def start(self) -> Listener:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(15), f"stream {self.url} did not start ({self.status})"
        return self

    def _run(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server went away at the end
            self._read()

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.stream("GET", self.url, headers=headers, timeout=30) as response:
            self.status = response.status_code
            name = None
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    if name == "ready":
                        self.ready.set()
                    else:
                        self.events.append({"event": name, **json.loads(line[6:])})

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def wait_for(self, event_type: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while event_type not in self.types():
            assert time.monotonic() < deadline, f"no {event_type} in {self.types()}"
            time.sleep(0.05)


class Station:
    """A v1 station on MQTT: publishes requests and collects the ledger's replies."""

    def __init__(self, host: str, port: int, station_id: str) -> None:
        self.station_id = station_id
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("st-"))
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.subscribe(f"bss/{station_id}/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        suffix = message.topic.split("/", 2)[2]
        with contextlib.suppress(ValueError):
            self.replies.setdefault(suffix, []).append(json.loads(message.payload))

    def send(
        self, suffix: str, body: dict[str, Any], reply: str | None, timeout: float = 15
    ) -> dict[str, Any] | None:
        seen = len(self.replies.get(reply or "", []))
        body = {**body, "timestamp": datetime.now(UTC).isoformat()}
        self.client.publish(f"bss/{self.station_id}/{suffix}", json.dumps(body), qos=1)
        if reply is None:
            return None
        deadline = time.monotonic() + timeout
        while len(self.replies.get(reply, [])) <= seen:
            assert time.monotonic() < deadline, f"no {reply}: {self.replies}"
            time.sleep(0.02)
        return self.replies[reply][seen]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_station_stream_carries_its_own_steps_and_nothing_of_another(
    api_process: ApiProcess, db_url: str, mqtt_broker: Any
) -> None:
    ledger = open_ledger(db_url)
    projector = Projector(ledger.store).start()
    ingest = Ingest(
        ledger,
        IngestConfig(
            host=mqtt_broker.host,
            port=mqtt_broker.port,
            client_id=unique("ingest-"),
            sweep_interval=0,
        ),
    )
    s1, s2 = unique("one-"), unique("two-")
    listeners: list[Listener] = []
    station = None
    try:
        with api_process.client() as admin:
            for sid in (s1, s2):
                assert (
                    admin.post(
                        "/api/stations", json={"id": sid, "name": sid, "slots": 4}
                    ).status_code
                    == 201
                )
            held, out, spare = unique("B"), unique("B"), unique("B")
            for bid, where in ((held, {}), (out, {"station_id": s1, "slot": 1}), (spare, {})):
                assert (
                    admin.post(
                        "/api/batteries",
                        json={"id": bid, "capacity_ah": 30, "soc": 96, "soh": 94, **where},
                    ).status_code
                    == 201
                )
            code = unique("RF").upper()
            user = admin.post(
                "/api/users", json={"name": "Ines", "rfid_code": code, "battery_id": held}
            ).json()
            # The stream starts where the live read models stand: let them catch up first.
            admin.get(f"/api/stations/{s1}", params={"after": user["position"]})
        ingest.start()
        base = f"{api_process.url}/api/stream"
        one = Listener(f"{base}?station={s1}", api_process.tokens["operator"]).start()
        two = Listener(f"{base}?station={s2}", api_process.tokens["operator"]).start()
        everything = Listener(f"{base}/all", api_process.tokens["auditor"]).start()
        listeners = [one, two, everything]

        station = Station(mqtt_broker.host, mqtt_broker.port, s1)
        auth = station.send("user/auth/request", {"rfid": code}, "user/auth/response")
        assert auth is not None
        assert auth["status"] == "success", auth
        station.send(
            "swap/initiate",
            {
                "user_id": int(user["id"]),
                "battery_in_id": held,
                "battery_in_health_status": "accepted",
                "soc": 30,
                "voltage": 52.1,
                "temperature": 31,
                "soh": 93,
            },
            None,
        )
        done = station.send(
            "swap/activity",
            {
                "battery_in_id": held,
                "battery_out_id": out,
                "user_id": int(user["id"]),
                "battery_in_data": {"soc": 30, "soh": 93},
                "battery_out_data": {"soc": 96, "soh": 94},
                "status": "completed",
            },
            "swap/confirmation",
        )
        assert done is not None
        assert done["status"] == "success", done

        one.wait_for("SwapSession.Completed")
        steps = one.types()
        for step in (
            "SwapSession.CardAuthorized",
            "Station.SessionOpened",
            "Battery.Issued",
            "Battery.Returned",
            "SwapSession.Completed",
        ):
            assert step in steps, steps
        assert all(e["station_id"] == s1 for e in one.events)
        authorized = next(e for e in one.events if e["type"] == "SwapSession.CardAuthorized")
        assert authorized["data"]["rfid_code"] != code  # operators see RFID codes masked
        everything.wait_for("SwapSession.Completed")
        time.sleep(0.5)
        assert two.events == [], two.types()  # nothing of station 1 on station 2's stream
        assert {e["station_id"] for e in everything.events} >= {s1}

        # Station 2's stream is alive: a change there reaches it, and not station 1's.
        before = len(one.events)
        with api_process.client() as admin:
            assert (
                admin.post(
                    f"/api/batteries/{spare}/dock", json={"station_id": s2, "slot": 2}
                ).status_code
                == 200
            )
        two.wait_for("Station.SlotFilled")
        time.sleep(0.3)
        assert len(one.events) == before
        # Each streamed event was already in the read models when it was sent.
        with api_process.client() as admin:
            swap_id = authorized["stream"].split(":", 1)[1]
            assert admin.get(f"/api/swaps/{swap_id}").json()["outcome"] == "completed"
    finally:
        for listener in listeners:
            listener.stop.set()
        if station is not None:
            station.close()
        ingest.stop()
        projector.stop()
        ledger.store.close()

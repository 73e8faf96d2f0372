"""Helpers of the MQTT ingest tests (no tests here): seeding, a station client, a v1 driver.

Shared by tests/integration/test_mqtt_*.py and tests/e2e/test_ingest_*.py (imported as
``tests.integration.test_mqtt_support``).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from adapters.mqtt.ingest import Ingest, IngestConfig
from adapters.store import Store
from adapters.store.schema import events
from domain.commands import RegisterBattery, RegisterRider, RegisterStation
from ledger.service import Ledger
from tests.support.cli import BssProcess
from tests.support.services import MqttBroker


def now() -> datetime:
    return datetime.now(UTC)


def stamp() -> str:
    """A station timestamp as the original firmware sends it (microseconds, ``Z``)."""
    return now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token(n: int = 4) -> str:
    return secrets.token_hex(n)


# --- seeding ------------------------------------------------------------------------------


def seed_station(
    ledger: Ledger,
    station_id: str,
    slots: int = 4,
    docked: dict[int, tuple[str, float, float]] | None = None,
) -> None:
    """A station, with batteries ``{slot: (battery_id, soc, soh)}`` docked."""
    ledger.execute(
        RegisterStation(
            occurred_at=now(), station_id=station_id, name=f"S{station_id}", slot_count=slots
        )
    )
    for slot, (battery_id, soc, soh) in (docked or {}).items():
        seed_battery(ledger, battery_id, soc, soh, station_id=station_id, slot=slot)


def seed_battery(
    ledger: Ledger,
    battery_id: str,
    soc: float = 50,
    soh: float = 85,
    station_id: str | None = None,
    slot: int | None = None,
) -> None:
    ledger.execute(
        RegisterBattery(
            occurred_at=now(),
            battery_id=battery_id,
            battery_type="LFP-48V",
            capacity_ah=Decimal("30"),
            manufactured_on="2024-01-01",
            station_id=station_id,
            slot=slot,
            soc=soc,
            soh=soh,
        )
    )


def seed_rider(
    ledger: Ledger, rider_id: str, rfid: str, battery_id: str | None, name: str = "Ines"
) -> None:
    """A rider with a card, holding ``battery_id`` (which must exist, not with a rider)."""
    ledger.execute(
        RegisterRider(
            occurred_at=now(),
            rider_id=rider_id,
            personal={"name": name},
            rfid_code=rfid,
            battery_id=battery_id,
        )
    )


def numeric_id() -> str:
    return str(secrets.randbelow(10**12) + 10**11)


@dataclass
class Fleet:
    """Stations, each with one rider holding a battery and one charged battery docked."""

    stations: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def seed(cls, ledger: Ledger, count: int, prefix: str | None = None) -> Fleet:
        prefix = prefix or f"F{token(3)}"
        fleet = cls()
        for i in range(count):
            station_id = f"{prefix}-{i}"
            held, docked = f"{station_id}-B1", f"{station_id}-B2"
            seed_station(ledger, station_id, 4, {1: (docked, 95, 90)})
            seed_battery(ledger, held, 40, 85)
            rider_id, rfid = numeric_id(), f"C{token(5)}"
            seed_rider(ledger, rider_id, rfid, held)
            fleet.stations[station_id] = {
                "rider": rider_id,
                "rfid": rfid,
                "held": held,
                "docked": docked,
            }
        return fleet


def completed_swaps(store: Store) -> int:
    """How many SwapSession.Completed events the store holds."""
    query = (
        select(func.count())
        .select_from(events)
        .where(events.c.topic.like("%SwapSession.Completed"))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def sessions_completed_more_than_once(store: Store) -> list[str]:
    query = (
        select(events.c.originator_id)
        .where(events.c.topic.like("%SwapSession.Completed"))
        .group_by(events.c.originator_id)
        .having(func.count() > 1)
    )
    with store.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(query)]


def completed_sessions(store: Store) -> set[str]:
    query = select(events.c.originator_id).where(events.c.topic.like("%SwapSession.Completed"))
    with store.engine.connect() as conn:
        return {str(r[0]).split(":", 1)[1] for r in conn.execute(query)}


# --- a station's side of MQTT -------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes

    @property
    def body(self) -> Any:
        return orjson.loads(self.payload)


class StationClient:
    """One MQTT connection that publishes as stations and records every reply it sees."""

    def __init__(
        self,
        host: str,
        port: int,
        filters: tuple[str, ...] = ("bss/+/#",),
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"station-{token()}")
        self.client.on_message = self._on_message
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.connect(host, port)
        self.client.loop_start()
        for topic_filter in filters:
            self.client.subscribe(topic_filter, qos=1)
        time.sleep(0.2)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(message.topic, bytes(message.payload)))
            self._cond.notify_all()

    def publish(self, topic: str, body: Any, qos: int = 1, retain: bool = False) -> None:
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def replies(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` messages on ``topic`` (AssertionError if they do not come)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if m.topic == topic]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(found)}/{count} messages on {topic}: {found}")
                self._cond.wait(remaining)

    def wait_for_count(
        self, count: int, match: Callable[[Received], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until ``count`` recorded messages satisfy ``match``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if match(m)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(found)}/{count} matching messages")
                self._cond.wait(remaining)

    def request(self, topic: str, body: Any, reply_topic: str, timeout: float = 10.0) -> Any:
        """Publish and return the body of the next reply on ``reply_topic``."""
        before = len(self.replies(reply_topic))
        self.publish(topic, body)
        return self.wait_for(reply_topic, before + 1, timeout)[-1].body

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def clear_retained_statuses(host: str, port: int, settle: float = 0.3) -> int:
    """Clear the retained station statuses (stations' wills) earlier tests left on the shared
    broker: an ingest receives every retained ``bss/+/station/status`` when it subscribes,
    and would record other tests' stations as rejected (unknown here). Returns how many."""
    found: set[str] = set()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"janitor-{token()}")
    client.on_message = lambda _c, _u, m: found.add(m.topic) if m.retain and m.payload else None
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe("bss/+/station/status", qos=1)
        time.sleep(settle)
        for topic in sorted(found):
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    return len(found)


@contextlib.contextmanager
def running_ingest(
    ledger: Ledger, host: str, port: int, processor: Any = None, **config: Any
) -> Iterator[Ingest]:
    """An Ingest with a client id of its own and a short-lived session (shared broker), started
    after the broker's retained station statuses of earlier tests are cleared. ``processor``:
    a DecidingProcess to decide in (default: a BatchProcessor in this process)."""
    clear_retained_statuses(host, port)
    config.setdefault("client_id", f"ingest-{token()}")
    config.setdefault("session_expiry", 120)
    config_ = IngestConfig(host=host, port=port, **config)
    ingest = Ingest(ledger, config_, processor=processor).start()
    try:
        yield ingest
    finally:
        ingest.stop()


# --- a v1 driver: many stations, swaps one after the other at each ----------------------


# Riders bring batteries back nearly full, so the returned battery is the next one issued
# (rule 5 needs a charged battery at the next auth, and the driver has no charger).
RETURN_SOC = 88


@dataclass
class _Station:
    station_id: str
    rider: str
    rfid: str
    held: str
    docked: str
    remaining: int
    step: str = "auth"
    topic: str = ""
    payload: bytes = b""
    timestamp: str = ""
    session: str = ""
    sent_at: float = 0.0
    resends: int = 0


class SwapDriver:
    """Runs ``swaps`` v1 swaps at every station of a Fleet (auth, initiate, activity, each
    after the previous reply). A request without a reply is sent again, byte for byte, after
    ``resend_after`` seconds (the ledger must answer a repeat with the original reply).
    Confirmed swap ids are collected in ``confirmed``; any other answer is a failure."""

    def __init__(
        self,
        host: str,
        port: int,
        fleet: Fleet,
        swaps: int,
        *,
        resend_after: float = 10.0,
        on_confirmed: Callable[[int], None] | None = None,
    ) -> None:
        self.stations = {
            sid: _Station(sid, s["rider"], s["rfid"], s["held"], s["docked"], swaps)
            for sid, s in fleet.stations.items()
        }
        self.resend_after = resend_after
        self.on_confirmed = on_confirmed
        self.confirmed: list[tuple[str, str]] = []
        self.failures: list[tuple[str, Any]] = []
        self.resends = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"driver-{token()}")
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.connect(host, port)
        self.client.loop_start()
        for reply in (
            "user/auth/response",
            "swap/decision",
            "swap/confirmation",
            "swap/error",
            "error",
        ):
            self.client.subscribe(f"bss/+/{reply}", qos=1)
        time.sleep(0.2)

    # --- the flow of one station ------------------------------------------------------------

    def _send(self, st: _Station, step: str) -> None:
        st.step, st.timestamp, st.resends = step, stamp(), 0
        user = int(st.rider)
        if step == "auth":
            st.topic = f"bss/{st.station_id}/user/auth/request"
            body: dict[str, Any] = {"rfid": st.rfid, "timestamp": st.timestamp}
        elif step == "initiate":
            st.topic = f"bss/{st.station_id}/swap/initiate"
            body = {
                "user_id": user,
                "battery_in_id": st.held,
                "battery_in_health_status": "accepted",
                "soc": RETURN_SOC,
                "voltage": 52.3,
                "temperature": 31.5,
                "soh": 85,
                "timestamp": st.timestamp,
            }
        else:
            st.topic = f"bss/{st.station_id}/swap/activity"
            body = {
                "battery_in_id": st.held,
                "battery_out_id": st.docked,
                "user_id": user,
                "battery_in_data": {"soc": RETURN_SOC, "soh": 85},
                "battery_out_data": {"soc": 95, "soh": 90},
                "status": "completed",
                "timestamp": st.timestamp,
            }
        st.payload = orjson.dumps(body)
        st.sent_at = time.monotonic()
        self.client.publish(st.topic, st.payload, qos=1)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/", 2)
        station_id, reply = parts[1], parts[2]
        with self._lock:
            st = self.stations.get(station_id)
            if st is None:
                return
            body = orjson.loads(message.payload)
            if reply == "error":
                self.failures.append((station_id, body))
                return
            if not self._current(st, reply, body):
                return  # a repeated reply to a request already answered
            expected = {
                "auth": "user/auth/response",
                "initiate": "swap/decision",
                "activity": "swap/confirmation",
            }[st.step]
            ok = body.get("status") in ("success", "accepted")
            if reply != expected or not ok:
                if reply == "swap/error" and st.step == "initiate":
                    return  # accompanies a refused decision, recorded there
                self.failures.append((station_id, body))
                st.remaining = 0
                self._check_done()
                return
            if st.step == "auth":
                st.session = body["sessionId"]
                self._send(st, "initiate")
            elif st.step == "initiate":
                self._send(st, "activity")
            else:
                self.confirmed.append((station_id, body["swap_id"]))
                st.held, st.docked = st.docked, st.held
                st.remaining -= 1
                if self.on_confirmed is not None:
                    self.on_confirmed(len(self.confirmed))
                if st.remaining > 0:
                    self._send(st, "auth")
                else:
                    st.step = "done"
                    self._check_done()

    @staticmethod
    def _current(st: _Station, reply: str, body: dict[str, Any]) -> bool:
        """Is this reply the answer to the station's outstanding request? Auth responses echo
        the request's timestamp; the others name the session."""
        if reply.endswith("auth/response"):
            return st.step == "auth" and body.get("timestamp") == st.timestamp
        if st.step == "auth":
            return False
        return body.get("session_id", body.get("swap_id", st.session)) == st.session

    def _check_done(self) -> None:
        if all(st.remaining <= 0 for st in self.stations.values()):
            self._done.set()

    # --- running ------------------------------------------------------------------------

    def run(self, timeout: float) -> None:
        with self._lock:
            for st in self.stations.values():
                self._send(st, "auth")
        deadline = time.monotonic() + timeout
        while not self._done.wait(0.5):
            if time.monotonic() > deadline:
                break
            self._resend_late()
        self.client.disconnect()
        self.client.loop_stop()

    def _resend_late(self) -> None:
        with self._lock:
            late = time.monotonic() - self.resend_after
            for st in self.stations.values():
                if st.remaining > 0 and st.step != "done" and st.sent_at < late:
                    self.client.publish(st.topic, st.payload, qos=1)
                    st.sent_at = time.monotonic()
                    st.resends += 1
                    self.resends += 1

    @property
    def expected(self) -> int:
        return len(self.confirmed) + sum(max(0, st.remaining) for st in self.stations.values())


# --- bss ingest as a process -------------------------------------------------------


class IngestProcess(BssProcess):
    """``bss ingest`` in a child process, logging to a file."""

    def __init__(self, database_url: str, broker: MqttBroker, log: Path, **options: str) -> None:
        env = {
            "BSS_DATABASE_URL": database_url,
            "MQTT_BROKER_HOST": broker.host,
            "MQTT_BROKER_PORT": str(broker.port),
        }
        args = ["ingest", "--session-expiry", "600", "--stats-interval", "5"]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", value]
        super().__init__(args, env, log)

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "subscribed to" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"bss ingest did not subscribe:\n{self.text()[-3000:]}")
            time.sleep(0.05)


# --- TLS -----------------------------------------------------------------------------------


def certificates(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``host`` signed by it: (ca, cert, key)."""
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def build(subject: str, issuer: x509.Name, key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - timedelta(minutes=5))
            .not_valid_after(now() + timedelta(days=1))
        )

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        build("ingest test CA", name("ingest test CA"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        build(host, ca.subject, server_key)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths

"""Station credentials on a real mosquitto: what `bss stations credentials` writes is enforced.

Each test starts a private mosquitto with the generated configuration (password file, ACL,
persistence, optionally TLS) and checks what a station may and may not do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import queue
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from adapters.mqtt.credentials import (
    BrokerOptions,
    TlsListener,
    hash_password,
    read_password_file,
    verify_password,
    write_credentials,
)
from tests.support.services import Mosquitto, find_binary, free_port

HOST = "127.0.0.1"


class Probe:
    """A paho client on its own network thread that records what happens to it."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        tls_ca: Path | None = None,
        tls_default_trust: bool = False,
    ) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}-{time.monotonic_ns()}"
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        elif tls_default_trust:
            self.client.tls_set()
        self.port = port
        self.connack: queue.Queue[Any] = queue.Queue()
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(list(codes))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))

    def connect(self, wait: float = 10.0) -> Any:
        """The CONNACK reason code (0 / "Success" when accepted); None when none came."""
        self.client.connect(HOST, self.port, keepalive=10)
        self.client.loop_start()
        try:
            return self.connack.get(timeout=wait)
        except queue.Empty:
            return None

    def subscribe(self, topic: str, qos: int = 1) -> Any:
        self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=10)[0]

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos).wait_for_publish(10)

    def received(self, wait: float = 1.0) -> list[tuple[str, bytes]]:
        got = []
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[Callable[..., Probe]]:
    made: list[Probe] = []

    def make(*args: Any, **kwargs: Any) -> Probe:
        probe = Probe(*args, **kwargs)
        made.append(probe)
        return probe

    yield make
    for probe in made:
        with contextlib.suppress(Exception):  # a refused connection has nothing to close
            probe.close()


def _secured(private_mosquitto: Callable[..., Mosquitto], **options: Any) -> tuple[Mosquitto, Any]:
    broker = private_mosquitto(config="", start=False)
    issued = write_credentials(
        broker.dir / "creds",
        ["A", "B"],
        options=BrokerOptions(port=broker.port, bind=HOST, **options),
    )
    broker.custom_config = issued.config.read_text()
    broker.start()
    return broker, issued


def _accepted(code: Any) -> bool:
    return code is not None and not getattr(code, "is_failure", bool(code))


def test_our_hash_format_is_mosquitto_passwd_s(tmp_path: Path) -> None:
    binary = find_binary("mosquitto_passwd")
    if binary is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(path), "alice", "s3cret"], check=True)
    theirs = read_password_file(path)["alice"]
    assert theirs.startswith("$7$101$")
    assert verify_password("s3cret", theirs)
    assert not verify_password("s3cret!", theirs)
    ours = hash_password("s3cret")
    assert ours.split("$")[:3] == theirs.split("$")[:3]
    assert verify_password("s3cret", ours)


def test_station_reaches_only_its_own_subtree(
    private_mosquitto: Callable[..., Mosquitto], probes: Callable[..., Probe]
) -> None:
    broker, issued = _secured(private_mosquitto)
    pw = issued.passwords
    ledger = probes(broker.port, "bss-ledger", pw["bss-ledger"])
    a = probes(broker.port, "A", pw["A"])
    b = probes(broker.port, "B", pw["B"])
    for probe in (ledger, a, b):
        assert _accepted(probe.connect())
    assert _accepted(ledger.subscribe("bss/+/#"))
    assert _accepted(b.subscribe("bss/B/#"))
    assert _accepted(a.subscribe("bss/A/#"))
    # A tries to read B's subtree and everyone's replies. mosquitto 2.0 grants such a
    # subscription and then checks read access per message: nothing of B's may arrive.
    a.subscribe("bss/B/#")
    a.subscribe("bss/+/user/auth/response")

    a.publish("bss/A/user/auth/request", b'{"rfid": "A1"}')
    a.publish("bss/B/user/auth/request", b'{"rfid": "forged"}')  # as if it were station B
    ledger.publish("bss/B/user/auth/response", b'{"status": "success"}')
    ledger.publish("bss/A/swap/initiate", b'{"forged": true}')  # the ledger cannot forge requests
    b.publish("bss/B/swap/initiate", b'{"from": "B"}')

    to_ledger = ledger.received()
    assert ("bss/A/user/auth/request", b'{"rfid": "A1"}') in to_ledger
    assert ("bss/B/user/auth/request", b'{"rfid": "forged"}') not in to_ledger
    assert ("bss/B/swap/initiate", b'{"from": "B"}') in to_ledger
    assert set(b.received(0.3)) == {
        ("bss/B/user/auth/response", b'{"status": "success"}'),
        ("bss/B/swap/initiate", b'{"from": "B"}'),
    }
    to_a = a.received(0.3)
    assert to_a == [("bss/A/user/auth/request", b'{"rfid": "A1"}')]  # its own, nothing else


def test_wrong_password_unknown_user_and_anonymous_are_refused(
    private_mosquitto: Callable[..., Mosquitto], probes: Callable[..., Probe]
) -> None:
    broker, issued = _secured(private_mosquitto)
    assert not _accepted(probes(broker.port, "A", issued.passwords["B"]).connect())
    assert not _accepted(probes(broker.port, "C", "whatever").connect())
    assert not _accepted(probes(broker.port, None, None).connect())
    assert _accepted(probes(broker.port, "A", issued.passwords["A"]).connect())


def test_rotation_keeps_other_stations_and_stores_no_clear_password(tmp_path: Path) -> None:
    first = write_credentials(tmp_path, ["1", "2"])
    again = write_credentials(tmp_path, ["2", "3"])
    assert set(first.passwords) == {"bss-ledger", "1", "2"}
    assert set(again.passwords) == {"2", "3"}  # the ledger keeps its password
    stored = read_password_file(tmp_path / "passwd")
    assert set(stored) == {"bss-ledger", "1", "2", "3"}
    assert verify_password(first.passwords["1"], stored["1"])
    assert verify_password(again.passwords["2"], stored["2"])
    assert not verify_password(first.passwords["2"], stored["2"])
    text = (tmp_path / "passwd").read_text()
    assert not any(p in text for p in (*first.passwords.values(), *again.passwords.values()))
    assert (tmp_path / "passwd").stat().st_mode & 0o077 == 0
    config = (tmp_path / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in config
    assert "max_queued_messages 100000" in config


def test_cli_prints_each_password_once(tmp_path: Path) -> None:
    from adapters.cli.main import app

    result = CliRunner().invoke(
        app, ["stations", "credentials", "--stations", "7,ST-0042", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if line and " " in line]
    printed = {parts[0]: parts[1] for parts in lines if len(parts) == 2}
    assert set(printed) >= {"bss-ledger", "7", "ST-0042"}
    stored = read_password_file(tmp_path / "passwd")
    assert all(verify_password(printed[user], stored[user]) for user in stored)
    bad = CliRunner().invoke(
        app, ["stations", "credentials", "--stations", "bss/+", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2


# -------------------------------------------------------------------------------------- TLS


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (made now, never
    committed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("bss test CA"))
        .issuer_name(name("bss test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def test_tls_listener_trusts_only_clients_that_trust_its_ca(
    private_mosquitto: Callable[..., Mosquitto], probes: Callable[..., Probe], tmp_path: Path
) -> None:
    ca, cert, key = _certificates(tmp_path / "pki")
    tls_port = free_port()
    _, issued = _secured(private_mosquitto, tls=TlsListener(tls_port, cert, key, bind=HOST))
    pw = issued.passwords["A"]

    trusting = probes(tls_port, "A", pw, tls_ca=ca)
    assert _accepted(trusting.connect())
    assert _accepted(trusting.subscribe("bss/A/#"))
    trusting.publish("bss/A/station/status", b'{"status": "online"}')
    assert trusting.received() == [("bss/A/station/status", b'{"status": "online"}')]

    with pytest.raises(ssl.SSLError):
        probes(tls_port, "A", pw, tls_default_trust=True).connect()  # system CAs only
    assert not _accepted(probes(tls_port, "A", pw).connect(wait=2))  # plain MQTT, TLS port


def test_cli_all_takes_every_registered_station(tmp_path: Path, sqlite_url: str) -> None:
    from datetime import UTC, datetime

    from adapters.cli.main import app
    from adapters.store import open_store
    from domain.commands import RegisterStation
    from ledger.service import Ledger

    store = open_store(sqlite_url, init=True)
    try:
        ledger = Ledger(store)
        for station_id in ("1", "2", "ST-0042"):
            ledger.execute(
                RegisterStation(
                    occurred_at=datetime.now(UTC), station_id=station_id, name=station_id,
                    slot_count=4,
                )
            )  # fmt: skip
    finally:
        store.close()
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        app, ["stations", "credentials", "--all", "--database-url", sqlite_url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    printed = {line.split()[0] for line in result.stdout.splitlines() if line.count(" ") == 1}
    assert printed == {"bss-ledger", "1", "2", "ST-0042"}
    assert set(read_password_file(out / "passwd")) == printed


def test_simulator_and_ingest_log_in_over_tls(
    private_mosquitto: Callable[..., Mosquitto], tmp_path: Path, sqlite_url: str
) -> None:
    """The whole station channel secured: stations log in with their own passwords over TLS,
    the ingest as the ledger's user; swaps go through. A wrong password stops the fleet."""
    from adapters.mqtt.ingest import Ingest, IngestConfig
    from adapters.mqtt.simulator import Simulator, SimulatorConfig, SimulatorError
    from adapters.store import open_store
    from ledger.service import Ledger

    ca, cert, key = _certificates(tmp_path / "pki")
    tls_port = free_port()
    broker = private_mosquitto(config="", start=False)
    issued = write_credentials(
        broker.dir / "creds",
        ["S1", "S2"],
        options=BrokerOptions(port=broker.port, bind=HOST, tls=TlsListener(tls_port, cert, key)),
    )
    broker.custom_config = issued.config.read_text()
    broker.start()
    store = open_store(sqlite_url, init=True)
    ledger = Ledger(store)
    ingest = Ingest(
        ledger,
        IngestConfig(
            host=HOST, port=tls_port, username="bss-ledger",
            password=issued.passwords["bss-ledger"], tls_ca_file=ca, session_expiry=5,
        ),
    ).start()  # fmt: skip
    try:
        config = SimulatorConfig(
            stations=2, riders=10, swaps=10, rate=0, seed=21, station_prefix="S",
            host=HOST, port=tls_port, tls_ca_file=ca, passwords=dict(issued.passwords),
        )  # fmt: skip
        summary = Simulator(config, ledger=ledger).run()
        assert summary.finished == 10
        assert not summary.errors, summary.errors
        assert summary.completed > 0
        wrong = SimulatorConfig(
            stations=2, riders=10, swaps=1, seed=21, station_prefix="S", host=HOST,
            port=tls_port, tls_ca_file=ca, passwords={"S1": "nope", "S2": "nope"},
        )  # fmt: skip
        with pytest.raises(SimulatorError):
            Simulator(wrong, ledger=ledger).run()
    finally:
        ingest.stop()
        store.close()

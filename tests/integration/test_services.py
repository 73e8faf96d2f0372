"""The test servers themselves: the fixtures of tests/conftest.py give working MariaDB and
mosquitto servers, and the private ones can be taken away and brought back.

If one of these fails, every other integration test would fail for the same reason: fix
this first (see docs/testing.md).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
import pymysql
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.services import MariaDB, Mosquitto, MqttBroker

# ------------------------------------------------------------------------------ helpers


def _wait_for(
    condition: Callable[[], bool], clients: Iterable[mqtt.Client], timeout: float = 10.0
) -> None:
    """Drive the clients' network loops from this thread until ``condition()`` holds."""
    clients = list(clients)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        for client in clients:
            client.loop(timeout=0.01)


def _client(client_id: str | None = None, clean_session: bool = True) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{secrets.token_hex(4)}",
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )


def _connect(client: mqtt.Client, host: str, port: int, timeout: float = 10.0) -> Any:
    """Connect and return the CONNACK reason code (a paho ``ReasonCode``)."""
    result: list[Any] = []
    client.on_connect = lambda _c, _u, _flags, rc, _props: result.append(rc)
    client.on_disconnect = lambda _c, _u, _flags, rc, _props: result.append(rc)
    client.connect(host, port, keepalive=30)
    _wait_for(lambda: bool(result), [client], timeout)
    return result[0]


def _subscribe(client: mqtt.Client, topic: str, qos: int = 1) -> Any:
    granted: list[Any] = []
    client.on_subscribe = lambda _c, _u, _mid, codes, _props: granted.extend(codes)
    client.subscribe(topic, qos=qos)
    _wait_for(lambda: bool(granted), [client])
    return granted[0]


# ---------------------------------------------------------------------------- MariaDB


def test_mysql_round_trip_with_pymysql(fresh_mysql_url: str) -> None:
    url = sa.engine.make_url(fresh_mysql_url)
    conn = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "",
        password=url.password or "",
        database=url.database or "",
        charset="utf8mb4",
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@character_set_database, @@collation_database")
            assert cur.fetchone() == ("utf8mb4", "utf8mb4_unicode_ci")
            cur.execute(
                "CREATE TABLE swap (id BIGINT PRIMARY KEY AUTO_INCREMENT, station VARCHAR(64))"
            )
            cur.execute(
                "INSERT INTO swap (station) VALUES (%s), (%s)", ("Zürich-Süd", "station 🔋 2")
            )
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT station FROM swap ORDER BY id")
            assert [row[0] for row in cur.fetchall()] == ["Zürich-Süd", "station 🔋 2"]
    finally:
        conn.close()


def test_shared_database_is_utf8mb4_through_sqlalchemy(mysql_url: str) -> None:
    assert mysql_url.startswith("mysql+pymysql://")
    assert mysql_url.endswith("charset=utf8mb4")
    engine = sa.create_engine(mysql_url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            charset = conn.execute(sa.text("SELECT @@character_set_database")).scalar_one()
            durable = conn.execute(sa.text("SELECT @@innodb_flush_log_at_trx_commit")).scalar()
        assert charset == "utf8mb4"
        assert durable == 1  # commits reach the disk: a killed server keeps them
    finally:
        engine.dispose()


def test_fresh_databases_are_distinct_and_empty(mysql_url: str, fresh_mysql_url: str) -> None:
    assert sa.engine.make_url(fresh_mysql_url).database != sa.engine.make_url(mysql_url).database
    engine = sa.create_engine(fresh_mysql_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_private_mariadb_stop_start_keeps_data_and_port(
    private_mariadb: Callable[..., MariaDB],
) -> None:
    server = private_mariadb()
    url_before = server.url
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.execute("INSERT INTO kept VALUES (1, 'before stop')")
        conn.commit()

    server.stop()
    assert not server.is_running
    with pytest.raises(pymysql.err.OperationalError):
        server.connect(connect_timeout=2)

    server.start()
    assert server.url == url_before  # same port, same credentials: clients keep their URL
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM kept")
        assert cur.fetchall() == (("before stop",),)

    server.pause()  # SIGSTOP: the kernel still accepts the TCP connection, nothing answers
    try:
        with pytest.raises(pymysql.err.OperationalError):
            # connect_timeout alone would wait forever for the greeting: read_timeout is needed
            server.connect(connect_timeout=1, read_timeout=1)
    finally:
        server.resume()
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM kept")
        assert cur.fetchone() == (1,)


def test_private_mariadb_keeps_committed_rows_after_kill(
    private_mariadb: Callable[..., MariaDB],
) -> None:
    server = private_mariadb()
    url = server.create_database("crash")
    assert url.endswith("/crash?charset=utf8mb4")
    with server.connect("crash") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ev (id INT PRIMARY KEY)")
        cur.executemany("INSERT INTO ev VALUES (%s)", [(i,) for i in range(100)])
        conn.commit()
    server.kill()  # SIGKILL: no orderly shutdown
    server.start()
    with server.connect("crash") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM ev")
        assert cur.fetchone() == (100,)


# -------------------------------------------------------------------------- mosquitto


def test_mqtt_qos1_publish_subscribe_round_trip(mqtt_broker: MqttBroker) -> None:
    topic = f"test/{secrets.token_hex(4)}/swap"
    received: list[mqtt.MQTTMessage] = []
    sub, pub = _client(), _client()
    sub.on_message = lambda _c, _u, msg: received.append(msg)
    try:
        assert _connect(sub, *mqtt_broker) == 0
        assert _subscribe(sub, topic, qos=1).value == 1  # granted QoS 1
        assert _connect(pub, *mqtt_broker) == 0
        info = pub.publish(topic, b'{"swap": 1}', qos=1)
        _wait_for(lambda: info.is_published() and bool(received), [pub, sub])
        assert received[0].topic == topic
        assert received[0].payload == b'{"swap": 1}'
        assert received[0].qos == 1
    finally:
        sub.disconnect()
        pub.disconnect()


def test_mqtt_queues_more_than_1000_qos1_messages_for_an_offline_subscriber(
    mqtt_broker: MqttBroker,
) -> None:
    """mosquitto's default max_queued_messages (1000) would silently drop most of these."""
    count = 3000
    topic = f"test/{secrets.token_hex(4)}/queued"
    client_id = f"slow-{secrets.token_hex(4)}"
    sub = _client(client_id, clean_session=False)
    assert _connect(sub, *mqtt_broker) == 0
    assert _subscribe(sub, topic, qos=1).value == 1
    sub.disconnect()

    pub = _client()
    assert _connect(pub, *mqtt_broker) == 0
    infos = [pub.publish(topic, str(i).encode(), qos=1) for i in range(count)]
    _wait_for(lambda: all(info.is_published() for info in infos), [pub], timeout=30)
    pub.disconnect()

    received: list[bytes | bytearray] = []
    sub = _client(client_id, clean_session=False)
    sub.on_message = lambda _c, _u, msg: received.append(msg.payload)
    try:
        assert _connect(sub, *mqtt_broker) == 0
        _wait_for(lambda: len(received) >= count, [sub], timeout=30)
        assert sorted(int(p) for p in received) == list(range(count))
    finally:
        sub.disconnect()
        cleaner = _client(client_id, clean_session=True)  # drop the persistent session
        _connect(cleaner, *mqtt_broker)
        cleaner.disconnect()


def test_private_mosquitto_with_password_file_refuses_a_wrong_password(
    private_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = private_mosquitto("password_file {dir}/passwd", start=False)
    broker.add_user("station-7", "right-password")
    broker.start()

    wrong = _client()
    wrong.username_pw_set("station-7", "wrong-password")
    assert _connect(wrong, broker.host, broker.port).is_failure

    anonymous = _client()
    assert _connect(anonymous, broker.host, broker.port).is_failure

    right = _client()
    right.username_pw_set("station-7", "right-password")
    try:
        assert _connect(right, broker.host, broker.port) == 0
    finally:
        right.disconnect()


def test_private_mosquitto_with_a_full_custom_config_and_acl(
    private_mosquitto: Callable[..., Mosquitto],
) -> None:
    config = "\n".join(
        [
            "listener {port} 127.0.0.1",
            "allow_anonymous true",
            "acl_file {dir}/acl",
            "max_queued_messages 100000",
            "log_dest stderr",
        ]
    )
    broker = private_mosquitto(config=config, start=False)
    broker.write_file("acl", "topic readwrite public/#\n")
    broker.start()

    received: list[str] = []
    client = _client()
    client.on_message = lambda _c, _u, msg: received.append(msg.topic)
    try:
        assert _connect(client, broker.host, broker.port) == 0
        _subscribe(client, "public/x")
        _subscribe(client, "secret/x")  # refused or never delivered: the ACL allows public/#
        client.publish("secret/x", b"no", qos=1)
        client.publish("public/x", b"yes", qos=1)
        _wait_for(lambda: "public/x" in received, [client])
        deadline = time.monotonic() + 0.3
        _wait_for(lambda: time.monotonic() > deadline, [client])
        assert received == ["public/x"]
    finally:
        client.disconnect()


def test_tests_here_are_marked_integration(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is not None

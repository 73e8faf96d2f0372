"""Fixtures shared by the whole suite: real servers and database URLs.

``./scripts/test`` starts one MariaDB and one mosquitto for the run and exports
``BSS_TEST_DATABASE_URL``, ``BSS_TEST_MQTT_HOST``, ``BSS_TEST_MQTT_PORT`` and
``BSS_REQUIRE_SERVICES=1``.  Without those variables (plain ``pytest``) the tests that need
the shared servers are skipped, with a message saying to run ./scripts/test; with
``BSS_REQUIRE_SERVICES=1`` they fail instead, so CI never passes by skipping.

Fixtures:
    mysql_url          session; URL of the shared database (mysql+pymysql://...?charset=utf8mb4)
    fresh_mysql_url    function; URL of a new empty utf8mb4 database, dropped afterwards
    mqtt_broker        session; MqttBroker(host, port) of the shared mosquitto
    sqlite_url         function; sqlite:/// URL of a file in tmp_path (not created)
    private_mariadb    function; factory: private_mariadb(**kw) -> started MariaDB
    private_mosquitto  function; factory: private_mosquitto(extra_config="", config=None)
                       -> started Mosquitto
Tests under tests/unit, tests/integration and tests/e2e get the marker of their folder
unless they carry one of unit/integration/e2e already.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.services import MariaDB, Mosquitto, MqttBroker, missing_binaries

_RUN_HINT = (
    "run ./scripts/test (it starts MariaDB and mosquitto and exports BSS_TEST_DATABASE_URL, "
    "BSS_TEST_MQTT_HOST and BSS_TEST_MQTT_PORT), e.g. ./scripts/test tests/integration -x"
)
_TIER_MARKERS = ("unit", "integration", "e2e")


def services_required() -> bool:
    return os.environ.get("BSS_REQUIRE_SERVICES") == "1"


def _unavailable(what: str) -> NoReturn:
    if services_required():
        pytest.fail(f"BSS_REQUIRE_SERVICES=1 but {what}; {_RUN_HINT}", pytrace=False)
    pytest.skip(f"{what}: {_RUN_HINT}")


# ------------------------------------------------------------------------------ markers


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            tier = item.path.relative_to(tests_dir).parts[0]
        except (ValueError, IndexError):
            continue
        if tier not in _TIER_MARKERS:
            continue
        if not any(item.get_closest_marker(name) for name in _TIER_MARKERS):
            item.add_marker(getattr(pytest.mark, tier))


# ----------------------------------------------------------------------- shared servers


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """The shared MariaDB database of this run (``BSS_TEST_DATABASE_URL``).

    Shared by every test of the session: create tables with unique names or use
    ``fresh_mysql_url`` for an empty database of your own.
    """
    url = os.environ.get("BSS_TEST_DATABASE_URL")
    if not url:
        _unavailable("BSS_TEST_DATABASE_URL is not set")
    return url


@pytest.fixture(scope="session")
def mqtt_broker() -> MqttBroker:
    """The shared mosquitto of this run: anonymous, no persistence, big queues."""
    host = os.environ.get("BSS_TEST_MQTT_HOST")
    port = os.environ.get("BSS_TEST_MQTT_PORT")
    if not host or not port:
        _unavailable("BSS_TEST_MQTT_HOST/BSS_TEST_MQTT_PORT are not set")
    return MqttBroker(host, int(port))


def _connect(url: str) -> Any:
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=10,
    )


@pytest.fixture
def fresh_mysql_url(mysql_url: str) -> Iterator[str]:
    """A new, empty utf8mb4 database on the shared server; dropped after the test.

    Connections that still use it at the end (an engine not disposed) are killed first, so
    the DROP cannot hang on a metadata lock.
    """
    from sqlalchemy.engine import make_url

    name = f"t_{secrets.token_hex(6)}"
    conn = _connect(mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        conn.close()
    try:
        yield make_url(mysql_url).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = _connect(mysql_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> "
                    "CONNECTION_ID()",
                    (name,),
                )
                for (thread_id,) in cur.fetchall():
                    with contextlib.suppress(Exception):
                        cur.execute(f"KILL {int(thread_id)}")
                cur.execute("SET SESSION lock_wait_timeout = 30")
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.fixture
def mariadb_ledger(fresh_mysql_url: str) -> Iterator[Any]:
    """A Ledger on a fresh database of the shared MariaDB (schema created); closed after."""
    from adapters.store import open_store
    from ledger.service import Ledger

    store = open_store(fresh_mysql_url, init=True)
    try:
        yield Ledger(store)
    finally:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///`` URL of a file (not yet created) in this test's tmp_path."""
    return f"sqlite:///{tmp_path / 'bss.sqlite'}"


# ---------------------------------------------------------------------- private servers


@pytest.fixture
def _private_dir(tmp_path: Path) -> tuple[Path, Path | None]:
    """Folder for private servers, and the pid file ./scripts/test stops leftovers from.

    Under ./scripts/test the folder is inside its services folder, so its trap stops (by
    pid) any private server a crashed test run left behind.
    """
    if missing_binaries():
        _unavailable(f"server binaries missing: {', '.join(missing_binaries())}")
    shared = os.environ.get("BSS_TEST_SERVICES_DIR")
    if shared and Path(shared).is_dir():
        return Path(tempfile.mkdtemp(prefix="private-", dir=shared)), Path(shared) / "pids"
    return tmp_path, None


@pytest.fixture
def private_mariadb(_private_dir: tuple[Path, Path | None]) -> Iterator[Callable[..., MariaDB]]:
    """Factory for a MariaDB server of the test's own (stopped and its data removed after).

    ``server = private_mariadb()`` is started; ``server.url`` is its database URL,
    ``server.create_database()`` makes another; ``server.stop()`` / ``server.start()``
    (same port and data), ``server.pause()`` / ``server.resume()`` (SIGSTOP/SIGCONT) and
    ``server.kill()`` take it away.  Keyword arguments go to ``MariaDB(...)``, e.g.
    ``options=["--wait-timeout=2"]``.
    """
    folder, registry = _private_dir
    servers: list[MariaDB] = []

    def make(**kwargs: Any) -> MariaDB:
        kwargs.setdefault("pid_registry", registry)
        server = MariaDB(folder, **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in reversed(servers):
        server.cleanup(remove_data=True)


@pytest.fixture
def private_mosquitto(
    _private_dir: tuple[Path, Path | None],
) -> Iterator[Callable[..., Mosquitto]]:
    """Factory for a mosquitto broker of the test's own (stopped after the test).

    ``private_mosquitto()`` gives the default anonymous broker;
    ``private_mosquitto("password_file {dir}/passwd")`` adds lines; ``config=...`` replaces
    the whole file ({port} and {dir} are filled in).  To prepare files before the start,
    pass ``start=False`` and call ``broker.add_user(...)`` / ``broker.write_file(...)`` and
    then ``broker.start()``.
    """
    folder, registry = _private_dir
    brokers: list[Mosquitto] = []

    def make(extra_config: str = "", *, start: bool = True, **kwargs: Any) -> Mosquitto:
        kwargs.setdefault("pid_registry", registry)
        broker = Mosquitto(folder, extra_config, **kwargs)
        brokers.append(broker)
        return broker.start() if start else broker

    yield make
    for broker in reversed(brokers):
        broker.cleanup()

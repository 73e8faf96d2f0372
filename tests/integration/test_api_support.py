"""Helpers for the API tests (no tests here): a database with schema and read models, the
projections running on a thread, tokens for every role, and an API client.

Imported by tests/integration/test_api*.py and tests/e2e/test_api*.py.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from adapters.http import create_app
from adapters.http.tokens import TokenStore
from adapters.store import Store, open_store
from ledger.service import Ledger

ROLES = ("admin", "operator", "auditor", "analyst")


def new_mysql_database(mysql_url: str) -> tuple[str, Any]:
    """A new empty utf8mb4 database on the shared server; returns its URL and a dropper."""
    import pymysql

    parsed = make_url(mysql_url)
    name = f"api_{secrets.token_hex(5)}"

    def connect() -> Any:
        return pymysql.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username,
            password=parsed.password or "",
            charset="utf8mb4",
            autocommit=True,
        )

    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()

    def drop() -> None:
        conn = connect()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> "
                "CONNECTION_ID()",
                (name,),
            )
            for (thread_id,) in cur.fetchall():
                with contextlib.suppress(Exception):
                    cur.execute(f"KILL {int(thread_id)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()

    return parsed.set(database=name).render_as_string(hide_password=False), drop


def open_ledger(url: str) -> Ledger:
    from readmodels.schema import create_all

    store = open_store(url, init=True)
    create_all(store.engine)
    return Ledger(store)


class Projector:
    """Every projection, applied on a background thread (like ``bss project``)."""

    def __init__(self, store: Store, interval: float = 0.02) -> None:
        from projections import make
        from projections.runner import Worker

        self.store = store
        self.workers = [Worker(store, p) for p in make()]
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        self.paused = threading.Event()
        self.halted = threading.Event()  # set while paused, once no step is in flight

    def step_all(self) -> int:
        read = 0
        for worker in self.workers:
            read += worker.step().read
        return read

    def catch_up(self) -> None:
        for worker in self.workers:
            worker.catch_up()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                self.halted.set()
                time.sleep(self.interval)
                continue
            self.halted.clear()
            try:
                if self.step_all() == 0:
                    time.sleep(self.interval)
            except Exception as error:  # keep going; the test sees it in .errors
                self.errors.append(error)
                time.sleep(0.1)

    def pause(self) -> None:
        """Stop applying events (returns once no batch is in flight)."""
        self.paused.set()
        assert self.halted.wait(10)

    def start(self) -> Projector:
        self._thread = threading.Thread(target=self._run, name="projector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@dataclass
class Api:
    """An app over a fresh database, tokens for every role, and a client per role."""

    ledger: Ledger
    app: FastAPI
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    projector: Projector | None = None

    def headers(self, role: str | None = "admin", **extra: str) -> dict[str, str]:
        found = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return {**found, **extra}

    def call(self, method: str, path: str, role: str | None = "admin", **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, role: str | None = "admin", **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, role, **kwargs)

    def post(self, path: str, json: Any = None, role: str | None = "admin", **kw: Any) -> Any:
        return self.call("POST", path, role, json=json, **kw)

    def put(self, path: str, json: Any = None, role: str | None = "admin", **kw: Any) -> Any:
        return self.call("PUT", path, role, json=json, **kw)

    def ok(self, response: httpx.Response, status: int | tuple[int, ...] = (200, 201)) -> Any:
        wanted = (status,) if isinstance(status, int) else status
        assert response.status_code in wanted, (response.status_code, response.text)
        return response.json()

    def settle(self) -> None:
        """Wait until the projections have applied everything written so far."""
        assert self.projector is not None
        head = self.ledger.recorder.head()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all((w.position or 0) >= head for w in self.projector.workers):
                return
            time.sleep(0.01)
        raise AssertionError(f"projections did not reach {head}: {self.projector.errors}")


@contextlib.contextmanager
def running_api(url: str, *, project: bool = True) -> Iterator[Api]:
    ledger = open_ledger(url)
    tokens = TokenStore(ledger.store.engine)
    made = {role: tokens.create(role, f"test-{role}")[1] for role in ROLES}
    projector = Projector(ledger.store).start() if project else None
    app = create_app(ledger, tokens=tokens)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(ledger, app, client, made, projector)
    finally:
        if projector is not None:
            projector.stop()
        ledger.store.close()


@pytest.fixture(scope="module")
def mysql_api(mysql_url: str) -> Iterator[Api]:
    """One API on its own MariaDB database for a whole test module (projections running)."""
    url, drop = new_mysql_database(mysql_url)
    try:
        with running_api(url) as api:
            yield api
    finally:
        drop()


def unique(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(4)}"

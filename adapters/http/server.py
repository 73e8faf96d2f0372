"""Running the API under uvicorn: in the foreground (``bss api``) or on a thread beside
ingest and projections (``bss serve``, ``bss demo``, tests)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from adapters.http.app import create_app
from adapters.http.state import ApiOptions
from ledger.service import Ledger
from ledger.settings import Settings


@dataclass
class ApiServer:
    """A running API: its URL, the app, and how to stop it."""

    server: uvicorn.Server
    app: Any
    ledger: Ledger
    thread: threading.Thread | None = None
    owns_store: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        config = self.server.config
        port = config.port
        if self.server.started and self.server.servers:
            sockets = self.server.servers[0].sockets
            if sockets:
                port = sockets[0].getsockname()[1]
        return f"http://{config.host}:{port}"

    def wait(self) -> None:
        """Block until the server stops (foreground use)."""
        if self.thread is not None:
            self.thread.join()

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        if self.owns_store:
            self.ledger.store.close()


def open_ledger(settings: Settings) -> Ledger:
    """A ledger on the configured database, schema created or upgraded first."""
    from adapters.store import open_store

    store = open_store(settings.database_url, init=True)
    _init_read_models(store)
    return Ledger(store, cache_size=settings.cache_size)


def _init_read_models(store: Any) -> None:
    try:
        from readmodels.schema import create_all
    except ModuleNotFoundError:
        return
    create_all(store.engine)


def start_api(
    settings: Settings,
    ledger: Ledger | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    options: ApiOptions | None = None,
    ingest_status: Callable[[], dict[str, Any]] | None = None,
    background: bool = False,
    log_level: str = "info",
    access_log: bool = False,
) -> ApiServer:
    """Serve the API on ``host:port`` (default BSS_HTTP_HOST / BSS_HTTP_PORT; port 0 picks a
    free one). With ``background`` it runs on a daemon thread and this returns once it
    accepts connections; otherwise it blocks until the server stops (Ctrl-C)."""
    owns = ledger is None
    ledger = ledger or open_ledger(settings)
    app = create_app(ledger, options=options, ingest_status=ingest_status)
    config = uvicorn.Config(
        app,
        host=host or settings.http_host,
        port=settings.http_port if port is None else port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    handle = ApiServer(server=server, app=app, ledger=ledger, owns_store=owns)
    if not background:
        try:
            server.run()
        finally:
            if owns:
                ledger.store.close()
        return handle
    # uvicorn installs signal handlers only on the main thread, so a thread is fine.
    handle.thread = threading.Thread(target=server.run, name="bss-api", daemon=True)
    handle.thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not handle.thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on {config.host}:{config.port}")
        time.sleep(0.02)
    return handle


def options_from_env() -> ApiOptions:
    """ApiOptions from BSS_METRICS_PUBLIC and BSS_READ_CACHE_SECONDS (for worker processes)."""
    public = os.environ.get("BSS_METRICS_PUBLIC", "").lower() in ("1", "true", "yes", "on")
    cache = float(os.environ.get("BSS_READ_CACHE_SECONDS", "0.02"))
    return ApiOptions(metrics_public=public, read_cache_seconds=cache)


def app_from_settings() -> Any:
    """The app factory each uvicorn worker process calls (``bss api --workers N``)."""
    from ledger.settings import get_settings

    return create_app(open_ledger(get_settings()), options=options_from_env())


def run_workers(
    settings: Settings, workers: int, host: str | None, port: int | None, access_log: bool = False
) -> None:
    """Serve with ``workers`` processes sharing the port (each its own ledger, cache, hub)."""
    uvicorn.run(
        "adapters.http.server:app_from_settings",
        factory=True,
        host=host or settings.http_host,
        port=settings.http_port if port is None else port,
        workers=workers,
        access_log=access_log,
        timeout_graceful_shutdown=3,
    )

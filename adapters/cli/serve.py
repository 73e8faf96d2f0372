"""``bss serve``: ingest, projections and the HTTP API in one process (a small site).

Each part also runs alone (``bss ingest``, ``bss project``, ``bss api``) to scale them
separately; here they share one store, one ledger and one aggregate cache.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import typer

from ledger.settings import get_settings

log = logging.getLogger("bss.serve")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    database_url: str | None = typer.Option(
        None, "--database-url", help="Event store URL (default: BSS_DATABASE_URL)."
    ),
    http_host: str | None = typer.Option(None, help="API host (default: BSS_HTTP_HOST)."),
    http_port: int | None = typer.Option(None, help="API port (default: BSS_HTTP_PORT, 5000)."),
    mqtt: bool = typer.Option(True, help="Run the MQTT ingest (--no-mqtt: API + projections)."),
    projections: bool = typer.Option(True, help="Run the projections."),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Run the MQTT ingest, the projections and the HTTP API together until Ctrl-C."""
    from adapters.http.server import start_api
    from adapters.store import open_store
    from ledger.service import Ledger
    from readmodels.schema import create_all

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    updates: dict[str, Any] = {}
    if database_url:
        updates["database_url"] = database_url
    if http_host:
        updates["http_host"] = http_host
    if http_port is not None:
        updates["http_port"] = http_port
    settings = settings.model_copy(update=updates)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    store = open_store(settings.database_url, init=True)
    create_all(store.engine)
    ledger = Ledger(store, cache_size=settings.cache_size)
    parts: list[Any] = []
    try:
        ingest = None
        if mqtt:
            from adapters.mqtt.deciding import for_settings
            from adapters.mqtt.ingest import Ingest, IngestConfig

            config = IngestConfig.from_settings(settings)
            processor = for_settings(settings, store)
            ingest = Ingest(ledger, config, processor=processor).start(wait=None)
            parts.append(ingest)
            log.info(
                "ingest on %s:%s%s",
                settings.mqtt_broker_host,
                settings.mqtt_broker_port,
                " (deciding in a child process)" if processor is not None else "",
            )
        if projections:
            from projections.supervisor import Supervisor

            parts.append(Supervisor(store).start())
            log.info("projections running")
        api = start_api(
            settings,
            ledger,
            background=True,
            ingest_status=ingest.status if ingest is not None else None,
        )
        parts.append(api)
        log.info("API on %s (OpenAPI at %s/docs); %s", api.url, api.url, store.url)
        stop.wait()
    finally:
        for part in reversed(parts):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %r failed", part)
        store.close()

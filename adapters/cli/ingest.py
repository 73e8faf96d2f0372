"""``bss ingest``: the MQTT ingest alone (station messages → ledger), until SIGINT/SIGTERM.

Settings come from the environment (ledger.settings: BSS_DATABASE_URL, MQTT_BROKER_HOST,
MQTT_BROKER_PORT, BSS_MQTT_USERNAME/PASSWORD, BSS_MQTT_TLS_*, BSS_MQTT_CLIENT_ID,
BSS_MQTT_SHARED_GROUP); options override them. The schema is created when the database is
empty; a schema at an older revision is left alone (run ``bss db init`` to upgrade it).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import typer

from ledger.settings import get_settings

if TYPE_CHECKING:
    from adapters.store import Store

log = logging.getLogger("bss.ingest")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    database_url: str | None = typer.Option(
        None, "--database-url", help="Event store URL (default: BSS_DATABASE_URL)."
    ),
    host: str | None = typer.Option(None, help="Broker host (default: MQTT_BROKER_HOST)."),
    port: int | None = typer.Option(None, help="Broker port (default: MQTT_BROKER_PORT)."),
    client_id: str | None = typer.Option(
        None, help="Fixed MQTT client id of the persistent session (BSS_MQTT_CLIENT_ID)."
    ),
    shared_group: str | None = typer.Option(
        None, help="Subscribe as $share/<group>/... (BSS_MQTT_SHARED_GROUP)."
    ),
    protocol: str | None = typer.Option(
        None, help="MQTT protocol: 5 or 3.1.1 (default: BSS_MQTT_PROTOCOL, else 5)."
    ),
    session_expiry: int | None = typer.Option(
        None, help="MQTT 5 session expiry in seconds (default: the session never expires)."
    ),
    batch_max: int | None = typer.Option(
        None, help="Most messages in one transaction (default 500)."
    ),
    deciding: str | None = typer.Option(
        None,
        help="Where to decide and commit: process (a child process: receiving and deciding "
        "get a core each), thread, or auto (process on MySQL/MariaDB, thread on SQLite). "
        "Default: BSS_INGEST_DECIDING, else auto.",
    ),
    sweep_interval: float = typer.Option(
        5.0, help="Seconds between session timeout sweeps (0: no sweeps)."
    ),
    init_schema: bool = typer.Option(
        True, help="Create the schema when the database is empty (never upgrades one)."
    ),
    metrics_port: int = typer.Option(
        0, help="Serve Prometheus metrics on this port (0: not served)."
    ),
    stats_interval: float = typer.Option(30.0, help="Seconds between stats log lines."),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Run the MQTT ingest: subscribe to the stations' topics and record their messages."""
    from adapters.mqtt.deciding import for_settings
    from adapters.mqtt.ingest import Ingest, IngestConfig
    from adapters.store import open_store
    from ledger.service import Ledger

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if protocol not in (None, "5", "3.1.1"):
        raise typer.BadParameter("protocol must be 5 or 3.1.1")
    if deciding not in (None, "auto", "process", "thread"):
        raise typer.BadParameter("deciding must be auto, process or thread")
    settings = get_settings()
    overrides: dict[str, object] = {"sweep_interval": sweep_interval}
    for name, value in (
        ("batch_max", batch_max),
        ("protocol", protocol),
        ("host", host),
        ("port", port),
        ("client_id", client_id),
        ("shared_group", shared_group),
        ("session_expiry", session_expiry),
    ):
        if value is not None:
            overrides[name] = value
    config = IngestConfig.from_settings(settings, **overrides)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the batch in progress", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    store = open_store(database_url or settings.database_url)
    try:
        if not _schema_ready(store, init_schema, stop):
            return
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr=settings.http_host)
        ledger = Ledger(store, cache_size=settings.cache_size)
        processor = for_settings(settings, store, deciding)
        runner = Ingest(ledger, config, processor=processor).start(wait=None)
        log.info(
            "ingest %s on %s:%s%s -> %s%s",
            config.client_id,
            config.host,
            config.port,
            f" (shared group {config.shared_group})" if config.shared_group else "",
            store.url,
            " (deciding in a child process)" if processor is not None else "",
        )
        last = time.monotonic()
        while not stop.wait(0.5):
            if stats_interval and time.monotonic() - last >= stats_interval:
                last = time.monotonic()
                log.info("stats %s", runner.stats.as_dict())
        runner.stop()
        log.info("stopped; stats %s", runner.stats.as_dict())
    finally:
        store.close()


def _schema_ready(store: Store, init_schema: bool, stop: threading.Event) -> bool:
    """Wait for the database; create the schema if it is empty and allowed to."""
    from adapters.mqtt.ingest import is_database_error
    from adapters.store.migrate import current_revision, head_revision, upgrade

    engine = store.engine
    delay = 0.5
    while not stop.is_set():
        try:
            revision = current_revision(engine)
            if revision is None and init_schema:
                upgrade(engine)
                log.info("created the schema (revision %s)", head_revision())
            elif revision is None:
                log.error("the database has no schema: run `bss db init` first")
                return False
            elif revision != head_revision():
                log.warning(
                    "schema at %s, newest is %s: run `bss db init`", revision, head_revision()
                )
            return True
        except Exception as error:
            if not is_database_error(error):
                raise
            log.warning("database unavailable (%s); trying again in %.1fs", error, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return False

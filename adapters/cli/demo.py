"""``bss demo``: the whole system on one machine, with nothing installed beyond pip.

What runs (all stopped cleanly by Ctrl-C, children included):

- the event store and read models in an SQLite file in the working folder (the settings'
  default, ``bss-ledger.sqlite``); running the demo again resumes from it;
- an embedded MQTT broker (iotcore, a child process; see adapters/mqtt/broker.py for why
  iotcore and not amqtt);
- the MQTT ingest (``adapters.mqtt.ingest.Ingest``) on that broker;
- the projections and the HTTP API (its OpenAPI page at /docs);
- a fleet of simulated stations (``bss simulate``) at a gentle pace, v2 and v1 firmware mixed.

See docs/demo.md.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from ledger.settings import Settings, get_settings

console = Console(stderr=True)
log = logging.getLogger("bss.demo")

DEMO_FOLDER = ".bss-demo"  # the broker's config and log, next to the database file


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    stations: int = typer.Option(6, help="Simulated stations."),
    riders: int = typer.Option(60, help="Simulated riders."),
    rate: float = typer.Option(1.0, help="Rider visits per second, whole fleet."),
    seed: int = typer.Option(1, help="Seed of the simulated fleet (keep it to resume)."),
    dialect: str = typer.Option("mixed", help="Station firmware: v1, v2 or mixed."),
    duration: float = typer.Option(0.0, help="Stop after this many seconds (0: at Ctrl-C)."),
    broker_port: int | None = typer.Option(
        None, help="Port of the embedded broker (default MQTT_BROKER_PORT, else a free one)."
    ),
    http_port: int | None = typer.Option(None, help="HTTP port (default BSS_HTTP_PORT)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Default: an SQLite file in the working folder."
    ),
    api: bool = typer.Option(True, help="Serve the HTTP API (OpenAPI page at /docs)."),
) -> None:
    """Run the ledger, an embedded broker, the ingest, the API and a simulated fleet."""
    from adapters.mqtt.broker import BrokerError, EmbeddedBroker, free_port, port_free

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    updates: dict[str, Any] = {"database_url": database_url or settings.database_url}
    if http_port is not None:
        updates["http_port"] = http_port
    port = broker_port if broker_port is not None else settings.mqtt_broker_port
    if broker_port is None and not port_free(port):
        console.print(f"[yellow]port {port} is taken; the embedded broker takes another[/yellow]")
        port = free_port()
    updates.update(mqtt_broker_host="127.0.0.1", mqtt_broker_port=port)
    settings = settings.model_copy(update=updates)

    folder = _data_folder(settings.database_url)
    broker = EmbeddedBroker(folder / DEMO_FOLDER, port)
    parts = _Parts()
    try:
        try:
            broker.start(wait=False)  # the child starts while the database opens
            parts.open(settings)
            broker.wait_ready()
        except BrokerError as error:
            console.print(f"[red]embedded broker: {error}[/red]")
            raise typer.Exit(1) from None
        parts.start(settings, api)
        _run_fleet(settings, parts, broker, stations, riders, rate, seed, dialect, duration)
    finally:
        parts.stop()
        broker.stop()
    console.print(
        f"stopped. Run [bold]bss demo[/bold] again to resume from {_where(settings)}; "
        "delete that file to start over."
    )


def _data_folder(database_url: str) -> Path:
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        return Path(database_url.removeprefix("sqlite:///")).resolve().parent
    return Path.cwd()


def _where(settings: Settings) -> str:
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class _Parts:
    """The ledger, the ingest, the projections and the API, started and stopped in order."""

    def __init__(self) -> None:
        self.store: Any = None
        self.ledger: Any = None
        self.ingest: Any = None
        self.projections: Any = None
        self.api: Any = None
        self.api_url: str | None = None
        self.api_note = ""

    def open(self, settings: Settings) -> None:
        from adapters.store import open_store
        from ledger.service import Ledger

        self.store = open_store(settings.database_url, init=True)
        with contextlib.suppress(ModuleNotFoundError):
            from readmodels.schema import create_all

            create_all(self.store.engine)
        self.ledger = Ledger(self.store, cache_size=settings.cache_size)

    def start(self, settings: Settings, api: bool) -> None:
        from adapters.mqtt.ingest import Ingest, IngestConfig

        config = IngestConfig.from_settings(
            settings,
            # rumqttd's MQTT 5 listener is not the one DESIGN.md's broker tests passed
            protocol="3.1.1",
            client_id="bss-demo-ingest",
            username=None,
            password=None,
            tls_ca_file=None,
            tls_cert_file=None,
            tls_key_file=None,
            shared_group=None,
        )
        self.ingest = Ingest(self.ledger, config).start(wait=15)
        self._start_projections()
        if api:
            self._start_api(settings)
        else:
            self.api_note = "not started (--no-api)"

    def _start_projections(self) -> None:
        try:
            from projections.supervisor import Supervisor
        except ModuleNotFoundError:
            return
        self.projections = Supervisor(self.store).start()

    def _start_api(self, settings: Settings) -> None:
        """The API beside everything else. ``adapters.cli.serve.start_api(settings)`` is the
        hook ``bss serve`` provides; until it exists, adapters.http.server's ``start_api``
        (made for ``bss serve`` and ``bss demo``) serves it on a thread."""
        try:
            try:
                from adapters.cli.serve import start_api as hook  # type: ignore[attr-defined]

                self.api = hook(settings)
            except (ModuleNotFoundError, ImportError):
                from adapters.http.server import start_api

                self.api = start_api(
                    settings,
                    self.ledger,
                    background=True,
                    ingest_status=self.ingest.status if self.ingest is not None else None,
                    log_level="warning",
                )
        except ModuleNotFoundError:
            self.api_note = "not in this build"
            return
        except Exception as error:  # a taken port must not stop the rest of the demo
            self.api_note = f"did not start: {error}"
            return
        url = getattr(self.api, "url", None) or f"http://{settings.http_host}:{settings.http_port}"
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.api_url = f"http://{_browser_host(host)}:{port}"

    def stop(self) -> None:
        """Simulator already stopped: let the ingest finish, then stop the rest."""
        if self.ingest is not None:
            self.ingest.wait_idle(timeout=5)
        for part in (self.api, self.projections, self.ingest):
            if part is not None and hasattr(part, "stop"):
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %r failed", part)
        if self.store is not None:
            self.store.close()


def _browser_host(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host  # noqa: S104


def _run_fleet(
    settings: Settings,
    parts: _Parts,
    broker: Any,
    stations: int,
    riders: int,
    rate: float,
    seed: int,
    dialect: str,
    duration: float,
) -> None:
    from adapters.cli.simulate import progress_view
    from adapters.mqtt.simulator import Simulator, SimulatorConfig, SimulatorError

    config = SimulatorConfig.from_settings(
        settings,
        stations=stations,
        riders=riders,
        swaps=0,
        rate=rate,
        seed=seed,
        dialect=dialect,
        telemetry_interval=20.0,
        heartbeat_interval=15.0,
    )
    try:
        config.validate()
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    sim = Simulator(config, ledger=parts.ledger)
    sim.prepare()
    _banner(settings, parts, broker, sim)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        sim.stop()

    previous = signal.signal(signal.SIGTERM, on_signal)
    timer = threading.Timer(duration, sim.stop) if duration > 0 else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        with Live(console=console, auto_refresh=False) as live:

            def tick(running: Simulator) -> None:
                live.update(_progress(running, parts, progress_view), refresh=True)

            sim.on_tick = tick
            summary = sim.run()
    except SimulatorError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        if timer is not None:
            timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    console.line()
    console.print(summary.table("Demo summary"))


def _progress(sim: Any, parts: _Parts, progress_view: Any) -> Group:
    stats = parts.ingest.stats if parts.ingest is not None else None
    line = Text("ingest: ", style="bold")
    if stats is not None:
        line.append(
            f"{stats.committed} messages committed, {stats.rejected} rejected, "
            f"{stats.duplicates} duplicates, queue {stats.queued}"
        )
    return Group(progress_view(sim), line)


def _banner(settings: Settings, parts: _Parts, broker: Any, sim: Any) -> None:
    from collections import Counter

    s = sim.summary
    counts = Counter(spec.dialect for spec in sim.world.stations)
    dialects = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    api = parts.api_url or f"[dim]{parts.api_note or 'not available'}[/dim]"
    lines = [
        "[bold]BSS swap ledger demo[/bold]  (Ctrl-C stops everything; run again to resume)",
        f"  database   {_where(settings)}",
        f"  broker     mqtt://127.0.0.1:{broker.port}  (embedded iotcore, pid {broker.pid}; "
        f"log {broker.log_path})",
        f"  API        {api}  (OpenAPI page: /docs; a token: bss tokens create --role admin "
        "--name me)",
        f"  stations   {sim.config.stations} ({dialects}), {sim.config.riders} riders, "
        f"{sim.config.rate:g} visits/s; registered {s.registered} new, "
        f"{s.already_registered} already there",
        "  watch      mosquitto_sub -h 127.0.0.1 -p "
        f"{broker.port} -t 'bss/#' -v   (if you have mosquitto-clients)",
    ]
    for line in lines:
        console.print(line)

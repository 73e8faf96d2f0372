"""``bss simulate``: a fleet of simulated stations talking to the ledger over MQTT."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from ledger.settings import get_settings

if TYPE_CHECKING:
    from adapters.mqtt.simulator import Simulator, SimulatorConfig, Summary

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    stations: int = typer.Option(10, help="Stations in the fleet."),
    riders: int = typer.Option(100, help="Riders (each holds one battery)."),
    swaps: int = typer.Option(100, help="Rider visits to make (0: until Ctrl-C)."),
    rate: float = typer.Option(5.0, help="Visits started per second (0: back to back)."),
    seed: int = typer.Option(1, help="Seed of the fleet and of every draw."),
    dialect: str = typer.Option("v2", help="Station firmware: v1, v2 or mixed."),
    faults: bool = typer.Option(
        False, "--faults", help="Duplicate publications and lost replies (stations re-send)."
    ),
    fault_rate: float = typer.Option(0.1, help="With --faults: share of visits hit by each."),
    slots: int = typer.Option(12, help="Slots per station."),
    charge_rate: float = typer.Option(5.0, help="SOC percent per second while docked."),
    reply_timeout: float = typer.Option(3.0, help="Seconds before a request is sent again."),
    telemetry_interval: float = typer.Option(10.0, help="Seconds between readings (v2)."),
    heartbeat_interval: float = typer.Option(15.0, help="Seconds between heartbeats (v2)."),
    host: str | None = typer.Option(None, help="Broker host (default: MQTT_BROKER_HOST)."),
    port: int | None = typer.Option(None, help="Broker port (default: MQTT_BROKER_PORT)."),
    passwords: Path | None = typer.Option(
        None, help="Station passwords, 'user password' per line (from bss stations credentials)."
    ),
    tls_ca: Path | None = typer.Option(None, help="CA file (default: BSS_MQTT_TLS_CA_FILE)."),
    tls_cert: Path | None = typer.Option(None, help="Client certificate (BSS_MQTT_TLS_CERT_FILE)."),
    tls_key: Path | None = typer.Option(None, help="Client key (BSS_MQTT_TLS_KEY_FILE)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Where to register the fleet (default: BSS_DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress."),
) -> None:
    """Register a fleet (idempotently) and run it: riders tap cards, return batteries, swap.

    Stations, batteries, riders and cards are made from the seed and registered through the
    ledger with keys derived from it, so a second run with the same seed registers nothing
    and resumes from where the batteries are. Ctrl-C stops cleanly with a summary.
    """
    from adapters.mqtt.credentials import read_passwords
    from adapters.mqtt.simulator import SimulatorConfig, SimulatorError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    overrides: dict[str, object] = {
        "stations": stations,
        "riders": riders,
        "swaps": swaps,
        "rate": rate,
        "seed": seed,
        "dialect": dialect,
        "faults": faults,
        "fault_rate": fault_rate,
        "slots": slots,
        "charge_rate": charge_rate,
        "reply_timeout": reply_timeout,
        "telemetry_interval": telemetry_interval,
        "heartbeat_interval": heartbeat_interval,
    }
    for name, value in (
        ("host", host),
        ("port", port),
        ("tls_ca_file", tls_ca),
        ("tls_cert_file", tls_cert),
        ("tls_key_file", tls_key),
        ("database_url", database_url),
    ):
        if value is not None:
            overrides[name] = value
    if passwords is not None:
        overrides["passwords"] = read_passwords(passwords)
    config = SimulatorConfig.from_settings(settings, **overrides)
    try:
        config.validate()
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        summary = run_with_progress(config, quiet=quiet or as_json)
    except SimulatorError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        console.print(summary.table("Simulation summary"))


def progress_view(sim: Simulator) -> Group:
    s = sim.summary
    refused = sum(s.refused.values())
    errors = sum(s.errors.values())
    quota = f"/{sim.config.swaps}" if sim.config.swaps else ""
    auth = s.latency["auth"].samples[-2000:]
    ordered = sorted(auth)
    p50 = ordered[len(ordered) // 2] * 1000 if ordered else 0.0
    p95 = ordered[int(len(ordered) * 0.95)] * 1000 if ordered else 0.0
    line = Text.assemble(
        ("visits ", "bold"),
        f"{s.finished}{quota}  ",
        ("completed ", "bold"),
        (str(s.completed), "green"),
        "  ",
        ("refused ", "bold"),
        (str(refused), "yellow"),
        "  ",
        ("errors ", "bold"),
        (str(errors), "red"),
        f"  {sim.recent_rate():.1f} swaps/s  auth p50 {p50:.1f} ms p95 {p95:.1f} ms",
    )
    top = ", ".join(f"{r} {n}" for r, n in s.refused.most_common(4))
    return Group(line, Text(f"refusals: {top}" if top else "", style="dim"))


@contextlib.contextmanager
def _stop_on_sigterm(sim: Simulator) -> Iterator[None]:
    """SIGTERM stops the fleet like Ctrl-C: visits in progress finish, stations say goodbye."""

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        sim.stop()

    try:
        previous = signal.signal(signal.SIGTERM, on_signal)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_with_progress(config: SimulatorConfig, *, quiet: bool = False) -> Summary:
    """Run the simulator in this thread, with a live line of progress unless ``quiet``."""
    from adapters.mqtt.simulator import Simulator

    if quiet:
        sim = Simulator(config)
        with _stop_on_sigterm(sim):
            return sim.run()
    console.print(
        f"registering {config.stations} stations and {config.riders} riders (seed {config.seed})"
    )
    with contextlib.ExitStack() as stack:
        live = stack.enter_context(Live(console=console, auto_refresh=False, transient=False))

        def tick(sim: Simulator) -> None:
            live.update(progress_view(sim), refresh=True)

        sim = Simulator(config, on_tick=tick)
        stack.enter_context(_stop_on_sigterm(sim))
        sim.prepare()
        console.print(
            f"registered {sim.summary.registered} new, {sim.summary.already_registered} already "
            f"there; {config.stations} stations connecting to {config.host}:{config.port}"
        )
        summary = sim.run()
    console.line()
    return summary

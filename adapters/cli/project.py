"""``bss project`` (the projections alone, until SIGINT/SIGTERM) and ``bss replay ...``
(rebuild read models into new tables and switch to them, verify, status).

The database comes from BSS_DATABASE_URL (or ``--database-url``). Read model tables are
created when missing (``readmodels.create_all``, idempotent); the event store's schema is
``bss db init``'s job.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from ledger.settings import get_settings

if TYPE_CHECKING:
    from adapters.store import Store

log = logging.getLogger("bss.project")
console = Console()

replay_app = typer.Typer(
    help="Rebuild, verify and inspect the read models from the stored events.",
    no_args_is_help=True,
)

URL_OPTION = typer.Option(None, "--database-url", help="Database URL (default: BSS_DATABASE_URL).")


def register(app: typer.Typer) -> None:
    app.command("project")(project)
    app.add_typer(replay_app, name="replay")


def _open(url: str | None) -> Store:
    from adapters.store import open_store
    from adapters.store.migrate import current_revision
    from readmodels.schema import create_all

    store = open_store(url or get_settings().database_url)
    if current_revision(store.engine) is None:
        store.close()
        console.print("[red]the database has no event store: run `bss db init` first[/red]")
        raise typer.Exit(2)
    create_all(store.engine)
    return store


def project(
    only: list[str] = typer.Option(
        None, "--only", "-m", help="Run only these read models (repeatable; default: all)."
    ),
    database_url: str | None = URL_OPTION,
    batch_size: int | None = typer.Option(
        None, help="Events per transaction (default: 500 on SQLite, 5000 on MySQL)."
    ),
    interval: float = typer.Option(0.2, help="Seconds between polls when idle."),
    status_interval: float = typer.Option(30.0, help="Seconds between status log lines."),
    metrics_port: int = typer.Option(
        0, help="Serve Prometheus metrics on this port (0: not served)."
    ),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Run the projections (every read model, or --only NAME ...) until Ctrl-C or SIGTERM."""
    from projections.status import projection_status
    from projections.supervisor import Supervisor
    from replay.rebuild import LEAN_GC

    gc.set_threshold(*LEAN_GC)  # a process of its own: batches allocate many small objects
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping after the batches in progress", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    store = _open(database_url)
    try:
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr=get_settings().http_host)
        supervisor = Supervisor(store, only or None, interval=interval, batch_size=batch_size)
        supervisor.start()
        log.info("projections %s running on %s", ", ".join(supervisor.names), store.url)
        last = time.monotonic()
        while not stop.wait(0.5):
            if status_interval and time.monotonic() - last >= status_interval:
                last = time.monotonic()
                for item in projection_status(store, supervisor):
                    if item["name"] in supervisor.names:
                        log.info(
                            "%s g%s at %s (lag %s) %s restarts=%s",
                            item["name"],
                            item["generation"],
                            item["position"],
                            item["lag"],
                            item.get("state"),
                            item.get("restarts"),
                        )
        supervisor.stop()
        log.info("stopped")
    finally:
        store.close()


@replay_app.command("rebuild")
def rebuild_command(
    names: list[str] = typer.Argument(None, help="Read models to rebuild (default: all)."),
    database_url: str | None = URL_OPTION,
    batch_size: int | None = typer.Option(
        None, help="Events per batch (default: 500 on SQLite, 20000 on MySQL)."
    ),
    keep_old: bool = typer.Option(False, help="Keep the old tables (retired) after the switch."),
    grace: float = typer.Option(
        2.0, help="Seconds between the switch and dropping the old tables."
    ),
) -> None:
    """Rebuild read models from the events into new tables and switch to them atomically;
    queries keep answering from the old tables until the switch."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from replay.rebuild import rebuild

    store = _open(database_url)
    head = store.recorder.head()
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("[bold]rebuild"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} events/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("rebuild", total=head, rate="-")

            def progress(position: int, now_head: int) -> None:
                rate = position / max(time.perf_counter() - started, 1e-9)
                bar.update(
                    task, completed=position, total=max(now_head, position), rate=f"{rate:,.0f}"
                )

            results = rebuild(
                store,
                names or None,
                batch_size=batch_size,
                progress=progress,
                keep_old=keep_old,
                grace=grace,
            )
        elapsed = time.perf_counter() - started
        for r in results:
            console.print(
                f"{r.model}: generation {r.old_generation} -> {r.new_generation} at {r.position}"
                f" ({r.events:,} events applied{', resumed' if r.resumed else ''})"
            )
        console.print(
            f"rebuilt {len(results)} read model(s) from {head:,} events in {elapsed:.1f}s "
            f"({head / max(elapsed, 1e-9):,.0f} events/s)"
        )
    finally:
        store.close()


@replay_app.command("verify")
def verify_command(
    names: list[str] = typer.Argument(None, help="Read models to verify (default: all)."),
    database_url: str | None = URL_OPTION,
) -> None:
    """Build the read models afresh beside the live ones and compare them row for row (run it
    when the projections have caught up and nothing appends)."""
    from replay.verify import verify

    store = _open(database_url)
    try:
        report = verify(store, names or None, grace=0.0)
    finally:
        store.close()
    bad = {model: diffs for model, diffs in report.items() if diffs}
    for model in report:
        console.print(f"{model}: {'[red]DIFFERS[/red]' if model in bad else 'equal'}")
        for line in bad.get(model, []):
            console.print(f"  {line}", markup=False)
    if bad:
        raise typer.Exit(1)


@replay_app.command("status")
def status_command(database_url: str | None = URL_OPTION) -> None:
    """Each read model's active generation, position, lag, and any rebuild in progress."""
    from rich.table import Table

    from projections.status import projection_status

    store = _open(database_url)
    try:
        rows = projection_status(store)
    finally:
        store.close()
    table = Table("read model", "generation", "position", "lag", "rebuilding", "outdated")
    for item in rows:
        building = item["rebuilding"]
        table.add_row(
            item["name"],
            str(item["generation"]),
            f"{item['position']:,}",
            f"{item['lag']:,}",
            "-" if building is None else f"g{building['generation']} at {building['position']:,}",
            "yes" if item["outdated"] else "no",
        )
    console.print(table)

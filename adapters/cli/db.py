"""``bss db``: create or upgrade the schema, and show where the store stands."""

from __future__ import annotations

import typer
from rich.console import Console

from ledger.settings import get_settings

app = typer.Typer(help="The event store's schema.", no_args_is_help=True)
console = Console()


@app.command("init")
def init(
    url: str | None = typer.Option(None, "--url", help="Database URL (default: BSS_DATABASE_URL)."),
) -> None:
    """Create or upgrade the schema of the event store and the read models (idempotent)."""
    from adapters.store import open_store
    from adapters.store.migrate import upgrade

    store = open_store(url or get_settings().database_url)
    try:
        before, after = upgrade(store.engine)
        _init_read_models(store)
    finally:
        store.close()
    if before == after:
        console.print(f"schema already at revision {after} ({store.url})")
    else:
        console.print(f"schema upgraded {before or 'empty'} -> {after} ({store.url})")


def _init_read_models(store: object) -> None:
    """Read model tables are created by their own package when it is installed."""
    try:
        from readmodels.schema import create_all
    except ModuleNotFoundError:
        return
    create_all(store.engine)  # type: ignore[attr-defined]


@app.command("status")
def status(url: str | None = typer.Option(None, "--url")) -> None:
    """Show the schema revision, the log's head and each projection's position."""
    from adapters.store import open_store
    from adapters.store.migrate import current_revision, head_revision

    store = open_store(url or get_settings().database_url)
    try:
        console.print(f"database: {store.url}")
        console.print(f"schema: {current_revision(store.engine)} (newest {head_revision()})")
        console.print(f"events: {store.recorder.head()}")
        for name, position in sorted(store.recorder.tracking_positions().items()):
            console.print(f"  projection {name}: {position}")
    finally:
        store.close()

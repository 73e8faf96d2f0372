"""The ``bss`` command: one typer app; each area of the system adds its own commands."""

from __future__ import annotations

import typer

from adapters.cli import db

app = typer.Typer(
    name="bss",
    help="BSS swap ledger: an event-sourced ledger for battery swapping stations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.command()
def version() -> None:
    """Print the version of the ledger and of its main libraries."""
    from importlib.metadata import version as v

    from rich.console import Console

    console = Console()
    console.print(f"bss-ledger {v('bss-ledger')}")
    for lib in ("eventsourcing", "eventsourcing-sqlalchemy", "sqlalchemy", "paho-mqtt", "fastapi"):
        console.print(f"  {lib} {v(lib)}", style="dim")


app.add_typer(db.app, name="db")


# Each area of the system owns one module here with a ``register(app)`` function that adds its
# commands (a typer sub-app or plain commands). Missing modules are skipped, so areas can land
# one at a time.
AREA_MODULES = (
    "adapters.cli.project",  # bss project, bss replay ...
    "adapters.cli.ingest",  # bss ingest
    "adapters.cli.stations",  # bss stations credentials ...
    "adapters.cli.simulate",  # bss simulate
    "adapters.cli.api",  # bss api, bss tokens ...
    "adapters.cli.serve",  # bss serve
    "adapters.cli.demo",  # bss demo
)


def _register_optional() -> None:
    import importlib

    for module_name in AREA_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(app)


_register_optional()

if __name__ == "__main__":
    app()

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


def _register_optional() -> None:
    """Areas built in their own modules join the app here."""
    import importlib

    for module_name, attr, name in (
        ("adapters.cli.stations", "app", "stations"),
        ("adapters.cli.tokens", "app", "tokens"),
        ("adapters.cli.replay", "app", "replay"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        app.add_typer(getattr(module, attr), name=name)
    try:
        run = importlib.import_module("adapters.cli.run")
    except ModuleNotFoundError as error:
        if error.name != "adapters.cli.run":
            raise
    else:
        run.register(app)


_register_optional()

if __name__ == "__main__":
    app()

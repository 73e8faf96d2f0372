"""``bss replay ...`` on a SQLite file: rebuild (with its progress and summary), status,
verify; and ``bss project`` / ``bss replay`` are registered on the ``bss`` command."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from adapters.cli.main import app
from adapters.store import open_store
from bench.fleet import Fleet, drive
from ledger.service import Ledger
from projections import make
from projections.runner import Worker
from readmodels.generations import read_active
from readmodels.schema import create_all


def filled(url: str) -> None:
    store = open_store(url, init=True)
    try:
        create_all(store.engine)
        ledger = Ledger(store)
        fleet = Fleet(stations=2, slots=4, batteries=10, riders=5, seed=2, swap_weight=0.2)

        def execute(cmds: list[Any]) -> list[Any]:
            return ledger.execute_many([(cmd, None) for cmd in cmds])

        drive(fleet, execute, fleet.setup(), commands=10**9, batch=20)
        drive(fleet, execute, fleet.actions(), commands=300, batch=20)
        for projection in make():
            Worker(store, projection).catch_up()
    finally:
        store.close()


def test_the_commands_are_registered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "project" in result.output
    assert "replay" in result.output


def test_rebuild_status_and_verify(sqlite_url: str) -> None:
    filled(sqlite_url)
    runner = CliRunner()
    url = ["--database-url", sqlite_url]
    rebuilt = runner.invoke(app, ["replay", "rebuild", "swaps", "riders", "--grace", "0", *url])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "swaps: generation 1 -> 2" in rebuilt.output
    assert "rebuilt 2 read model(s)" in rebuilt.output
    store = open_store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            active = read_active(conn)
    finally:
        store.close()
    assert (active["swaps"], active["riders"], active["health"]) == (2, 2, 1)
    status = runner.invoke(app, ["replay", "status", *url])
    assert status.exit_code == 0, status.output
    assert "swaps" in status.output
    verified = runner.invoke(app, ["replay", "verify", *url])
    assert verified.exit_code == 0, verified.output
    assert verified.output.count("equal") == 8


def test_commands_refuse_a_database_without_an_event_store(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = CliRunner().invoke(app, ["replay", "status", "--database-url", url])
    assert result.exit_code == 2
    assert "bss db init" in result.output

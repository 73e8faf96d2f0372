"""``bss project`` as a real process on MariaDB: kill -9 in the middle of a long catch-up,
more commands meanwhile, restart as two processes racing on every projection, and every read
model ends equal, row for row, to a fresh rebuild (nothing missing, nothing doubled);
SIGTERM stops them cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.store import Store, open_store
from adapters.store.schema import events as events_table
from bench.fleet import Fleet, drive
from ledger.service import Ledger
from projections import NAMES
from projections.status import projection_status
from readmodels.generations import read_active
from readmodels.schema import create_all, model_tables
from replay.rebuild import drop_generation, rebuild
from replay.verify import differences
from tests.support.cli import BssProcess


class ProjectProcess(BssProcess):
    """``bss project`` in a child process, logging to a file."""

    def __init__(self, database_url: str, log: Path, *args: str) -> None:
        args_ = ["project", "--status-interval", "1", *args]
        super().__init__(args_, {"BSS_DATABASE_URL": database_url}, log)


@pytest.fixture
def store(fresh_mysql_url: str) -> Iterator[Store]:
    opened = open_store(fresh_mysql_url, init=True)
    create_all(opened.engine)
    try:
        yield opened
    finally:
        opened.close()


def positions(store: Store) -> dict[str, int]:
    return {s["name"]: s["position"] for s in projection_status(store)}


def wait_for(condition: Any, timeout: float, what: str, process: ProjectProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not process.alive():
            raise AssertionError(f"bss project exited:\n{process.text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{process.text()[-3000:]}")
        time.sleep(0.05)


def test_kill_9_mid_catch_up_and_restart(
    store: Store, fresh_mysql_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(store)
    fleet = Fleet(stations=20, slots=8, batteries=200, riders=80, seed=21, swap_weight=0.08)

    def execute(cmds: list[Any]) -> list[Any]:
        return ledger.execute_many([(cmd, None) for cmd in cmds])

    actions = fleet.actions()
    drive(fleet, execute, fleet.setup(), commands=10**9, batch=200)
    drive(fleet, execute, actions, commands=14_000, batch=200)
    head = store.recorder.head()
    assert head > 20_000

    log = tmp_path / "project.log"
    first = ProjectProcess(fresh_mysql_url, log, "--batch-size", "50")
    second: ProjectProcess | None = None
    third: ProjectProcess | None = None
    try:
        wait_for(lambda: min(positions(store).values()) > 2_000, 120, "a good start", first)
        first.kill()
        at_kill = positions(store)
        assert min(at_kill.values()) < head, "caught up before the kill: nothing was tested"
        drive(fleet, execute, actions, commands=1_000, batch=100)  # life goes on meanwhile
        head = store.recorder.head()
        second = ProjectProcess(fresh_mysql_url, log, "--batch-size", "500")
        third = ProjectProcess(fresh_mysql_url, tmp_path / "third.log", "--batch-size", "300")
        wait_for(lambda: min(positions(store).values()) >= head, 240, "the catch-up", second)
        assert third.alive()
        assert second.terminate() == 0
        assert third.terminate() == 0
        assert "stopped" in second.text()
        assert "Traceback" not in second.text() + third.text()
    finally:
        first.ensure_stopped()
        for process in (second, third):
            if process is not None:
                process.ensure_stopped()

    with store.engine.connect() as conn:
        active = read_active(conn)
        readings = conn.execute(
            select(func.count())
            .select_from(events_table)
            .where(events_table.c.topic.like("%Battery.HealthRecorded"))
        ).scalar()
        health = model_tables("health", active["health"])["readings"]
        stored = conn.execute(select(func.count()).select_from(health)).scalar()
    assert stored == readings  # one row per reading: none missing, none doubled
    fresh = rebuild(store, switch=False)
    try:
        found = {
            r.model: differences(store.engine, r.model, active[r.model], r.new_generation)
            for r in fresh
        }
    finally:
        for r in fresh:
            drop_generation(store, r.model, r.new_generation)
    assert found == {model: [] for model in NAMES}

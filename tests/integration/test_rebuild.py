"""Rebuilds on the real MariaDB and on SQLite: a rebuilt read model equals the live one row
for row, queries keep answering while it is built and across the switch, the live runner
follows the switch, and an interrupted rebuild resumes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect

from adapters.store import Store, open_store
from bench.fleet import Fleet, drive
from domain import commands as c
from ledger.service import Ledger
from projections import NAMES, make
from projections.runner import Worker
from projections.status import projection_status
from projections.supervisor import Supervisor
from readmodels import analytics, batteries, billing, health, riders, stations, swaps
from readmodels.generations import ACTIVE, read_active
from readmodels.schema import create_all, registered_generations
from replay.rebuild import drop_generation, rebuild
from replay.verify import differences


@pytest.fixture(params=["mariadb", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("fresh_mysql_url" if request.param == "mariadb" else "sqlite_url")
    opened = open_store(url, init=True)
    create_all(opened.engine)
    yield opened
    ACTIVE.invalidate(opened.engine)
    opened.close()


class Traffic:
    """A fleet sending commands through the ledger."""

    def __init__(self, store: Store, seed: int = 3) -> None:
        self.ledger = Ledger(store)
        self.fleet = Fleet(
            stations=4, slots=6, batteries=36, riders=14, seed=seed, swap_weight=0.15
        )
        self.actions = self.fleet.actions()
        self.run(self.fleet.setup(), 10**9)

    def execute(self, cmds: list[c.Command]) -> list[Any]:
        return self.ledger.execute_many([(cmd, None) for cmd in cmds])

    def run(self, planned: Iterator[Any], commands: int, batch: int = 50) -> None:
        drive(self.fleet, self.execute, planned, commands=commands, batch=batch)

    def more(self, commands: int, batch: int = 50) -> None:
        self.run(self.actions, commands, batch)


def active(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return read_active(conn)


def catch_up(store: Store) -> None:
    for projection in make():
        Worker(store, projection).catch_up()


def test_a_rebuilt_read_model_equals_the_live_one_row_for_row(store: Store) -> None:
    traffic = Traffic(store)
    traffic.more(1500)
    catch_up(store)
    before = active(store)
    results = rebuild(store, keep_old=True, grace=0)
    after = active(store)
    assert {r.model for r in results} == set(NAMES)
    for result in results:
        assert after[result.model] == result.new_generation == before[result.model] + 1
        assert result.position == store.recorder.head()
        assert (
            differences(store.engine, result.model, before[result.model], after[result.model]) == []
        )
    states = {(g["model"], g["generation"]): g["state"] for g in registered_generations_of(store)}
    assert states[("swaps", before["swaps"])] == "retired"
    assert states[("swaps", after["swaps"])] == "active"


def registered_generations_of(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return registered_generations(conn)


def test_old_tables_are_dropped_after_the_switch(store: Store) -> None:
    Traffic(store).more(100)
    catch_up(store)
    before = active(store)
    rebuild(store, ["riders"], grace=0.05)
    tables = set(inspect(store.engine).get_table_names())
    assert f"rm_riders_g{before['riders']}" not in tables
    assert f"rm_riders_g{before['riders'] + 1}" in tables
    assert f"rm:riders:g{before['riders']}" not in store.recorder.tracking_positions()
    with pytest.raises(Exception, match="active"):
        drop_generation(store, "riders", before["riders"] + 1)


def test_queries_answer_during_a_rebuild_and_the_live_runner_follows_the_switch(
    store: Store,
) -> None:
    traffic = Traffic(store)
    traffic.more(1200)
    before = active(store)
    supervisor = Supervisor(store, interval=0.05, batch_size=100).start()
    stop = threading.Event()
    answered: list[int] = []
    errors: list[BaseException] = []

    def keep_querying() -> None:
        engine = store.engine
        while not stop.is_set():
            try:
                swaps.list_swaps(engine, limit=20)
                riders.list_riders(engine, limit=20)
                batteries.list_batteries(engine, limit=20)
                stations.get_station(engine, traffic.fleet.id("st", 1))
                health.health_history(engine, traffic.fleet.id("bat", 1), limit=5)
                analytics.station_hourly(engine, traffic.fleet.id("st", 2))
                billing.list_bills(engine, limit=5)
                answered.append(1)
            except BaseException as error:
                errors.append(error)
            time.sleep(0.02)

    def keep_commanding() -> None:
        try:
            for _ in range(60):  # a steady trickle while the rebuild runs
                if stop.is_set():
                    return
                traffic.more(5, batch=5)
                time.sleep(0.02)
        except BaseException as error:
            errors.append(error)

    readers = [threading.Thread(target=keep_querying) for _ in range(2)]
    writer = threading.Thread(target=keep_commanding)
    for thread in [*readers, writer]:
        thread.start()
    during: list[int] = []

    def before_switch() -> None:
        # Everything is built; the old generation is still the one queries read.
        assert active(store) == before
        during.append(len(answered))

    try:
        assert supervisor.wait_caught_up(60)
        rebuild(store, batch_size=300, grace=0.6, before_switch=before_switch)
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join()
        for thread in readers:
            thread.join()
    try:
        assert supervisor.wait_caught_up(60)
        status = {s["name"]: s for s in supervisor.status()}
    finally:
        supervisor.stop()
    assert errors == []
    assert during
    assert during[0] > 0
    assert len(answered) > during[0]
    after = active(store)
    assert all(after[m] == before[m] + 1 for m in NAMES)
    assert all(status[m]["generation"] == after[m] and status[m]["restarts"] == 0 for m in NAMES)
    # The live runner went on from where the rebuild switched: same rows as a fresh build.
    fresh = rebuild(store, switch=False)
    try:
        for result in fresh:
            assert (
                differences(store.engine, result.model, after[result.model], result.new_generation)
                == []
            )
    finally:
        for result in fresh:
            drop_generation(store, result.model, result.new_generation)


def test_an_interrupted_rebuild_resumes_where_it_stopped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.swaps import SwapsProjection

    traffic = Traffic(store)
    traffic.more(1500)
    catch_up(store)
    before = active(store)
    original = SwapsProjection.apply

    class Interrupted(Exception):
        pass

    def crash_half_way(self: Any, event: Any, uow: Any, position: int) -> None:
        if position > store.recorder.head() // 2:
            raise Interrupted
        original(self, event, uow, position)

    monkeypatch.setattr(SwapsProjection, "apply", crash_half_way)
    with pytest.raises(Interrupted):
        rebuild(store, ["swaps", "stations"], batch_size=200)
    monkeypatch.setattr(SwapsProjection, "apply", original)
    status = {s["name"]: s for s in projection_status(store)}
    building = status["swaps"]["rebuilding"]
    assert building is not None
    assert 0 < building["position"] < store.recorder.head()
    assert active(store) == before
    traffic.more(200)
    catch_up(store)
    results = rebuild(store, ["swaps", "stations"], batch_size=200, grace=0)
    assert all(r.resumed for r in results)
    assert all(r.new_generation == before[r.model] + 1 for r in results)
    fresh = rebuild(store, ["swaps", "stations"], switch=False)
    try:
        for result in fresh:
            assert (
                differences(
                    store.engine, result.model, active(store)[result.model], result.new_generation
                )
                == []
            )
    finally:
        for result in fresh:
            drop_generation(store, result.model, result.new_generation)


def test_a_rebuild_in_two_processes_equals_the_live_one(fresh_mysql_url: str) -> None:
    store = open_store(fresh_mysql_url, init=True)
    try:
        create_all(store.engine)
        Traffic(store).more(1500)
        catch_up(store)
        before = active(store)
        reported: list[tuple[int, int]] = []
        results = rebuild(
            store,
            processes=2,
            keep_old=True,
            grace=0,
            progress=lambda position, head: reported.append((position, head)),
        )
        after = active(store)
        for result in results:
            assert result.events > 0 or result.model == "rejected"
            assert (
                differences(store.engine, result.model, before[result.model], after[result.model])
                == []
            )
        assert reported
        assert reported[-1][0] <= store.recorder.head()
    finally:
        ACTIVE.invalidate(store.engine)
        store.close()

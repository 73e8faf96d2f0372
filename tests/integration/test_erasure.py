"""Personal data on the real MariaDB and SQLite: sealed at rest with each rider's own key,
gone everywhere (events, aggregates, read models, rebuilds) once the rider is erased, while
custody, swaps and usage stay and still replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from adapters.store import Store, open_store
from adapters.store.personal import PersonalDataError
from domain import commands as c
from domain.battery import Battery
from domain.rider import ERASED, Rider
from ledger.service import Ledger
from projections import make
from projections.runner import Worker
from readmodels import riders, swaps
from readmodels.generations import ACTIVE
from readmodels.schema import create_all
from replay.rebuild import rebuild
from replay.verify import differences

T0 = datetime(2025, 7, 14, 10, 0, tzinfo=UTC)
NAME, EMAIL = "Ines Uwase", "ines@example.org"


@pytest.fixture(params=["mariadb", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(
        "fresh_mysql_url" if request.param == "mariadb" else "sqlite_url"
    )


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url, init=True, secret="")  # no SECRET_KEY: keys stored unwrapped
    create_all(opened.engine)
    yield opened
    ACTIVE.invalidate(opened.engine)
    opened.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def catch_up(store: Store) -> None:
    for projection in make(["riders", "swaps"]):
        Worker(store, projection).catch_up()


def scene(ledger: Ledger) -> str:
    """Rider R1 (name and email) swaps once at station S1; returns the swap id."""
    kind = {"battery_type": "48V", "manufactured_on": "2024-01-01", "capacity_ah": Decimal(30)}
    ledger.execute(c.RegisterStation(occurred_at=at(0), station_id="S1", name="S", slot_count=4))
    ledger.execute(
        c.RegisterBattery(
            occurred_at=at(0), battery_id="B1", station_id="S1", slot=1, soc=95, soh=90, **kind
        )
    )
    ledger.execute(c.RegisterBattery(occurred_at=at(0), battery_id="B9", soc=100, soh=90, **kind))
    ledger.execute(
        c.RegisterRider(
            occurred_at=at(1),
            rider_id="R1",
            personal={"name": NAME, "email": EMAIL},
            rfid_code="CARD1",
            battery_id="B9",
        )
    )
    ledger.execute(
        c.AuthorizeCard(occurred_at=at(10), station_id="S1", rfid_code="CARD1", session_id="s1")
    )
    ledger.execute(
        c.InitiateSwap(
            occurred_at=at(20),
            station_id="S1",
            battery_in_id="B9",
            soc=30,
            soh=88,
            session_id="s1",
            pick_battery=True,
        )
    )
    done = ledger.execute(
        c.CompleteSwap(occurred_at=at(30), station_id="S1", battery_in_id="B9", session_id="s1")
    )
    assert done.outcome is not None
    assert done.outcome.ok, done.outcome
    return str(done.outcome.data["swap_id"])


def raw_rider_states(store: Store) -> list[bytes]:
    return [e.state for e in store.recorder.select_events("rider:R1")]


def key_rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT rider_id, scheme FROM bss_rider_keys")))


def test_personal_fields_are_sealed_at_rest_and_open_for_the_ledger(store: Store) -> None:
    scene(Ledger(store))
    states = raw_rider_states(store)
    assert states, "the rider has events"
    assert all(NAME.encode() not in s and EMAIL.encode() not in s for s in states)
    assert any(b"_sealed_" in s for s in states)
    assert [tuple(r) for r in key_rows(store)] == [("R1", 0)]
    fresh = Ledger(store)  # nothing cached: read back from the store
    rider = fresh.get(Rider, "R1")
    assert rider is not None
    assert rider.personal["name"] == NAME
    assert rider.personal["email"] == EMAIL
    catch_up(store)
    assert riders.get_rider(store.engine, "R1")["personal"]["name"] == NAME


def test_erasure_removes_the_key_and_every_trace_while_history_replays(store: Store) -> None:
    ledger = Ledger(store)
    swap_id = scene(ledger)
    catch_up(store)
    events_before = store.recorder.head()

    ledger.execute(c.EraseRider(occurred_at=at(100), rider_id="R1", reason="request"))
    assert key_rows(store) == []
    assert store.recorder.head() == events_before + 1, "only Rider.Erased was appended"

    other_process = Ledger(open_store(str(store.engine.url.render_as_string(hide_password=False))))
    try:
        rider = other_process.get(Rider, "R1")
        assert rider is not None
        assert rider.personal == ERASED
        assert rider.erased is True
        registered = other_process.load_events("rider:R1")[0]
        assert isinstance(registered, Rider.Registered)
        assert registered.personal == ERASED
        battery = other_process.get(Battery, "B1")
        assert battery is not None
        assert battery.custody == {"kind": "rider", "rider_id": "R1"}
    finally:
        other_process.store.close()

    catch_up(store)
    live = riders.get_rider(store.engine, "R1")
    assert live["personal"]["name"] is None
    assert live["personal"]["erased"] is True
    swap = swaps.get_swap(store.engine, swap_id)
    assert swap["rider_id"] == "R1"
    assert swap["energy_used_ah"] == Decimal("21.000")  # (100 - 30) % of 30 Ah

    results = {r.model: r for r in rebuild(store, ["riders", "swaps"], keep_old=True, grace=0)}
    for model, result in results.items():
        assert differences(store.engine, model, result.old_generation, result.new_generation) == []
    rebuilt = riders.get_rider(store.engine, "R1")
    assert rebuilt["personal"]["name"] is None
    assert NAME not in repr(rebuilt)


def test_with_a_secret_key_the_rider_keys_are_wrapped(url: str) -> None:
    store = open_store(url, init=True, secret="correct horse battery staple")
    try:
        Ledger(store).execute(
            c.RegisterRider(occurred_at=at(0), rider_id="R7", personal={"name": NAME})
        )
        with store.engine.connect() as conn:
            scheme, material = conn.execute(
                text("SELECT scheme, key_material FROM bss_rider_keys WHERE rider_id = 'R7'")
            ).one()
        assert scheme == 1
        assert len(material) == 12 + 32 + 16  # nonce, wrapped key, tag
        same = open_store(url, secret="correct horse battery staple")
        wrong = open_store(url, secret="a different secret")
        try:
            assert Ledger(same).get(Rider, "R7").personal["name"] == NAME  # type: ignore[union-attr]
            with pytest.raises(PersonalDataError):
                Ledger(wrong).get(Rider, "R7")
        finally:
            same.close()
            wrong.close()
    finally:
        store.close()

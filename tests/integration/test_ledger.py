"""The ledger on the real MariaDB (and SQLite where it applies): races, restarts, disconnects."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.store import Store, open_store
from domain import commands as c
from domain.base import ConcurrencyConflict
from domain.battery import Battery
from domain.session import SwapSession
from ledger.service import Ledger

T0 = datetime(2025, 7, 14, 10, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["mariadb", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(
        "fresh_mysql_url" if request.param == "mariadb" else "sqlite_url"
    )


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url, init=True)
    yield opened
    opened.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scene(ledger: Ledger) -> None:
    """Station 1 with ONE issuable battery (B3); riders 12 and 13 each hold a battery and have
    an open, accepted session at station 1."""
    kind = {"battery_type": "48V", "manufactured_on": "2024-01-01", "capacity_ah": Decimal(30)}
    ledger.execute(c.RegisterStation(occurred_at=at(0), station_id="1", name="One", slot_count=6))
    ledger.execute(
        c.RegisterBattery(
            occurred_at=at(0), battery_id="B3", station_id="1", slot=1, soc=95, soh=90, **kind
        )
    )
    for rider, battery in (("12", "B7"), ("13", "B8")):
        ledger.execute(
            c.RegisterBattery(occurred_at=at(0), battery_id=battery, soc=90, soh=85, **kind)
        )
        ledger.execute(
            c.RegisterRider(
                occurred_at=at(1),
                rider_id=rider,
                personal={"name": f"Rider {rider}"},
                rfid_code=f"CARD{rider}",
                battery_id=battery,
            )
        )
    for n, (rider, battery) in enumerate((("12", "B7"), ("13", "B8"))):
        ledger.execute(
            c.AuthorizeCard(
                occurred_at=at(10 + n),
                station_id="1",
                rfid_code=f"CARD{rider}",
                session_id=f"s{rider}",
            )
        )
        outcome = ledger.execute(
            c.InitiateSwap(
                occurred_at=at(20 + n),
                station_id="1",
                battery_in_id=battery,
                soc=30,
                soh=85,
                session_id=f"s{rider}",
            )
        ).outcome
        assert outcome is not None
        assert outcome.ok, outcome


def test_two_writers_racing_to_issue_one_battery(store: Store) -> None:
    scene(Ledger(store))
    # Two writers as two processes would be: separate ledgers, caches and connections.
    writers = [Ledger(store), Ledger(store)]
    for ledger in writers:  # both have the same (current) view before the race
        ledger.prefetch(
            ["battery:B3", "station:1", "session:s12", "session:s13", "rider:12", "rider:13"]
        )
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def complete(ledger: Ledger, rider: str, battery_in: str) -> None:
        command = c.CompleteSwap(
            occurred_at=at(40),
            station_id="1",
            battery_in_id=battery_in,
            battery_out_id="B3",
            session_id=f"s{rider}",
        )
        barrier.wait()
        try:
            results[rider] = ledger.execute(command).outcome
        except ConcurrencyConflict as conflict:
            results[rider] = conflict

    threads = [
        threading.Thread(target=complete, args=(writers[0], "12", "B7")),
        threading.Thread(target=complete, args=(writers[1], "13", "B8")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    winners = [r for r, o in results.items() if getattr(o, "ok", False)]
    assert len(winners) == 1, results
    loser = ({"12", "13"} - set(winners)).pop()
    lost = results[loser]
    assert isinstance(lost, ConcurrencyConflict) or lost.reason == "battery_unavailable", lost  # type: ignore[attr-defined]
    check = Ledger(store)
    battery = check.get(Battery, "B3")
    assert battery is not None
    assert battery.custody == {"kind": "rider", "rider_id": winners[0]}
    issued = [e for e in check.load_events("battery:B3") if isinstance(e, Battery.Issued)]
    assert len(issued) == 1
    session = check.get(SwapSession, f"s{loser}")
    assert session is not None
    assert session.status != "complete"


SCRIPT = """
import json, sys
from datetime import datetime, UTC
from decimal import Decimal
from adapters.store import open_store
from domain import commands as c
from ledger.service import Ledger
store = open_store(sys.argv[1], init=True)
ledger = Ledger(store)
result = ledger.execute(
    c.RegisterBattery(occurred_at=datetime(2025, 1, 1, tzinfo=UTC), battery_id=sys.argv[2],
                      battery_type="48V", capacity_ah=Decimal(30), manufactured_on="2024-01-01"),
    key="restart-key-" + sys.argv[2],
)
print(json.dumps({"outcome": result.outcome.to_dict(), "duplicate": result.duplicate,
                  "position": result.position, "head": store.recorder.head()}))
"""


def test_a_repeated_key_across_a_process_restart_appends_nothing(url: str) -> None:
    def run() -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, url, "RB1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["duplicate"] is False
    assert second["duplicate"] is True
    assert second["outcome"] == first["outcome"]
    assert second["head"] == first["head"] == first["position"]


def test_the_server_killing_the_connection_between_two_commands(fresh_mysql_url: str) -> None:
    store = open_store(fresh_mysql_url, init=True)
    try:
        ledger = Ledger(store)
        ledger.execute(
            c.RegisterStation(occurred_at=at(0), station_id="K1", name="K", slot_count=2)
        )
        thread_id = store.recorder._writers.writer.connection().thread_id()
        with store.engine.connect() as admin:
            admin.execute(text(f"KILL {int(thread_id)}"))
        result = ledger.execute(
            c.RegisterStation(occurred_at=at(1), station_id="K2", name="K", slot_count=2)
        )
        assert result.outcome is not None
        assert result.outcome.ok
        assert [n.originator_id for n in store.recorder.select_notifications(1, 10)] == [
            "station:K1",
            "station:K2",
        ]
    finally:
        store.close()

"""eventsourcing's own ProjectionRunner on the ledger's store, on MariaDB and SQLite: the
polling subscription and the locked tracking make the library's runner work where the
extension alone raises NotImplementedError (DESIGN.md gap 2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import singledispatchmethod
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Engine

from adapters.store import Store, open_store
from adapters.store.recorder import LedgerRecorder
from domain import commands as c
from domain.battery import Battery
from ledger.service import Ledger

T0 = datetime(2025, 7, 14, 10, 0, tzinfo=UTC)


class LedgerApp(Application[str]):
    """The ledger's events, as an eventsourcing application sees them (read only here)."""


class ReadingCounts(LedgerRecorder):
    """A view: readings per battery (in memory) and its position (in the store)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.counts: Counter[str] = Counter()

    def count(self, battery_id: str, tracking: Tracking) -> None:
        self.insert_tracking(tracking)
        self.counts[battery_id] += 1


class ReadingCountProjection(Projection[ReadingCounts]):
    name = "readingcounts"
    topics = (get_topic(Battery.HealthRecorded),)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Battery.HealthRecorded, tracking: Tracking) -> None:
        self.view.count(domain_event.originator_id, tracking)


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


def readings(ledger: Ledger, battery_id: str, n: int, start: int = 0) -> None:
    ledger.execute_many(
        [
            (
                c.RecordHealthReading(
                    occurred_at=T0 + timedelta(seconds=start + i), battery_id=battery_id, soc=50
                ),
                None,
            )
            for i in range(n)
        ]
    )


def test_the_librarys_projection_runner_follows_the_store(url: str, store: Store) -> None:
    ledger = Ledger(store)
    ledger.execute(
        c.RegisterBattery(
            occurred_at=T0,
            battery_id="B1",
            battery_type="48V",
            capacity_ah=Decimal(30),
            manufactured_on="2024-01-01",
        )
    )
    readings(ledger, "B1", 5)
    env = {"PERSISTENCE_MODULE": "adapters.store.factory", "BSS_DATABASE_URL": url}

    with ProjectionRunner(
        application_class=LedgerApp,
        projection_class=ReadingCountProjection,
        view_class=ReadingCounts,
        env=env,
    ) as runner:
        runner.wait(store.recorder.head(), timeout=10)
        assert runner.view.counts == {"battery:B1": 5}
        readings(ledger, "B1", 3, start=10)  # appended while the runner polls
        runner.wait(store.recorder.head(), timeout=10)
        assert runner.view.counts == {"battery:B1": 8}
        position = runner.view.max_tracking_id("LedgerApp")
        assert position == store.recorder.head()

    readings(ledger, "B1", 2, start=20)
    with ProjectionRunner(
        application_class=LedgerApp,
        projection_class=ReadingCountProjection,
        view_class=ReadingCounts,
        env=env,
    ) as again:
        again.wait(store.recorder.head(), timeout=10)
        # A new runner resumes after its tracked position: only the two new readings.
        assert again.view.counts == {"battery:B1": 2}

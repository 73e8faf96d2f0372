"""The swap state machine through the real Ledger on MariaDB (fewer examples than in unit)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from adapters.store import Store, open_store
from tests.support.ledger_driver import LedgerDriver
from tests.support.swap_machine import Driver, SwapMachine


@pytest.fixture
def mariadb_store(fresh_mysql_url: str) -> Store:
    store = open_store(fresh_mysql_url, init=True)
    yield store
    store.close()


def test_swap_machine_on_mariadb(mariadb_store: Store) -> None:
    class MariaDBSwapMachine(SwapMachine):
        def make_driver(self) -> Driver:
            # One database for the test; each example has its own id prefix and a new
            # ledger (empty cache), so state really comes back from MariaDB.
            return LedgerDriver(mariadb_store, clock=self.clock)

    MariaDBSwapMachine.TestCase.settings = settings(
        max_examples=8,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    MariaDBSwapMachine.TestCase().runTest()  # raises on the first broken invariant
    assert mariadb_store.recorder.head() > 0, "the machine's commands reached MariaDB"

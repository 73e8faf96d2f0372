"""The swap state machine through the real Ledger on an in-memory SQLite store.

Same machine as test_swap_machine.py (which runs the in-memory fake); here every command goes
through the ledger's cache, group-commit path, idempotency table, mapper and recorder, and
the replay invariant reads the events back from the store.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from adapters.store import open_store
from tests.support.ledger_driver import LedgerDriver
from tests.support.swap_machine import Driver, SwapMachine

pytestmark = pytest.mark.unit


class SQLiteMemorySwapMachine(SwapMachine):
    def make_driver(self) -> Driver:
        return LedgerDriver(open_store("sqlite://", init=True), clock=self.clock)

    def teardown(self) -> None:
        self.driver.store.close()  # type: ignore[attr-defined]


SQLiteMemorySwapMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerSwapMachine = SQLiteMemorySwapMachine.TestCase

"""The swap state machine against the in-memory ledger."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.support.memory import MemoryLedger
from tests.support.swap_machine import Driver, SwapMachine

pytestmark = pytest.mark.unit


class MemorySwapMachine(SwapMachine):
    def make_driver(self) -> Driver:
        return MemoryLedger(clock=self.clock)


MemorySwapMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMemorySwapMachine = MemorySwapMachine.TestCase

"""The swap state machine's driver over the real Ledger and event store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from adapters.store import Store
from domain.base import Aggregate, DomainEvent, Outcome
from ledger.service import Ledger

A = TypeVar("A", bound=Aggregate)


class LedgerDriver:
    """``execute`` through the Ledger (idempotency keys stored in the store), ``get`` from its
    cache, ``events`` read back from the store and decoded (new ones only, each call)."""

    def __init__(
        self,
        store: Store,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.ledger = Ledger(store, cache_size=cache_size, **({"clock": clock} if clock else {}))
        self._events: list[DomainEvent] = []
        self._position = 0

    def execute(self, command: Any, key: str | None) -> Outcome:
        outcome = self.ledger.execute(command, key).outcome
        assert outcome is not None
        return outcome

    def get(self, cls: type[A], key: str) -> A | None:
        return self.ledger.get(cls, key)

    def events(self) -> list[DomainEvent]:
        while True:
            batch = self.store.recorder.select_notifications(
                start=self._position, limit=1000, inclusive_of_start=False
            )
            if not batch:
                return list(self._events)
            self._events.extend(self.store.mapper.to_domain_event(n) for n in batch)
            self._position = batch[-1].id

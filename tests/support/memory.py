"""An in-memory Repository and a tiny in-memory "ledger" over ``domain.handlers.handle``.

A fake for unit tests only: no database, no threads. It behaves like the real ledger where
the domain can tell the difference:

- a command sees clones of the committed aggregates, so one that raises changes nothing;
- within one command, ``get`` returns the same instance for the same key (handlers rely on it);
- pending events are appended only if every aggregate's expected version still holds;
- stored events went through eventsourcing's JSONTranscoder (so an event field that the real
  store could not hold fails here too), and Outcomes through ``json`` (no Decimal, no datetime);
- an idempotency key seen before returns the stored Outcome and appends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from domain.base import Aggregate, ConcurrencyConflict, DomainEvent, Outcome
from domain.battery import Battery
from domain.billing import BillingPeriod
from domain.card import Card
from domain.commands import Command
from domain.handlers import handle
from domain.plan import Plan
from domain.policy import Policy
from domain.rejection import RejectedMessage
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station

A = TypeVar("A", bound=Aggregate)

AGGREGATES: dict[str, type[Aggregate]] = {
    cls.prefix: cls
    for cls in (
        Station,
        Battery,
        Rider,
        Card,
        SwapSession,
        Plan,
        BillingPeriod,
        Policy,
        RejectedMessage,
    )
}


def aggregate_class(stream_id: str) -> type[Aggregate]:
    """The aggregate class of a stream id such as ``battery:7``."""
    return AGGREGATES[stream_id.split(":", 1)[0]]


def transcoder() -> JSONTranscoder:
    coder = JSONTranscoder()
    for transcoding in (DatetimeAsISO(), DecimalAsStr(), UUIDAsHex()):
        coder.register(transcoding)
    return coder


_CODER = transcoder()


def stored_copy(event: DomainEvent) -> DomainEvent:
    """The event as the store would give it back: fields through JSON and back."""
    fields = _CODER.decode(_CODER.encode(dict(vars(event))))
    return type(event)(**fields)


class MemoryRepository:
    """One command's view of the aggregates: clones of the committed ones, plus new ones."""

    def __init__(self, committed: dict[str, Aggregate]) -> None:
        self._committed = committed
        self.touched: dict[str, Aggregate] = {}

    def get(self, cls: type[A], key: str) -> A | None:
        stream_id = cls.stream_id(key)
        found = self.touched.get(stream_id)
        if found is None:
            committed = self._committed.get(stream_id)
            if committed is None:
                return None
            found = self.touched[stream_id] = committed.clone()
        assert isinstance(found, cls), f"{stream_id} is a {type(found).__name__}"
        return found

    def add(self, aggregate: Aggregate) -> None:
        if aggregate.id in self.touched or aggregate.id in self._committed:
            raise ConcurrencyConflict(f"{aggregate.id} exists already", stream_id=aggregate.id)
        self.touched[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        return [a for a in self.touched.values() if a.pending_events]


def ticking_clock(start: datetime | None = None) -> Callable[[], datetime]:
    """A recording clock that advances one millisecond per call."""
    state = {"now": start or datetime(2030, 1, 1, tzinfo=UTC)}

    def now() -> datetime:
        state["now"] += timedelta(milliseconds=1)
        return state["now"]

    return now


class MemoryLedger:
    """Runs commands, keeps every event in order, and remembers idempotency keys."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or ticking_clock()
        self._aggregates: dict[str, Aggregate] = {}
        self._events: list[DomainEvent] = []
        self._outcomes: dict[str, dict[str, Any]] = {}

    # --- the driver interface (tests/support/swap_machine.py) ----------------------------

    def execute(self, command: Command, key: str | None = None) -> Outcome:
        if key is not None and key in self._outcomes:
            return Outcome.from_dict(self._outcomes[key])
        repo = MemoryRepository(self._aggregates)
        outcome = handle(command, repo, self.clock())
        stored = json.loads(json.dumps(outcome.to_dict()))  # fails on anything not JSON
        self._commit(repo.changed())
        if key is not None:
            self._outcomes[key] = stored
        return Outcome.from_dict(stored)

    def get(self, cls: type[A], key: str) -> A | None:
        found = self._aggregates.get(cls.stream_id(key))
        return None if found is None else found.clone()  # type: ignore[return-value]

    def events(self) -> list[DomainEvent]:
        return list(self._events)

    # --- helpers for unit tests -----------------------------------------------------------

    def given(self, events: Iterable[DomainEvent]) -> None:
        """Seed the store with events (already numbered), rebuilding their aggregates."""
        for event in events:
            stream = self._aggregates.get(event.originator_id)
            if stream is None:
                stream = aggregate_class(event.originator_id).replay([event])
                assert stream is not None
            else:
                stream.mutate(event)
            self._aggregates[event.originator_id] = stream
            self._events.append(stored_copy(event))

    def stream(self, stream_id: str) -> list[DomainEvent]:
        return [e for e in self._events if e.originator_id == stream_id]

    def _commit(self, changed: list[Aggregate]) -> None:
        appended: list[DomainEvent] = []
        for aggregate in changed:
            events = aggregate.collect_events()
            committed = self._aggregates.get(aggregate.id)
            expected = 0 if committed is None else committed.version
            if events[0].originator_version != expected + 1:
                raise ConcurrencyConflict(f"{aggregate.id} moved on", stream_id=aggregate.id)
            appended.extend(stored_copy(event) for event in events)
        for aggregate in changed:
            self._aggregates[aggregate.id] = aggregate
        self._events.extend(appended)

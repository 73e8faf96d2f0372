"""The ledger: runs commands through the domain and appends what they decided.

For each command the ledger loads the aggregates the handler asks for (from a cache, else the
store), lets the pure domain decide, and appends every new event in one transaction together
with the command's idempotency key. Several commands can share one transaction (group
commit). The append validates, under the store's lock, that nothing the decision read has
changed since (optimistic concurrency); when something has, the touched aggregates are
reloaded and the commands decided again, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from eventsourcing.persistence import IntegrityError

from adapters.store import (
    AppendConflict,
    AppendRequest,
    CommandRecord,
    DuplicateCommand,
    Store,
)
from domain.base import Aggregate, ConcurrencyConflict, DomainError, DomainEvent, Outcome
from domain.rider import Rider
from ledger import metrics
from ledger.cache import ABSENT, AggregateCache
from ledger.registry import aggregate_classes, handle

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Result:
    """What one command came to: its outcome, or the domain error that refused it."""

    outcome: Outcome | None
    position: int = 0
    duplicate: bool = False
    error: DomainError | None = None
    events: list[DomainEvent] = field(default_factory=list)
    recorded_at: datetime | None = None  # when the ledger recorded it (a repeat: the first)

    @property
    def ok(self) -> bool:
        return self.error is None and self.outcome is not None and self.outcome.ok


def normalise_key(key: str) -> str:
    """Idempotency keys longer than the column are stored as their SHA-256."""
    if len(key) <= 128:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class _BatchRepository:
    """The Repository the domain sees during one batch: cache first, then the store."""

    def __init__(self, ledger: Ledger, read_set: dict[str, int], touched: set[str]) -> None:
        self.ledger = ledger
        self.read_set = read_set
        self.touched = touched
        self.mine: dict[str, Aggregate] = {}

    def get(self, cls: type[A], key: str) -> A | None:
        stream_id = cls.stream_id(key)
        aggregate = self.mine.get(stream_id) or self.ledger._load(stream_id)
        if stream_id not in self.read_set:
            self.read_set[stream_id] = aggregate.version if aggregate is not None else 0
        if aggregate is not None:
            self.mine[stream_id] = aggregate
            self.touched.add(stream_id)
            assert isinstance(aggregate, cls), (stream_id, type(aggregate))
        return aggregate  # type: ignore[return-value]

    def add(self, aggregate: Aggregate) -> None:
        self.read_set.setdefault(aggregate.id, 0)
        self.mine[aggregate.id] = aggregate
        self.touched.add(aggregate.id)
        self.ledger.cache.put(aggregate)

    def collect(self) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for aggregate in self.mine.values():
            events.extend(aggregate.collect_events())
        return events

    def dirty(self) -> bool:
        return any(a.pending_events for a in self.mine.values())


class InternalError(DomainError):
    """Raised when a handler failed unexpectedly (a bug); the command is refused, nothing kept."""

    code = "internal_error"


def _as_domain_error(raised: Exception, command: Any) -> DomainError:
    if isinstance(raised, DomainError):
        return raised
    log.exception("handler for %s failed", type(command).__name__)
    return InternalError(f"internal error while handling {type(command).__name__}")


class _Rerun(Exception):
    """Raised inside a batch when it must be decided again from fresh state."""


class Ledger:
    """The application service. Thread-safe: one batch at a time per ledger object."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        cache_size: int = 200_000,
        mapper: Any = None,
    ) -> None:
        self.store = store
        self.recorder = store.recorder
        self.mapper = mapper or store.mapper
        self.clock = clock
        self.cache = AggregateCache(cache_size)
        self.classes = aggregate_classes()
        self._lock = threading.RLock()
        self.seen = self.recorder.head()
        self.stats = {"commands": 0, "events": 0, "batches": 0, "conflicts": 0, "duplicates": 0}

    # --- public API -----------------------------------------------------------------------

    def execute(self, command: Any, key: str | None = None) -> Result:
        """Run one command; raise its DomainError if it was refused as invalid."""
        result = self.execute_many([(command, key)])[0]
        if result.error is not None:
            raise result.error
        return result

    def execute_many(self, items: Sequence[tuple[Any, str | None]]) -> list[Result]:
        """Run several commands, committed together in one transaction where possible."""
        with self._lock:
            return self._execute_many(list(items))

    def get(self, cls: type[A], key: str) -> A | None:
        """The committed state of an aggregate (a private copy; changing it changes nothing)."""
        with self._lock:
            self.refresh()
            aggregate = self._load(cls.stream_id(key))
            return aggregate.clone() if aggregate is not None else None  # type: ignore[return-value]

    def load_events(self, stream_id: str) -> list[DomainEvent]:
        stored = self.recorder.select_events(stream_id)
        return [cast(DomainEvent, self.mapper.to_domain_event(s)) for s in stored]

    def next_id(self, name: str) -> int:
        return self.recorder.next_value(name)

    def refresh(self) -> set[str]:
        """Forget cached aggregates that other writers changed since this ledger last looked;
        returns their stream ids."""
        head = self.recorder.head()
        if head <= self.seen:
            return set()
        changed = self.recorder.streams_between(self.seen, head)
        self.cache.evict(changed)
        self.seen = head
        return changed

    # --- batches --------------------------------------------------------------------------

    def _execute_many(self, items: list[tuple[Any, str | None]]) -> list[Result]:
        keys = [normalise_key(k) if k else None for _, k in items]
        results: list[Result | None] = [None] * len(items)
        # Keys are checked optimistically: a repeated key makes the append fail on the keys'
        # primary key (nothing of its batch is kept), and the batch is answered from the
        # stored outcomes and decided again without them. That saves a round trip per batch
        # in the common case, where nothing repeats.
        pending = list(range(len(items)))
        failed: dict[int, DomainError] = {}
        for _attempt in range(MAX_ATTEMPTS):
            try:
                self._run(items, keys, pending, results, failed)
                return [r if r is not None else Result(None) for r in results]
            except _Rerun:
                self.stats["conflicts"] += 1
                metrics.CONFLICTS.inc()
                self._answer_repeats(keys, results)
                pending = [i for i in pending if results[i] is None]
                continue
        if len(pending) > 1:
            # A batch that keeps colliding: decide its commands one by one instead.
            for i in pending:
                results[i] = self._execute_many([items[i]])[0]
            return [r if r is not None else Result(None) for r in results]
        for i in pending:
            results[i] = Result(
                None,
                error=ConcurrencyConflict(
                    "the aggregates this command touches kept changing; try again"
                ),
            )
        return [r if r is not None else Result(None) for r in results]

    def _answer_repeats(self, keys: list[str | None], results: list[Result | None]) -> None:
        wanted = [k for i, k in enumerate(keys) if k and results[i] is None]
        stored = self.recorder.get_stored_commands(sorted(set(wanted))) if wanted else {}
        first_index: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key is None or results[i] is not None:
                continue
            if key in stored:
                found = stored[key]
                results[i] = Result(
                    Outcome.from_dict(orjson.loads(found.outcome)),
                    position=found.position,
                    duplicate=True,
                    recorded_at=found.recorded_at,
                )
                self.stats["duplicates"] += 1
                metrics.DUPLICATES.inc()
            elif key in first_index:
                continue  # answered after the batch from its first occurrence
            else:
                first_index[key] = i

    def _answer_refused_repeats(
        self, keys: list[str | None], results: list[Result | None], decided: dict[int, Result]
    ) -> None:
        """A repeat that the domain now refuses as invalid (e.g. completing a swap that its
        first delivery completed) gets the first delivery's stored outcome, not the error."""
        errored = {i: r for i, r in decided.items() if r.error is not None and keys[i]}
        if not errored:
            return
        for i in errored:
            results[i] = None
        self._answer_repeats(keys, results)
        for i, result in errored.items():
            if results[i] is None:
                results[i] = result

    def _run(
        self,
        items: list[tuple[Any, str | None]],
        keys: list[str | None],
        pending: list[int],
        results: list[Result | None],
        failed: dict[int, DomainError],
    ) -> None:
        recorded_at = self.clock()
        read_set: dict[str, int] = {}
        touched: set[str] = set()
        events: list[DomainEvent] = []
        decided: dict[int, Result] = {}
        commands: list[CommandRecord] = []
        first_of_key: dict[str, int] = {}
        try:
            for i in pending:
                key = keys[i]
                if key is not None and key in first_of_key:
                    continue
                if i in failed:
                    decided[i] = Result(None, error=failed[i])
                    continue
                repo = _BatchRepository(self, read_set, touched)
                try:
                    outcome = handle(items[i][0], repo, recorded_at)
                except Exception as raised:
                    error = _as_domain_error(raised, items[i][0])
                    if repo.dirty():
                        # A handler changed state before refusing: decide the batch again
                        # from clean state, this command excluded.
                        failed[i] = error
                        raise _Rerun from error
                    decided[i] = Result(None, error=error)
                    continue
                new_events = repo.collect()
                events.extend(new_events)
                decided[i] = Result(outcome, events=new_events)
                if key is not None:
                    first_of_key[key] = i
                    commands.append(CommandRecord(key, orjson.dumps(outcome.to_dict())))
            if not events and not commands:
                self._check_fresh(read_set)
            else:
                self._append(events, commands, read_set, touched, recorded_at, decided)
        except BaseException:
            self.cache.evict(touched)
            raise
        for i, result in decided.items():
            result.recorded_at = recorded_at
            results[i] = result
        self._answer_refused_repeats(keys, results, decided)
        for i in pending:
            key = keys[i]
            if results[i] is None and key is not None and key in first_of_key:
                first = decided[first_of_key[key]]
                results[i] = Result(
                    first.outcome,
                    position=first.position,
                    duplicate=True,
                    recorded_at=recorded_at,
                )
        self.stats["batches"] += 1
        self.stats["commands"] += len(decided)
        self.stats["events"] += len(events)
        metrics.EVENTS_APPENDED.inc(len(events))
        metrics.BATCH_SIZE.observe(len(decided))
        for result in decided.values():
            label = "error" if result.error else ("accepted" if result.ok else "refused")
            metrics.COMMANDS.labels(label).inc()

    def _check_fresh(self, read_set: dict[str, int]) -> None:
        """Nothing to append: still make sure the decision did not rest on stale cache."""
        if self.refresh() & set(read_set):
            raise _Rerun

    def _append(
        self,
        events: list[DomainEvent],
        commands: list[CommandRecord],
        read_set: dict[str, int],
        touched: set[str],
        recorded_at: datetime,
        decided: dict[int, Result],
    ) -> None:
        stored = [self.mapper.to_stored_event(e) for e in events]
        erased = [e.originator_id.split(":", 1)[1] for e in events if isinstance(e, Rider.Erased)]
        try:
            result = self.recorder.append(
                AppendRequest(
                    events=stored,
                    commands=commands,
                    read_set=read_set,
                    seen=self.seen,
                    recorded_at=recorded_at,
                    erase_rider_keys=erased,
                )
            )
        except AppendConflict as conflict:
            self.cache.evict(touched)
            self.cache.evict(oid for oid, _ in conflict.changed)
            self.seen = conflict.head
            raise _Rerun from conflict
        except (DuplicateCommand, IntegrityError) as error:
            self.cache.evict(touched)
            self.refresh()
            raise _Rerun from error
        self.cache.evict(oid for oid, _ in result.changed if oid not in touched)
        self.seen = result.last_id
        if erased and self.mapper.vault is not None:
            self.mapper.vault.forget(erased)
        for r in decided.values():
            r.position = result.last_id

    # --- loading --------------------------------------------------------------------------

    def _load(self, stream_id: str) -> Aggregate | None:
        cached = self.cache.get(stream_id)
        if cached is ABSENT:
            return None
        if cached is not None:
            return cast(Aggregate, cached)
        stored = self.recorder.select_events(stream_id)
        if not stored:
            # Remembered as absent: the append's validation still sees another writer
            # create it (the read set holds it at version 0), and refresh() evicts it.
            self.cache.put_absent(stream_id)
            return None
        aggregate = self._replay(stream_id, (self.mapper.to_domain_event(s) for s in stored))
        if aggregate is not None:
            self.cache.put(aggregate)
        return aggregate

    def prefetch(self, stream_ids: Iterable[str]) -> None:
        """Load several aggregates into the cache in one query (group commit's read side)."""
        with self._lock:
            missing = [s for s in dict.fromkeys(stream_ids) if s not in self.cache]
            if not missing:
                return
            for stream_id, stored in self.recorder.select_streams(missing).items():
                if not stored:
                    self.cache.put_absent(stream_id)
                    continue
                events = (self.mapper.to_domain_event(s) for s in stored)
                aggregate = self._replay(stream_id, events)
                if aggregate is not None:
                    self.cache.put(aggregate)

    def _replay(self, stream_id: str, events: Iterable[Any]) -> Aggregate | None:
        prefix = stream_id.split(":", 1)[0]
        cls = self.classes.get(prefix)
        if cls is None:
            raise LookupError(f"no aggregate class for stream {stream_id!r}")
        return cls.replay(events)

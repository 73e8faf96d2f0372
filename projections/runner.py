"""The batched projection runner: exactly-once, many events per transaction.

One step of a :class:`Worker`:

1. read up to ``batch_size`` stored rows after the position it last saw
   (``select_rows``: events are immutable and numbered densely in commit order, so this
   read needs no lock), and decode only those whose topic the projection handles;
2. open ``recorder.tracked(name)``: a transaction holding the lock on the projection's
   tracking row, which yields the position as committed;
3. under that lock: if the read model's active generation moved (a rebuild switched),
   give up the batch and follow it; if the locked position is past some of the rows
   (another runner applied them), skip those; if it is before them (the position was
   moved back), re-read from it;
4. apply the remaining events to the rows, write every changed row once (one statement
   per table) and ``set_position`` to the last row's id, in that same transaction.

Two runners on one projection serialise on the tracking row, and whichever comes second
sees the first one's position and skips what it applied: rows and position always move
together, so each event is applied exactly once, on MySQL/MariaDB and SQLite alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from adapters.store import Store
from adapters.store.engine import is_sqlite, is_transient
from projections import metrics
from projections.base import Projection
from projections.decode import Batch, Decoder, Delivered, Row
from projections.sharedlog import SharedLog
from projections.unitofwork import RowCache, UnitOfWork
from readmodels.generations import ACTIVE
from readmodels.schema import active_table, model_tables, tracking_name

log = logging.getLogger(__name__)

SQLITE_BATCH = 500
MYSQL_BATCH = 5000


def default_batch_size(store: Store) -> int:
    """SQLite has one writer at a time: keep its transactions short."""
    return SQLITE_BATCH if is_sqlite(store.engine) else MYSQL_BATCH


class GenerationSwitched(Exception):
    """Raised inside a batch when the read model's active generation is not the worker's."""

    def __init__(self, generation: int) -> None:
        super().__init__(f"active generation is now {generation}")
        self.generation = generation


@dataclass
class StepResult:
    """What one step did: rows read, events applied (the rest skipped), where it stands."""

    read: int
    applied: int
    position: int


@dataclass
class Pending:
    """A batch applied inside a transaction that has not committed yet."""

    result: StepResult
    uow: UnitOfWork | None


class Worker:
    """Applies one projection to one generation of its read model, batch by batch.

    With ``generation=None`` the worker follows the active generation (the live runner);
    with a number it writes that generation only (a rebuild).
    """

    def __init__(
        self,
        store: Store,
        projection: Projection,
        *,
        generation: int | None = None,
        batch_size: int | None = None,
        decoder: Decoder | None = None,
        log: SharedLog | None = None,
    ) -> None:
        self.store = store
        self.recorder = store.recorder
        self.projection = projection
        self.model = projection.model
        self.follow = generation is None
        self.generation = generation
        self.batch_size = batch_size or default_batch_size(store)
        self.decoder = decoder or Decoder(store.mapper)
        self.log = log
        self.cache = RowCache()
        self.position: int | None = None
        self.applied_total = 0
        self.transient_retries = 3

    # --- where it stands ----------------------------------------------------------------

    @property
    def tracking(self) -> str:
        assert self.generation is not None
        return tracking_name(self.model, self.generation)

    def tables(self) -> dict[str, Table]:
        assert self.generation is not None
        return model_tables(self.model, self.generation)

    def resolve(self) -> None:
        if self.generation is None:
            ACTIVE.invalidate(self.store.engine)
            self.generation = ACTIVE.get(self.store.engine, self.model)
        if self.position is None:
            self.position = self.recorder.max_tracking_id(self.tracking) or 0

    def switch_to(self, generation: int) -> None:
        log.info("projection %s: following generation %s", self.model, generation)
        self.generation = generation
        self.position = None
        self.cache.reset()

    # --- one step -----------------------------------------------------------------------

    def step(self) -> StepResult:
        """Read one batch after the position and apply it; ``read == 0`` means caught up."""
        self.resolve()
        assert self.position is not None
        if self.log is not None:
            shared = self.log.after(self.position)
            if shared is not None:
                return self.apply_batch(shared.only(self.projection.topics))
            rows = []
        else:
            rows = self.recorder.select_rows(self.position, self.batch_size)
        if not rows:
            if self.follow:
                # Idle: learn of a switch now rather than with the next event.
                active = ACTIVE.get(self.store.engine, self.model)
                if active != self.generation:
                    self.switch_to(active)
                    self.resolve()
            return StepResult(0, 0, self.position or 0)
        return self.apply_rows(rows)

    def apply_rows(self, rows: Sequence[Row]) -> StepResult:
        """Apply stored rows (consecutive, in id order), decoding what this projection reads."""
        return self.apply_batch(self.decoder.batch(rows, self.projection.wants))

    def apply_batch(self, batch: Batch) -> StepResult:
        """Apply a batch (its events may be decoded once for several projections, as in a
        rebuild), retrying transient database errors a few times."""
        self.resolve()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._apply(batch)
            except GenerationSwitched as switched:
                self.switch_to(switched.generation)
                return StepResult(0, 0, 0)
            except Exception as error:
                self.cache.reset()
                self.position = None
                if attempt > self.transient_retries or not is_transient(error):
                    raise
                log.warning("projection %s: transient error, retrying: %s", self.model, error)
                time.sleep(0.05 * 2**attempt)
                self.resolve()

    def _apply(self, batch: Batch) -> StepResult:
        started = time.perf_counter()
        with self.recorder.tracked(self.tracking) as (conn, locked):
            if self.follow:
                active = conn.execute(
                    select(active_table.c.generation).where(active_table.c.model == self.model)
                ).scalar()
                if active is not None and int(active) != self.generation:
                    raise GenerationSwitched(int(active))
            pending = self.apply_locked(conn, locked, batch)
        result = self.committed(pending)
        if self.follow and pending.uow is not None:
            metrics.observe_batch(
                self.model, result.position, result.applied, time.perf_counter() - started
            )
        return result

    def apply_locked(self, conn: Connection, locked: int, batch: Batch) -> Pending:
        """Apply a batch inside the caller's transaction, which holds this projection's
        tracking lock at position ``locked``; call :meth:`committed` once it committed."""
        read = batch.last - batch.first + 1
        if locked < batch.first - 1:
            # The position is behind what was read (it was moved back): read again.
            self.cache.reset()
            return Pending(StepResult(0, 0, locked), None)
        if not self.cache.valid_at(locked):
            self.cache.reset()
            if locked == 0:
                # Nothing was ever applied to this generation: its tables are empty.
                self.cache.mark_empty(self.tables())
        if locked >= batch.last:
            self.cache.position = locked
            return Pending(StepResult(read, 0, locked), None)
        todo = batch.after(locked)
        uow = UnitOfWork(conn, self.tables(), self.cache)
        applied = self._run(uow, todo.events)
        self.recorder.set_position(conn, self.tracking, batch.last)
        return Pending(StepResult(read, applied, batch.last), uow)

    def committed(self, pending: Pending) -> StepResult:
        """The transaction of :meth:`apply_locked` committed: keep its rows, move on."""
        result = pending.result
        if pending.uow is not None:
            pending.uow.commit_to_cache(result.position)
            self.applied_total += result.applied
        self.position = result.position
        return result

    def _run(self, uow: UnitOfWork, events: list[Delivered]) -> int:
        projection = self.projection
        projection.begin(uow)
        for name, keys in projection.prefetch(events).items():
            uow.prefetch(name, keys)
        for delivered in events:
            projection.apply(delivered.event, uow, delivered.position)
        projection.end(uow)
        uow.flush()
        return len(events)

    # --- running until caught up --------------------------------------------------------

    def catch_up(self, until: int | None = None) -> int:
        """Step until the head of the log (or ``until``, if earlier) is reached; returns
        the number of rows read."""
        total = 0
        while True:
            result = self.step()
            total += result.read
            if self.position is None:
                continue  # switched generation or re-resolving after an error
            head = self.recorder.head()
            target = head if until is None else min(until, head)
            if self.position >= target:
                return total


def run_projection(store: Store, projection: Projection, **kwargs: Any) -> Worker:
    """Catch one projection up to the head of the log (tests, scripts)."""
    worker = Worker(store, projection, **kwargs)
    worker.catch_up()
    return worker

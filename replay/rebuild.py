"""Rebuild read models from the events into new tables, then switch to them atomically.

For each read model M (active generation N):

1. register generation G = N+1 (state ``building``) and create its tables; its projection
   tracks its own position (``rm:M:gG``). A rebuild that was interrupted is resumed: the
   building generation keeps its tables and position.
2. project every event from the start into G, in big batches. All models being rebuilt
   share one read and one decode of each batch (the log is read once, not once per model).
3. switch: in ONE transaction that holds G's tracking lock, take N's tracking lock too (the
   live runner of N waits), apply whatever the log gained up to max(head, N's position), set
   G's position, and flip ``rm_active`` from N to G (compare-and-set). Readers therefore
   never see G behind what N showed them. The live runner sees the flip inside its next
   batch's transaction and continues on G from G's position.
4. after a grace period (longer than the queries' generation cache), drop N's tables.

Meanwhile the API keeps answering from N: nothing in steps 1-2 touches N's tables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy.exc
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from adapters.store import Store
from adapters.store.engine import is_sqlite
from projections import NAMES, make
from projections.decode import Decoder, Delivered, Row
from projections.runner import Pending, Worker
from readmodels.generations import ACTIVE, TTL, read_active
from readmodels.schema import (
    active_table,
    create_all,
    create_tables,
    drop_tables,
    generations_table,
    model_version,
    now,
    registered_generations,
    tracking_name,
)

log = logging.getLogger(__name__)

SQLITE_BATCH = 500
MYSQL_BATCH = 5000
Progress = Callable[[int, int], None]
"""Called after each batch with (position reached, head of the log)."""


@dataclass
class Build:
    """One read model being rebuilt."""

    model: str
    old: int
    new: int
    worker: Worker
    resumed: bool = False
    seconds: float = 0.0
    switched: bool = False


@dataclass
class RebuildResult:
    model: str
    old_generation: int
    new_generation: int
    position: int
    events: int
    resumed: bool
    dropped_old: bool
    details: dict[str, float] = field(default_factory=dict)


class RebuildError(RuntimeError):
    """Raised when a rebuild cannot switch (another rebuild switched this model first)."""


def rebuild(
    store: Store,
    names: Iterable[str] | None = None,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    grace: float = 4 * TTL,
    keep_old: bool = False,
    switch: bool = True,
    before_switch: Callable[[], None] | None = None,
) -> list[RebuildResult]:
    """Rebuild the named read models (all by default) and switch to them; see module doc.

    ``switch=False`` only builds (up to the head) and leaves the new generations in state
    ``building`` beside the active ones, e.g. to compare them (replay/verify.py); a later
    rebuild resumes them. ``before_switch`` is called between building and switching."""
    wanted = list(names) if names else list(NAMES)
    create_all(store.engine)
    batch = batch_size or (SQLITE_BATCH if is_sqlite(store.engine) else MYSQL_BATCH)
    decoder = Decoder()
    builds = [_prepare(store, model, batch, decoder) for model in wanted]
    started = time.perf_counter()
    _project(store, builds, batch, decoder, progress)
    if before_switch is not None:
        before_switch()
    if switch:
        for build in builds:
            _switch(store, build, batch)
        ACTIVE.invalidate(store.engine)
    elapsed = time.perf_counter() - started
    dropped = False
    if switch and not keep_old:
        time.sleep(grace)
        for build in builds:
            drop_generation(store, build.model, build.old)
        dropped = True
    return [
        RebuildResult(
            model=b.model,
            old_generation=b.old,
            new_generation=b.new,
            position=b.worker.position or 0,
            events=b.worker.applied_total,
            resumed=b.resumed,
            dropped_old=dropped,
            details={"seconds": elapsed, "apply_seconds": b.seconds},
        )
        for b in builds
    ]


# --- 1. a new generation ------------------------------------------------------------------


def _prepare(store: Store, model: str, batch: int, decoder: Decoder) -> Build:
    engine = store.engine
    with engine.connect() as conn:
        old = read_active(conn)[model]
        known = registered_generations(conn, model)
    building = [g for g in known if g["state"] == "building"]
    for stale in building[:-1]:
        drop_generation(store, model, stale["generation"])
    resumed = False
    if building and building[-1]["version"] == model_version(model):
        new, resumed = int(building[-1]["generation"]), True
    else:
        if building:
            drop_generation(store, model, building[-1]["generation"])
        new = _register(store, model, max(g["generation"] for g in known) + 1)
    create_tables(engine, model, new)
    worker = Worker(store, make([model])[0], generation=new, batch_size=batch, decoder=decoder)
    worker.resolve()
    if resumed:
        log.info("rebuild %s: resuming generation %s at %s", model, new, worker.position)
    return Build(model, old, new, worker, resumed=resumed)


def _register(store: Store, model: str, generation: int) -> int:
    while True:
        try:
            with store.engine.begin() as conn:
                conn.execute(
                    generations_table.insert().values(
                        model=model,
                        generation=generation,
                        state="building",
                        version=model_version(model),
                        created_at=now(),
                    )
                )
            return generation
        except sqlalchemy.exc.IntegrityError:
            generation += 1  # taken by a concurrent rebuild


# --- 2. project everything ----------------------------------------------------------------


def _project(
    store: Store,
    builds: list[Build],
    batch: int,
    decoder: Decoder,
    progress: Progress | None,
) -> None:
    """Read the log once, decode each event once, and feed every build its share."""
    recorder = store.recorder
    topics = frozenset().union(*(b.worker.projection.topics for b in builds))
    position = min(b.worker.position or 0 for b in builds)
    while True:
        head = recorder.head()
        if position >= head:
            return
        rows = recorder.select_rows(position, batch)
        if not rows:
            return
        decoded = decoder.decode_rows(rows, topics.__contains__)
        for build in builds:
            _feed(build, rows, decoded)
        position = rows[-1][0]
        if progress is not None:
            progress(position, head)


def _feed(build: Build, rows: Sequence[Row], decoded: Sequence[Delivered | int]) -> None:
    worker = build.worker
    done = worker.position or 0
    wants = worker.projection.topics
    mine_rows: list[Row] = []
    mine: list[Delivered | int] = []
    for row, item in zip(rows, decoded, strict=True):
        if row[0] <= done:
            continue
        mine_rows.append(row)
        mine.append(item if isinstance(item, Delivered) and row[3] in wants else row[0])
    if not mine_rows:
        return
    started = time.perf_counter()
    worker.apply_rows(mine_rows, mine)
    build.seconds += time.perf_counter() - started


# --- 3. switch ----------------------------------------------------------------------------


def _switch(store: Store, build: Build, batch: int) -> None:
    """Catch up, then flip in one transaction (see module docstring, step 3)."""
    recorder, worker = store.recorder, build.worker
    old_name = tracking_name(build.model, build.old)
    for _attempt in range(100):
        worker.catch_up()
        pending: Pending | None = None
        with recorder.tracked(worker.tracking) as (conn, locked):
            old_position = _lock_position(conn, old_name)
            target = max(recorder.head(), old_position)
            if target - locked > batch:
                continue  # the log ran ahead again: catch up outside the lock first
            if target > locked:
                rows = recorder.select_rows(locked, target - locked)
                pending = worker.apply_locked(conn, locked, rows, _decode(worker, rows))
            _flip(conn, build)
        if pending is not None:
            worker.committed(pending)
        build.switched = True
        log.info(
            "rebuild %s: switched generation %s -> %s at %s",
            build.model,
            build.old,
            build.new,
            worker.position,
        )
        return
    raise RebuildError(f"{build.model}: the log kept running ahead; could not switch")


def _decode(worker: Worker, rows: Sequence[Row]) -> list[Delivered | int]:
    return worker.decoder.decode_rows(list(rows), worker.projection.wants)


def _lock_position(conn: Connection, name: str) -> int:
    """Take the lock on another projection's tracking row in this transaction (the same
    statement ``recorder.tracked`` uses) and read its position; 0 if it has none."""
    conn.execute(
        text("UPDATE bss_tracking SET notification_id = notification_id WHERE name = :n"),
        {"n": name},
    )
    found = conn.execute(
        text("SELECT notification_id FROM bss_tracking WHERE name = :n"), {"n": name}
    ).scalar()
    return int(found or 0)


def _flip(conn: Connection, build: Build) -> None:
    stamp = now()
    flipped = conn.execute(
        update(active_table)
        .where(active_table.c.model == build.model, active_table.c.generation == build.old)
        .values(generation=build.new, switched_at=stamp)
    )
    if flipped.rowcount != 1:
        current = conn.execute(
            select(active_table.c.generation).where(active_table.c.model == build.model)
        ).scalar()
        raise RebuildError(
            f"{build.model}: generation {current} became active during the rebuild "
            f"(expected {build.old}); another rebuild switched first"
        )
    g = generations_table.c
    conn.execute(
        update(generations_table)
        .where(g.model == build.model, g.generation == build.old)
        .values(state="retired")
    )
    conn.execute(
        update(generations_table)
        .where(g.model == build.model, g.generation == build.new)
        .values(state="active", switched_at=stamp)
    )


# --- 4. drop the old tables ---------------------------------------------------------------


def drop_generation(store: Store, model: str, generation: int) -> None:
    """Drop a generation's tables and tracking row (never the active one)."""
    with store.engine.connect() as conn:
        if read_active(conn).get(model) == generation:
            raise RebuildError(f"{model}: generation {generation} is active; not dropping it")
    drop_tables(store.engine, model, generation)
    with store.engine.begin() as conn:
        g = generations_table.c
        conn.execute(
            update(generations_table)
            .where(g.model == model, g.generation == generation)
            .values(state="dropped")
        )
        conn.execute(
            text("DELETE FROM bss_tracking WHERE name = :n"),
            {"n": tracking_name(model, generation)},
        )

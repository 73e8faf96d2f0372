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

import gc
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy.exc
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from adapters.store import Store
from adapters.store.engine import is_sqlite
from projections import NAMES, make
from projections.decode import Batch, Decoder, Row
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
MYSQL_BATCH = 20_000
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
    applied_in_children: int = 0
    cpu_seconds: float | None = None


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
    processes: int | None = None,
    before_switch: Callable[[], None] | None = None,
) -> list[RebuildResult]:
    """Rebuild the named read models (all by default) and switch to them; see module doc.

    ``switch=False`` only builds (up to the head) and leaves the new generations in state
    ``building`` beside the active ones, e.g. to compare them (replay/verify.py); a later
    rebuild resumes them. ``before_switch`` is called between building and switching.
    ``processes``: how many processes build (see :func:`process_count`)."""
    wanted = list(names) if names else list(NAMES)
    create_all(store.engine)
    batch = batch_size or (SQLITE_BATCH if is_sqlite(store.engine) else MYSQL_BATCH)
    decoder = Decoder(store.mapper)
    builds = [_prepare(store, model, batch, decoder) for model in wanted]
    started, cpu_started = time.perf_counter(), time.process_time()
    count = process_count(store, builds, processes)
    with _fewer_collections():
        if count > 1:
            _project_in_processes(store, builds, batch, count, progress)
        else:
            _project(store, builds, batch, decoder, progress)
    if before_switch is not None:
        before_switch()
    if switch:
        for build in builds:
            _switch(store, build, batch)
        ACTIVE.invalidate(store.engine)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
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
            events=b.worker.applied_total + b.applied_in_children,
            resumed=b.resumed,
            dropped_old=dropped,
            details={
                "seconds": elapsed,
                "apply_seconds": b.seconds,
                "process_cpu_seconds": b.cpu_seconds if b.cpu_seconds is not None else cpu,
                "processes": count,
            },
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
    """Read the log once, decode each event once, and feed every build its share.

    On MySQL each build applies its batches in a thread of its own, fed through a short
    queue by one reader thread: the Python work of one read model then overlaps the
    server's work on another's multi-row statements (the GIL is released while a thread
    waits for the server). SQLite has a single writer, so there it all runs in turn."""
    if is_sqlite(store.engine) or len(builds) == 1:
        for read, head in _batches(store, builds, batch, decoder):
            for build in builds:
                _feed(build, read)
            if progress is not None:
                progress(read.last, head)
        return
    _project_in_threads(store, builds, batch, decoder, progress)


def _batches(
    store: Store, builds: list[Build], batch: int, decoder: Decoder
) -> Iterator[tuple[Batch, int]]:
    recorder = store.recorder
    topics = frozenset().union(*(b.worker.projection.topics for b in builds))
    position = min(b.worker.position or 0 for b in builds)
    with _LogReader(store) as reader:
        while True:
            head = recorder.head()
            if position >= head:
                return
            rows = reader.read(position, batch)
            if not rows:
                return
            yield decoder.batch(rows, topics.__contains__), head
            position = rows[-1][0]


class _LogReader:
    """Reads event rows for a rebuild on one connection of its own, without the columns no
    projection reads (``recorded_at``: parsing a DATETIME per row is a third of the cost of
    ``recorder.select_rows``). The rows have the same shape, with None in its place."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        mark = "?" if is_sqlite(store.engine) else "%s"
        self.sql = (
            "SELECT id, originator_id, originator_version, topic, state FROM bss_events "
            f"WHERE id > {mark} ORDER BY id LIMIT {mark}"
        )
        self.conn: Any = None

    def __enter__(self) -> _LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def read(self, after: int, limit: int) -> list[Row]:
        if self.conn is None:
            self.conn = self.engine.raw_connection()
        cursor = self.conn.cursor()
        try:
            cursor.execute(self.sql, (after, limit))
            found = cursor.fetchall()
        finally:
            cursor.close()
        self.conn.rollback()  # end the read: the next one sees what committed since
        return [(r[0], r[1], r[2], r[3], bytes(r[4]), None) for r in found]


_DONE = object()


def _project_in_threads(
    store: Store,
    builds: list[Build],
    batch: int,
    decoder: Decoder,
    progress: Progress | None,
) -> None:
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=3) for _ in builds]
    failed: list[BaseException] = []
    stop = threading.Event()
    head = [store.recorder.head()]

    def put(q: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for read, now_head in _batches(store, builds, batch, decoder):
                head[0] = now_head
                for q in queues:
                    if not put(q, read):
                        return
        except BaseException as error:
            failed.append(error)
            stop.set()
        finally:
            for q in queues:
                put(q, _DONE)

    def apply(build: Build, q: queue.Queue[Any]) -> None:
        try:
            while not stop.is_set():
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    return
                _feed(build, item)
        except BaseException as error:
            failed.append(error)
            stop.set()

    threads = [threading.Thread(target=read, name="rebuild-reader", daemon=True)]
    threads += [
        threading.Thread(target=apply, args=(b, q), name=f"rebuild-{b.model}", daemon=True)
        for b, q in zip(builds, queues, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            threads[-1].join(0.25)
            if progress is not None and not failed:
                progress(min(b.worker.position or 0 for b in builds), head[0])
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    if failed:
        raise failed[0]


def _feed(build: Build, read: Batch) -> None:
    worker = build.worker
    done = worker.position or 0
    if read.last <= done:
        return
    mine = read.after(done).only(worker.projection.topics)
    started = time.perf_counter()
    worker.apply_batch(mine)
    build.seconds += time.perf_counter() - started


LEAN_GC = (50_000, 20, 100)
"""GC thresholds while building: a batch allocates hundreds of thousands of small objects
(rows, events), and the default thresholds would run a collection every 700 of them."""


@contextmanager
def _fewer_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*LEAN_GC)
    try:
        yield
    finally:
        gc.set_threshold(*before)


# --- 2b. in several processes -------------------------------------------------------------

WEIGHTS = {
    "analytics": 26.0,
    "stations": 22.0,
    "health": 22.0,
    "batteries": 18.0,
    "swaps": 4.0,
    "billing": 4.0,
    "riders": 3.5,
    "rejected": 1.0,
}
"""Relative cost of building each read model (measured on the benchmark's fleet), to share
them fairly between processes."""
PROCESS_THRESHOLD = 200_000


def process_count(store: Store, builds: list[Build], wanted: int | None) -> int:
    """Processes to build in: ``wanted`` if given; else, on MySQL with at least
    PROCESS_THRESHOLD events to project, one per CPU core (at most 2: the server needs
    the rest); otherwise 1. Python runs one thread at a time per process, so on a
    multi-core machine separate processes are what puts more than one core to work on the
    projections; SQLite has a single writer, so it always builds in one."""
    if is_sqlite(store.engine) or len(builds) < 2:
        return 1
    if wanted is not None:
        return max(1, min(wanted, len(builds)))
    backlog = store.recorder.head() - min(b.worker.position or 0 for b in builds)
    if backlog < PROCESS_THRESHOLD:
        return 1
    return max(1, min(2, os.cpu_count() or 1, len(builds)))


def partition(models: list[str], count: int) -> list[list[str]]:
    """Share read models between ``count`` groups of about equal weight (greedy)."""
    groups: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for model in sorted(models, key=lambda m: -WEIGHTS.get(m, 5.0)):
        lightest = loads.index(min(loads))
        groups[lightest].append(model)
        loads[lightest] += WEIGHTS.get(model, 5.0)
    return [g for g in groups if g]


def _project_in_processes(
    store: Store, builds: list[Build], batch: int, count: int, progress: Progress | None
) -> None:
    """Each group of read models is built by a child process of its own (each reads the
    log itself); the parent reports progress from the tracking rows and, afterwards, picks
    the builds up where the children left them."""
    by_model = {b.model: b for b in builds}
    url = store.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    names = {b.model: b.worker.tracking for b in builds}
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = [
            pool.submit(_build_part, url, [(m, by_model[m].new) for m in group], batch)
            for group in partition(list(by_model), count)
        ]
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            if any(f.done() and f.exception() is not None for f in futures):
                break
            if progress is not None:
                positions = store.recorder.tracking_positions()
                progress(min(positions.get(n, 0) for n in names.values()), store.recorder.head())
        for future in futures:
            for model, (seconds, applied, cpu) in future.result().items():
                build = by_model[model]
                build.seconds += seconds
                build.applied_in_children += applied
                build.cpu_seconds = cpu
    for build in builds:
        build.worker.position = None
        build.worker.cache.reset()
        build.worker.resolve()


def _build_part(
    url: str, parts: list[tuple[str, int]], batch: int
) -> dict[str, tuple[float, int, float]]:
    """In a child process: build these (model, generation) pairs up to the head; returns
    by model (seconds in its batches, events applied, CPU seconds of the process)."""
    from adapters.store import open_store

    store = open_store(url)
    gc.set_threshold(*LEAN_GC)
    try:
        decoder = Decoder(store.mapper)
        builds = []
        for model, generation in parts:
            worker = Worker(
                store, make([model])[0], generation=generation, batch_size=batch, decoder=decoder
            )
            worker.resolve()
            builds.append(Build(model, 0, generation, worker))
        _project(store, builds, batch, decoder, None)
        cpu = time.process_time()
        return {b.model: (b.seconds, b.worker.applied_total, cpu) for b in builds}
    finally:
        store.close()


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
                read = worker.decoder.batch(rows, worker.projection.wants)
                pending = worker.apply_locked(conn, locked, read)
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

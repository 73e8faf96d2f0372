"""Runs every projection, one thread each, and keeps them running.

A runner that fails (any exception from a batch: a bug in a projection, the database gone)
is counted, logged and restarted with a fresh worker after a backoff that doubles from
``backoff_min`` up to ``backoff_max`` (and resets after a good batch); it is never silently
stopped. A monitor thread replaces any runner thread that died outright and refreshes the
lag gauges once a second. :meth:`Supervisor.status` reports each runner's state
(running / crashed / stopped), restarts, last error, generation, position and lag.

Idle runners poll every ``interval`` seconds and wake at once on appends made in this
process (``recorder.wait_for_append``), so ``bss serve`` shows a command's effect in the
read models within milliseconds. The runners read the log through one SharedLog, so a
catch-up reads and decodes each event once, not once per read model.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.store import Store
from projections import NAMES, make, metrics
from projections.runner import Worker, default_batch_size
from projections.sharedlog import SharedLog

log = logging.getLogger(__name__)


@dataclass
class RunnerState:
    """What the supervisor knows about one projection's runner."""

    name: str
    state: str = "starting"  # starting | running | crashed | stopped
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    generation: int | None = None
    position: int | None = None
    lag: int | None = None
    events_applied: int = 0
    started_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Supervisor:
    """Runs the named projections (all by default) until :meth:`stop`."""

    def __init__(
        self,
        store: Store,
        names: Iterable[str] | None = None,
        *,
        interval: float = 0.2,
        batch_size: int | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.store = store
        self.names = list(names) if names else list(NAMES)
        make(self.names)  # fail early on an unknown name
        self.interval = interval
        self.batch_size = batch_size
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.states = {name: RunnerState(name) for name in self.names}
        topics = frozenset().union(*(p.topics for p in make(self.names)))
        self.log = SharedLog(store, topics, block=batch_size or default_batch_size(store))
        self._threads: dict[str, threading.Thread] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Supervisor:
        self._stopping.clear()
        for name in self.names:
            self._spawn(name)
        self._monitor = threading.Thread(
            target=self._watch, name="projections-monitor", daemon=True
        )
        self._monitor.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every runner to stop after its current batch, and wait for them."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._monitor is not None:
            self._monitor.join(max(0.0, deadline - time.monotonic()))
        for state in self.states.values():
            state.state = "stopped"
            metrics.UP.labels(state.name).set(0)

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- status ---------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.states[name].as_dict() for name in self.names]

    def caught_up(self) -> bool:
        """True when every runner is running and at the log's head."""
        head = self.store.recorder.head()
        with self._lock:
            return all(
                s.state == "running" and s.position is not None and s.position >= head
                for s in self.states.values()
            )

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.caught_up():
                return True
            time.sleep(0.02)
        return self.caught_up()

    # --- the runners ----------------------------------------------------------------------

    def _spawn(self, name: str) -> None:
        thread = threading.Thread(
            target=self._run, args=(name,), name=f"projection-{name}", daemon=True
        )
        self._threads[name] = thread
        thread.start()

    def _run(self, name: str) -> None:
        state = self.states[name]
        worker: Worker | None = None
        delay = self.backoff_min
        recorder = self.store.recorder
        while not self._stopping.is_set():
            try:
                if worker is None:
                    worker = Worker(
                        self.store, make([name])[0], batch_size=self.batch_size, log=self.log
                    )
                    worker.resolve()
                    self._update(state, worker, running=True)
                result = worker.step()
                self._update(state, worker, running=True)
                delay = self.backoff_min
                if result.read == 0 and not self._stopping.is_set():
                    recorder.wait_for_append(self.interval)
            except Exception as error:
                worker = None
                self._crashed(state, error)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff_max)

    def _update(self, state: RunnerState, worker: Worker, *, running: bool) -> None:
        with self._lock:
            if running and state.state != "running":
                state.state = "running"
                state.started_at = datetime.now(UTC)
                metrics.UP.labels(state.name).set(1)
            state.generation = worker.generation
            state.position = worker.position
            state.events_applied = worker.applied_total

    def _crashed(self, state: RunnerState, error: BaseException) -> None:
        log.error(
            "projection %s crashed (restart %d): %s\n%s",
            state.name,
            state.restarts + 1,
            error,
            "".join(traceback.format_exception(error)),
        )
        metrics.CRASHES.labels(state.name).inc()
        metrics.UP.labels(state.name).set(0)
        with self._lock:
            state.state = "crashed"
            state.restarts += 1
            state.last_error = f"{type(error).__name__}: {error}"[:500]
            state.last_error_at = datetime.now(UTC)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for name, thread in list(self._threads.items()):
                if not thread.is_alive() and not self._stopping.is_set():
                    self._crashed(self.states[name], RuntimeError("runner thread died"))
                    self._spawn(name)
            try:
                head = self.store.recorder.head()
            except Exception as error:  # the database is away; the runners report it
                log.debug("projection monitor: no head: %s", error)
                continue
            with self._lock:
                for state in self.states.values():
                    if state.position is not None:
                        state.lag = max(0, head - state.position)
                        metrics.set_lag(state.name, state.position, head)

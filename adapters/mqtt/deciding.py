"""The deciding half of the ingest in a process of its own.

One Python process cannot give two cores to the two halves of the ingest: paho's network
thread (receiving, acknowledging, publishing replies) and the worker that parses, decides and
commits share one interpreter lock. :class:`DecidingProcess` moves the worker's
:class:`~adapters.mqtt.processor.BatchProcessor` (and the :class:`~ledger.service.Ledger` with
its cache) into a child process. The parent keeps the MQTT client; batches go to the child
over a pipe and outcomes come back in the same order.

Two ways to call it:

- :meth:`process` and :meth:`reject_failed`, the calls of a ``BatchProcessor``: one batch,
  wait for its outcome.
- :meth:`submit` then :meth:`outcome`, for the ingest's pipeline: the next batch is already
  in the pipe while the child decides the current one, so the child does not wait for the
  parent to publish replies, acknowledge and gather the next batch. Once a pipelined batch
  fails, the child *skips* the pipelined batches behind it (:class:`Skipped`) until a
  :meth:`process` call, so the ingest can do them again in their order and no message is
  decided ahead of one that arrived before it.

Nothing about delivery changes: the parent publishes the replies and acknowledges the messages
after the outcome came back, that is after the child's commit. A database error in the child
comes back as :class:`DecidingUnavailable` (a ``ConnectionError``: the ingest retries the batch
with backoff); any other failure as :class:`DecidingFailed` (the ingest handles the batch's
messages one by one, and records the one that fails as rejected). If the child dies, its
outstanding batches fail with :class:`DecidingUnavailable` and the next call starts a new
child; what the old one committed is found again by its idempotency keys.

The child ignores SIGINT (Ctrl-C reaches the whole process group; the parent decides when to
stop) and exits when the parent closes the pipe, so a ``kill -9`` of the parent does not leave
it behind. Its ledger metrics are sent back with each outcome and counted in the parent,
which serves ``/metrics``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from adapters.mqtt.processor import Handled, Incoming, Processed
from adapters.mqtt.replies import Outgoing
from adapters.store.engine import is_memory_sqlite, is_sqlite
from domain.commands import Command

if TYPE_CHECKING:
    from adapters.store import Store
    from ledger.settings import Settings

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # seconds for a new child to import everything and say it is ready
LEAN_GC = (50_000, 20, 100)
"""The child's GC thresholds: a batch allocates thousands of short-lived objects (commands,
events, rows), and the default thresholds run a collection every 700 of them (~8 % of the
child's time at full rate)."""

# What crosses the pipe: plain tuples (pickling them is several times cheaper than objects).
Wire = tuple[str, bytes, datetime, bool]  # topic, payload, received_at, retain
Row = tuple[int, list[tuple[str, bytes]], str, str, str | None, str | None]


class DecidingUnavailable(ConnectionError):
    """The child could not reach the database (or died): try the same batch again later."""


class DecidingFailed(Exception):
    """The child failed on the batch for another reason (a bug): its text."""

    def __repr__(self) -> str:
        return str(self.args[0]) if self.args else "DecidingFailed()"


class Skipped(Exception):
    """A pipelined batch the child did not decide because one before it failed."""


@dataclass
class Ticket:
    """A submitted batch, until its outcome is taken with :meth:`DecidingProcess.outcome`."""

    batch: list[Incoming]
    sweeps: list[Command]
    child: int  # which child it was sent to (a new one after a restart)
    lost: BaseException | None = None  # not decided: the child is gone, or was when sent


class DecidingProcess:
    """A :class:`~adapters.mqtt.processor.BatchProcessor` on ``url`` in a child process.

    ``secret`` wraps riders' data keys (default: the SECRET_KEY setting, read by the child).
    ``processor`` names the processor class the child runs (``module:Class``, made with the
    child's ledger; tests name a subclass that fails on purpose). The child starts on
    :meth:`start` (the ingest calls it) or on first use. Any number of threads may call
    :meth:`process`; :meth:`submit` and :meth:`outcome` are for one submitting and one
    receiving thread (the ingest's pipeline)."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        cache_size: int = 200_000,
        processor: str = "adapters.mqtt.processor:BatchProcessor",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.url = url
        self.secret = secret
        self.cache_size = cache_size
        self.processor = processor
        self.start_timeout = start_timeout
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._process: Any = None
        self._conn: Connection | None = None
        self._children = 0
        self._send = threading.RLock()  # sending, and whole process() calls
        self._outstanding: deque[Ticket] = deque()
        self.restarts = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> DecidingProcess:
        with self._send:
            if self._conn is None:
                self._spawn()
        return self

    def close(self, timeout: float = 10.0) -> None:
        with self._send:
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            conn.close()
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)

    def _spawn(self) -> None:
        parent, child = self._context.Pipe(duplex=True)
        level = logging.getLogger().getEffectiveLevel()
        process = self._context.Process(
            target=_child_main,
            args=(child, self.url, self.secret, self.cache_size, self.processor, level),
            name="bss-ingest-deciding",
            daemon=True,
        )
        process.start()
        child.close()  # the parent keeps only its own end: EOF when the child dies
        if not parent.poll(self.start_timeout):
            process.terminate()
            raise DecidingUnavailable(
                f"the deciding process did not start in {self.start_timeout}s"
            )
        try:
            hello = parent.recv()
        except (EOFError, OSError) as error:
            process.join(5)
            raise DecidingUnavailable(
                f"the deciding process exited while starting (code {process.exitcode})"
            ) from error
        if hello != ("ready",):
            process.terminate()
            raise DecidingUnavailable(f"the deciding process said {hello!r}")
        self._conn, self._process = parent, process
        self._children += 1
        log.info("deciding process %s started", process.pid)

    # --- the BatchProcessor's calls -------------------------------------------------------

    def process(self, batch: Sequence[Incoming], sweeps: Sequence[Command] = ()) -> Processed:
        """Decide and commit one batch now (after every outstanding one)."""
        with self._send:
            if self._outstanding:
                raise RuntimeError("process() with pipelined batches outstanding")
            return self.outcome(self._submit(list(batch), list(sweeps), fresh=True))

    def reject_failed(self, incoming: Incoming, error: BaseException) -> Handled:
        with self._send:
            if self._outstanding:
                raise RuntimeError("reject_failed() with pipelined batches outstanding")
            self._ensure()
            conn = self._conn
            assert conn is not None
            try:
                conn.send(("reject", _wire(incoming), repr(error)))
                status, payload, calls = conn.recv()
            except (EOFError, OSError) as lost:
                self._lose(lost)
                raise DecidingUnavailable(f"the deciding process died ({lost!r})") from lost
        _count(calls)
        return _handled(incoming, _result(status, payload))

    # --- the pipeline ---------------------------------------------------------------------

    def submit(self, batch: Sequence[Incoming], sweeps: Sequence[Command] = ()) -> Ticket:
        """Send a batch to be decided after the ones already sent; take its outcome later."""
        with self._send:
            return self._submit(list(batch), list(sweeps), fresh=False)

    def outcome(self, ticket: Ticket) -> Processed:
        """Wait for the outcome of the oldest outstanding batch (``ticket``)."""
        if not self._outstanding or self._outstanding[0] is not ticket:
            raise RuntimeError("outcomes are taken in the order the batches were submitted")
        try:
            if ticket.lost is not None:
                raise DecidingUnavailable(f"the batch was not decided ({ticket.lost!r})")
            conn = self._conn
            if conn is None or ticket.child != self._children:
                raise DecidingUnavailable("the deciding process was restarted")
            try:
                status, payload, calls = conn.recv()
            except (EOFError, OSError) as error:
                with self._send:
                    if ticket.child == self._children:
                        self._lose(error)
                raise DecidingUnavailable(f"the deciding process died ({error!r})") from error
        finally:
            self._outstanding.popleft()
        _count(calls)
        rows, deferred, timed_out = _result(status, payload)
        batch = ticket.batch
        handled = [_handled(batch[row[0]], row) for row in rows]
        return Processed(handled, [batch[i] for i in deferred], timed_out)

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def _submit(self, batch: list[Incoming], sweeps: list[Command], *, fresh: bool) -> Ticket:
        """Send a batch; a failure to send (or to start a child) is kept in the ticket, so
        its outcome reports it in its turn and the ingest retries it."""
        behind = [t for t in self._outstanding if t.lost or t.child != self._children]
        ticket = Ticket(batch, sweeps, self._children)
        self._outstanding.append(ticket)
        if behind and not fresh:
            # A batch before it was never decided: this one must not overtake it (a new child
            # would decide it first). Its outcome says so; the ingest does both again, in order.
            ticket.lost = DecidingUnavailable("held back behind a batch that was not decided")
            return ticket
        try:
            self._ensure()
        except DecidingUnavailable as error:
            ticket.lost = error
            return ticket
        ticket.child = self._children
        conn = self._conn
        assert conn is not None
        try:
            conn.send(("process", [_wire(i) for i in batch], sweeps, fresh))
        except OSError as error:  # the child is gone: outcome() says so, in order
            ticket.lost = error
            self._lose(error)
        return ticket

    def _ensure(self) -> None:
        if self._conn is None:
            self._spawn()

    def _lose(self, error: BaseException) -> None:
        """The child died (caller holds the send lock): forget it; the next call starts one."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
            log.error(
                "deciding process %s lost (%r, exit code %s); starting a new one",
                process.pid,
                error,
                process.exitcode,
            )
        self.restarts += 1
        self._children += 1  # outstanding tickets of the old child cannot be answered now


def for_settings(
    settings: Settings, store: Store, choice: str | None = None
) -> DecidingProcess | None:
    """The deciding process the settings ask for (``choice`` overrides
    ``BSS_INGEST_DECIDING``), or None to decide in the ingest's own process. ``auto`` takes
    a process on a database server and none on SQLite, where a second writing process
    would only wait for the file's lock; an in-memory SQLite database is never shared."""
    choice = choice or settings.ingest_deciding
    if choice not in ("auto", "process", "thread"):
        raise ValueError(f"deciding must be auto, process or thread, not {choice!r}")
    url = store.engine.url.render_as_string(hide_password=False)
    if choice == "thread" or is_memory_sqlite(url) or (choice == "auto" and is_sqlite(url)):
        return None
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return DecidingProcess(url, secret=secret, cache_size=settings.cache_size)


def _wire(incoming: Incoming) -> Wire:
    return (incoming.topic, incoming.payload, incoming.received_at, incoming.retain)


def _result(status: str, payload: Any) -> Any:
    if status == "ok":
        return payload
    if status == "skipped":
        raise Skipped("a batch before it failed")
    database, text = payload
    if database:
        raise DecidingUnavailable(text)
    raise DecidingFailed(text)


def _handled(incoming: Incoming, row: Row) -> Handled:
    _index, replies, result, topic, station_id, reason = row
    return Handled(
        incoming, [Outgoing(t, p) for t, p in replies], result, topic, station_id, reason
    )


def _count(calls: list[tuple[str, tuple[str, ...], str, float]]) -> None:
    """Count the child's ledger metrics in this process's registry."""
    from ledger import metrics

    for name, labels, method, value in calls:
        metric = getattr(metrics, name)
        if labels:
            metric = metric.labels(*labels)
        getattr(metric, method)(value)


# --- the child ----------------------------------------------------------------------------


class _Calls:
    """The child's metric calls since the last answer: increments summed per metric and
    labels, observations one by one."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, tuple[str, ...]], float] = {}
        self.observed: list[tuple[str, tuple[str, ...], str, float]] = []

    def take(self) -> list[tuple[str, tuple[str, ...], str, float]]:
        calls = [(name, labels, "inc", n) for (name, labels), n in self.counts.items()]
        calls.extend(self.observed)
        self.counts.clear()
        self.observed.clear()
        return calls


class _Relay:
    """Stands in for a ledger metric in the child: records each call to send it back."""

    def __init__(self, name: str, calls: _Calls, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.calls = calls
        self._labels = labels

    def labels(self, *values: str) -> _Relay:
        return _Relay(self.name, self.calls, tuple(str(v) for v in values))

    def inc(self, amount: float = 1) -> None:
        key = (self.name, self._labels)
        self.calls.counts[key] = self.calls.counts.get(key, 0) + amount

    def observe(self, value: float) -> None:
        self.calls.observed.append((self.name, self._labels, "observe", value))


def _child_main(
    conn: Connection, url: str, secret: str | None, cache_size: int, processor: str, level: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*LEAN_GC)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ledger import metrics

    calls = _Calls()
    for name in ("EVENTS_APPENDED", "COMMANDS", "CONFLICTS", "DUPLICATES", "BATCH_SIZE"):
        setattr(metrics, name, _Relay(name, calls))
    serving = _Serving(url, secret, cache_size, processor)
    conn.send(("ready",))
    try:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if request[0] == "stop":
                return
            answer = serving.answer(request)
            try:
                conn.send((*answer, calls.take()))
            except OSError:
                return
    finally:
        serving.close()


class _Serving:
    """The child's ledger and processor, opened on first use (the database may be away)."""

    def __init__(self, url: str, secret: str | None, cache_size: int, name: str) -> None:
        self.url = url
        self.secret = secret
        self.cache_size = cache_size
        self.name = name
        self.processor: Any = None
        self.store: Any = None
        self.halted = False  # a pipelined batch failed: skip the pipelined ones behind it

    def answer(self, request: tuple[Any, ...]) -> tuple[str, Any]:
        from adapters.mqtt.ingest import is_database_error

        kind = request[0]
        if kind == "reject" or (kind == "process" and request[3]):
            self.halted = False  # a plain call: the ingest is redoing, in order
        if kind == "process" and self.halted:
            return "skipped", None
        try:
            processor = self._processor()
            if kind == "process":
                return "ok", self._process(processor, request[1], request[2])
            if kind == "reject":
                handled = processor.reject_failed(_incoming(request[1]), DecidingFailed(request[2]))
                return "ok", _row(0, handled)
            return "error", (False, f"unknown request {kind!r}")
        except Exception as error:
            self.halted = True
            database = is_database_error(error)
            if not database:
                log.exception("the deciding process failed on a %s request", kind)
            return "error", (database, repr(error))

    @staticmethod
    def _process(processor: Any, wire: list[Wire], sweeps: list[Command]) -> Any:
        batch = [_incoming(w) for w in wire]
        processed = processor.process(batch, sweeps)
        index = {id(incoming): i for i, incoming in enumerate(batch)}
        rows = [_row(index[id(h.incoming)], h) for h in processed.handled]
        deferred = [index[id(incoming)] for incoming in processed.deferred]
        return rows, deferred, processed.timed_out

    def _processor(self) -> Any:
        if self.processor is None:
            from adapters.store import open_store
            from ledger.service import Ledger

            module, _, name = self.name.partition(":")
            cls = getattr(importlib.import_module(module), name)
            store = open_store(self.url, secret=self.secret)
            try:
                ledger = Ledger(store, cache_size=self.cache_size)
            except Exception:
                store.close()
                raise
            self.store, self.processor = store, cls(ledger)
        return self.processor

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _incoming(wire: Wire) -> Incoming:
    topic, payload, received_at, retain = wire
    return Incoming(topic=topic, payload=payload, received_at=received_at, retain=retain)


def _row(index: int, handled: Handled) -> Row:
    replies = [(reply.topic, reply.payload) for reply in handled.replies]
    return (index, replies, handled.result, handled.topic, handled.station_id, handled.reason)

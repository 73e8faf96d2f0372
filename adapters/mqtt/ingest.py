"""The MQTT ingest: station messages in, one transaction per batch, replies out, then acks.

Threads: paho's network thread only queues what arrives (``on_message``); one worker thread
drains what arrived together (up to ``batch_max`` messages, waiting at most ``batch_wait``
for more), runs it through :class:`~adapters.mqtt.processor.BatchProcessor` (one
``Ledger.execute_many``), publishes the replies at QoS 1 (never retained) and only then
acknowledges the messages (``manual_ack``). A message is therefore acknowledged only after
its events are committed; a crash in between redelivers it, and its idempotency key turns the
redelivery into a re-sent reply.

The session is persistent and the client id fixed: MQTT 5 with a session expiry interval
and ``clean_start=False`` (by default; its Receive Maximum lets the broker keep up to
``receive_maximum`` messages in flight, so batches can grow past mosquitto's default of 20
in-flight messages for MQTT 3.1.1 clients), or MQTT 3.1.1 with ``clean_session=False``.

While the database is unavailable the worker retries the same batch with exponential
backoff for as long as it takes, and acknowledges nothing meanwhile. The session sweeper is
part of the worker: every ``sweep_interval`` seconds it adds one ``TimeOutSessions`` command
per known station, stamped with the ledger's clock, to the next batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeGuard, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import text

from adapters.mqtt import metrics
from adapters.mqtt.processor import BatchProcessor, Handled, Incoming, Processed
from adapters.mqtt.topics import INBOUND_FILTERS, shared
from adapters.store.engine import is_transient
from domain.commands import Command, TimeOutSessions
from ledger.service import Ledger
from ledger.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
NEVER_EXPIRES = 0xFFFFFFFF
PIPELINE_DEPTH = 2  # batches in a deciding process at once: one decided, the next waiting


class Processor(Protocol):
    """What the worker hands batches to: a :class:`BatchProcessor` in this process, or a
    :class:`~adapters.mqtt.deciding.DecidingProcess` (the same calls, in a child process)."""

    def process(self, batch: Sequence[Incoming], sweeps: Sequence[Command] = ()) -> Processed: ...

    def reject_failed(self, incoming: Incoming, error: BaseException) -> Handled: ...


class Pipelined(Processor, Protocol):
    """A processor that takes the next batch while it decides the current one
    (:class:`~adapters.mqtt.deciding.DecidingProcess`): outcomes come back in order."""

    def submit(self, batch: Sequence[Incoming], sweeps: Sequence[Command] = ()) -> Any: ...

    def outcome(self, ticket: Any) -> Processed: ...


@dataclass(frozen=True)
class IngestConfig:
    """How the ingest connects and batches; :meth:`from_settings` reads ledger.settings."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "bss-ledger-ingest"
    username: str | None = None
    password: str | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    shared_group: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    session_expiry: int = NEVER_EXPIRES  # seconds the broker keeps our session (MQTT 5)
    # MQTT 5: unacknowledged messages the broker may send us. Room for the batches in the
    # deciding process and the next ones gathering (fewer made readings ~15 % slower).
    receive_maximum: int = 2000
    keepalive: int = 30
    batch_max: int = 500  # a commit per batch: 500 readings took ~15 % less CPU than 200
    batch_wait: float = 0.002  # seconds to wait for more messages after the first
    sweep_interval: float = 5.0  # seconds between session timeout sweeps (0: never)
    station_refresh: float = 60.0  # seconds between re-reading the list of stations
    reconnect_min: int = 1
    reconnect_max: int = 30
    retry_max: float = 5.0  # longest wait between tries while the database is away

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> IngestConfig:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        config = cls(
            host=settings.mqtt_broker_host,
            port=settings.mqtt_broker_port,
            client_id=settings.mqtt_client_id,
            username=settings.mqtt_username,
            password=password,
            tls_ca_file=settings.mqtt_tls_ca_file,
            tls_cert_file=settings.mqtt_tls_cert_file,
            tls_key_file=settings.mqtt_tls_key_file,
            shared_group=settings.mqtt_shared_group,
            protocol=settings.mqtt_protocol,
        )
        if settings.mqtt_session_expiry is not None:
            config = replace(config, session_expiry=settings.mqtt_session_expiry)
        return replace(config, **overrides)

    @property
    def tls(self) -> bool:
        return self.tls_ca_file is not None or self.tls_cert_file is not None


@dataclass
class IngestStats:
    """Counters since start (a snapshot; ``Ingest.stats`` makes a new one per call)."""

    received: int = 0  # messages that arrived
    committed: int = 0  # messages handled and acknowledged after their commit
    accepted: int = 0
    refused: int = 0  # the domain refused (a reason code went back to the station)
    rejected: int = 0  # recorded as rejected messages
    duplicates: int = 0  # answered from their idempotency key, nothing appended
    batches: int = 0
    replies: int = 0
    acked: int = 0  # acknowledgements sent (QoS 1 messages, after their commit)
    db_retries: int = 0
    deferred: int = 0  # put back after repeated conflicts with other writers
    timed_out_sessions: int = 0
    queued: int = 0
    connected: bool = False
    reply_latency: dict[str, float] = field(default_factory=dict)  # seconds: p50 p95 p99 max

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_database_error(error: BaseException) -> bool:
    """True when the database (not the message) is the problem: try the batch again."""
    import pymysql
    import sqlalchemy.exc
    from eventsourcing.persistence import OperationalError as StoreOperationalError

    database_errors = (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.TimeoutError,
        sqlalchemy.exc.DisconnectionError,
        sqlalchemy.exc.ResourceClosedError,
        pymysql.err.OperationalError,
        pymysql.err.InterfaceError,
        pymysql.err.InternalError,
        sqlite3.OperationalError,
        StoreOperationalError,
        ConnectionError,
        TimeoutError,
        OSError,
    )
    return isinstance(error, database_errors) or is_transient(error)


class _Aborted(Exception):
    """Raised inside the worker when stop() gave up waiting for the database."""


class Ingest:
    """Station messages from MQTT into the ledger. ``start()``, ``stop()``, ``stats``.

    ``bss ingest`` runs one alone; ``bss serve`` and ``bss demo`` run one next to the API.
    """

    def __init__(
        self,
        ledger: Ledger,
        config: IngestConfig | None = None,
        *,
        processor: Processor | None = None,
    ) -> None:
        self.ledger = ledger
        self.config = config or IngestConfig()
        self.processor: Processor = processor or BatchProcessor(ledger)
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._carry: list[Incoming] = []  # deferred messages, first in the next batch
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._stats = IngestStats()
        self._received = 0  # messages that arrived (paho's thread counts them)
        self._latencies: deque[float] = deque(maxlen=10_000)
        self._rate: deque[tuple[float, int]] = deque()
        self._generation = 0
        self._subscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self._receiver: threading.Thread | None = None  # the pipeline's second thread
        self._slots = threading.Semaphore(PIPELINE_DEPTH)
        self._inflight: queue.Queue[Any] = queue.Queue()  # submitted tickets, in order
        self._submitting = threading.Lock()  # a submit and its place in _inflight, together
        self._busy = 0  # batches submitted and not yet delivered
        self._client: mqtt.Client | None = None
        self._stations: set[str] = set()
        self._stations_read = -1e9
        self._next_sweep = time.monotonic() + self.config.sweep_interval

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, wait: float | None = 10.0) -> Ingest:
        """Connect (in the background, reconnecting with backoff) and start the worker.
        With ``wait``, block until the subscriptions are acknowledged (or raise TimeoutError)."""
        starting = getattr(self.processor, "start", None)
        if starting is not None:
            starting()  # a deciding process: ready before the first message arrives
        self._client = self._make_client()
        if _pipelined(self.processor):
            self._worker = threading.Thread(
                target=self._submit_loop, name="bss-ingest-submit", daemon=True
            )
            self._receiver = threading.Thread(
                target=self._receive_loop, name="bss-ingest-deliver", daemon=True
            )
            self._receiver.start()
        else:
            self._worker = threading.Thread(
                target=self._work, name="bss-ingest-worker", daemon=True
            )
        self._worker.start()
        cfg = self.config
        if cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = cfg.session_expiry
            props.ReceiveMaximum = cfg.receive_maximum
            self._client.connect_async(
                cfg.host, cfg.port, cfg.keepalive, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(cfg.host, cfg.port, cfg.keepalive)
        self._client.loop_start()
        if wait is not None and not self._subscribed.wait(wait):
            self.stop(timeout=1)
            raise TimeoutError(f"no MQTT subscription at {cfg.host}:{cfg.port} within {wait}s")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in progress (replies and acks included), then disconnect. If the
        database is still away after ``timeout`` seconds, give up: nothing more is
        acknowledged, and the broker redelivers the rest to the next ingest with this id."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in (self._worker, self._receiver):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    self._abort.set()
                    thread.join(10)
        client = self._client
        if client is not None:
            client.disconnect()
            client.loop_stop()
        closing = getattr(self.processor, "close", None)
        if closing is not None:
            closing()
        metrics.CONNECTED.set(0)

    def __enter__(self) -> Ingest:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stats(self) -> IngestStats:
        with self._lock:
            snapshot = replace(
                self._stats,
                received=self._received,
                queued=self._queue.qsize() + len(self._carry),
            )
            snapshot.reply_latency = _percentiles(list(self._latencies))
        return snapshot

    def status(self) -> dict[str, Any]:
        """The current stats as a dict (a callable for the API: ``ingest_status=ingest.status``;
        ``ingest.stats.as_dict`` would be a snapshot frozen at the moment it was taken)."""
        return self.stats.as_dict()

    def wait_idle(self, timeout: float = 30.0, quiet: float = 0.2) -> bool:
        """Block until nothing arrived and nothing was in progress for ``quiet`` seconds
        (tests: let the ingest finish what was published)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.is_set() and self._queue.empty() and not self._carry:
                time.sleep(quiet)
                if self._idle.is_set() and self._queue.empty() and not self._carry:
                    return True
            time.sleep(0.01)
        return False

    # --- MQTT ---------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        if cfg.protocol == "5":
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cfg.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cfg.client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
                manual_ack=True,
            )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(
                ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
                certfile=str(cfg.tls_cert_file) if cfg.tls_cert_file else None,
                keyfile=str(cfg.tls_key_file) if cfg.tls_key_file else None,
            )
        client.reconnect_delay_set(cfg.reconnect_min, cfg.reconnect_max)
        client.max_queued_messages_set(0)  # replies wait in the client while disconnected
        client.on_socket_open = _no_delay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        with self._lock:
            self._generation += 1
            self._stats.connected = True
        metrics.CONNECTED.set(1)
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            self.config.host,
            self.config.port,
            self.config.client_id,
            flags.session_present,
        )
        group = self.config.shared_group
        if self.config.protocol == "5":
            options = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
            )
            client.subscribe([(shared(f, group), options) for f in INBOUND_FILTERS])
        else:
            client.subscribe([(shared(f, group), 1) for f in INBOUND_FILTERS])

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("MQTT subscription refused: %s", failed)
        else:
            log.info("subscribed to %d topic filters at QoS 1", len(reasons))
        self._subscribed.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        with self._lock:
            self._stats.connected = False
        metrics.CONNECTED.set(0)
        if not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._idle.is_set():  # (is_set is a plain read; clear() takes a lock)
            self._idle.clear()
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never let one stop the loop
            topic = bytes(message._topic).decode("utf-8", "replace")
        self._queue.put(
            Incoming(
                topic,
                bytes(message.payload),
                self.ledger.clock(),
                message.mid,
                message.qos,
                bool(message.retain),
                self._generation,
                time.monotonic(),
            )
        )
        self._received += 1  # only this (paho's) thread writes it: no lock

    # --- the worker ---------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while not self._stopping.is_set():
                batch = self._collect()
                sweeps = self._due_sweeps()
                if not batch and not sweeps:
                    if self._queue.empty():
                        self._idle.set()
                    continue
                processed = self._commit(batch, sweeps)
                self._deliver(processed)
        except _Aborted:
            log.warning("stopped while the database was unavailable; nothing more acknowledged")
        except Exception:
            log.exception("the ingest worker failed; unacknowledged messages will be redelivered")
        finally:
            self._idle.set()

    def _collect(self) -> list[Incoming]:
        """What arrived together: messages put back last time first, then up to batch_max."""
        cfg = self.config
        with self._lock:
            batch, self._carry = self._carry[: cfg.batch_max], self._carry[cfg.batch_max :]
        timeout = 0.0 if batch else min(0.2, max(0.0, self._next_sweep - time.monotonic()))
        try:
            batch.append(self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait())
        except queue.Empty:
            return batch
        deadline = time.monotonic() + cfg.batch_wait
        while len(batch) < cfg.batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return batch

    def _retrying(self, work: Callable[[], T]) -> T:
        """Run ``work`` until the database lets it through (exponential backoff, forever,
        unless stop() gives up). Errors that are not the database's propagate."""
        delay = 0.1
        while True:
            try:
                return work()
            except Exception as error:
                if not is_database_error(error):
                    raise
                with self._lock:
                    self._stats.db_retries += 1
                metrics.DB_RETRIES.inc()
                log.warning("database unavailable (%s); trying again in %.1fs", error, delay)
            if self._abort.wait(delay):
                raise _Aborted
            delay = min(delay * 2, self.config.retry_max)

    def _commit(self, batch: list[Incoming], sweeps: list[Command]) -> Processed:
        try:
            return self._retrying(lambda: self.processor.process(batch, sweeps))
        except _Aborted:
            raise
        except Exception:
            log.exception("a batch of %d failed; handling its messages one by one", len(batch))
        done = Processed([], [])
        for incoming in batch:
            try:
                one = self._retrying(partial(self.processor.process, [incoming]))
            except _Aborted:
                raise
            except Exception as error:
                log.exception("message on %s failed; recording it as rejected", incoming.topic)
                try:
                    failed = self._retrying(partial(self.processor.reject_failed, incoming, error))
                except _Aborted:
                    raise
                except Exception:
                    # Not even its rejection could be recorded: leave it unacknowledged (the
                    # broker redelivers it after a reconnect) rather than lose it silently.
                    log.exception("could not record the failed message on %s", incoming.topic)
                    continue
                one = Processed([failed], [])
            done.handled.extend(one.handled)
            done.deferred.extend(one.deferred)
        return done

    def _deliver(self, processed: Processed) -> None:
        """Replies first (QoS 1, not retained), then the acknowledgements."""
        client = self._client
        assert client is not None
        now = time.monotonic()
        latencies = []
        for handled in processed.handled:
            for reply in handled.replies:
                client.publish(reply.topic, reply.payload, qos=1, retain=False)
            if handled.replies:
                latencies.append(now - handled.incoming.arrived)
                metrics.REPLY_LATENCY.observe(latencies[-1])
        generation = self._generation
        acked = 0
        for handled in processed.handled:
            incoming = handled.incoming
            if incoming.qos > 0 and incoming.generation == generation:
                # A message from an earlier connection is redelivered on this one (same
                # session); that copy is acknowledged when it has been handled.
                client.ack(incoming.mid, incoming.qos)
                acked += 1
        with self._lock:
            self._carry.extend(processed.deferred)
        self._count(processed, latencies, acked)

    def _count(self, processed: Processed, latencies: list[float], acked: int) -> None:
        results = {"accepted": 0, "refused": 0, "rejected": 0, "duplicate": 0}
        labels: Counter[tuple[str, str]] = Counter()
        reasons: Counter[str] = Counter()
        for handled in processed.handled:
            results[handled.result] += 1
            labels[handled.topic, handled.result] += 1
            if handled.result == "rejected" and handled.reason:
                reasons[handled.reason] += 1
        for (topic, result), count in labels.items():  # one update per label, not per message
            metrics.MESSAGES.labels(topic, result).inc(count)
        for reason, count in reasons.items():
            metrics.REJECTED.labels(reason).inc(count)
        with self._lock:
            for handled in processed.handled:
                if handled.station_id is not None and handled.result != "rejected":
                    self._stations.add(handled.station_id)  # known to the ledger: sweep it
            stats = self._stats
            stats.batches += 1
            stats.committed += len(processed.handled)
            stats.accepted += results["accepted"]
            stats.refused += results["refused"]
            stats.rejected += results["rejected"]
            stats.duplicates += results["duplicate"]
            stats.replies += sum(len(h.replies) for h in processed.handled)
            stats.acked += acked
            stats.deferred += len(processed.deferred)
            stats.timed_out_sessions += processed.timed_out
            self._latencies.extend(latencies)
        now = time.monotonic()
        self._rate.append((now, len(processed.handled)))
        while self._rate and self._rate[0][0] < now - 10:
            self._rate.popleft()
        metrics.INGEST_RATE.set(sum(n for _, n in self._rate) / 10.0)

    # --- the pipeline (a processor in another process) ----------------------------------------

    def _submit_loop(self) -> None:
        """Gather a batch whenever fewer than PIPELINE_DEPTH are in the deciding process, and
        send it; the receiving thread delivers the outcomes in order."""
        processor = self.processor
        assert _pipelined(processor)
        try:
            while not self._stopping.is_set() and not self._abort.is_set():
                if not self._slots.acquire(timeout=0.2):
                    continue
                batch = self._collect()
                sweeps = self._due_sweeps()
                if not batch and not sweeps:
                    self._slots.release()
                    with self._lock:
                        quiet = self._busy == 0
                    if quiet and self._queue.empty():
                        self._idle.set()
                    continue
                with self._submitting:
                    with self._lock:
                        self._busy += 1
                    self._inflight.put((batch, sweeps, processor.submit(batch, sweeps)))
        except Exception:
            log.exception("the ingest failed; unacknowledged messages will be redelivered")
            self._abort.set()
        finally:
            self._inflight.put(None)

    def _receive_loop(self) -> None:
        processor = self.processor
        assert _pipelined(processor)
        try:
            while True:
                item = self._inflight.get()
                if item is None:
                    return
                batch, sweeps, ticket = item
                try:
                    processed = processor.outcome(ticket)
                except Exception as error:
                    self._redo([(batch, sweeps, ticket)], error)
                else:
                    self._deliver(processed)
                    self._delivered(1)
        except _Aborted:
            log.warning("stopped while the database was unavailable; nothing more acknowledged")
        except Exception:
            log.exception("the ingest failed; unacknowledged messages will be redelivered")
        finally:
            self._abort.set()  # the submitting thread must not wait for slots forever
            self._idle.set()

    def _redo(
        self, failed: list[tuple[list[Incoming], list[Command], Any]], error: Exception
    ) -> None:
        """A pipelined batch failed: take the outcomes of the batches behind it (the deciding
        process skipped them), then decide them all again one batch at a time, in order."""
        log.warning("a batch failed in the deciding process (%r); deciding it again", error)
        processor = self.processor
        assert _pipelined(processor)
        with self._submitting:  # nothing new is submitted until these are done
            outcomes: list[Processed | None] = [None]
            while True:
                try:
                    item = self._inflight.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inflight.put(None)  # the submitting thread ended: end after these
                    break
                failed.append(item)
                try:
                    outcomes.append(processor.outcome(item[2]))
                except Exception:
                    outcomes.append(None)
            for (batch, sweeps, _ticket), processed in zip(failed, outcomes, strict=True):
                self._deliver(processed or self._commit(batch, sweeps))
                self._delivered(1)

    def _delivered(self, batches: int) -> None:
        with self._lock:
            self._busy -= batches
        for _ in range(batches):
            self._slots.release()

    # --- session timeouts ---------------------------------------------------------------

    def _due_sweeps(self) -> list[Command]:
        """One TimeOutSessions per known station, every sweep_interval, at the ledger's time."""
        interval = self.config.sweep_interval
        now = time.monotonic()
        if interval <= 0 or now < self._next_sweep:
            return []
        self._next_sweep = now + interval
        try:
            stations = self._known_stations(now)
        except Exception as error:
            log.debug("no session sweep this time: %s", error)
            return []
        at = self.ledger.clock()
        return [TimeOutSessions(occurred_at=at, station_id=s) for s in sorted(stations)]

    def _known_stations(self, now: float) -> set[str]:
        if now - self._stations_read >= self.config.station_refresh:
            with self.ledger.store.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT DISTINCT originator_id FROM bss_events "
                        "WHERE originator_id LIKE 'station:%'"
                    )
                ).all()
            with self._lock:
                self._stations.update(str(r[0]).split(":", 1)[1] for r in rows)
            self._stations_read = now
        with self._lock:
            return set(self._stations)


def _pipelined(processor: Processor) -> TypeGuard[Pipelined]:
    return callable(getattr(processor, "submit", None)) and callable(
        getattr(processor, "outcome", None)
    )


def _no_delay(_client: Any, _userdata: Any, sock: Any) -> None:
    """Replies go out right after the acks of their batch: without TCP_NODELAY, Nagle holds
    them back for the acks' TCP acknowledgement (p99 reply latency ~40 ms → ~10 ms)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values.sort()

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {
        "p50": at(0.5),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": values[-1],
        "mean": sum(values) / len(values),
    }

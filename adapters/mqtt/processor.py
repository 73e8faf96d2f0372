"""One batch of station messages → one ledger transaction → the replies to send.

The worker of :mod:`adapters.mqtt.ingest` hands over what arrived together; this module
parses every message, prefetches the aggregates the batch touches in one query, and runs all
commands through ``Ledger.execute_many`` (group commit). Messages that cannot be accepted,
and commands the domain refused as invalid, become ``RecordRejectedMessage`` commands with an
idempotency key of their own. Nothing here talks to the broker: the caller publishes the
replies and acknowledges the messages, after :meth:`BatchProcessor.process` returned (that is,
after the commit). A database failure propagates, and the caller tries the same batch again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.mqtt import keys, rejections, topics
from adapters.mqtt.protocol import MAX_ID, Inbound, ProtocolError, load_object, validate
from adapters.mqtt.replies import ANSWERED, Outgoing, Request, rejection_replies, replies_to
from adapters.mqtt.topics import Kind
from adapters.mqtt.translate import Arrival, is_v2, new_session_id, to_command
from domain.base import ConcurrencyConflict, DomainError, Outcome
from domain.battery import Battery
from domain.card import Card
from domain.commands import AuthorizeCard, Command
from domain.policy import Policy
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station
from ledger.service import Ledger, Result, normalise_key

log = logging.getLogger(__name__)

CONFLICT_ROUNDS = 3


@dataclass
class Incoming:
    """One MQTT message as it arrived (``received_at`` by the ledger's clock)."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    retain: bool = False
    generation: int = 0
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class Handled:
    """A message whose events are committed: what to answer, and how it ended."""

    incoming: Incoming
    replies: list[Outgoing]
    result: str  # accepted | refused | rejected | duplicate
    topic: str  # metrics label: the topic without bss/{s}/, or "unknown"
    station_id: str | None = None
    reason: str | None = None  # rejection reason (also set for a duplicate of a rejection)


@dataclass
class Processed:
    handled: list[Handled]
    deferred: list[Incoming]  # kept colliding with other writers: try again in a later batch
    timed_out: int = 0  # sessions the sweep commands of the batch timed out


@dataclass
class _Work:
    incoming: Incoming
    station_id: str | None
    kind: Kind | None
    key: str
    data: dict[str, Any] | None = None
    body: Inbound | None = None
    command: Command | None = None
    rejection: tuple[str, str] | None = None  # (reason, message)
    result: Result | None = None

    @property
    def stored_key(self) -> str:
        """The idempotency key its command (or its rejection) is stored under."""
        key = self.key if self.command is not None else keys.rejection_key(self.key)
        return normalise_key(key)

    @property
    def label(self) -> str:
        return self.kind.value if self.kind is not None else "unknown"


class BatchProcessor:
    """Turns batches of messages into ledger transactions; one instance per worker thread."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        new_id: Callable[[], str] = new_session_id,
        conflict_rounds: int = CONFLICT_ROUNDS,
    ) -> None:
        self.ledger = ledger
        self.new_id = new_id
        self.conflict_rounds = conflict_rounds

    # --- the batch ----------------------------------------------------------------------

    def process(self, batch: Sequence[Incoming], sweeps: Sequence[Command] = ()) -> Processed:
        works = [self.parse(incoming) for incoming in batch]
        commands = [w.command for w in works if w.command is not None]
        self.ledger.prefetch(_streams(commands))
        self.ledger.prefetch(self._riders_of_cards(commands))
        items: list[tuple[Any, str | None]] = [self._item(w) for w in works]
        items.extend((command, None) for command in sweeps)
        results = self.ledger.execute_many(items)
        for work, result in zip(works, results, strict=False):
            work.result = result
        timed_out = sum(
            len(r.outcome.data.get("timed_out", ()))
            for r in results[len(works) :]
            if r.outcome is not None
        )
        self._retry_conflicts(works)
        self._reject_refused(works)
        done = [w for w in works if not _conflicted(w.result)]
        deferred = [w.incoming for w in works if _conflicted(w.result)]
        times = self._recorded_times([w for w in done if _answered(w)])
        return Processed([self._handled(w, times) for w in done], deferred, timed_out)

    def parse(self, incoming: Incoming) -> _Work:
        """Topic, payload and command of a message, or the reason it is rejected."""
        station_id, kind = topics.parse(incoming.topic)
        if station_id is None or len(station_id) > MAX_ID:
            work = _Work(incoming, None, None, keys.raw_key(incoming.topic, incoming.payload))
            work.rejection = ("unknown_topic", "topic is not bss/{station}/...")
            return work
        work = _Work(incoming, station_id, kind, "")
        try:
            work.data = load_object(incoming.payload)
        except ProtocolError as error:
            work.rejection = (error.reason, error.message)
        work.key = keys.message_key(station_id, incoming.topic, work.data, incoming.payload)
        if work.rejection is not None:
            return work
        if kind is None:
            rest = incoming.topic.split("/", 2)[2]
            work.rejection = ("unknown_topic", f"bss/{{station}}/{rest} is not a station topic")
            return work
        try:
            assert work.data is not None
            work.body = validate(kind, work.data)
            arrival = Arrival(incoming.received_at, incoming.retain)
            work.command = to_command(station_id, kind, work.body, arrival, self.new_id)
        except ProtocolError as error:
            work.rejection = (error.reason, error.message)
        return work

    def _riders_of_cards(self, commands: list[Command]) -> list[str]:
        """The riders whose cards the batch's auths name (known once the cards are loaded):
        a second prefetch instead of one load per auth."""
        streams = []
        for command in commands:
            if isinstance(command, AuthorizeCard):
                card = self.ledger.cache.get(Card.stream_id(command.rfid_code))
                if isinstance(card, Card) and card.rider_id:
                    streams.append(Rider.stream_id(card.rider_id))
        return streams

    def reject_failed(self, incoming: Incoming, error: BaseException) -> Handled:
        """Record a message this code failed on (a bug) as rejected: internal_error."""
        try:
            work = self.parse(incoming)
        except Exception:  # the bug may sit in parsing itself: the topic alone is enough
            station_id, kind = topics.parse(incoming.topic)
            if station_id is None or len(station_id) > MAX_ID:
                key, station_id, kind = keys.raw_key(incoming.topic, incoming.payload), None, None
            else:
                key = keys.message_key(station_id, incoming.topic, None, incoming.payload)
            work = _Work(incoming, station_id, kind, key)
        work.command = None
        work.rejection = ("internal_error", f"the ledger failed on this message: {error!r}")
        work.result = self.ledger.execute_many([self._item(work)])[0]
        return self._handled(work, self._recorded_times([work]))

    # --- steps --------------------------------------------------------------------------

    def _item(self, work: _Work) -> tuple[Any, str | None]:
        if work.command is not None:
            return work.command, work.key
        reason, message = work.rejection or ("internal_error", "no command")
        command = rejections.record(
            key=work.key,
            reason=reason,
            message=message,
            topic=work.incoming.topic,
            station_id=work.station_id,
            payload=work.incoming.payload,
            received_at=work.incoming.received_at,
        )
        return command, keys.rejection_key(work.key)

    def _retry_conflicts(self, works: list[_Work]) -> None:
        """Commands that lost to other writers after the ledger's own retries: once more
        (each round is a fresh decision), then leave them unacknowledged for a later batch."""
        for _round in range(self.conflict_rounds):
            again = [w for w in works if _conflicted(w.result)]
            if not again:
                return
            for work, result in zip(
                again, self.ledger.execute_many([self._item(w) for w in again]), strict=True
            ):
                work.result = result

    def _reject_refused(self, works: list[_Work]) -> None:
        """Commands the domain refused as invalid (DomainError) become rejected messages."""
        refused = [
            w
            for w in works
            if w.command is not None
            and w.result is not None
            and w.result.error is not None
            and not _conflicted(w.result)
        ]
        for work in refused:
            error = work.result.error if work.result is not None else None
            assert isinstance(error, DomainError)
            work.command = None
            work.rejection = (rejections.reason_of(error), error.message)
        if not refused:
            return
        results = self.ledger.execute_many([self._item(w) for w in refused])
        for work, result in zip(refused, results, strict=True):
            work.result = result

    @staticmethod
    def _recorded_times(works: list[_Work]) -> dict[str, str]:
        """When the ledger recorded each work's idempotency key (the replies' timestamp): the
        ledger returns it, for a repeat the first recording's, so a repeat says the same."""
        return {
            w.stored_key: _iso(w.result.recorded_at)
            for w in works
            if w.result is not None and w.result.recorded_at is not None
        }

    def _handled(self, work: _Work, times: dict[str, str]) -> Handled:
        result = work.result
        assert result is not None
        recorded_at = ""
        if _answered(work):
            recorded_at = times.get(work.stored_key) or _iso(work.incoming.received_at)
        if work.rejection is not None:
            return self._handled_rejection(work, result, recorded_at)
        assert result.outcome is not None
        assert work.station_id is not None
        assert work.kind is not None
        assert work.body is not None
        assert work.data is not None
        outcome = result.outcome
        status = "duplicate" if result.duplicate else ("accepted" if outcome.ok else "refused")
        replies: list[Outgoing] = []
        if work.kind in ANSWERED:
            request = Request(work.station_id, work.kind, work.data, is_v2(work.body), recorded_at)
            replies = replies_to(request, outcome, self._rider_name)
        return Handled(work.incoming, replies, status, work.label, work.station_id)

    def _handled_rejection(self, work: _Work, result: Result, recorded_at: str) -> Handled:
        reason, message = work.rejection or ("internal_error", "")
        outcome = result.outcome
        if outcome is None:
            # Recording the rejection itself failed (a bug): answer anyway, from memory.
            log.error(
                "could not record rejected message on %s: %s", work.incoming.topic, result.error
            )
            outcome = Outcome.accepted(
                reason=reason,
                message=message,
                topic=work.incoming.topic,
                received_at=work.incoming.received_at.isoformat(),
            )
        replies: list[Outgoing] = []
        if work.station_id is not None:
            request = Request(
                work.station_id,
                work.kind or Kind.STATION_STATUS,
                work.data or {},
                recorded_at=recorded_at,
            )
            replies = rejection_replies(request, work.kind, outcome)
        status = "duplicate" if result.duplicate else "rejected"
        return Handled(work.incoming, replies, status, work.label, work.station_id, reason)

    def _rider_name(self, rider_id: str) -> str | None:
        """The rider's name for the auth reply: from the aggregate the decision just used
        (in the ledger's cache), else the committed state."""
        rider = self.ledger.cache.get(Rider.stream_id(rider_id))
        if not isinstance(rider, Rider):
            rider = self.ledger.get(Rider, rider_id)
        if rider is None:
            return None
        return rider.personal.get("name")


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z`` (naive values from the store are UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _answered(work: _Work) -> bool:
    """Whether the work gets a reply, which carries the time its key was recorded."""
    return work.rejection is not None or work.kind in ANSWERED


def _conflicted(result: Result | None) -> bool:
    return result is not None and isinstance(result.error, ConcurrencyConflict)


def _streams(commands: Iterable[Command]) -> list[str]:
    """Stream ids a batch's commands will load (one query to prefetch them all)."""
    streams = {Policy.stream_id(Policy.KEY)}
    for command in commands:
        fields = vars(command)
        if fields.get("station_id"):
            streams.add(Station.stream_id(fields["station_id"]))
        for name in ("battery_id", "battery_in_id", "battery_out_id"):
            if fields.get(name):
                streams.add(Battery.stream_id(fields[name]))
        if fields.get("rider_id"):
            streams.add(Rider.stream_id(fields["rider_id"]))
        if fields.get("rfid_code"):
            streams.add(Card.stream_id(fields["rfid_code"]))
        if fields.get("session_id"):
            # An AuthorizeCard's is a new id: the prefetch remembers it is absent, so the
            # handler's check that it is new costs no query of its own.
            streams.add(SwapSession.stream_id(fields["session_id"]))
    return sorted(streams)

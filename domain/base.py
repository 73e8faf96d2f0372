"""Building blocks of the domain: events, aggregates, stamps, outcomes and errors.

Pure: nothing here reads a clock, makes a random id or does I/O. Times and ids arrive on
commands, so replaying the same events always rebuilds the same state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar

from domain.reasons import Reason


@dataclass(frozen=True, kw_only=True)
class Stamp:
    """The two times every event carries: when it happened and when the ledger recorded it."""

    occurred_at: datetime
    recorded_at: datetime


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Something that happened to one aggregate; immutable once recorded.

    ``originator_id``/``originator_version`` place it in its aggregate's stream (the
    names eventsourcing's mapper expects); ``timestamp`` is the recording time.
    """

    originator_id: str
    originator_version: int
    occurred_at: datetime
    recorded_at: datetime

    @property
    def timestamp(self) -> datetime:
        return self.recorded_at

    def apply(self, aggregate: Any) -> None:
        """Change the aggregate's state; creation events are applied to a bare instance."""


A = TypeVar("A", bound="Aggregate")


class Aggregate:
    """A consistency boundary rebuilt from its own events.

    Methods that change state call :meth:`trigger`, which makes the next event, applies it
    and keeps it in ``pending_events`` until the ledger has appended it.
    """

    prefix: ClassVar[str] = ""

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self.pending_events: list[DomainEvent] = []

    @classmethod
    def stream_id(cls, key: str) -> str:
        """The originator id of the aggregate with this business key (``battery:7``)."""
        return f"{cls.prefix}:{key}"

    @property
    def key(self) -> str:
        """The business key without the stream prefix (``7`` for ``battery:7``)."""
        return self.id.split(":", 1)[1]

    @classmethod
    def create(cls, key: str, event_class: type[DomainEvent], at: Stamp, **fields: Any) -> Self:
        aggregate = cls.__new__(cls)
        Aggregate.__init__(aggregate, cls.stream_id(key))
        aggregate.trigger(event_class, at, **fields)
        return aggregate

    def trigger(self, event_class: type[DomainEvent], at: Stamp, **fields: Any) -> DomainEvent:
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            occurred_at=at.occurred_at,
            recorded_at=at.recorded_at,
            **fields,
        )
        self.mutate(event)
        self.pending_events.append(event)
        return event

    def mutate(self, event: DomainEvent) -> None:
        if event.originator_version != self.version + 1:
            raise ValueError(
                f"event {type(event).__name__} v{event.originator_version} "
                f"does not follow {self.id} v{self.version}"
            )
        event.apply(self)
        self.version = event.originator_version

    def collect_events(self) -> list[DomainEvent]:
        events, self.pending_events = self.pending_events, []
        return events

    @classmethod
    def replay(cls, events: Iterable[DomainEvent]) -> Self | None:
        aggregate: Self | None = None
        for event in events:
            if aggregate is None:
                aggregate = cls.__new__(cls)
                Aggregate.__init__(aggregate, event.originator_id)
            aggregate.mutate(event)
        return aggregate

    def clone(self) -> Self:
        twin = copy.deepcopy(self)
        twin.pending_events = []
        return twin

    def state(self) -> dict[str, Any]:
        """Comparable state (for replay checks): every attribute but pending events."""
        return {k: v for k, v in vars(self).items() if k != "pending_events"}


@dataclass(frozen=True)
class Outcome:
    """What a command returned: accepted, or refused with a reason. JSON-serialisable data only,
    because the ledger stores it with the idempotency key and returns it again on a repeat."""

    ok: bool
    reason: str | None = None
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def accepted(cls, **data: Any) -> Outcome:
        return cls(True, None, None, data)

    @classmethod
    def refused(cls, reason: Reason, **data: Any) -> Outcome:
        return cls(False, reason.value, reason.message, data)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "message": self.message, "data": self.data}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(bool(d["ok"]), d.get("reason"), d.get("message"), dict(d.get("data") or {}))


class Repository(Protocol):
    """How command handlers reach aggregates. The ledger implements it over the event store
    (with a cache); unit tests implement it over a dict."""

    def get(self, cls: type[A], key: str) -> A | None:
        """The aggregate with this business key, or None if it was never created."""

    def add(self, aggregate: Aggregate) -> None:
        """Track a newly created aggregate so its pending events are appended."""


# --- errors -----------------------------------------------------------------------------


class DomainError(Exception):
    """Raised when a command cannot be carried out; carries a stable code and the ids involved."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, **ids: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.ids = ids


class InvalidCommand(DomainError):
    """Raised when a command has a missing or out-of-range value; names the field."""

    code = "invalid_command"

    def __init__(self, field_name: str, message: str, **ids: Any) -> None:
        super().__init__(f"{field_name}: {message}", field=field_name, **ids)
        self.field = field_name


class NotFound(DomainError):
    """Raised when a command names a station, battery, rider, card, plan or session that does
    not exist."""

    code = "not_found"


class AlreadyExists(DomainError):
    """Raised when a command creates something whose id is taken."""

    code = "already_exists"


class InvalidTransition(DomainError):
    """Raised when a command does not fit the current state (e.g. completing a closed session)."""

    code = "invalid_state"


class ConcurrencyConflict(DomainError):
    """Raised when an aggregate kept changing under a command after every retry."""

    code = "conflict"

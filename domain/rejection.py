"""A station message the ledger could not accept, kept so auditors see it.

Every rejected message is its own aggregate (``rejected:<id>``, the id derived from the
message's idempotency key by the adapter) with one event, ``RejectedMessage.Recorded``:
the reason code, a sentence for people, the topic, the station (None when the topic named
none), the raw payload (base64, capped by the adapter) and its full size, and when the
ledger received it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.base import Aggregate, DomainEvent
from domain.commands import Command

MAX_PAYLOAD_B64 = 8 * 1024  # base64 of the 4 KiB the adapter keeps, with room to spare


class RejectedMessage(Aggregate):
    prefix = "rejected"

    @dataclass(frozen=True, kw_only=True)
    class Recorded(DomainEvent):
        reason: str
        message: str
        topic: str
        station_id: str | None
        payload_b64: str
        payload_size: int
        received_at: datetime

        def apply(self, aggregate: RejectedMessage) -> None:
            aggregate.reason, aggregate.message = self.reason, self.message
            aggregate.topic, aggregate.station_id = self.topic, self.station_id
            aggregate.payload_b64, aggregate.payload_size = self.payload_b64, self.payload_size
            aggregate.received_at = self.received_at

    reason: str
    message: str
    topic: str
    station_id: str | None
    payload_b64: str
    payload_size: int
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class RecordRejectedMessage(Command):
    """Record a message the ledger rejected; ``occurred_at`` is when it was received."""

    rejection_id: str
    reason: str
    message: str
    topic: str
    station_id: str | None
    payload_b64: str
    payload_size: int
    received_at: datetime

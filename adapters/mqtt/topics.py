"""The station topic tree of PROTOCOL.md: ``bss/{s}/...``, which topics come in, which go out.

The ingest subscribes to the inbound topics only. Topic levels that carry no ledger reply
(``battery/+``, ``station/+``) are subscribed with a wildcard, so an unknown topic there
(``bss/7/battery/exploded``) arrives and is rejected as ``unknown_topic``; the ``swap/`` and
``auth/`` levels are listed one by one because our own replies live next to them.
"""

from __future__ import annotations

from enum import StrEnum

ROOT = "bss"


class Kind(StrEnum):
    """An inbound topic, named by what follows ``bss/{s}/``."""

    AUTH = "user/auth/request"  # the original station firmware's spelling
    AUTH_README = "auth/request"  # the original README's spelling of the same request
    SWAP_INITIATE = "swap/initiate"
    SWAP_REFUSED = "swap/refused"
    SWAP_ACTIVITY = "swap/activity"
    SWAP_RESULT = "swap/result"
    BATTERY_INSERTED = "battery/inserted"
    BATTERY_REMOVED = "battery/removed"
    BATTERY_TELEMETRY = "battery/telemetry"
    STATION_STATUS = "station/status"


class Reply(StrEnum):
    """An outbound topic (ledger → station)."""

    AUTH = "user/auth/response"
    AUTH_README = "auth/response"
    SWAP_DECISION = "swap/decision"
    SWAP_CONFIRMATION = "swap/confirmation"
    SWAP_ERROR = "swap/error"
    ERROR = "error"


AUTH_KINDS = (Kind.AUTH, Kind.AUTH_README)
COMPLETION_KINDS = (Kind.SWAP_ACTIVITY, Kind.SWAP_RESULT)

INBOUND_FILTERS: tuple[str, ...] = (
    f"{ROOT}/+/{Kind.AUTH}",
    f"{ROOT}/+/{Kind.AUTH_README}",
    f"{ROOT}/+/{Kind.SWAP_INITIATE}",
    f"{ROOT}/+/{Kind.SWAP_REFUSED}",
    f"{ROOT}/+/{Kind.SWAP_ACTIVITY}",
    f"{ROOT}/+/{Kind.SWAP_RESULT}",
    f"{ROOT}/+/battery/+",
    f"{ROOT}/+/station/+",
)

_KINDS = {kind.value: kind for kind in Kind}


def parse(topic: str) -> tuple[str | None, Kind | None]:
    """``(station, kind)`` of a topic; station None when the topic is not ``bss/{s}/...``,
    kind None when the rest is not an inbound topic of the protocol."""
    parts = topic.split("/", 2)
    if len(parts) < 3 or parts[0] != ROOT or not parts[1]:
        return None, None
    return parts[1], _KINDS.get(parts[2])


def reply_topic(station_id: str, reply: Reply) -> str:
    return f"{ROOT}/{station_id}/{reply}"


def shared(filter_: str, group: str | None) -> str:
    """The filter as a shared subscription of ``group`` (``$share/<group>/<filter>``)."""
    return f"$share/{group}/{filter_}" if group else filter_

"""Reason codes of refusals (DOMAIN.md), each with the human sentence stations show."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A stable reason code; ``.message`` is the sentence for people."""

    CARD_UNKNOWN = "card_unknown"
    CARD_BLOCKED = "card_blocked"
    RIDER_SUSPENDED = "rider_suspended"
    PAYMENT_OVERDUE = "payment_overdue"
    STATION_UNAVAILABLE = "station_unavailable"
    NO_BATTERY_AVAILABLE = "no_battery_available"
    BATTERY_NOT_HELD = "battery_not_held"
    BATTERY_HEALTH_LOW = "battery_health_low"
    BATTERY_TOO_HOT = "battery_too_hot"
    BATTERY_NOT_CHARGED = "battery_not_charged"
    BATTERY_UNAVAILABLE = "battery_unavailable"
    SESSION_TIMED_OUT = "session_timed_out"
    SESSION_UNKNOWN = "session_unknown"
    STATION_REFUSED = "station_refused"

    @property
    def message(self) -> str:
        return MESSAGES[self]


MESSAGES: dict[Reason, str] = {
    Reason.CARD_UNKNOWN: "Card not found",
    Reason.CARD_BLOCKED: "Card blocked or reported lost",
    Reason.RIDER_SUSPENDED: "Account suspended",
    Reason.PAYMENT_OVERDUE: "Payment overdue",
    Reason.STATION_UNAVAILABLE: "Station unavailable",
    Reason.NO_BATTERY_AVAILABLE: "No charged battery available",
    Reason.BATTERY_NOT_HELD: "This battery is not assigned to you",
    Reason.BATTERY_HEALTH_LOW: "Battery health below threshold",
    Reason.BATTERY_TOO_HOT: "Battery too hot",
    Reason.BATTERY_NOT_CHARGED: "Battery not charged enough",
    Reason.BATTERY_UNAVAILABLE: "Battery unavailable",
    Reason.SESSION_TIMED_OUT: "Session timed out",
    Reason.SESSION_UNKNOWN: "No open swap session",
    Reason.STATION_REFUSED: "Returned battery refused by the station",
}

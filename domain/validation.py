"""Checks of command fields. Each raises InvalidCommand naming the field, before anything changes.

Numbers from stations arrive as int or float (JSON); money and capacities become exact
``Decimal`` here, never via binary floats (``Decimal(str(x))``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.base import InvalidCommand

MAX_TEXT = 1000


def text(field: str, value: Any) -> str:
    """A required, non-blank string (surrounding spaces removed), at most MAX_TEXT long."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(field, "is required")
    if len(value) > MAX_TEXT:
        raise InvalidCommand(field, f"is longer than {MAX_TEXT} characters")
    return value.strip()


def optional_text(field: str, value: Any) -> str | None:
    """None, or a non-blank string."""
    return None if value is None else text(field, value)


def number(field: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """A required finite int or float within [low, high]; returned unchanged (no conversion)."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise InvalidCommand(field, "must be finite")
    elif kind is int:
        pass
    elif kind is bool or not isinstance(value, _NUMBERS):
        raise InvalidCommand(field, "must be a number")
    elif isinstance(value, float | Decimal) and not _finite(value):
        raise InvalidCommand(field, "must be finite")
    if low is not None and value < low:
        raise InvalidCommand(field, f"must be at least {low}")
    if high is not None and value > high:
        raise InvalidCommand(field, f"must be at most {high}")
    return value  # type: ignore[no-any-return]


_NUMBERS = (int, float, Decimal)


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def optional_number(
    field: str, value: Any, low: float | None = None, high: float | None = None
) -> float | None:
    return None if value is None else number(field, value, low, high)


def percent(field: str, value: Any) -> float | None:
    """An optional SOC/SOH/humidity in 0-100."""
    return optional_number(field, value, 0, 100)


def required_percent(field: str, value: Any) -> float:
    if value is None:
        raise InvalidCommand(field, "is required")
    return number(field, value, 0, 100)


def count(field: str, value: Any, low: int = 0) -> int:
    """A whole number ≥ low (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommand(field, "must be a whole number")
    if value < low:
        raise InvalidCommand(field, f"must be at least {low}")
    return value


def decimal(field: str, value: Any, *, positive: bool = False) -> Decimal:
    """An exact non-negative (or positive) decimal from Decimal, int, str or float."""
    if isinstance(value, bool) or value is None:
        raise InvalidCommand(field, "must be a decimal number")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidCommand(field, "must be a decimal number") from None
    if not result.is_finite():
        raise InvalidCommand(field, "must be finite")
    if result < 0 or (positive and result == 0):
        raise InvalidCommand(field, "must be positive" if positive else "must not be negative")
    return result


def slot(field: str, value: Any, slot_count: int) -> int:
    """A slot number in 1..slot_count."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= slot_count:
        raise InvalidCommand(field, f"must be a slot number from 1 to {slot_count}")
    return value


def one_of(field: str, value: Any, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise InvalidCommand(field, f"must be one of {', '.join(sorted(allowed))}")
    return str(value)


def aware(field: str, value: Any) -> datetime:
    """A datetime with a time zone (adapters turn naive station times into UTC first)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidCommand(field, "must be a datetime with a time zone")
    return value


def iso_date(field: str, value: Any) -> str:
    """A calendar date as ISO text (YYYY-MM-DD); kept as text so events stay JSON."""
    try:
        return date.fromisoformat(text(field, value)).isoformat()
    except ValueError:
        raise InvalidCommand(field, "must be a date YYYY-MM-DD") from None


def month(field: str, value: Any) -> str:
    """A billing month as YYYY-MM."""
    raw = text(field, value)
    try:
        parsed = datetime.strptime(raw, "%Y-%m")
    except ValueError:
        raise InvalidCommand(field, "must be a month YYYY-MM") from None
    return parsed.strftime("%Y-%m")


def month_of(moment: datetime) -> str:
    """The UTC billing month a moment falls in."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(value: str) -> datetime:
    """Midnight UTC on the first day of a YYYY-MM month."""
    year, mon = (int(part) for part in value.split("-"))
    return datetime(year, mon, 1, tzinfo=UTC)


def next_month(value: str) -> str:
    year, mon = (int(part) for part in value.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"

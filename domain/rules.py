"""The swap rules of DOMAIN.md as pure functions over aggregates and the policy.

Each check returns the Reason that breaks the rule, or None when it holds. Handlers turn a
Reason into an event plus a refused Outcome; none of these functions changes anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from domain.battery import Battery
from domain.card import Card
from domain.policy import PolicyValues
from domain.reasons import Reason
from domain.rider import Rider
from domain.station import Station

ENERGY_STEP = Decimal("0.001")
MONEY_STEP = Decimal("0.01")


def card_refusal(card: Card | None) -> Reason | None:
    """Rule 1: the card is known and active."""
    if card is None:
        return Reason.CARD_UNKNOWN
    if card.status != "active":
        return Reason.CARD_BLOCKED
    return None


def rider_refusal(rider: Rider, policy: PolicyValues, at: datetime) -> Reason | None:
    """Rules 2-3: the rider is active (a deactivated rider counts as suspended) and has no
    closed bill still unpaid after ``due_at + payment_grace_days`` at the auth's time."""
    if rider.status != "active":
        return Reason.RIDER_SUSPENDED
    grace = timedelta(days=policy.payment_grace_days)
    if any(at > due_at + grace for due_at in rider.bills.values()):
        return Reason.PAYMENT_OVERDUE
    return None


def station_refusal(station: Station) -> Reason | None:
    """Rule 4: the station is online (one that never sent status is)."""
    return None if station.available else Reason.STATION_UNAVAILABLE


def return_refusal(
    battery: Battery | None,
    rider_id: str,
    soh: float,
    temperature: float | None,
    policy: PolicyValues,
) -> Reason | None:
    """Rules 7-9 (and 10's reason): held by this rider, healthy enough, cool enough.
    An unknown temperature passes rule 9 (v1 stations may not measure it)."""
    if battery is None or battery.holder != rider_id:
        return Reason.BATTERY_NOT_HELD
    if soh < policy.min_return_soh:
        return Reason.BATTERY_HEALTH_LOW
    if temperature is not None and temperature > policy.max_return_temp_c:
        return Reason.BATTERY_TOO_HOT
    return None


def must_take_back(soh: float, policy: PolicyValues) -> bool:
    """Rule 10: under the retirement SOH the battery leaves circulation."""
    return soh < policy.retire_soh


def issue_refusal(
    battery: Battery | None,
    station_id: str,
    session_id: str,
    policy: PolicyValues,
    soc: float | None = None,
    soh: float | None = None,
    *,
    assume_charging: bool = False,
) -> Reason | None:
    """Rules 11, 12 and 14 for one battery: docked here, not reserved for another session,
    grade ok, charged and healthy. ``soc``/``soh`` override the latest reading (a v1 station
    reports the battery's values on completion). Unknown SOC or SOH never qualifies, except
    with ``assume_charging``: a battery with no reading since it was docked (a v1 station's)
    then passes the SOC check, which the station's own reading settles at issue time."""
    if battery is None or battery.docked_at(station_id) is None or battery.grade != "ok":
        return Reason.BATTERY_UNAVAILABLE
    if battery.reserved_for not in (None, session_id):
        return Reason.BATTERY_UNAVAILABLE
    unobserved = soc is None and assume_charging and battery.charge_unobserved
    soc = battery.soc if soc is None else soc
    soh = battery.soh if soh is None else soh
    if not unobserved and (soc is None or soc < policy.min_issue_soc):
        return Reason.BATTERY_NOT_CHARGED
    if soh is None or soh < policy.min_issue_soh:
        return Reason.BATTERY_HEALTH_LOW
    return None


def issuable(
    batteries: list[Battery],
    station_id: str,
    session_id: str,
    policy: PolicyValues,
    *,
    assume_charging: bool = False,
) -> list[Battery]:
    return [
        b
        for b in batteries
        if issue_refusal(b, station_id, session_id, policy, assume_charging=assume_charging) is None
    ]


def pick(
    batteries: list[Battery], station_id: str, session_id: str, policy: PolicyValues
) -> Battery | None:
    """Rule 13: highest SOC, then highest SOH, then lowest cycle count (unknown counts as
    highest), then lowest slot number so the choice is deterministic."""

    def rank(b: Battery) -> tuple[float, float, float, int]:
        cycles = float("inf") if b.cycle_count is None else b.cycle_count
        return (-(b.soc or 0), -(b.soh or 0), cycles, b.docked_at(station_id) or 0)

    candidates = issuable(batteries, station_id, session_id, policy)
    return min(candidates, key=rank) if candidates else None


def energy_used(issue_soc: float | None, return_soc: float | None, capacity_ah: Decimal) -> Decimal:
    """Rule 16: (SOC at issue - SOC at return) / 100 * capacity, to 0.001 Ah, never negative.
    An unknown SOC at either end gives 0 (nothing can be claimed)."""
    if issue_soc is None or return_soc is None:
        return Decimal("0.000")
    drop = (Decimal(str(issue_soc)) - Decimal(str(return_soc))) / 100 * capacity_ah
    return max(drop, Decimal(0)).quantize(ENERGY_STEP, rounding=ROUND_HALF_UP)


def bill_amount(fee: Decimal, used_ah: Decimal, included_ah: Decimal, rate: Decimal) -> Decimal:
    """Rule 17: fee + max(0, used - included) * rate, to 0.01 (half up)."""
    extra = max(used_ah - included_ah, Decimal(0))
    return (fee + extra * rate).quantize(MONEY_STEP, rounding=ROUND_HALF_UP)

"""Commands: what an adapter asks the ledger to do. Imperative names, frozen, keyword-only.

Every command carries ``occurred_at`` (the station's or operator's clock, with a time zone);
new ids (session id, rider id, ...) are chosen by the caller. Fields left None mean
"not given" (for updates: keep the current value).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class Command:
    occurred_at: datetime


# --- stations ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegisterStation(Command):
    station_id: str
    name: str
    slot_count: int
    location: str = ""
    lat: float | None = None
    lng: float | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateStation(Command):
    station_id: str
    name: str | None = None
    location: str | None = None
    lat: float | None = None
    lng: float | None = None
    slot_count: int | None = None


@dataclass(frozen=True, kw_only=True)
class SlotReport:
    """One slot of a heartbeat: ``{"slot": 1, "battery_id": "3"|None, "state": "ready"}``."""

    slot: int
    battery_id: str | None = None
    state: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordStationStatus(Command):
    """``source`` is heartbeat, will (the MQTT last will) or admin."""

    station_id: str
    status: str
    source: str = "heartbeat"
    slots: tuple[SlotReport, ...] = ()


# --- batteries --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegisterBattery(Command):
    """Docked in ``slot`` at ``station_id`` when both are given, else in the warehouse."""

    battery_id: str
    battery_type: str
    capacity_ah: Decimal
    manufactured_on: str
    station_id: str | None = None
    slot: int | None = None
    soc: float | None = None
    soh: float | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateBattery(Command):
    battery_id: str
    battery_type: str | None = None
    capacity_ah: Decimal | None = None
    manufactured_on: str | None = None


@dataclass(frozen=True, kw_only=True)
class DockBattery(Command):
    """A battery put in a slot outside a swap (v2 ``battery/inserted``)."""

    station_id: str
    slot: int
    battery_id: str
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None
    voltage: float | None = None


@dataclass(frozen=True, kw_only=True)
class RemoveBattery(Command):
    """v2 ``battery/removed``: maintenance or dispensed → warehouse, fault → repair."""

    station_id: str
    slot: int
    battery_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RecordHealthReading(Command):
    """One reading (v2 ``battery/telemetry``); every measurement is optional."""

    battery_id: str
    station_id: str | None = None
    slot: int | None = None
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None
    voltage: float | None = None
    pack_voltage: float | None = None
    cell_voltage_min: float | None = None
    cell_voltage_max: float | None = None
    max_temp: float | None = None
    ambient_temp: float | None = None
    humidity: float | None = None
    internal_resist: float | None = None
    cycle_count: int | None = None
    error_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class QuarantineBattery(Command):
    battery_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReinstateBattery(Command):
    """Lift a quarantine (grade back to ok)."""

    battery_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SendBatteryToRepair(Command):
    battery_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RetireBattery(Command):
    battery_id: str
    reason: str


# --- riders and cards -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegisterRider(Command):
    """Makes the rider, and optionally their first card and a battery handed over."""

    rider_id: str
    personal: dict[str, str | None]
    vehicle: str | None = None
    plan_id: str | None = None
    role: str = "rider"
    rfid_code: str | None = None
    battery_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateRider(Command):
    """``personal`` keys given replace those fields; the others stay."""

    rider_id: str
    personal: dict[str, str | None] | None = None
    vehicle: str | None = None
    plan_id: str | None = None
    role: str | None = None


@dataclass(frozen=True, kw_only=True)
class SuspendRider(Command):
    rider_id: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReactivateRider(Command):
    rider_id: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeactivateRider(Command):
    rider_id: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class EraseRider(Command):
    """Erase the rider's personal data (name, email, phone, address, licence) for good."""

    rider_id: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class IssueCard(Command):
    rfid_code: str
    rider_id: str


@dataclass(frozen=True, kw_only=True)
class BlockCard(Command):
    """``status`` is blocked or lost."""

    rfid_code: str
    status: str = "blocked"
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class UnblockCard(Command):
    rfid_code: str
    reason: str | None = None


# --- plans and policy -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DefinePlan(Command):
    plan_id: str
    name: str
    monthly_fee: Decimal
    included_ah: Decimal
    extra_ah_rate: Decimal


@dataclass(frozen=True, kw_only=True)
class UpdatePlan(Command):
    plan_id: str
    name: str | None = None
    monthly_fee: Decimal | None = None
    included_ah: Decimal | None = None
    extra_ah_rate: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class ChangePolicy(Command):
    """Values left None keep the policy in force."""

    min_return_soh: float | None = None
    max_return_temp_c: float | None = None
    retire_soh: float | None = None
    min_issue_soc: float | None = None
    min_issue_soh: float | None = None
    session_timeout_s: int | None = None
    payment_grace_days: int | None = None
    note: str | None = None


# --- swaps ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AuthorizeCard(Command):
    """An RFID card at a station; ``session_id`` is the id a new session would get."""

    station_id: str
    rfid_code: str
    session_id: str


@dataclass(frozen=True, kw_only=True)
class InitiateSwap(Command):
    """The returned battery is in the station. The session is named by ``session_id`` (v2) or
    found as ``rider_id``'s open session at this station (v1 sends only user_id). With
    ``pick_battery`` (v2) the ledger picks and reserves the battery to issue."""

    station_id: str
    battery_in_id: str
    soc: float
    soh: float
    temperature: float | None = None
    voltage: float | None = None
    session_id: str | None = None
    rider_id: str | None = None
    pick_battery: bool = False
    slot_in: int | None = None


@dataclass(frozen=True, kw_only=True)
class CompleteSwap(Command):
    """The swap happened at the station (v1 ``swap/activity`` / ``swap/result``).
    ``battery_out_id`` None means the battery the ledger picked. Readings are optional."""

    station_id: str
    battery_in_id: str
    battery_out_id: str | None = None
    session_id: str | None = None
    rider_id: str | None = None
    in_soc: float | None = None
    in_soh: float | None = None
    out_soc: float | None = None
    out_soh: float | None = None
    slot_in: int | None = None


@dataclass(frozen=True, kw_only=True)
class StationRefusedSwap(Command):
    """v1 ``swap/refused``: the station refused the returned battery on its own."""

    station_id: str
    session_id: str | None = None
    rider_id: str | None = None
    battery_id: str | None = None
    station_reason: str | None = None
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None


@dataclass(frozen=True, kw_only=True)
class TimeOutSessions(Command):
    """Close every session at the station open longer than the policy timeout at occurred_at."""

    station_id: str


@dataclass(frozen=True, kw_only=True)
class CorrectSwap(Command):
    """Correct the SOC values of a completed swap; given values replace the recorded ones."""

    session_id: str
    note: str
    returned_soc: float | None = None
    returned_issue_soc: float | None = None


# --- billing ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CloseBillingPeriod(Command):
    """Bill a finished month; ``due_at`` defaults to occurred_at (grace runs from it)."""

    rider_id: str
    month: str
    due_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RecordPayment(Command):
    rider_id: str
    month: str
    amount: Decimal
    reference: str | None = None

"""What stations report outside swaps: status, batteries docked or removed, health readings.

Heartbeats and readings are ordered by their own ``occurred_at``: a late one is recorded but
never overrides a newer status or latest reading (see the events' ``apply``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain import validation as v
from domain.base import InvalidTransition, Outcome, Repository
from domain.battery import REMOVAL_REASONS, Battery
from domain.commands import DockBattery, RecordHealthReading, RecordStationStatus, RemoveBattery
from domain.handlers.custody import free, not_with_rider, unslot
from domain.handlers.registry import existing, handles, stamp
from domain.station import STATUS_SOURCES, STATUSES, Station

TEMPERATURE = (-40.0, 150.0)


@handles(RecordStationStatus)
def record_station_status(
    cmd: RecordStationStatus, repo: Repository, recorded_at: datetime
) -> Outcome:
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    status = v.one_of("status", cmd.status, STATUSES)
    source = v.one_of("source", cmd.source, STATUS_SOURCES)
    slots = [
        {
            "slot": v.slot("slots.slot", report.slot, station.slot_count),
            "battery_id": v.optional_text("slots.battery_id", report.battery_id),
            "state": v.optional_text("slots.state", report.state),
        }
        for report in cmd.slots
    ]
    station.record_status(stamp(cmd, recorded_at), status, source, slots)
    return Outcome.accepted(station_id=station.key, status=station.status)


# name, lowest, highest: the optional measurements of a reading and their ranges
_MEASURES = (
    ("soc", 0.0, 100.0),
    ("soh", 0.0, 100.0),
    ("temperature", *TEMPERATURE),
    ("voltage", 0.0, None),
)
_TELEMETRY = (
    *_MEASURES,
    ("pack_voltage", 0.0, None),
    ("cell_voltage_min", 0.0, None),
    ("cell_voltage_max", 0.0, None),
    ("internal_resist", 0.0, None),
    ("max_temp", *TEMPERATURE),
    ("ambient_temp", *TEMPERATURE),
    ("humidity", 0.0, 100.0),
)


def _reading(cmd: Any) -> dict[str, Any]:
    """The measurements of a command, validated; absent ones are None."""
    telemetry = isinstance(cmd, RecordHealthReading)
    values: dict[str, Any] = {}
    for name, low, high in _TELEMETRY if telemetry else _MEASURES:
        value = getattr(cmd, name)
        values[name] = None if value is None else v.number(name, value, low, high)
    if telemetry:
        values["cycle_count"] = (
            None if cmd.cycle_count is None else v.count("cycle_count", cmd.cycle_count)
        )
        values["error_code"] = v.optional_text("error_code", cmd.error_code)
    return values


@handles(DockBattery)
def dock_battery(cmd: DockBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    """Restocking or back from repair: warehouse/repair (or a slot the ledger still shows
    elsewhere) → this slot. A battery a rider holds comes back only through a swap."""
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    slot = v.slot("slot", cmd.slot, station.slot_count)
    battery = existing(repo, Battery, v.text("battery_id", cmd.battery_id), "battery_id")
    reading = _reading(cmd)
    not_with_rider(battery, "dock it outside a swap")
    if battery.grade == "retired":
        raise InvalidTransition(f"battery {battery.key} is retired", battery_id=battery.key)
    moved = battery.docked_at(station.key) != slot
    if moved and station.slots[slot] is not None:
        raise InvalidTransition(
            f"slot {slot} holds battery {station.slots[slot]}", station_id=station.key, slot=slot
        )
    at = stamp(cmd, recorded_at)
    if moved:
        unslot(repo, battery, at, "moved")
        station.fill_slot(at, slot, battery.key, "docked")
        battery.trigger(Battery.Docked, at, station_id=station.key, slot=slot, cause="inserted")
    if any(value is not None for value in reading.values()):
        battery.record_health(at, "dock", station_id=station.key, slot=slot, **reading)
    return Outcome.accepted(battery_id=battery.key, station_id=station.key, slot=slot, moved=moved)


@handles(RemoveBattery)
def remove_battery(cmd: RemoveBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    slot = v.slot("slot", cmd.slot, station.slot_count)
    battery = existing(repo, Battery, v.text("battery_id", cmd.battery_id), "battery_id")
    reason = v.one_of("reason", cmd.reason, REMOVAL_REASONS)
    if battery.docked_at(station.key) != slot or station.slots[slot] != battery.key:
        raise InvalidTransition(
            f"battery {battery.key} is not in slot {slot} of station {station.key}",
            battery_id=battery.key,
            station_id=station.key,
            slot=slot,
        )
    at = stamp(cmd, recorded_at)
    destination = REMOVAL_REASONS[reason]
    free(repo, battery, at, "removed")
    station.empty_slot(at, battery.key, "removed")
    battery.trigger(
        Battery.Removed,
        at,
        station_id=station.key,
        slot=slot,
        reason=reason,
        destination=destination,
    )
    return Outcome.accepted(battery_id=battery.key, custody=battery.custody)


@handles(RecordHealthReading)
def record_health_reading(
    cmd: RecordHealthReading, repo: Repository, recorded_at: datetime
) -> Outcome:
    battery = existing(repo, Battery, v.text("battery_id", cmd.battery_id), "battery_id")
    station_id, slot = None, None
    if cmd.station_id is not None:
        station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
        station_id = station.key
        slot = None if cmd.slot is None else v.slot("slot", cmd.slot, station.slot_count)
    reading = _reading(cmd)
    battery.record_health(
        stamp(cmd, recorded_at), "telemetry", station_id=station_id, slot=slot, **reading
    )
    latest = battery.reading_at == cmd.occurred_at
    return Outcome.accepted(battery_id=battery.key, latest=latest)

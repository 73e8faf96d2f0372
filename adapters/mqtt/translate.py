"""Station messages → domain commands.

``occurred_at`` comes from the message's timestamp (the station's clock; the received time
when it sent none). New session ids are made here, because the domain makes none. A status
``offline`` that is the station's MQTT will is recorded at the time it arrived: a will's body
is written when the station connects, so its own timestamp is stale by design.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.mqtt.protocol import (
    SUCCESS_STATUSES,
    AuthRequest,
    BatteryInserted,
    BatteryRemoved,
    BatteryTelemetry,
    Inbound,
    ProtocolError,
    StationStatus,
    SwapCompletion,
    SwapInitiate,
    SwapRefused,
)
from adapters.mqtt.topics import Kind
from domain.commands import (
    AuthorizeCard,
    Command,
    CompleteSwap,
    DockBattery,
    InitiateSwap,
    RecordHealthReading,
    RecordStationStatus,
    RemoveBattery,
    SlotReport,
    StationRefusedSwap,
)

MAX_FUTURE = timedelta(days=1)
# An offline status whose timestamp is older than this when it arrives is a will.
STALE_STATUS = timedelta(seconds=60)


def new_session_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Arrival:
    """How a message reached us: the ledger's clock when it came, and the MQTT retain flag."""

    received_at: datetime
    retained: bool = False


def is_v2(body: Inbound) -> bool:
    """A message that speaks v2: it names its message or its session."""
    return body.message_id is not None or body.session_id is not None


def occurred_at(body: Inbound, arrival: Arrival) -> datetime:
    if body.timestamp is None:
        return arrival.received_at
    if body.timestamp - arrival.received_at > MAX_FUTURE:
        raise ProtocolError(
            "timestamp_in_future",
            f"timestamp {body.timestamp.isoformat()} is more than a day ahead of the ledger",
        )
    return body.timestamp


def to_command(
    station_id: str,
    kind: Kind,
    body: Inbound,
    arrival: Arrival,
    new_id: Callable[[], str] = new_session_id,
) -> Command:
    """The domain command a valid message asks for (ProtocolError if it cannot be one)."""
    at = occurred_at(body, arrival)
    match body:
        case AuthRequest():
            return AuthorizeCard(
                occurred_at=at,
                station_id=station_id,
                rfid_code=body.rfid,
                session_id=body.session_id or new_id(),
            )
        case SwapInitiate():
            return InitiateSwap(
                occurred_at=at,
                station_id=station_id,
                battery_in_id=body.battery_in_id,
                soc=body.soc,
                soh=body.soh,
                temperature=body.temperature,
                voltage=body.voltage,
                session_id=body.session_id,
                rider_id=body.user_id,
                pick_battery=is_v2(body),
                slot_in=body.slot_in,
            )
        case SwapRefused():
            return StationRefusedSwap(
                occurred_at=at,
                station_id=station_id,
                session_id=body.session_id,
                rider_id=body.user_id,
                battery_id=body.battery_id,
                station_reason=body.reason,
                soc=body.soc,
                soh=body.soh,
                temperature=body.temperature,
            )
        case SwapCompletion():
            return _completion(station_id, body, at)
        case BatteryInserted():
            return DockBattery(
                occurred_at=at,
                station_id=station_id,
                slot=body.slot,
                battery_id=body.battery_id,
                soc=body.soc,
                soh=body.soh,
                temperature=body.temperature,
                voltage=body.voltage,
            )
        case BatteryRemoved():
            return RemoveBattery(
                occurred_at=at,
                station_id=station_id,
                slot=body.slot,
                battery_id=body.battery_id,
                reason=body.reason,
            )
        case BatteryTelemetry():
            return _reading(station_id, body, at)
        case StationStatus():
            return _status(station_id, body, arrival, at)
    raise ProtocolError("unknown_topic", f"no command for {kind}")


def _completion(station_id: str, body: SwapCompletion, at: datetime) -> CompleteSwap:
    if body.status is not None and body.status.strip().lower() not in SUCCESS_STATUSES:
        raise ProtocolError(
            "invalid_value",
            f"status: a completed swap reports success, not {body.status!r}",
        )
    returned, issued = body.battery_in_data, body.battery_out_data
    return CompleteSwap(
        occurred_at=at,
        station_id=station_id,
        battery_in_id=body.battery_in_id,
        battery_out_id=body.battery_out_id,
        session_id=body.session_id,
        rider_id=body.user_id,
        in_soc=returned.soc if returned else None,
        in_soh=returned.soh if returned else None,
        out_soc=issued.soc if issued else None,
        out_soh=issued.soh if issued else None,
        slot_in=body.slot_in,
    )


def _reading(station_id: str, body: BatteryTelemetry, at: datetime) -> RecordHealthReading:
    return RecordHealthReading(
        occurred_at=at,
        battery_id=body.battery_id,
        station_id=station_id,
        slot=body.slot,
        soc=body.soc,
        soh=body.soh,
        temperature=body.temperature,
        voltage=body.voltage,
        pack_voltage=body.pack_voltage,
        cell_voltage_min=body.cell_voltage_min,
        cell_voltage_max=body.cell_voltage_max,
        max_temp=body.max_temp,
        ambient_temp=body.ambient_temp,
        humidity=body.humidity,
        internal_resist=body.internal_resist,
        cycle_count=body.cycle_count,
        error_code=body.error_code,
    )


def _status(
    station_id: str, body: StationStatus, arrival: Arrival, at: datetime
) -> RecordStationStatus:
    # A will the broker publishes now (the station just dropped) carries the timestamp of
    # when the station connected: it happened on arrival. A RETAINED one is delivered because
    # we (re)subscribed: old news, kept at its own time so a newer heartbeat still wins.
    live_will = (
        body.status == "offline"
        and not arrival.retained
        and (body.timestamp is None or arrival.received_at - body.timestamp > STALE_STATUS)
    )
    will = live_will or (body.status == "offline" and arrival.retained)
    return RecordStationStatus(
        occurred_at=max(at, arrival.received_at) if live_will else at,
        station_id=station_id,
        status=body.status,
        source="will" if will else "heartbeat",
        slots=tuple(
            SlotReport(slot=s.slot, battery_id=s.battery_id, state=s.state) for s in body.slots
        ),
    )

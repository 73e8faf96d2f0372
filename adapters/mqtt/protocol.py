"""Wire models of every inbound topic of PROTOCOL.md (v1 in both spellings, and v2).

Each payload is parsed into a frozen pydantic model; anything that does not fit raises
:class:`ProtocolError` with a stable reason code and a sentence for people. What is accepted:

- ids that are numbers on the wire (``"user_id": 12``, ``"station_id": 1``) become strings;
- numbers are JSON numbers (a string ``"82"`` is a wrong type, a bool is not a number);
- SOC, SOH and humidity lie in 0-100, temperatures in -40..150 °C (``out_of_range``);
- timestamps are ISO 8601 with ``Z``, an offset, or naive (= UTC);
- ``message_id`` (at most 64 characters) and ``session_id`` are optional everywhere;
- unknown fields are ignored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from adapters.mqtt.topics import Kind

MAX_PAYLOAD = 64 * 1024
MAX_ID = 128
MAX_TEXT = 200
MAX_MESSAGE_ID = 64
TEMPERATURE_RANGE = (-40.0, 150.0)


class ProtocolError(Exception):
    """Raised when a message cannot be accepted as it is; ``reason`` is the stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --- field types --------------------------------------------------------------------------


def _fail(code: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(code, message, context or None)


def _wire_id(value: Any) -> str:
    """A string id, or a whole number sent for one (``12`` → ``"12"``)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail("invalid_type", "must be a string or a whole number")
    text = str(value).strip()
    if not text:
        raise _fail("invalid_value", "must not be empty")
    if len(text) > MAX_ID:
        raise _fail("invalid_value", f"must be at most {MAX_ID} characters")
    return text


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("invalid_type", "must be a string")
    if len(value) > MAX_TEXT:
        raise _fail("invalid_value", f"must be at most {MAX_TEXT} characters")
    return value


def _message_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail("invalid_type", "must be a non-empty string")
    if len(value) > MAX_MESSAGE_ID:
        raise _fail("invalid_value", f"must be at most {MAX_MESSAGE_ID} characters")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("invalid_type", "must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail("invalid_value", "must be finite")
    return value


def _ranged(low: float | None, high: float | None) -> Any:
    def check(value: Any) -> float:
        number = _number(value)
        if (low is not None and number < low) or (high is not None and number > high):
            span = f"from {low:g} to {high:g}" if low is not None and high is not None else ""
            raise _fail("out_of_range", f"must be {span or 'in range'}".strip())
        return number

    return check


def _whole(low: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail("invalid_type", "must be a whole number")
        if value < low:
            raise _fail("out_of_range", f"must be at least {low}")
        return value

    return check


def _code(value: Any) -> str:
    """An error code: text, or a number sent for one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail("invalid_type", "must be a string or a number")
    return _text(str(value))


def parse_time(value: Any) -> datetime:
    """ISO 8601 with ``Z``, an offset, or naive (read as UTC) → an aware datetime."""
    if not isinstance(value, str):
        raise _fail("invalid_type", "must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _fail("invalid_timestamp", "is not an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


WireId = Annotated[str, PlainValidator(_wire_id)]
Text = Annotated[str, PlainValidator(_text)]
MessageId = Annotated[str, PlainValidator(_message_id)]
Number = Annotated[float, PlainValidator(_number)]
NonNegative = Annotated[float, PlainValidator(_ranged(0, None))]
Percent = Annotated[float, PlainValidator(_ranged(0, 100))]
Temperature = Annotated[float, PlainValidator(_ranged(*TEMPERATURE_RANGE))]
Slot = Annotated[int, PlainValidator(_whole(1))]
Count = Annotated[int, PlainValidator(_whole(0))]
Code = Annotated[str, PlainValidator(_code)]
StationTime = Annotated[datetime, PlainValidator(parse_time)]


# --- models -------------------------------------------------------------------------------


class Inbound(BaseModel):
    """Fields every station → ledger message may carry (v2's are optional on v1 topics)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: MessageId | None = None
    session_id: WireId | None = None
    timestamp: StationTime | None = None


class AuthRequest(Inbound):
    """``bss/{s}/user/auth/request`` and ``bss/{s}/auth/request``."""

    rfid: WireId


class SwapInitiate(Inbound):
    """``swap/initiate``: the returned battery is in the station."""

    user_id: WireId | None = None
    battery_in_id: WireId
    soc: Percent
    soh: Percent
    voltage: NonNegative | None = None
    temperature: Temperature | None = None
    slot_in: Slot | None = None


class SwapRefused(Inbound):
    """``swap/refused``: the station refused the returned battery on its own."""

    user_id: WireId | None = None
    battery_id: WireId | None = None
    status: Text | None = None
    reason: Text | None = None
    soc: Percent | None = None
    soh: Percent | None = None
    temperature: Temperature | None = None


class BatteryReading(BaseModel):
    """``battery_in_data`` / ``battery_out_data`` of ``swap/activity``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    soc: Percent | None = None
    soh: Percent | None = None


SUCCESS_STATUSES = ("completed", "complete", "success", "succeeded", "ok")


class SwapCompletion(Inbound):
    """``swap/activity`` (station firmware) and ``swap/result`` (README): the swap happened.
    ``battery_out_id`` may be left out by a v2 station (then: the battery the ledger picked);
    ``station_id`` in the body is ignored (identity comes from the topic), and so is
    ``battery_in_health_status`` of ``swap/initiate``."""

    user_id: WireId | None = None
    battery_in_id: WireId
    battery_out_id: WireId | None = None
    battery_in_data: BatteryReading | None = None
    battery_out_data: BatteryReading | None = None
    status: Text | None = None
    slot_in: Slot | None = None


class BatteryInserted(Inbound):
    """v2 ``battery/inserted``: a battery docked outside a swap."""

    slot: Slot
    battery_id: WireId
    soc: Percent | None = None
    soh: Percent | None = None
    temperature: Temperature | None = None
    voltage: NonNegative | None = None


class BatteryRemoved(Inbound):
    """v2 ``battery/removed``."""

    slot: Slot
    battery_id: WireId
    reason: Literal["maintenance", "dispensed", "fault"]


class BatteryTelemetry(Inbound):
    """v2 ``battery/telemetry``: one health reading; every field but battery_id and
    timestamp is optional."""

    timestamp: StationTime
    battery_id: WireId
    slot: Slot | None = None
    soc: Percent | None = None
    soh: Percent | None = None
    temperature: Temperature | None = None
    voltage: NonNegative | None = None
    pack_voltage: NonNegative | None = None
    cell_voltage_min: NonNegative | None = None
    cell_voltage_max: NonNegative | None = None
    max_temp: Temperature | None = None
    ambient_temp: Temperature | None = None
    humidity: Percent | None = None
    internal_resist: NonNegative | None = None
    cycle_count: Count | None = None
    error_code: Code | None = None


class SlotState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    slot: Slot
    battery_id: WireId | None = None
    state: Text | None = None


class StationStatus(Inbound):
    """v2 ``station/status``: a heartbeat, or the station's MQTT will (retained, offline)."""

    status: Literal["online", "offline", "maintenance"]
    slots: list[SlotState] = []


MODELS: dict[Kind, type[Inbound]] = {
    Kind.AUTH: AuthRequest,
    Kind.AUTH_README: AuthRequest,
    Kind.SWAP_INITIATE: SwapInitiate,
    Kind.SWAP_REFUSED: SwapRefused,
    Kind.SWAP_ACTIVITY: SwapCompletion,
    Kind.SWAP_RESULT: SwapCompletion,
    Kind.BATTERY_INSERTED: BatteryInserted,
    Kind.BATTERY_REMOVED: BatteryRemoved,
    Kind.BATTERY_TELEMETRY: BatteryTelemetry,
    Kind.STATION_STATUS: StationStatus,
}


# --- parsing ------------------------------------------------------------------------------


def load_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or ProtocolError (too large, not JSON, not an object)."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            "payload_too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD} bytes"
        )
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise ProtocolError("invalid_json", f"payload is not UTF-8 JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "payload is not a JSON object")
    return data


# pydantic's own error types that mean "wrong type" rather than "bad value"
_TYPE_ERRORS = ("model_type", "model_attributes_type", "dict_type", "list_type", "is_instance_of")


def _reason(error: dict[str, Any]) -> str:
    kind = str(error["type"])
    if kind == "missing":
        return "missing_field"
    if kind in _TYPE_ERRORS or kind.endswith("_type") or kind.endswith("_parsing"):
        return "invalid_type"
    if kind == "literal_error":
        return "invalid_value"
    return kind  # our own codes: invalid_type, invalid_value, out_of_range, invalid_timestamp


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "payload"


def validate(kind: Kind, data: dict[str, Any]) -> Inbound:
    """The payload object as the model of its topic, or ProtocolError naming the first field
    that does not fit."""
    try:
        return MODELS[kind].model_validate(data)
    except ValidationError as invalid:
        errors = invalid.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProtocolError(
            _reason(dict(first)), f"{_location(dict(first))}: {first['msg']}{more}"
        ) from None

"""Swap sessions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from adapters.http.models.common import StrictModel
from adapters.http.security import Principal, mask_rfid

SwapOutcome = Literal["open", "completed", "refused", "cancelled", "timed_out"]


class SwapCreate(StrictModel):
    """Record a swap made at a station without its kiosk (an operator's manual swap): the
    ledger runs the same three steps a station sends (auth, initiate, complete) and the same
    rules. Name the rider by ``rfid_code`` or by ``user_id`` (their active card is used)."""

    station_id: str = Field(min_length=1, max_length=64, examples=["1"])
    rfid_code: str | None = Field(default=None, min_length=1, max_length=64)
    user_id: str | None = Field(default=None, min_length=1, max_length=64, examples=["12"])
    battery_in_id: str = Field(min_length=1, max_length=64, examples=["7"])
    battery_out_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The battery handed out; the ledger picks one when not given.",
    )
    soc: float = Field(ge=0, le=100, description="SOC of the returned battery.")
    soh: float = Field(ge=0, le=100, description="SOH of the returned battery.")
    temperature: float | None = Field(default=None, ge=-40, le=150)
    voltage: float | None = Field(default=None, ge=0, le=10000)
    out_soc: float | None = Field(default=None, ge=0, le=100)
    out_soh: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _rider(self) -> SwapCreate:
        if self.rfid_code is None and self.user_id is None:
            raise ValueError("rfid_code or user_id is required")
        return self


class SwapCorrection(StrictModel):
    """Corrected SOC values of a completed swap; the original record stays, the correction
    points at it and re-bills the difference."""

    note: str = Field(min_length=1, max_length=200, examples=["station reported SOC 8, not 80"])
    returned_soc: float | None = Field(default=None, ge=0, le=100)
    returned_issue_soc: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _something(self) -> SwapCorrection:
        if self.returned_soc is None and self.returned_issue_soc is None:
            raise ValueError("returned_soc or returned_issue_soc is required")
        return self


class SwapPublic(BaseModel):
    """A swap session, from the RFID auth to its end."""

    id: str
    station_id: str
    user_id: str | None = None
    rfid_code: str | None = None
    state: str
    outcome: str | None = None
    reason: str | None = None
    station_reason: str | None = None
    opened_at: datetime
    initiated_at: datetime | None = None
    closed_at: datetime | None = None
    duration_s: float | None = None
    returned_battery_id: str | None = None
    returned_slot: int | None = None
    returned_soc: float | None = None
    returned_soh: float | None = None
    returned_temperature: float | None = None
    returned_issue_soc: float | None = None
    taken_back: bool = False
    issued_battery_id: str | None = None
    issued_slot: int | None = None
    issued_soc: float | None = None
    issued_soh: float | None = None
    capacity_ah: Decimal | None = None
    energy_used_ah: Decimal | None = None
    corrections: list[dict[str, Any]] = []
    policy_version: int | None = None
    updated_at: datetime | None = None
    position: int = 0

    @classmethod
    def of(cls, row: dict[str, Any], who: Principal) -> SwapPublic:
        fields: dict[str, Any] = {k: row.get(k) for k in cls.model_fields if k in row}
        fields["id"] = row["session_id"]
        fields["user_id"] = row.get("rider_id")
        fields["rfid_code"] = mask_rfid(row.get("rfid_code"), who)
        fields["taken_back"] = bool(row.get("taken_back"))
        fields["corrections"] = list(row.get("corrections") or [])
        return cls(**fields)

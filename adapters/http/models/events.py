"""Stored events, rejected messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventPublic(BaseModel):
    """One stored event, decoded."""

    position: int = Field(description="Its place in the ledger's global order.")
    type: str = Field(examples=["SwapSession.Completed"])
    stream: str = Field(examples=["session:api-1f2e"], description="The aggregate it belongs to.")
    version: int = Field(description="Its place in its stream.")
    recorded_at: datetime = Field(description="The ledger's clock at commit.")
    occurred_at: datetime | None = Field(description="The station's or operator's clock.")
    data: dict[str, Any] | None = Field(
        description="The event's own fields (null if this version cannot decode it)."
    )


class RejectedPublic(BaseModel):
    """An MQTT message the ledger could not accept, with its reason and (capped) raw bytes."""

    model_config = ConfigDict(extra="ignore")

    id: int = Field(validation_alias="event_id")
    station_id: str | None = None
    mqtt_topic: str | None = None
    reason: str
    message: str | None = None
    raw_b64: str | None = None
    raw_size: int | None = None
    truncated: bool = False
    received_at: datetime
    recorded_at: datetime

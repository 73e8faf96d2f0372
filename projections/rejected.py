"""Rejected station messages (readmodels/rejected.py) from ``RejectedMessage.Recorded``.

The raw payload arrives base64 and capped by the MQTT adapter; it is stored as given, and
cut again at 4 KiB of raw bytes here (``truncated`` says so), whatever the adapter sent.
"""

from __future__ import annotations

from typing import Any

from domain.rejection import RejectedMessage
from projections.base import Projection
from projections.unitofwork import UnitOfWork
from readmodels.rejected import RAW_CAP

B64_CAP = (RAW_CAP + 2) // 3 * 4  # base64 length of RAW_CAP bytes


class RejectedProjection(Projection):
    model = "rejected"
    handles = (RejectedMessage.Recorded,)

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        match event:
            case RejectedMessage.Recorded():
                raw = event.payload_b64 or ""
                size = event.payload_size
                uow.insert(
                    "rejected",
                    {
                        "event_id": position,
                        "station_id": event.station_id,
                        "mqtt_topic": event.topic,
                        "reason": event.reason,
                        "message": event.message or None,
                        "raw_b64": raw[:B64_CAP],
                        "raw_size": size,
                        "truncated": len(raw) > B64_CAP or (size or 0) > RAW_CAP,
                        "received_at": event.received_at,
                        "recorded_at": event.recorded_at,
                    },
                )
            case _:
                pass

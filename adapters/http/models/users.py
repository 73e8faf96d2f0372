"""Riders (the original API's "users") and their RFID cards.

Personal fields (name, email, phone, address, licence) are null for analysts; RFID codes
are masked (``****C3D4``) for everyone but admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from adapters.http.models.common import StrictModel
from adapters.http.security import Principal, mask_rfid, personal

RiderStatus = Literal["active", "suspended", "deactivated"]
CardStatus = Literal["active", "blocked", "lost"]

Text200 = Field(default=None, min_length=1, max_length=200)
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserCreate(StrictModel):
    """A new rider, with (optionally) their first RFID card and a battery handed over, all in
    one command. ``id`` is generated (a number, as v1 stations expect) when not given."""

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200, examples=["Ines"])
    email: str | None = Field(
        default=None, max_length=200, pattern=EMAIL, examples=["ines@example.org"]
    )
    phone: str | None = Field(default=None, min_length=1, max_length=64)
    address: str | None = Text200
    licence: str | None = Field(default=None, min_length=1, max_length=64)
    vehicle: str | None = Text200
    plan_id: str | None = Field(default=None, min_length=1, max_length=64)
    role: str = Field(default="rider", min_length=1, max_length=32)
    rfid_code: str | None = Field(default=None, min_length=1, max_length=64, examples=["A1B2C3D4"])
    battery_id: str | None = Field(default=None, min_length=1, max_length=64)


class UserUpdate(StrictModel):
    """Fields given replace the current ones; ``status`` suspends or reactivates."""

    name: str | None = Text200
    email: str | None = Field(default=None, max_length=200, pattern=EMAIL)
    phone: str | None = Field(default=None, min_length=1, max_length=64)
    address: str | None = Text200
    licence: str | None = Field(default=None, min_length=1, max_length=64)
    vehicle: str | None = Text200
    plan_id: str | None = Field(default=None, min_length=1, max_length=64)
    role: str | None = Field(default=None, min_length=1, max_length=32)
    status: Literal["active", "suspended"] | None = None
    reason: str | None = Text200


class CardPublic(BaseModel):
    """An RFID card; ``rfid_code`` is masked unless the caller is an admin."""

    rfid_code: str
    user_id: str
    status: str
    reason: str | None = None
    issued_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any], who: Principal) -> CardPublic:
        return cls(
            rfid_code=mask_rfid(row["rfid_code"], who) or "",
            user_id=row["rider_id"],
            status=row["status"],
            reason=row.get("reason"),
            issued_at=row.get("issued_at"),
            updated_at=row.get("updated_at"),
        )


class UserPublic(BaseModel):
    """A rider now."""

    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    licence: str | None = None
    erased: bool = False
    vehicle: str | None = None
    plan_id: str | None = None
    role: str
    status: str
    status_reason: str | None = None
    batteries: list[str] = []
    battery_id: str | None = None
    open_session_id: str | None = None
    swap_count: int = 0
    last_swap_at: datetime | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    position: int = 0

    @classmethod
    def fields_of(cls, row: dict[str, Any], who: Principal) -> dict[str, Any]:
        data = row.get("personal") or {}
        return {
            "id": row["rider_id"],
            **{
                k: personal(data.get(k), who)
                for k in ("name", "email", "phone", "address", "licence")
            },
            "erased": bool(data.get("erased")),
            **{
                k: row.get(k)
                for k in (
                    "vehicle",
                    "plan_id",
                    "role",
                    "status",
                    "status_reason",
                    "battery_id",
                    "open_session_id",
                    "last_swap_at",
                    "registered_at",
                    "updated_at",
                )
            },
            "batteries": list(row.get("batteries") or []),
            "swap_count": int(row.get("swap_count") or 0),
            "position": int(row.get("position") or 0),
        }

    @classmethod
    def of(cls, row: dict[str, Any], who: Principal) -> UserPublic:
        return cls(**cls.fields_of(row, who))


class UserDetail(UserPublic):
    """A rider with their cards."""

    cards: list[CardPublic] = []

    @classmethod
    def of(cls, row: dict[str, Any], who: Principal) -> UserDetail:
        cards = [CardPublic.of(c, who) for c in row.get("cards") or []]
        return cls(**cls.fields_of(row, who), cards=cards)


class CardCreate(StrictModel):
    """Issue a card to a rider."""

    rfid_code: str = Field(min_length=1, max_length=64, examples=["A1B2C3D4"])
    user_id: str = Field(min_length=1, max_length=64, examples=["12"])


class CardBlock(StrictModel):
    """Block a card, or record it as lost."""

    status: Literal["blocked", "lost"] = "blocked"
    reason: str | None = Text200


class CardUnblock(StrictModel):
    reason: str | None = Text200


class UserExport(BaseModel):
    """Everything the ledger's read models hold about one rider (admins only)."""

    user: UserDetail
    swaps: list[dict[str, Any]]
    bills: list[dict[str, Any]]

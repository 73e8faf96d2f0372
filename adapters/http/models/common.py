"""Shapes shared by every resource: pages, write receipts."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None = None


class WriteReceipt(BaseModel):
    """What a write did: where it landed in the ledger, and what the command answered.

    ``position`` is the ledger position to pass as ``?after=`` to read this write back;
    ``replayed`` says the Idempotency-Key had been used before (nothing new was appended).
    """

    position: int = Field(examples=[1042])
    replayed: bool = False
    id: str | None = Field(default=None, description="Id of the thing written, when it has one.")
    data: dict[str, Any] = Field(default_factory=dict, description="The command's outcome.")


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (422), not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            check_text(value)
        return value


def check_text(value: str) -> str:
    """Text the store can keep: no control characters, no lone surrogates."""
    for char in value:
        code = ord(char)
        if code < 32 or code == 127 or 0xD800 <= code <= 0xDFFF:
            raise ValueError("must not contain control characters or invalid unicode")
    return value

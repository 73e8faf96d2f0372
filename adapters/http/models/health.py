"""Health."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ProjectionHealth(BaseModel):
    name: str
    position: int
    lag: int
    tracking: str | None = None


class Health(BaseModel):
    """``status`` is ok when the database answers and every projection has a position."""

    status: str
    database: bool
    head: int | None = None
    projections: list[ProjectionHealth] = []
    ingest: dict[str, Any] | None = None
    detail: str | None = None

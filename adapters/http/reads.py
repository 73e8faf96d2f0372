"""Calling the read models: their errors become problems, their pages become models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from adapters.http.problems import ProblemException

T = TypeVar("T")


def call(query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a read-model query; a bad cursor or sort is the client's mistake (400)."""
    try:
        from readmodels.paging import BadCursor
    except ModuleNotFoundError:  # pragma: no cover - read models not installed
        BadCursor = ValueError  # type: ignore[misc,assignment]  # noqa: N806
    try:
        return query(*args, **kwargs)
    except BadCursor as error:
        raise ProblemException(400, "bad_cursor", str(error)) from error
    except LookupError as error:
        if isinstance(error, KeyError):
            raise
        raise ProblemException(503, "read_model_missing", str(error)) from error


def found(row: T | None, what: str, ident: str) -> T:
    if row is None:
        raise ProblemException(404, "not_found", f"no {what} {ident!r}")
    return row

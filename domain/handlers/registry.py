"""The one table of command handlers, and small helpers every handler uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from domain.base import Aggregate, AlreadyExists, NotFound, Outcome, Repository, Stamp
from domain.commands import Command

Handler = Callable[[Any, Repository, datetime], Outcome]
HANDLERS: dict[type[Command], Handler] = {}

C = TypeVar("C", bound=Command)
A = TypeVar("A", bound=Aggregate)
F = TypeVar("F", bound=Handler)


def handles(command_type: type[Command]) -> Callable[[F], F]:
    """Register the decorated function as the handler of ``command_type``."""

    def register(function: F) -> F:
        HANDLERS[command_type] = function
        return function

    return register


def stamp(command: Command, recorded_at: datetime) -> Stamp:
    return Stamp(occurred_at=command.occurred_at, recorded_at=recorded_at)


def existing(repo: Repository, cls: type[A], key: str, field: str) -> A:
    """The aggregate, or NotFound naming the command field that pointed at it."""
    aggregate = repo.get(cls, key)
    if aggregate is None:
        raise NotFound(f"{field}: no {cls.prefix} {key!r}", field=field, **{field: key})
    return aggregate


def absent(repo: Repository, cls: type[Aggregate], key: str, field: str) -> None:
    """AlreadyExists unless nothing has this key yet."""
    if repo.get(cls, key) is not None:
        raise AlreadyExists(f"{field}: {cls.prefix} {key!r} exists", field=field, **{field: key})

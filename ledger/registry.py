"""Where the ledger finds the domain: aggregate classes by stream prefix, and the dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.base import Aggregate, Outcome, Repository
from domain.handlers import handle as domain_handle  # imports every aggregate module


def _subclasses(cls: type[Aggregate]) -> list[type[Aggregate]]:
    found: list[type[Aggregate]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def aggregate_classes() -> dict[str, type[Aggregate]]:
    return {cls.prefix: cls for cls in _subclasses(Aggregate) if cls.prefix}


def handle(command: Any, repo: Repository, recorded_at: datetime) -> Outcome:
    return domain_handle(command, repo, recorded_at)

"""Command handlers: one small function per command, all registered in ``HANDLERS``.

A handler validates first (raising InvalidCommand, NotFound, AlreadyExists or
InvalidTransition before any event), then changes every aggregate the command touches
through their methods; the ledger appends all their pending events in one transaction.
Broken swap rules are not errors: they are events plus a refused Outcome.
"""

from __future__ import annotations

from datetime import datetime

from domain import validation
from domain.base import InvalidCommand, Outcome, Repository
from domain.commands import Command
from domain.handlers import admin, auth, billing, rejection, riders, swap, telemetry
from domain.handlers.registry import HANDLERS, Handler

__all__ = ["HANDLERS", "Handler", "handle"]
_MODULES = (admin, auth, billing, rejection, riders, swap, telemetry)  # imported for registration


def handle(command: Command, repo: Repository, recorded_at: datetime) -> Outcome:
    """Run the handler of this command; ``recorded_at`` is the ledger's clock."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise InvalidCommand("command", f"{type(command).__name__} has no handler")
    validation.aware("occurred_at", command.occurred_at)
    validation.aware("recorded_at", recorded_at)
    return handler(command, repo, recorded_at)

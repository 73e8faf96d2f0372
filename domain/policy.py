"""The swap policy: thresholds the rules use, as data with a version.

One aggregate, ``policy:current``. Its version is the policy version every decision event
records; version 0 means the defaults below (the policy was never changed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from domain.base import Aggregate, DomainEvent, Repository, Stamp


@dataclass(frozen=True, kw_only=True)
class PolicyValues:
    """Thresholds in percent, °C, seconds and days."""

    min_return_soh: float = 70
    max_return_temp_c: float = 55
    retire_soh: float = 60
    min_issue_soc: float = 80
    min_issue_soh: float = 70
    session_timeout_s: int = 120
    payment_grace_days: int = 15

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULTS = PolicyValues()


class Policy(Aggregate):
    """The current policy; every change carries the full set of values."""

    prefix = "policy"
    KEY = "current"

    @dataclass(frozen=True, kw_only=True)
    class Changed(DomainEvent):
        min_return_soh: float
        max_return_temp_c: float
        retire_soh: float
        min_issue_soc: float
        min_issue_soh: float
        session_timeout_s: int
        payment_grace_days: int
        note: str | None = None

        def apply(self, aggregate: Policy) -> None:
            aggregate.values = PolicyValues(
                **{name: getattr(self, name) for name in PolicyValues.names()}
            )

    values: PolicyValues

    @classmethod
    def define(cls, values: PolicyValues, at: Stamp, note: str | None) -> Policy:
        return cls.create(cls.KEY, cls.Changed, at, note=note, **values.as_dict())

    def change(self, values: PolicyValues, at: Stamp, note: str | None) -> None:
        self.trigger(self.Changed, at, note=note, **values.as_dict())


def current_policy(repo: Repository) -> tuple[PolicyValues, int]:
    """The policy in force and its version (0 = defaults, never changed)."""
    policy = repo.get(Policy, Policy.KEY)
    if policy is None:
        return DEFAULTS, 0
    return policy.values, policy.version

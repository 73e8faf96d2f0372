"""Projections: one module per read model, each turning events into rows of its tables.

:func:`make` builds the projections of the named read models (all by default); the runner
(runner.py) applies them batch by batch, exactly once; the supervisor (supervisor.py) runs
them all; status.py reports where each stands against the log's head.
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.base import Projection

NAMES = ("riders", "batteries", "health", "stations", "swaps", "analytics", "billing", "rejected")


def classes() -> dict[str, type[Projection]]:
    from projections.analytics import AnalyticsProjection
    from projections.batteries import BatteriesProjection
    from projections.billing import BillingProjection
    from projections.health import HealthProjection
    from projections.rejected import RejectedProjection
    from projections.riders import RidersProjection
    from projections.stations import StationsProjection
    from projections.swaps import SwapsProjection

    found: list[type[Projection]] = [
        RidersProjection,
        BatteriesProjection,
        HealthProjection,
        StationsProjection,
        SwapsProjection,
        AnalyticsProjection,
        BillingProjection,
        RejectedProjection,
    ]
    return {cls.model: cls for cls in found}


def make(names: Iterable[str] | None = None) -> list[Projection]:
    """Fresh projection objects for the named read models (every one when None)."""
    known = classes()
    wanted = list(names) if names else list(NAMES)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise KeyError(f"no projection {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return [known[name]() for name in wanted]

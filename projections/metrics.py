"""Prometheus metrics of the read side (the HTTP adapter serves them on /metrics).

``bss_projection_position{name}`` and ``bss_projection_lag_events{name}`` are set by the live
runners after every batch and by :func:`projections.status.projection_status` (which
/api/health calls), so a process that only serves the API reports them too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSITION = Gauge(
    "bss_projection_position", "Last notification id applied to the read model.", ["name"]
)
LAG = Gauge(
    "bss_projection_lag_events", "Events in the log not yet applied to the read model.", ["name"]
)
UP = Gauge("bss_projection_up", "1 while the projection's runner is running, else 0.", ["name"])
EVENTS = Counter(
    "bss_projection_events_total", "Events applied to the read model by this process.", ["name"]
)
CRASHES = Counter(
    "bss_projection_crashes_total",
    "Times the projection's runner failed and was restarted.",
    ["name"],
)
BATCH_SECONDS = Histogram(
    "bss_projection_batch_seconds",
    "Time to apply and commit one batch.",
    ["name"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def observe_batch(name: str, position: int, applied: int, seconds: float) -> None:
    POSITION.labels(name).set(position)
    EVENTS.labels(name).inc(applied)
    BATCH_SECONDS.labels(name).observe(seconds)


def set_lag(name: str, position: int, head: int) -> None:
    POSITION.labels(name).set(position)
    LAG.labels(name).set(max(0, head - position))

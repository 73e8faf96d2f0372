"""Prometheus metrics of the write side (the HTTP adapter serves them on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_APPENDED = Counter(
    "bss_events_appended_total", "Events appended to the store by this process."
)
COMMANDS = Counter("bss_commands_total", "Commands run by this process, by result.", ["result"])
CONFLICTS = Counter(
    "bss_command_conflicts_total", "Batches decided again because an aggregate changed under them."
)
DUPLICATES = Counter(
    "bss_command_duplicates_total",
    "Commands answered from their idempotency key (nothing appended).",
)
BATCH_SIZE = Histogram(
    "bss_batch_commands",
    "Commands per committed transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)

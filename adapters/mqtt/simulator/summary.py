"""What a simulation run came to: swaps completed, refused (by reason), errors, latencies."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Latency:
    """Reply latencies of one kind of request, in seconds."""

    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def summary(self) -> dict[str, float | int | None]:
        ordered = sorted(self.samples)
        return {
            "count": len(ordered),
            "p50": percentile(ordered, 0.50),
            "p95": percentile(ordered, 0.95),
            "p99": percentile(ordered, 0.99),
            "max": ordered[-1] if ordered else None,
        }


@dataclass
class Summary:
    """Counters of one run. ``attempts`` are rider visits (card taps) started; each ends as
    completed, refused (a reason from the ledger, or the station's own), or an error (no
    reply after every retry, a rejected message)."""

    stations: int = 0
    dialects: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    attempts: int = 0
    completed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Latency] = field(
        default_factory=lambda: {k: Latency() for k in ("auth", "decision", "completion")}
    )
    published: int = 0
    received: int = 0
    duplicates_sent: int = 0
    replies_dropped: int = 0
    resent: int = 0
    stale_replies: int = 0
    telemetry: int = 0
    heartbeats: int = 0
    registered: int = 0
    already_registered: int = 0

    @property
    def finished(self) -> int:
        return self.completed + sum(self.refused.values()) + sum(self.errors.values())

    @property
    def in_progress(self) -> int:
        return self.attempts - self.finished

    @property
    def swaps_per_s(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    def all_latencies(self) -> Latency:
        merged = Latency()
        for latency in self.latency.values():
            merged.samples.extend(latency.samples)
        return merged

    def as_dict(self) -> dict[str, Any]:
        return {
            "stations": self.stations,
            "dialects": dict(self.dialects),
            "duration_s": round(self.duration_s, 3),
            "attempts": self.attempts,
            "completed": self.completed,
            "refused": dict(self.refused),
            "errors": dict(self.errors),
            "swaps_per_s": round(self.swaps_per_s, 1),
            "latency_s": {
                "all": self.all_latencies().summary(),
                **{name: lat.summary() for name, lat in self.latency.items()},
            },
            "published": self.published,
            "received": self.received,
            "duplicates_sent": self.duplicates_sent,
            "replies_dropped": self.replies_dropped,
            "resent": self.resent,
            "stale_replies": self.stale_replies,
            "telemetry": self.telemetry,
            "heartbeats": self.heartbeats,
            "registered": self.registered,
            "already_registered": self.already_registered,
        }

    def table(self, title: str = "Simulation") -> Table:
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        dialects = ", ".join(f"{n} {d}" for d, n in sorted(self.dialects.items()))
        table.add_row("stations", f"{self.stations} ({dialects})")
        table.add_row("elapsed", f"{self.duration_s:.1f} s")
        table.add_row("visits", f"{self.finished} finished of {self.attempts} started")
        table.add_row("completed", f"[green]{self.completed}[/green] ({self.swaps_per_s:.1f}/s)")
        refused = sum(self.refused.values())
        detail = ", ".join(f"{r} {n}" for r, n in self.refused.most_common())
        table.add_row("refused", f"[yellow]{refused}[/yellow]" + (f"  {detail}" if detail else ""))
        errors = sum(self.errors.values())
        detail = ", ".join(f"{r} {n}" for r, n in self.errors.most_common())
        table.add_row("errors", f"[red]{errors}[/red]" + (f"  {detail}" if detail else ""))
        table.add_row("reply latency", _latency_text(self.all_latencies()))
        for name, latency in self.latency.items():
            table.add_row(f"  {name}", _latency_text(latency))
        table.add_row(
            "messages",
            f"{self.published} sent ({self.telemetry} telemetry, {self.heartbeats} heartbeats), "
            f"{self.received} received",
        )
        if self.duplicates_sent or self.replies_dropped or self.resent or self.stale_replies:
            table.add_row(
                "faults",
                f"{self.duplicates_sent} duplicates sent, {self.replies_dropped} replies "
                f"dropped, {self.resent} re-sent, {self.stale_replies} stale replies",
            )
        return table


def _ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _latency_text(latency: Latency) -> str:
    s = latency.summary()
    if not s["count"]:
        return "-"
    return f"p50 {_ms(s['p50'])}  p95 {_ms(s['p95'])}  p99 {_ms(s['p99'])} ms  (n={s['count']})"

"""Where each read model stands against the log: for /api/health, ``bss project status`` and
the Prometheus gauges ``bss_projection_position{name}`` / ``bss_projection_lag_events{name}``.
"""

from __future__ import annotations

from typing import Any

from adapters.store import Store
from projections import metrics
from readmodels.generations import read_active
from readmodels.schema import (
    MODELS,
    model_version,
    registered_generations,
    tracking_name,
)


def projection_status(store: Store, supervisor: Any = None) -> list[dict[str, Any]]:
    """One dict per read model: ``name``, ``tracking`` (its row in the store's tracking
    table), ``generation`` (active), ``position``, ``head``,
    ``lag`` (events not yet applied), ``outdated`` (built by an older table layout than this
    code's: rebuild it), ``rebuilding`` (a generation being built, with its position, or
    None) and, when ``supervisor`` runs in this process, its runner's ``state``
    (running / crashed / stopped), ``restarts``, ``last_error`` and ``last_error_at``.

    Reads the database (a few tiny queries), so it is right whichever process runs the
    projections; it also sets the position and lag gauges."""
    recorder = store.recorder
    head = recorder.head()
    positions = recorder.tracking_positions()
    with store.engine.connect() as conn:
        active = read_active(conn)
        generations = registered_generations(conn)
    runners = {s["name"]: s for s in supervisor.status()} if supervisor is not None else {}
    report = []
    for name in MODELS:
        generation = active.get(name)
        position = positions.get(tracking_name(name, generation), 0) if generation else 0
        version = next(
            (
                g["version"]
                for g in generations
                if g["model"] == name and g["generation"] == generation
            ),
            None,
        )
        building = [
            {
                "generation": g["generation"],
                "position": positions.get(tracking_name(name, g["generation"]), 0),
            }
            for g in generations
            if g["model"] == name and g["state"] == "building"
        ]
        item: dict[str, Any] = {
            "name": name,
            "tracking": tracking_name(name, generation) if generation else None,
            "generation": generation,
            "position": position,
            "head": head,
            "lag": max(0, head - position),
            "outdated": version is not None and version < model_version(name),
            "rebuilding": building[-1] if building else None,
        }
        runner = runners.get(name)
        if runner is not None:
            item.update(
                state=runner["state"],
                restarts=runner["restarts"],
                last_error=runner["last_error"],
                last_error_at=runner["last_error_at"],
            )
        metrics.set_lag(name, position, head)
        report.append(item)
    return report

"""What the app is built from: the ledger (writes), the read-model engine (queries), tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from adapters.http.tokens import TokenStore
from ledger.service import Ledger


@dataclass
class ApiOptions:
    """Knobs of the HTTP adapter that are not in ledger.settings."""

    metrics_public: bool = False
    """Serve /metrics without a token (for a scraper on a private network); else any role."""
    read_wait_seconds: float = 2.0
    """How long a query with ``?after=`` waits for its read model to reach that position."""
    read_cache_seconds: float = 0.02
    """Answers are cached until their read models move, positions re-read at most this
    often; 0 turns the cache off (every query reads the database)."""
    stream_poll_seconds: float = 0.2
    stream_heartbeat_seconds: float = 15.0


@dataclass
class ApiState:
    """Kept on ``app.state.api``; routes reach it through the dependencies in deps.py."""

    ledger: Ledger
    engine: Engine
    tokens: TokenStore
    options: ApiOptions = field(default_factory=ApiOptions)
    ingest_status: Callable[[], dict[str, Any]] | None = None
    """Set by ``bss serve`` when MQTT ingest runs in this process (shown by /api/health)."""
    hub: Any = None
    cache: Any = None

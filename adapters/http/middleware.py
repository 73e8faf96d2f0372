"""HTTP metrics per route template (a pure ASGI middleware: no per-request task overhead)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "bss_http_requests_total",
    "HTTP requests answered, by route and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "bss_http_request_seconds",
    "Time to answer an HTTP request (headers sent), by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _route(scope: Scope) -> str:
        """The matched route's template (the router records it in the scope)."""
        return str(getattr(scope.get("route"), "path", None) or "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = self._route(scope)
                LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)
                REQUESTS.labels(scope["method"], route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, sending)

"""The HTTP adapter: FastAPI app, auth, live streams. ``create_app`` and ``start_api`` are
what ``bss api``, ``bss serve`` and ``bss demo`` use."""

from adapters.http.app import create_app
from adapters.http.server import ApiServer, start_api
from adapters.http.state import ApiOptions

__all__ = ["ApiOptions", "ApiServer", "create_app", "start_api"]

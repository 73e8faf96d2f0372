"""The API's pages in a real headless Chromium, with every host but 127.0.0.1 unresolvable:
the OpenAPI page renders its operations from files the ledger serves itself (no CDN)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.http.server import ApiServer, start_api
from adapters.store import open_store
from ledger.service import Ledger
from ledger.settings import Settings
from readmodels.schema import create_all

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing but the API itself can be reached: a page that needs a CDN breaks here.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (./scripts/test installs Debian's chromium)"
        if os.environ.get("BSS_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture
def api(sqlite_url: str) -> Iterator[ApiServer]:
    store = open_store(sqlite_url, init=True)
    create_all(store.engine)
    server = start_api(
        Settings(BSS_DATABASE_URL=sqlite_url),
        Ledger(store),
        host="127.0.0.1",
        port=0,
        background=True,
        log_level="warning",
    )
    try:
        yield server
    finally:
        server.stop()
        store.close()


def rendered(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (Chromium's virtual time lets them finish)."""
    done = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_openapi_page_renders_offline(api: ApiServer, tmp_path: Path) -> None:
    dom = rendered(f"{api.url}/", tmp_path / "profile")  # "/" leads to /docs
    assert "BSS swap ledger" in dom
    assert 'class="swagger-ui' in dom
    assert dom.count('class="opblock ') >= 40, "Swagger UI listed the API's operations"
    for path in ("/api/stations", "/api/batteries/{battery_id}/health-logs", "/api/stream"):
        assert path in dom
    assert "Failed to load API definition" not in dom

"""Every operation in the OpenAPI document, for every role and without a token: 401 without
a token, 403 for a role not admitted, anything else for a role admitted (the request itself
is deliberately incomplete, so an admitted call fails validation or finds nothing and
changes nothing). The expected table is written out here, independently of the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.http import ApiOptions, start_api
from ledger.settings import Settings
from tests.integration.test_api_support import ROLES, new_mysql_database, open_ledger

ALL = {"admin", "operator", "auditor", "analyst"}
STAFF = {"admin", "operator"}
ADMIN = {"admin"}
AUDIT = {"admin", "auditor"}
FINANCE = {"admin", "auditor", "analyst"}
OPS_AUDIT = {"admin", "operator", "auditor"}
PUBLIC: set[str] = set()

# (method, path) -> roles admitted; PUBLIC means no token needed.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/metrics"): ALL,
    ("GET", "/api/users"): ALL,
    ("POST", "/api/users"): STAFF,
    ("GET", "/api/users/{user_id}"): ALL,
    ("PUT", "/api/users/{user_id}"): STAFF,
    ("DELETE", "/api/users/{user_id}"): STAFF,
    ("GET", "/api/users/{user_id}/export"): ADMIN,
    ("POST", "/api/users/{user_id}/erase"): ADMIN,
    ("GET", "/api/rfid-cards"): ALL,
    ("POST", "/api/rfid-cards"): STAFF,
    ("GET", "/api/rfid-cards/{rfid_code}"): ALL,
    ("POST", "/api/rfid-cards/{rfid_code}/block"): STAFF,
    ("POST", "/api/rfid-cards/{rfid_code}/unblock"): STAFF,
    ("GET", "/api/stations"): ALL,
    ("POST", "/api/stations"): STAFF,
    ("GET", "/api/stations/{station_id}"): ALL,
    ("PUT", "/api/stations/{station_id}"): STAFF,
    ("GET", "/api/stations/{station_id}/batteries"): ALL,
    ("GET", "/api/stations/{station_id}/slots"): ALL,
    ("GET", "/api/batteries"): ALL,
    ("POST", "/api/batteries"): STAFF,
    ("GET", "/api/batteries/{battery_id}"): ALL,
    ("PUT", "/api/batteries/{battery_id}"): STAFF,
    ("DELETE", "/api/batteries/{battery_id}"): STAFF,
    ("POST", "/api/batteries/{battery_id}/repair"): STAFF,
    ("POST", "/api/batteries/{battery_id}/dock"): STAFF,
    ("GET", "/api/batteries/{battery_id}/health-logs"): ALL,
    ("GET", "/api/swaps"): ALL,
    ("POST", "/api/swaps"): STAFF,
    ("GET", "/api/swaps/{swap_id}"): ALL,
    ("PUT", "/api/swaps/{swap_id}"): STAFF,
    ("GET", "/api/plans"): ALL,
    ("POST", "/api/plans"): ADMIN,
    ("GET", "/api/plans/{plan_id}"): ALL,
    ("PUT", "/api/plans/{plan_id}"): ADMIN,
    ("GET", "/api/billing"): FINANCE,
    ("POST", "/api/billing/close"): ADMIN,
    ("GET", "/api/billing/{user_id}/{month}"): FINANCE,
    ("GET", "/api/billing/{user_id}/{month}/payments"): FINANCE,
    ("POST", "/api/billing/{user_id}/{month}/payments"): ADMIN,
    ("GET", "/api/analytics/summary"): ALL,
    ("GET", "/api/analytics/soh-distribution"): ALL,
    ("GET", "/api/analytics/swaps-per-station-per-day"): ALL,
    ("GET", "/api/analytics/refusal-reasons"): ALL,
    ("GET", "/api/analytics/utilisation"): ALL,
    ("GET", "/api/events"): AUDIT,
    ("GET", "/api/rejected-messages"): OPS_AUDIT,
    ("GET", "/api/policy"): ALL,
    ("PUT", "/api/policy"): ADMIN,
    ("GET", "/api/stream"): ALL,
    ("GET", "/api/stream/all"): AUDIT,
}

SAMPLE = {"month": "2025-07"}


@pytest.fixture(scope="module")
def server(mysql_url: str) -> Iterator[tuple[str, dict[str, str], dict[str, Any], str]]:
    url, drop = new_mysql_database(mysql_url)
    ledger = open_ledger(url)
    from adapters.http.tokens import TokenStore

    tokens = TokenStore(ledger.store.engine)
    made = {role: tokens.create(role, role)[1] for role in ROLES}
    api = start_api(
        Settings(),
        ledger,
        host="127.0.0.1",
        port=0,
        background=True,
        options=ApiOptions(stream_heartbeat_seconds=0.2),
        log_level="warning",
    )
    try:
        schema = httpx.get(f"{api.url}/openapi.json").json()
        yield api.url, made, schema, url
    finally:
        api.stop()
        ledger.store.close()
        drop()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]


def test_the_table_names_every_operation_in_the_openapi_document(server: Any) -> None:
    _, _, schema, _ = server
    found = {(m, p) for m, p, _ in _operations(schema)}
    assert found == set(EXPECTED), (found - set(EXPECTED), set(EXPECTED) - found)
    for method, path, op in _operations(schema):
        assert set(op["x-roles"]) == EXPECTED[(method, path)], (method, path)
        if EXPECTED[(method, path)]:
            assert op["security"] == [{"HTTPBearer": []}]
            assert {"401", "403"} <= set(op["responses"])


def _call(base: str, method: str, path: str, token: str | None) -> int:
    concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "zz-none"), path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
    with (
        httpx.Client(base_url=base, timeout=10) as client,
        client.stream(method, concrete, headers=headers, **kwargs) as response,
    ):
        return response.status_code  # streams (SSE) are closed without reading them


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_route_admits_exactly_its_roles(server: Any, role: str | None) -> None:
    base, tokens, schema, _ = server
    wrong: list[str] = []
    for method, path, _ in _operations(schema):
        admitted = EXPECTED[(method, path)]
        status = _call(base, method, path, tokens[role] if role else None)
        if not admitted:
            ok = status not in (401, 403)
        elif role is None:
            ok = status == 401
        elif role in admitted:
            ok = status not in (401, 403) and status < 500
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {path} as {role}: {status}")
    assert not wrong, "\n".join(wrong)


def test_docs_and_the_openapi_document_need_no_token(server: Any) -> None:
    base, _, _, _ = server
    assert httpx.get(f"{base}/openapi.json").status_code == 200
    assert httpx.get(f"{base}/docs").status_code == 200


def test_a_revoked_token_stops_working(server: Any) -> None:
    import time

    from adapters.http.tokens import CACHE_SECONDS, TokenStore
    from adapters.store import open_store

    base, _, _, db_url = server
    store = open_store(db_url)
    try:
        tokens = TokenStore(store.engine)
        info, token = tokens.create("operator", "short-lived")
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/stations", headers=auth).status_code == 200
        assert (
            httpx.get(
                f"{base}/api/stations", headers={"Authorization": f"Bearer {token[:-2]}xx"}
            ).status_code
            == 401
        )
        tokens.revoke(info.token_id)
        time.sleep(CACHE_SECONDS + 0.2)
        assert httpx.get(f"{base}/api/stations", headers=auth).status_code == 401
    finally:
        store.close()

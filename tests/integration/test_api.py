"""The HTTP API on the real MariaDB, every endpoint with data made by real commands
(HTTP writes → ledger → events → projections running on a thread → read models → queries).
Swaps are made by ledger commands through POST /api/swaps (the MQTT path is tested in
tests/e2e/test_api_live.py)."""

from __future__ import annotations

import base64
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.rejection import RecordRejectedMessage
from tests.integration.test_api_support import Api, mysql_api, unique

__all__ = ["mysql_api"]

PROBLEM = "application/problem+json"


def station(api: Api, slots: int = 4) -> tuple[str, int]:
    sid = unique("S")
    body = api.ok(
        api.post(
            "/api/stations", {"id": sid, "name": f"St {sid}", "location": "Dock", "slots": slots}
        ),
        201,
    )
    return sid, body["position"]


def battery(api: Api, station_id: str | None = None, slot: int | None = None, **kw: Any) -> str:
    bid = unique("B")
    body: dict[str, Any] = {"id": bid, "serial_number": bid, "capacity_ah": "30", **kw}
    if station_id is not None:
        body.update(station_id=station_id, slot=slot)
    api.ok(api.post("/api/batteries", body), 201)
    return bid


def rider(api: Api, **kw: Any) -> tuple[str, str]:
    code = unique("RF").upper()
    body = {
        "name": "Ines Example",
        "email": "ines@example.org",
        "phone": "+351 1",
        "rfid_code": code,
        **kw,
    }
    made = api.ok(api.post("/api/users", body), 201)
    return made["id"], code


@pytest.fixture(scope="module")
def swap_world(mysql_api: Api) -> dict[str, Any]:
    """A station with a charged battery and a rider holding another: one swap done."""
    api = mysql_api
    sid, _ = station(api)
    held = battery(api, soc=95, soh=92)
    out = battery(api, sid, 1, soc=97, soh=95)
    battery(api, sid, 2, soc=40, soh=65)
    uid, code = rider(api, battery_id=held)
    made = api.ok(
        api.post(
            "/api/swaps",
            {
                "station_id": sid,
                "rfid_code": code,
                "battery_in_id": held,
                "battery_out_id": out,
                "soc": 25,
                "soh": 91,
                "temperature": 30,
                "out_soc": 97,
                "out_soh": 95,
            },
        ),
        201,
    )
    api.settle()
    return {
        "station": sid,
        "held": held,
        "out": out,
        "user": uid,
        "code": code,
        "swap": made["id"],
        "swap_position": made["position"],
    }


# --- stations ---------------------------------------------------------------------------


def test_a_station_is_registered_changed_and_read_back(mysql_api: Api) -> None:
    api = mysql_api
    sid, position = station(api, slots=3)
    got = api.ok(api.get(f"/api/stations/{sid}", params={"after": position}))
    assert got["name"] == f"St {sid}"
    assert got["slot_count"] == 3
    assert got["status"] == "online"
    assert [s["slot"] for s in got["slots"]] == [1, 2, 3]
    head = api.ledger.recorder.head()
    same = api.ok(api.put(f"/api/stations/{sid}", {"name": f"St {sid}", "slots": 3}))
    assert same["data"] == {"changed": False}
    assert api.ledger.recorder.head() == head
    changed = api.ok(api.put(f"/api/stations/{sid}", {"name": "Renamed", "status": "maintenance"}))
    assert changed["position"] > head
    got = api.ok(api.get(f"/api/stations/{sid}", params={"after": changed["position"]}))
    assert (got["name"], got["status"]) == ("Renamed", "maintenance")
    listed = api.ok(api.get("/api/stations", params={"status": "maintenance", "limit": 1000}))
    assert sid in [s["id"] for s in listed["items"]]
    slots = api.ok(api.get(f"/api/stations/{sid}/slots"))
    assert [s["state"] for s in slots] == ["empty"] * 3


def test_station_lists_page_with_a_cursor(mysql_api: Api) -> None:
    api = mysql_api
    for _ in range(3):
        station(api)
    api.settle()
    first = api.ok(api.get("/api/stations", params={"limit": 2}))
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = api.ok(api.get("/api/stations", params={"limit": 2, "cursor": first["next_cursor"]}))
    assert not {s["id"] for s in first["items"]} & {s["id"] for s in second["items"]}
    ids = [s["id"] for s in first["items"] + second["items"]]
    assert ids == sorted(ids)
    desc = api.ok(api.get("/api/stations", params={"sort": "station_id", "order": "desc"}))
    got = [s["id"] for s in desc["items"]]
    assert got == sorted(got, reverse=True)


# --- batteries --------------------------------------------------------------------------


def test_a_battery_is_docked_changed_quarantined_and_retired(mysql_api: Api) -> None:
    api = mysql_api
    sid, _ = station(api)
    bid = battery(api, sid, 2, soc=90, soh=88)
    warehouse = battery(api)
    api.settle()
    got = api.ok(api.get(f"/api/batteries/{bid}"))
    assert got["custody"]["kind"] == "slot"
    assert got["station_id"] == sid
    assert got["slot"] == 2
    assert api.ok(api.get(f"/api/batteries/{warehouse}"))["custody_kind"] == "warehouse"
    at_station = api.ok(api.get(f"/api/stations/{sid}/batteries"))
    assert [b["id"] for b in at_station["items"]] == [bid]
    by_filter = api.ok(api.get("/api/batteries", params={"station_id": sid}))
    assert [b["id"] for b in by_filter["items"]] == [bid]
    head = api.ledger.recorder.head()
    assert api.ok(api.put(f"/api/batteries/{bid}", {"capacity_ah": "30"}))["data"] == {
        "changed": False
    }
    assert api.ledger.recorder.head() == head
    w = api.ok(
        api.put(
            f"/api/batteries/{bid}",
            {"capacity_ah": "32.5", "grade": "quarantined", "reason": "swollen"},
        )
    )
    got = api.ok(api.get(f"/api/batteries/{bid}", params={"after": w["position"]}))
    assert got["capacity_ah"] == "32.500"
    assert got["grade"] == "quarantined"
    docked = api.ok(api.post(f"/api/batteries/{warehouse}/dock", {"station_id": sid, "slot": 1}))
    got = api.ok(api.get(f"/api/batteries/{warehouse}", params={"after": docked["position"]}))
    assert got["slot"] == 1
    retired = api.ok(api.call("DELETE", f"/api/batteries/{bid}"))
    got = api.ok(api.get(f"/api/batteries/{bid}", params={"after": retired["position"]}))
    assert got["grade"] == "retired"
    assert got["status"] == "retired"
    events = api.ok(api.get("/api/events", params={"stream": f"battery:{bid}"}))["items"]
    assert [e["type"] for e in events][-1] == "Battery.Retired"  # history stays
    repaired = api.ok(api.post(f"/api/batteries/{warehouse}/repair", {"reason": "cell"}))
    got = api.ok(api.get(f"/api/batteries/{warehouse}", params={"after": repaired["position"]}))
    assert got["custody_kind"] == "repair"


def test_health_logs_list_a_batterys_readings(mysql_api: Api, swap_world: dict[str, Any]) -> None:
    api = mysql_api
    logs = api.ok(api.get(f"/api/batteries/{swap_world['held']}/health-logs"))["items"]
    assert logs
    assert logs[-1]["soc"] == 25
    assert logs[-1]["soh"] == 91
    newest = api.ok(
        api.get(
            f"/api/batteries/{swap_world['held']}/health-logs", params={"order": "desc", "limit": 1}
        )
    )
    assert newest["items"][0]["event_id"] == max(e["event_id"] for e in logs)
    assert api.get("/api/batteries/nope/health-logs").status_code == 404


# --- users and cards --------------------------------------------------------------------


def test_a_user_card_and_battery_are_made_in_one_command(mysql_api: Api) -> None:
    api = mysql_api
    bid = battery(api, soc=88, soh=90)
    head = api.ledger.recorder.head()
    code = unique("RF")
    made = api.ok(
        api.post(
            "/api/users",
            {"name": "Rui", "email": "rui@example.org", "rfid_code": code, "battery_id": bid},
        ),
        201,
    )
    assert made["id"].isdigit()  # a number, as v1 stations expect user ids
    events = api.ok(api.get("/api/events", params={"cursor": str(head)}))["items"]
    assert {e["type"] for e in events} >= {
        "Rider.Registered",
        "Card.Issued",
        "Battery.HandedOver",
        "Rider.BatteryReceived",
    }
    assert len({e["recorded_at"] for e in events}) == 1  # one transaction
    assert max(e["position"] for e in events) == made["position"]
    user = api.ok(api.get(f"/api/users/{made['id']}", params={"after": made["position"]}))
    assert user["battery_id"] == bid
    assert user["cards"][0]["rfid_code"] == code
    held = api.ok(api.get(f"/api/batteries/{bid}", params={"after": made["position"]}))
    assert held["custody"]["kind"] == "rider"
    assert held["rider_id"] == made["id"]


def test_personal_fields_and_rfid_codes_are_shown_by_role(mysql_api: Api) -> None:
    api = mysql_api
    uid, code = rider(api)
    api.settle()
    admin = api.ok(api.get(f"/api/users/{uid}", "admin"))
    operator = api.ok(api.get(f"/api/users/{uid}", "operator"))
    auditor = api.ok(api.get(f"/api/users/{uid}", "auditor"))
    analyst = api.ok(api.get(f"/api/users/{uid}", "analyst"))
    assert admin["name"] == operator["name"] == auditor["name"] == "Ines Example"
    assert analyst["name"] is None
    assert analyst["email"] is None
    assert analyst["phone"] is None
    assert admin["cards"][0]["rfid_code"] == code
    for seen in (operator, auditor, analyst):
        masked = seen["cards"][0]["rfid_code"]
        assert masked != code
        assert masked.endswith(code[-4:])
        assert "*" in masked
    listed = api.ok(api.get("/api/users", "analyst", params={"limit": 1000}))["items"]
    assert all(u["name"] is None and u["email"] is None for u in listed)
    card = api.ok(api.get(f"/api/rfid-cards/{code}", "operator"))
    assert card["rfid_code"].endswith(code[-4:])
    assert card["rfid_code"] != code
    assert api.get(f"/api/users/{uid}/export", "operator").status_code == 403
    export = api.ok(api.get(f"/api/users/{uid}/export", "admin"))
    assert export["user"]["email"] == "ines@example.org"


def test_a_user_is_changed_suspended_and_deactivated(mysql_api: Api) -> None:
    api = mysql_api
    uid, _ = rider(api)
    head = api.ledger.recorder.head()
    same = api.ok(api.put(f"/api/users/{uid}", {"name": "Ines Example", "status": "active"}))
    assert same["data"] == {"changed": False}
    assert api.ledger.recorder.head() == head
    changed = api.ok(
        api.put(
            f"/api/users/{uid}",
            {"email": "new@example.org", "status": "suspended", "reason": "fraud"},
        )
    )
    got = api.ok(api.get(f"/api/users/{uid}", params={"after": changed["position"]}))
    assert got["email"] == "new@example.org"
    assert got["status"] == "suspended"
    gone = api.ok(api.call("DELETE", f"/api/users/{uid}"))
    got = api.ok(api.get(f"/api/users/{uid}", params={"after": gone["position"]}))
    assert got["status"] == "deactivated"  # history stays
    assert api.call("DELETE", f"/api/users/{uid}").status_code == 409
    listed = api.ok(api.get("/api/users", params={"status": "deactivated", "limit": 1000}))
    assert uid in [u["id"] for u in listed["items"]]


def test_cards_are_issued_blocked_and_unblocked(mysql_api: Api) -> None:
    api = mysql_api
    uid, first = rider(api)
    code = unique("CARD")
    issued = api.ok(api.post("/api/rfid-cards", {"rfid_code": code, "user_id": uid}), 201)
    assert issued["id"] == code  # admins see codes in full
    blocked = api.ok(api.post(f"/api/rfid-cards/{code}/block", {"status": "lost"}))
    got = api.ok(api.get(f"/api/rfid-cards/{code}", params={"after": blocked["position"]}))
    assert got["status"] == "lost"
    assert got["user_id"] == uid
    assert api.post(f"/api/rfid-cards/{code}/block", {"status": "lost"}).status_code == 409
    back = api.ok(api.post(f"/api/rfid-cards/{code}/unblock", {"reason": "found"}))
    cards = api.ok(api.get("/api/rfid-cards", params={"user_id": uid, "after": back["position"]}))
    assert {c["rfid_code"]: c["status"] for c in cards["items"]} == {
        first: "active",
        code: "active",
    }
    masked = api.ok(
        api.post("/api/rfid-cards", {"rfid_code": unique("C2"), "user_id": uid}, role="operator"),
        201,
    )
    assert "*" in masked["id"]


# --- swaps ------------------------------------------------------------------------------


def test_a_swap_is_recorded_listed_and_corrected(
    mysql_api: Api, swap_world: dict[str, Any]
) -> None:
    api, w = mysql_api, swap_world
    swap = api.ok(api.get(f"/api/swaps/{w['swap']}"))
    assert swap["outcome"] == "completed"
    assert swap["station_id"] == w["station"]
    assert swap["returned_battery_id"] == w["held"]
    assert swap["issued_battery_id"] == w["out"]
    assert swap["user_id"] == w["user"]
    assert swap["rfid_code"] == w["code"]
    listed = api.ok(api.get("/api/swaps", params={"station_id": w["station"], "limit": 50}))
    assert [s["id"] for s in listed["items"]] == [w["swap"]]
    assert "*" in api.ok(api.get(f"/api/swaps/{w['swap']}", "analyst"))["rfid_code"]
    by_outcome = api.ok(
        api.get("/api/swaps", params={"outcome": "completed", "user_id": w["user"]})
    )
    assert len(by_outcome["items"]) == 1
    before = swap["energy_used_ah"]
    fixed = api.ok(
        api.put(f"/api/swaps/{w['swap']}", {"note": "station misread", "returned_soc": 35})
    )
    assert fixed["data"]["delta_ah"] != "0"
    swap = api.ok(api.get(f"/api/swaps/{w['swap']}", params={"after": fixed["position"]}))
    assert swap["returned_soc"] == 35
    assert swap["energy_used_ah"] != before
    assert len(swap["corrections"]) == 1
    history = api.ok(api.get("/api/events", params={"stream": f"session:{w['swap']}"}))["items"]
    types = [e["type"] for e in history]
    assert "SwapSession.Completed" in types
    assert types[-1] == "SwapSession.Corrected"
    assert history[-1]["data"]["original_version"] == next(
        e["version"] for e in history if e["type"] == "SwapSession.Completed"
    )


def test_a_refused_swap_is_a_409_problem_with_its_reason(mysql_api: Api) -> None:
    api = mysql_api
    sid, _ = station(api)
    held = battery(api, soc=90, soh=90)
    battery(api, sid, 1, soc=95, soh=95)
    uid, _ = rider(api, battery_id=held)
    r = api.post(
        "/api/swaps",
        {"station_id": sid, "user_id": uid, "battery_in_id": held, "soc": 20, "soh": 65},
    )
    api.settle()
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == body["reason"] == "battery_health_low"
    assert body["detail"] == "Battery health below threshold"
    assert int(r.headers["X-Ledger-Position"]) == body["position"] > 0
    refused = api.ok(api.get("/api/swaps", params={"station_id": sid, "outcome": "refused"}))
    assert refused["items"][0]["reason"] == "battery_health_low"


# --- plans, billing ---------------------------------------------------------------------


def test_plans_bills_and_payments(mysql_api: Api) -> None:
    api = mysql_api
    pid = unique("plan")
    api.ok(
        api.post(
            "/api/plans",
            {
                "id": pid,
                "name": "Basic",
                "monthly_fee": "20",
                "included_ah": "100",
                "extra_ah_rate": "0.25",
            },
        ),
        201,
    )
    assert (
        api.post(
            "/api/plans",
            {
                "id": unique(),
                "name": "x",
                "monthly_fee": "1",
                "included_ah": "1",
                "extra_ah_rate": "1",
            },
            role="operator",
        ).status_code
        == 403
    )
    same = api.ok(api.put(f"/api/plans/{pid}", {"monthly_fee": "20"}))
    assert same["data"] == {"changed": False}
    changed = api.ok(api.put(f"/api/plans/{pid}", {"monthly_fee": "25.50"}))
    plan = api.ok(api.get(f"/api/plans/{pid}", params={"after": changed["position"]}))
    assert Decimal(plan["monthly_fee"]) == Decimal("25.50")
    assert plan["name"] == "Basic"
    assert pid in [p["id"] for p in api.ok(api.get("/api/plans"))]
    uid, _ = rider(api, plan_id=pid)
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    closed = api.ok(api.post("/api/billing/close", {"user_id": uid, "month": last_month}))
    assert Decimal(closed["data"]["amount_due"]) == Decimal("25.50")
    bill = api.ok(api.get(f"/api/billing/{uid}/{last_month}", params={"after": closed["position"]}))
    assert bill["status"] == "closed"
    assert Decimal(bill["amount_due"]) == Decimal("25.50")
    paid = api.ok(
        api.post(
            f"/api/billing/{uid}/{last_month}/payments", {"amount": "25.50", "reference": "tx-1"}
        ),
        201,
    )
    assert paid["data"]["settled"] is True
    payments = api.ok(
        api.get(f"/api/billing/{uid}/{last_month}/payments", params={"after": paid["position"]})
    )
    assert [p["reference"] for p in payments] == ["tx-1"]
    bills = api.ok(api.get("/api/billing", "analyst", params={"user_id": uid}))["items"]
    assert [(b["month"], b["status"]) for b in bills] == [(last_month, "paid")]
    assert api.get("/api/billing", "operator").status_code == 403
    too_much = api.post(f"/api/billing/{uid}/{last_month}/payments", {"amount": "1"})
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "invalid_command"


# --- analytics, events, rejected messages, policy ----------------------------------------


def test_analytics(mysql_api: Api, swap_world: dict[str, Any]) -> None:
    api = mysql_api
    summary = api.ok(api.get("/api/analytics/summary", "analyst"))
    assert summary["stations"] >= 1
    assert summary["swaps"] >= 1
    assert sum(summary["batteries"].values()) >= 3
    buckets = api.ok(api.get("/api/analytics/soh-distribution"))
    assert [b["bucket"] for b in buckets] == ["90-100", "80-89", "70-79", "60-69", "<60", "unknown"]
    assert buckets[0]["batteries"] >= 2
    assert buckets[3]["batteries"] >= 1
    days = api.ok(
        api.get(
            "/api/analytics/swaps-per-station-per-day", params={"station_id": swap_world["station"]}
        )
    )
    assert sum(d["swaps"] for d in days) == 1
    assert api.ok(api.get("/api/analytics/refusal-reasons")) is not None
    util = api.ok(api.get("/api/analytics/utilisation"))
    assert swap_world["station"] in [u["station_id"] for u in util]
    assert (
        api.get(
            "/api/analytics/summary",
            params={"since": "2030-01-01T00:00:00Z", "until": "2029-01-01T00:00:00Z"},
        ).status_code
        == 422
    )


def test_events_in_global_order_with_filters_and_paging(
    mysql_api: Api, swap_world: dict[str, Any]
) -> None:
    api = mysql_api
    page = api.ok(api.get("/api/events", "auditor", params={"limit": 5}))
    positions = [e["position"] for e in page["items"]]
    assert positions == sorted(positions)
    assert len(positions) == 5
    nxt = api.ok(
        api.get("/api/events", "auditor", params={"limit": 5, "cursor": page["next_cursor"]})
    )
    assert nxt["items"][0]["position"] > positions[-1]
    e = page["items"][0]
    assert set(e) == {"position", "type", "stream", "version", "recorded_at", "occurred_at", "data"}
    completed = api.ok(api.get("/api/events", params={"type": "Completed", "limit": 1000}))
    assert {x["type"] for x in completed["items"]} == {"SwapSession.Completed"}
    card_events = api.ok(
        api.get("/api/events", "auditor", params={"type": "Card.Issued", "limit": 1})
    )["items"]
    assert "*" in card_events[0]["stream"]  # auditors see RFID codes masked
    future = api.ok(api.get("/api/events", params={"since": "2100-01-01T00:00:00Z"}))
    assert future["items"] == []
    recent = api.ok(api.get("/api/events", params={"order": "desc", "limit": 1}))
    assert recent["items"][0]["position"] == api.ledger.recorder.head()
    assert api.get("/api/events", "analyst").status_code == 403
    assert api.get("/api/events", "operator").status_code == 403


def test_rejected_messages(mysql_api: Api) -> None:
    api = mysql_api
    now = datetime.now(UTC)
    raw = b'{"rfid": '
    result = api.ledger.execute(
        RecordRejectedMessage(
            occurred_at=now,
            rejection_id=unique("rej"),
            reason="bad_json",
            message="not JSON",
            topic="bss/7/auth/request",
            station_id="7",
            payload_b64=base64.b64encode(raw).decode(),
            payload_size=len(raw),
            received_at=now,
        )
    )
    got = api.ok(
        api.get(
            "/api/rejected-messages",
            "operator",
            params={"station_id": "7", "after": result.position},
        )
    )
    assert got["items"][0]["reason"] == "bad_json"
    assert base64.b64decode(got["items"][0]["raw_b64"]) == raw
    assert api.get("/api/rejected-messages", "analyst").status_code == 403


def test_policy_is_read_and_changed(mysql_api: Api) -> None:
    api = mysql_api
    policy = api.ok(api.get("/api/policy", "analyst"))
    assert policy["min_return_soh"] >= 0
    head = api.ledger.recorder.head()
    same = api.ok(api.put("/api/policy", {"min_return_soh": policy["min_return_soh"]}))
    assert same["data"] == {"changed": False}
    assert api.ledger.recorder.head() == head
    changed = api.ok(api.put("/api/policy", {"session_timeout_s": 300, "note": "slow kiosks"}))
    got = api.ok(api.get("/api/policy"))
    assert got["session_timeout_s"] == 300
    assert got["version"] == changed["data"]["policy_version"]
    assert api.put("/api/policy", {"retire_soh": 90}).status_code == 422
    assert api.put("/api/policy", {"retire_soh": 50}, role="operator").status_code == 403
    api.ok(api.put("/api/policy", {"session_timeout_s": 120}))


# --- cross-cutting ----------------------------------------------------------------------


def test_the_idempotency_key_answers_a_repeat_without_appending(mysql_api: Api) -> None:
    api = mysql_api
    sid = unique("S")
    body = {"id": sid, "name": "Once", "slots": 2}
    key = {"Idempotency-Key": unique("key")}
    first = api.post("/api/stations", body, headers=key)
    head = api.ledger.recorder.head()
    again = api.post("/api/stations", body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["position"] == first.json()["position"]
    assert again.json()["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.ledger.recorder.head() == head
    without = api.post("/api/stations", body)
    assert without.status_code == 409  # without the key it is a second registration
    put_key = {"Idempotency-Key": unique("key")}
    a = api.ok(api.put(f"/api/stations/{sid}", {"name": "Twice"}, headers=put_key))
    b = api.ok(api.put(f"/api/stations/{sid}", {"name": "Twice"}, headers=put_key))
    assert a["position"] == b["position"]
    assert b["replayed"] is True


def test_every_error_status_is_a_problem(mysql_api: Api) -> None:
    api = mysql_api
    sid, _ = station(api)
    cases = [
        (api.get("/api/stations", params={"cursor": "not-a-cursor"}), 400, "bad_cursor"),
        (api.get("/api/stations", role=None), 401, "unauthorized"),
        (
            api.get(
                "/api/stations", headers={"Authorization": "Bearer bss_000000000000_x"}, role=None
            ),
            401,
            "unauthorized",
        ),
        (api.post("/api/plans", {}, role="operator"), 403, "forbidden"),
        (api.get("/api/stations/does-not-exist"), 404, "not_found"),
        (api.get("/api/no-such-route"), 404, "not_found"),
        (
            api.post(
                "/api/batteries",
                {"id": unique(), "capacity_ah": 1, "station_id": "nope", "slot": 1},
            ),
            404,
            "not_found",
        ),
        (api.post("/api/stations", {"id": sid, "name": "x", "slots": 1}), 409, "already_exists"),
        (api.post("/api/stations", {"id": "x", "name": "x", "slots": 0}), 422, "invalid_request"),
        (
            api.post("/api/stations", {"id": "x", "name": "x", "slots": 1, "extra": 1}),
            422,
            "invalid_request",
        ),
        (
            api.post(
                "/api/stations", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
            "invalid_request",
        ),
        (api.get("/api/stations", params={"after": 10**15}), 422, "position_not_written"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == PROBLEM, response.headers
        body = response.json()
        assert (body["status"], body["code"]) == (status, code), body
        assert body["type"].endswith(code)
        assert body["title"]
    assert api.get("/api/stations", role=None).headers["WWW-Authenticate"].startswith("Bearer")


def test_a_query_with_after_waits_for_its_read_model(mysql_api: Api) -> None:
    api = mysql_api
    assert api.projector is not None
    api.settle()
    api.projector.pause()
    try:
        sid, position = station(api)
        threading.Timer(0.4, api.projector.paused.clear).start()
        started = time.monotonic()
        got = api.get(f"/api/stations/{sid}", params={"after": position})
        waited = time.monotonic() - started
        assert got.status_code == 200, got.text
        assert got.json()["id"] == sid
        assert 0.3 < waited < 2.5
        assert int(got.headers["X-Read-Position"]) >= position
    finally:
        api.projector.paused.clear()
    # Without ?after the query answers at once from whatever the read model holds.
    api.projector.pause()
    try:
        sid2, position2 = station(api)
        assert api.get(f"/api/stations/{sid2}").status_code == 404
        api.ledger  # noqa: B018 - the write is committed; only the projection is behind
        stale = api.get("/api/stations", params={"after": position2})
        assert stale.status_code == 200
        assert stale.headers["X-Read-Stale"] == "true"
    finally:
        api.projector.paused.clear()


def test_health_and_metrics(mysql_api: Api) -> None:
    api = mysql_api
    api.settle()
    health = api.ok(api.get("/api/health", role=None))
    assert health["status"] == "ok"
    assert health["database"] is True
    assert health["head"] == api.ledger.recorder.head()
    names = {p["name"] for p in health["projections"]}
    assert {"stations", "swaps", "batteries", "riders"} <= names
    assert all(p["lag"] >= 0 for p in health["projections"])
    assert api.get("/metrics", role=None).status_code == 401
    text = api.get("/metrics", "analyst").text
    for metric in (
        "bss_events_appended_total",
        "bss_http_requests_total",
        "bss_projection_lag_events",
    ):
        assert metric in text


def test_the_answer_cache_never_hides_a_write_read_with_after(mysql_api: Api) -> None:
    api = mysql_api
    sid, position = station(api)
    for _ in range(3):  # warm the cache for this URL and role
        assert api.ok(api.get(f"/api/stations/{sid}", params={"after": position}))["name"] == (
            f"St {sid}"
        )
        assert api.ok(api.get(f"/api/stations/{sid}"))["name"] == f"St {sid}"
    hits = api.app.state.api.cache.hits
    assert hits > 0
    for n in range(5):
        w = api.ok(api.put(f"/api/stations/{sid}", {"name": f"Name {n}"}))
        got = api.ok(api.get(f"/api/stations/{sid}", params={"after": w["position"]}))
        assert got["name"] == f"Name {n}"
    deadline = time.monotonic() + 5  # and without ?after it follows within moments
    while api.ok(api.get(f"/api/stations/{sid}"))["name"] != "Name 4":
        assert time.monotonic() < deadline
        time.sleep(0.02)

"""The same API on the embedded SQLite store (no configuration): a condensed run of the
main paths, so the default `bss serve` works end to end."""

from __future__ import annotations

from tests.integration.test_api_support import running_api

PROBLEM = "application/problem+json"


def test_the_main_paths_work_on_sqlite(sqlite_url: str) -> None:
    with running_api(sqlite_url) as api:
        w = api.ok(api.post("/api/stations", {"id": "1", "name": "One", "slots": 2}), 201)
        assert api.ok(api.get("/api/stations/1", params={"after": w["position"]}))["name"] == "One"
        api.ok(
            api.post("/api/batteries", {"id": "7", "capacity_ah": 30, "soc": 90, "soh": 90}), 201
        )
        api.ok(
            api.post(
                "/api/batteries",
                {"id": "8", "capacity_ah": 30, "station_id": "1", "slot": 1, "soc": 96, "soh": 95},
            ),
            201,
        )
        user = api.ok(
            api.post("/api/users", {"name": "Ines", "rfid_code": "A1B2C3D4", "battery_id": "7"}),
            201,
        )
        swap = api.ok(
            api.post(
                "/api/swaps",
                {
                    "station_id": "1",
                    "user_id": user["id"],
                    "battery_in_id": "7",
                    "soc": 30,
                    "soh": 89,
                },
                params={"after": user["position"]},
            ),
            201,
        )
        got = api.ok(api.get(f"/api/swaps/{swap['id']}", params={"after": swap["position"]}))
        assert got["outcome"] == "completed"
        assert got["issued_battery_id"] == "8"
        slots = api.ok(api.get("/api/stations/1/slots", params={"after": swap["position"]}))
        assert [s["battery_id"] for s in slots] == ["7", None] or [
            s["battery_id"] for s in slots
        ] == [None, "7"]
        events = api.ok(api.get("/api/events", params={"limit": 1000}))["items"]
        assert events[-1]["position"] == swap["position"]
        assert api.ok(api.get("/api/health", role=None))["status"] == "ok"
        missing = api.get("/api/users/999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM
        assert api.get("/api/users", "analyst").json()["items"][0]["name"] is None

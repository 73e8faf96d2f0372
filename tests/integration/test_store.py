"""The event store on the real MariaDB and on SQLite: the gaps DESIGN.md lists, closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pymysql
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from sqlalchemy import text

from adapters.store import (
    AppendConflict,
    AppendRequest,
    CommandRecord,
    DuplicateCommand,
    Store,
    open_store,
)
from adapters.store.migrate import current_revision, head_revision, upgrade


@pytest.fixture(params=["mariadb", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("fresh_mysql_url" if request.param == "mariadb" else "sqlite_url")
    opened = open_store(url, init=True)
    yield opened
    opened.close()


def event(stream: str, version: int = 1, size: int = 10) -> StoredEvent:
    return StoredEvent(stream, version, "tests:Event", b"x" * size)


def test_schema_init_is_idempotent(store: Store) -> None:
    assert current_revision(store.engine) == head_revision()
    before, after = upgrade(store.engine)
    assert before == after == head_revision()
    assert store.recorder.head() == 0


def test_appends_are_numbered_densely_and_read_back_in_order(store: Store) -> None:
    r = store.recorder
    first = r.append(AppendRequest(events=[event("a:1"), event("b:1")], seen=0))
    second = r.append(AppendRequest(events=[event("a:1", 2)], seen=first.last_id))
    assert (first.first_id, first.last_id, second.first_id, second.last_id) == (1, 2, 3, 3)
    notes = r.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id, n.originator_version) for n in notes] == [
        (1, "a:1", 1),
        (2, "b:1", 1),
        (3, "a:1", 2),
    ]
    assert [e.originator_version for e in r.select_events("a:1")] == [1, 2]
    assert r.head() == 3


def test_an_event_over_64_kib_is_stored_whole(store: Store) -> None:
    big = bytes(range(256)) * 1024  # 256 KiB, every byte value
    store.recorder.append(AppendRequest(events=[StoredEvent("big:1", 1, "t", big)], seen=0))
    assert store.recorder.select_events("big:1")[0].state == big


def test_a_stale_read_set_is_refused_and_nothing_is_appended(store: Store) -> None:
    r = store.recorder
    r.append(AppendRequest(events=[event("card:1")], seen=0))
    # A second writer decided on a view as of position 0, having read card:1 (version 0).
    with pytest.raises(AppendConflict) as caught:
        r.append(AppendRequest(events=[event("session:9")], read_set={"card:1": 0}, seen=0))
    assert caught.value.conflicts == {"card:1"}
    assert r.head() == 1
    assert r.select_events("session:9") == []


def test_the_same_stream_version_twice_is_an_integrity_error(store: Store) -> None:
    r = store.recorder
    r.append(AppendRequest(events=[event("x:1")], seen=0))
    with pytest.raises(IntegrityError):
        r.append(AppendRequest(events=[event("x:1")]))
    assert r.head() == 1


def test_idempotency_keys_are_stored_with_the_events(store: Store) -> None:
    r = store.recorder
    result = r.append(
        AppendRequest(events=[event("y:1")], commands=[CommandRecord("key-1", b'{"ok":1}')])
    )
    assert r.get_commands(["key-1", "key-2"]) == {"key-1": (result.last_id, b'{"ok":1}')}
    with pytest.raises(DuplicateCommand):
        r.append(AppendRequest(events=[event("y:2")], commands=[CommandRecord("key-1", b"{}")]))
    assert r.select_events("y:2") == [], "the events of a duplicate command are not appended"


def test_two_workers_cannot_both_commit_one_tracking_position(store: Store) -> None:
    r = store.recorder
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        try:
            r.insert_tracking(Tracking("proj", 5))
            outcomes.append("committed")
        except IntegrityError:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["committed", "refused"]
    assert r.max_tracking_id("proj") == 5


def test_a_reader_never_sees_a_later_notification_before_an_earlier_commits(store: Store) -> None:
    """A slow writer holds its transaction open; a fast one appends meanwhile. A reader that
    polls all along must see ids only as a gapless prefix."""
    r = store.recorder
    slow_inside = threading.Event()
    release_slow = threading.Event()
    writer_cls = type(r._writers.writer)
    original = writer_cls.insert_and_commit

    def slow_insert_and_commit(self, cur, rows, *rest):  # type: ignore[no-untyped-def]
        if rows and rows[0][1].startswith("slow:"):
            slow_inside.set()
            release_slow.wait(5)
        return original(self, cur, rows, *rest)

    seen_prefix_violations: list[list[int]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            ids = [n.id for n in r.select_notifications(start=1, limit=100)]
            if ids != list(range(1, len(ids) + 1)):
                seen_prefix_violations.append(ids)
            time.sleep(0.001)

    writer_cls.insert_and_commit = slow_insert_and_commit  # type: ignore[method-assign]
    try:
        reading = threading.Thread(target=reader, daemon=True)
        reading.start()
        slow = threading.Thread(target=lambda: r.append(AppendRequest(events=[event("slow:1")])))
        slow.start()
        assert slow_inside.wait(5)
        fast_done = threading.Event()

        def fast() -> None:
            r.append(AppendRequest(events=[event("fast:1")]))
            fast_done.set()

        fast_thread = threading.Thread(target=fast)
        fast_thread.start()
        time.sleep(0.3)
        assert not fast_done.is_set(), "the fast writer waits for the slow one's commit"
        release_slow.set()
        slow.join(10)
        fast_thread.join(10)
        time.sleep(0.05)
        stop.set()
        reading.join(5)
    finally:
        writer_cls.insert_and_commit = original  # type: ignore[method-assign]
        release_slow.set()
        stop.set()
    notes = r.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id) for n in notes] == [(1, "slow:1"), (2, "fast:1")]
    assert seen_prefix_violations == []


def test_subscription_yields_old_then_new_notifications(store: Store) -> None:
    r = store.recorder
    r.append(AppendRequest(events=[event("s:1"), event("s:2")]))
    got: list[int] = []
    with r.subscribe(gt=0) as subscription:

        def later() -> None:
            time.sleep(0.2)
            r.append(AppendRequest(events=[event("s:3")]))

        threading.Thread(target=later).start()
        for note in subscription:
            got.append(note.id)
            if len(got) == 3:
                subscription.stop()
    assert got == [1, 2, 3]


def test_next_value_counts_up(store: Store) -> None:
    values = [store.recorder.next_value("rider") for _ in range(3)]
    assert values == [values[0], values[0] + 1, values[0] + 2]


@pytest.mark.parametrize("backend", ["mariadb"])
def test_a_killed_connection_does_not_fail_the_next_append(
    backend: str, fresh_mysql_url: str
) -> None:
    store = open_store(fresh_mysql_url, init=True)
    try:
        r = store.recorder
        r.append(AppendRequest(events=[event("k:1")]))
        thread_id = r._writers.writer.connection().thread_id()
        with store.engine.connect() as admin:
            admin.execute(text(f"KILL {int(thread_id)}"))
        result = r.append(AppendRequest(events=[event("k:2")]))
        assert result.last_id == 2
        assert r._writers.writer.connection().thread_id() != thread_id
        assert [e.originator_id for e in r.select_notifications(1, 10)] == ["k:1", "k:2"]
    finally:
        store.close()


def test_event_state_column_is_longblob_and_tables_are_utf8mb4(fresh_mysql_url: str) -> None:
    store = open_store(fresh_mysql_url, init=True)
    try:
        with store.engine.connect() as conn:
            column_type = conn.execute(
                text(
                    "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                    "DATABASE() AND TABLE_NAME = 'bss_events' AND COLUMN_NAME = 'state'"
                )
            ).scalar_one()
            charsets = set(
                conn.execute(
                    text(
                        "SELECT CCSA.character_set_name FROM information_schema.TABLES T "
                        "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA "
                        "ON CCSA.collation_name = T.table_collation "
                        "WHERE T.table_schema = DATABASE()"
                    )
                ).scalars()
            )
        assert column_type == "longblob"
        assert charsets == {"utf8mb4"}
    finally:
        store.close()


def test_pymysql_is_the_driver(fresh_mysql_url: str) -> None:
    store = open_store(fresh_mysql_url)
    try:
        assert store.engine.dialect.driver == "pymysql"
        assert isinstance(
            store.recorder._writers.writer.connection(), pymysql.connections.Connection
        )
    finally:
        store.close()

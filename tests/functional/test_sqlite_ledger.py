"""The one SQLite helper's migrations ledger (``elastic_recheck/storage/sqlite.py``) on real files.

* files written before the ledger (``tests/fixtures/legacy_sqlite``) are
  adopted at the version they hold: nothing runs, no table is rebuilt, every
  page of every existing table and index is byte for byte the same;
* a migration interrupted halfway (an exception between two statements, or
  the process killed with SIGKILL while its uncommitted pages are already in
  the WAL) leaves the file at the previous version with its data intact,
  and the next open completes it;
* a file a newer release migrated is refused; several openers at once
  record each version once.
"""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.launchpad.trackers import BugCache
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.collector_state import CollectorState
from elastic_recheck.adapters.sqlite.layout import MIGRATIONS
from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.adapters.sqlite.signatures import SignatureIndex
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.errors import StoreError
from elastic_recheck.storage.sqlite import LEDGER, connect, execute_script, migrate, versions
from tests.conftest import REPO

LEGACY = REPO / "tests" / "fixtures" / "legacy_sqlite"
BUILD = "b1" * 16
COLLECTED = "c1" * 16
#: The store's schema version today.
STORE = max(MIGRATIONS)
ALL_COMPONENTS = {"store": STORE, "bot_state": 1, "rechecks": 1, "signatures": 1, "collector_state": 1}


def _unpack(name: str, dest: Path) -> Path:
    path = dest / name
    path.write_bytes(gzip.decompress((LEGACY / f"{name}.gz").read_bytes()))
    return path


def _checkpoint(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()


def _snapshot(path: Path) -> dict[str, dict[str, Any]]:
    """Every table and index: its SQL, root page, rows, and the bytes of each of its pages in the file."""
    _checkpoint(path)
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    pages: dict[str, list[int]] = {}
    for name, pageno in raw.execute("SELECT name, pageno FROM dbstat ORDER BY name, pageno"):
        pages.setdefault(name, []).append(pageno)
    data = path.read_bytes()
    out: dict[str, dict[str, Any]] = {}
    for name, kind, sql, rootpage in raw.execute("SELECT name, type, sql, rootpage FROM sqlite_master").fetchall():
        rows = None
        if kind == "table" and not (sql or "").startswith("CREATE VIRTUAL"):
            rows = raw.execute(f'SELECT * FROM "{name}"').fetchall()
        out[name] = {
            "type": kind,
            "sql": sql,
            "rootpage": rootpage,
            "rows": rows,
            "pages": [data[(p - 1) * page_size:p * page_size] for p in pages.get(name, [])],
        }
    raw.close()
    return out


def _ledger(path: Path) -> list[tuple[str, int, int]]:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(f"SELECT component, version, adopted FROM {LEDGER} ORDER BY component, version").fetchall()
    finally:
        raw.close()


def _open_everything(store_path: Path) -> dict[str, Any]:
    """What today's code keeps in the store's file, each opened the way the program opens it."""
    opened: dict[str, Any] = {
        "store": EmbeddedStore(store_path),
        "bot_state": BotState(store_path),
        "rechecks": RecheckLog(store_path, create=False),
        "signatures": SignatureIndex(store_path),
        "collector_state": CollectorState(store_path),
    }
    return opened


def _close(opened: dict[str, Any]) -> None:
    for thing in opened.values():
        thing.close()


def test_todays_files_are_adopted_without_rewriting_a_table(tmp_path: Path) -> None:
    store_path = _unpack("store.sqlite3", tmp_path)
    bugs_path = _unpack("bugs.sqlite3", tmp_path)
    before = _snapshot(store_path)
    bugs_before = _snapshot(bugs_path)
    assert LEDGER not in before and "schema_migrations" in before

    opened = _open_everything(store_path)
    try:
        # every component reads what the old code wrote
        assert opened["store"].count_documents() == 3
        assert opened["store"].failed_tests(BUILD) == {"tempest.api.test_one"}
        assert [p.key for p in opened["bot_state"].pending()] == ["k1"]
        assert opened["bot_state"].sending("k0", "gerrit") is not None
        assert [m[2] for m in opened["bot_state"].irc_pending()] == ["notice one"]
        year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
        assert [(r.change, r.author) for r in opened["rechecks"].between(*year)] == [("1001", "alice"), ("1002", "bob")]
        sig = opened["signatures"].get(BUILD)
        assert sig is not None and sig.tests == ("tempest.api.test_one",)
        assert opened["signatures"].covered() is not None
        row = opened["collector_state"].get(COLLECTED)
        assert row is not None and (row.status, row.documents) == ("done", 3)
    finally:
        _close(opened)
    cache = BugCache(bugs_path)
    try:
        info, _ = cache.load("launchpad", ["1234567"])["1234567"]
        assert info.title == "tempest times out"
    finally:
        cache.close()

    # adopted at the versions the files hold: recorded, nothing ran
    assert _ledger(store_path) == [
        ("bot_state", 1, 1), ("collector_state", 1, 1), ("rechecks", 1, 1),
        ("signatures", 1, 1), ("store", 1, 1), ("store", 2, 1), ("store", 3, 0), ("store", 4, 0),
        ("store", 5, 0),
    ]
    assert _ledger(bugs_path) == [("bug_cache", 1, 1)]
    # the only new objects are the ledger, the store's migration 3 table (its lines are too few
    # to train a dictionary on: none is rewritten) and migration 4's index of TEXT ids, which
    # replaces the UNIQUE one (docs is copied into its new definition, rows unchanged: these
    # documents have no id); every other table and index keeps its SQL, root page (not
    # recreated), rows and page bytes
    after = _snapshot(store_path)
    assert set(after) - set(before) == {
        LEDGER, f"sqlite_autoindex_{LEDGER}_1", "codec", "docs_text_id",
        # migration 5: build metadata once per build (shapes and kw_shape are rewritten)
        "builds", "builds_hash", "builds_uuid", "kw_build", "kw_build_by_build",
    }  # fmt: skip
    assert set(before) - set(after) == {"sqlite_autoindex_docs_1", "sqlite_autoindex_shapes_1"}
    for name, was in before.items():
        if name in ("shapes", "sqlite_autoindex_shapes_1", "shapes_build", "kw_shape", "kw_shape_by_shape"):
            continue
        if name == "schema_migrations":  # (still written for older releases: rows more, versions 3 to 5)
            assert after[name]["rows"][:-3] == was["rows"] and [r[0] for r in after[name]["rows"][-3:]] == [3, 4, 5]
            continue
        if name == "docs":
            assert after[name]["rows"] == was["rows"]
            continue
        if name == "docs_shape":  # (made again with the new docs)
            assert after[name]["sql"] == was["sql"]
            continue
        if name == "sqlite_autoindex_docs_1":
            continue
        assert after[name] == was, name
    bugs_after = _snapshot(bugs_path)
    assert set(bugs_after) - set(bugs_before) == {LEDGER, f"sqlite_autoindex_{LEDGER}_1"}
    for name, was in bugs_before.items():
        assert bugs_after[name] == was, name

    # opening again writes nothing at all
    again = _open_everything(store_path)
    _close(again)
    assert _snapshot(store_path) == after


def test_a_bot_state_older_than_some_of_its_tables_gets_them_and_keeps_the_rest(tmp_path: Path) -> None:
    path = _unpack("store.sqlite3", tmp_path)
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE irc_outbox")  # as written before the IRC journal existed
    raw.execute("DROP TABLE bot_sending")
    raw.commit()
    raw.close()
    before = _snapshot(path)
    state = BotState(path)
    try:
        assert [p.key for p in state.pending()] == ["k1"]
        assert state.irc_pending() == []
        assert state.claim_irc("k2", [("#chan", "hello")]) is not None
    finally:
        state.close()
    assert ("bot_state", 1, 0) in _ledger(path)  # migration 1 ran: it created the two missing tables
    after = _snapshot(path)
    assert {"irc_outbox", "bot_sending"} <= set(after)
    for name in ("bot_events", "bot_meta", "docs", "shapes", "rechecks"):  # (claim_irc wrote bot_reports)
        assert after[name] == before[name], name


def test_new_files_record_every_component_as_run(tmp_path: Path) -> None:
    path = tmp_path / "new" / "store.db"
    _close(_open_everything(path))
    raw = sqlite3.connect(path)
    assert versions(raw) == ALL_COMPONENTS
    assert {adopted for _c, _v, adopted in _ledger(path)} == {0}
    # the store's own ledger is still written, for older releases
    assert [v for (v,) in raw.execute("SELECT version FROM schema_migrations ORDER BY version")] == list(range(1, STORE + 1))
    raw.close()


def test_a_file_migrated_by_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    BotState(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"INSERT INTO {LEDGER} (component, version, applied_at) VALUES ('bot_state', 2, 'future')")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"created by a newer elastic-recheck \(bot_state schema 2 > 1\); upgrade"):
        BotState(path)
    RecheckLog(path).close()  # other components of the file are not concerned


def test_a_read_only_file_from_before_the_ledger_is_read_as_it_is(tmp_path: Path) -> None:
    path = _unpack("store.sqlite3", tmp_path)
    _checkpoint(path)
    data = path.read_bytes()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        from elastic_recheck.adapters.sqlite.rechecks import SCHEMA as RECHECKS

        assert migrate(conn, RECHECKS, path) == 1
        assert conn.execute("SELECT COUNT(*) FROM rechecks").fetchone()[0] == 2
    finally:
        conn.close()
    assert path.read_bytes() == data


def test_several_openers_at_once_record_each_version_once(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    legacy = _unpack("store.sqlite3", tmp_path)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_state(path: Path) -> None:
        try:
            barrier.wait()
            BotState(path).close()
            RecheckLog(path).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_state, args=(p,)) for p in [fresh, legacy] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _ledger(fresh) == [("bot_state", 1, 0), ("rechecks", 1, 0)]
    assert [r for r in _ledger(legacy) if r[0] in ("bot_state", "rechecks")] == [("bot_state", 1, 1), ("rechecks", 1, 1)]


def test_execute_script_keeps_triggers_and_strings_whole(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.db")
    conn.execute("BEGIN IMMEDIATE")
    execute_script(conn, """
        CREATE TABLE t (a TEXT); CREATE TABLE log (a TEXT);
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('saw; ' || NEW.a); END;
        INSERT INTO t VALUES ('x;y');
    """)
    assert conn.in_transaction  # still the caller's transaction
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    with pytest.raises(ValueError, match="incomplete"):
        execute_script(conn, "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;")
    conn.close()


# ---------------------------------------------------------------------------
# A migration interrupted halfway: the kind issue 19 adds to the store (a
# builds table, compressed text), on the store file as today's users have it,
# as the store's next version (STORE + 1).

_NEXT_MIGRATION = '''
import sqlite3, sys, time
from elastic_recheck.storage.sqlite import Schema, connect, migrate

def applied(conn):
    raise AssertionError("the versions before are in the ledger already")

def builds_and_packed_text(conn):
    conn.execute("CREATE TABLE build_list (uuid TEXT PRIMARY KEY, status TEXT)")
    conn.execute("INSERT INTO build_list SELECT DISTINCT build_uuid, build_status FROM builds")
    conn.execute("ALTER TABLE docs ADD COLUMN packed BLOB")
    conn.execute("UPDATE docs SET packed = CAST(body AS BLOB)")
    conn.execute("CREATE TABLE packed_text (id INTEGER PRIMARY KEY, z BLOB)")
    conn.execute("INSERT INTO packed_text (z) SELECT randomblob(1000) FROM generate_series")
    if MODE == "halt":
        print("halfway", flush=True)
        time.sleep(600)
    if MODE == "raise":
        raise RuntimeError("injected failure between two statements")
    conn.execute("CREATE INDEX docs_packed ON docs (packed)")

path, MODE = sys.argv[1], sys.argv[2]
conn = connect(path, pragmas=("cache_size=20",))  # a small cache: the migration's pages spill to the WAL
conn.execute("CREATE TEMP TABLE generate_series AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) SELECT i FROM n")
print(migrate(conn, Schema("store", [applied] * int(sys.argv[3]) + [builds_and_packed_text], legacy_ledger="schema_migrations"), path))
'''


def _run_next_migration(path: Path, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", _NEXT_MIGRATION, str(path), mode, str(STORE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def _assert_still_today_s_version(path: Path, before: dict[str, dict[str, Any]]) -> None:
    with EmbeddedStore(path) as store:  # today's store opens it: nothing newer was recorded
        assert store.integrity_check() == []
        assert store.count_documents() == 3
    after = _snapshot(path)
    assert not {"build_list", "packed_text", "docs_packed"} & set(after)
    for name, was in before.items():
        assert after[name]["rows"] == was["rows"], name
        assert after[name]["sql"] == was["sql"], name  # docs has no `packed` column
    raw = sqlite3.connect(path)
    assert versions(raw)["store"] == STORE
    assert max(v for (v,) in raw.execute("SELECT version FROM schema_migrations")) == STORE
    raw.close()


def _assert_completes(path: Path) -> None:
    done = _run_next_migration(path, "go")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert out.strip() == str(STORE + 1)
    raw = sqlite3.connect(path)
    assert versions(raw)["store"] == STORE + 1
    assert raw.execute("SELECT uuid, status FROM build_list").fetchall() == [(BUILD, "FAILURE")]
    assert raw.execute("SELECT COUNT(*) FROM docs WHERE packed = CAST(body AS BLOB)").fetchone()[0] == 3
    assert raw.execute("SELECT COUNT(*) FROM packed_text").fetchone()[0] == 3000
    assert max(v for (v,) in raw.execute("SELECT version FROM schema_migrations")) == STORE + 1
    raw.close()
    with pytest.raises(StoreError, match=rf"newer elastic-recheck \(schema {STORE + 1} > {STORE}\)"):
        EmbeddedStore(path)  # this release refuses what a newer one migrated


@pytest.mark.timeout(300)
def test_a_migration_killed_halfway_leaves_the_previous_version_then_completes(tmp_path: Path) -> None:
    path = _unpack("store.sqlite3", tmp_path)
    EmbeddedStore(path).close()  # adopted at version 2, migrated to today's (STORE)
    before = _snapshot(path)
    proc = _run_next_migration(path, "halt")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "halfway", proc.stderr.read() if proc.stderr else ""
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 1_000_000  # the half-done migration's pages are on disk, uncommitted
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _assert_still_today_s_version(path, before)
    _assert_completes(path)


@pytest.mark.timeout(300)
def test_a_migration_failing_between_two_statements_is_rolled_back_then_completes(tmp_path: Path) -> None:
    path = _unpack("store.sqlite3", tmp_path)
    EmbeddedStore(path).close()
    before = _snapshot(path)
    proc = _run_next_migration(path, "raise")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "injected failure between two statements" in err
    _assert_still_today_s_version(path, before)
    _assert_completes(path)


def test_files_that_cannot_be_opened_are_one_line_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(StoreError, match=r"a-file/state\.db: cannot open bot state: .*File exists"):
        BotState(blocker / "state.db")
    with pytest.raises(StoreError, match=r"cannot open the collector state: .*File exists"):
        CollectorState(blocker / "state.db")
    with pytest.raises(StoreError, match=r"a-file: cannot open the bug cache: file is not a database"):
        BugCache(blocker)
    with pytest.raises(StoreError, match=r"a-file: cannot open the recheck log: file is not a database"):
        RecheckLog(blocker, create=False)
    assert blocker.read_text() == "not a directory\n"

"""Classifier semantics on a real embedded store: voting, suppress-notification, test_ids, one round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.classify import BuildRef, Classifier
from elastic_recheck.core.fingerprints import parse_fingerprint

LINE = "ERROR nova.compute.manager libvirt.libvirtError: End of file while reading data"


def _doc(uuid: str, voting: int, n: int) -> dict[str, Any]:
    return {
        "id": f"{uuid[:4]}-{n}", "message": LINE if n == 0 else f"INFO all good {n}", "tags": ["screen-n-cpu.txt", "screen"],
        "filename": "controller/logs/screen-n-cpu.txt", "build_uuid": uuid, "build_short_uuid": uuid[:7],
        "build_change": "900001", "build_patchset": "2", "build_name": "tempest-full", "build_status": "FAILURE",
        "voting": voting, "log_url": f"https://logs.example.org/{uuid[:7]}/", "@timestamp": f"2026-11-10T10:00:0{n}Z",
    }


VOTING, NONVOTING, TESTFAIL = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "store.db")
    s.add_documents([_doc(u, v, n) for u, v in ((VOTING, 1), (NONVOTING, 0), (TESTFAIL, 1)) for n in range(3)])
    s.record_test_results(VOTING, [("tempest.api.compute.test_servers.test_create", "success")])
    s.record_test_results(TESTFAIL, [("tempest.api.compute.test_servers.test_create", "fail")])
    return s


def _fp(bug: str, extra: str = "") -> Any:
    text = f'query: message:"End of file while reading data" AND tags:"screen-n-cpu.txt"\n{extra}'
    return parse_fingerprint(text, f"queries/{bug}.yaml")


class CountingBackend:
    """Delegates to the real store and counts round trips (no behaviour replaced)."""

    def __init__(self, inner: EmbeddedStore) -> None:
        self.inner = inner
        self.msearch_calls = 0

    def msearch(self, specs: Any, size: int = 1) -> Any:
        self.msearch_calls += 1
        return self.inner.msearch(specs, size=size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_semantics_of_the_original_tool(store: EmbeddedStore) -> None:
    fps = [
        _fp("1000001"),
        _fp("1000002", "allow-nonvoting: true\n"),
        _fp("1000003", "suppress-notification: true\n"),
        _fp("1000004", "test_ids:\n  - tempest.api.compute.test_servers.test_create\n"),
    ]
    backend = CountingBackend(store)
    classifier = Classifier(backend, fps)  # type: ignore[arg-type]

    voting = classifier.classify(BuildRef(uuid=VOTING))
    assert voting.bugs == ["1000001", "1000002", "1000003"]  # test 1000004's test passed here
    assert voting.notify_bugs == ["1000001", "1000002"]
    assert backend.msearch_calls == 1, "all fingerprints in one round trip"
    m = voting.matches[0]
    assert m.line == LINE and m.file == "controller/logs/screen-n-cpu.txt"
    assert m.log_url == f"https://logs.example.org/{VOTING[:7]}/controller/logs/screen-n-cpu.txt"

    nonvoting = classifier.classify(BuildRef(uuid=NONVOTING))
    assert nonvoting.bugs == ["1000002"]  # only allow-nonvoting counts on a non-voting job

    failed_test = classifier.classify(BuildRef(uuid=TESTFAIL))
    assert failed_test.bugs == ["1000001", "1000002", "1000003", "1000004"]


def test_short_uuid_with_change_and_patchset(store: EmbeddedStore) -> None:
    classifier = Classifier(store, [_fp("1000001")])
    res = classifier.classify(BuildRef(short_uuid=VOTING[:7], change="900001", patchset="2"))
    assert res.bugs == ["1000001"] and res.build.uuid == VOTING
    assert classifier.classify(BuildRef(short_uuid=VOTING[:7], change="900002", patchset="2")).error


def test_a_fingerprint_rejected_by_the_backend_does_not_hide_the_others(store: EmbeddedStore) -> None:
    good = _fp("1000001")
    bad = good.__class__(bug="1000009", query='message:"unterminated', ast=None)
    res = Classifier(store, [bad, good]).classify(BuildRef(uuid=VOTING))
    assert res.bugs == ["1000001"]
    assert "1000009" in res.query_errors


SUBUNIT2SQL_SCHEMA = [
    "CREATE TABLE tests (id VARCHAR(36) PRIMARY KEY, test_id VARCHAR(256), run_count INT, success INT, failure INT)",
    "CREATE TABLE runs (id VARCHAR(36) PRIMARY KEY, skips INT, fails INT, passes INT, run_time FLOAT, artifacts TEXT)",
    "CREATE TABLE test_runs (id VARCHAR(36) PRIMARY KEY, test_id VARCHAR(36), run_id VARCHAR(36), status VARCHAR(256), "
    "start_time DATETIME, stop_time DATETIME)",
    "CREATE TABLE run_metadata (id VARCHAR(36) PRIMARY KEY, {key} VARCHAR(255), value VARCHAR(255), run_id VARCHAR(36))",
    "INSERT INTO tests VALUES ('t1', 'tempest.api.compute.test_servers.test_create', 2, 1, 1)",
    "INSERT INTO tests VALUES ('t2', 'tempest.api.volume.test_volumes.test_attach', 2, 2, 0)",
    "INSERT INTO runs VALUES ('r1', 0, 1, 1, 10.0, NULL), ('r2', 0, 0, 2, 10.0, NULL)",
    "INSERT INTO test_runs VALUES ('x1', 't1', 'r1', 'fail', NULL, NULL), ('x2', 't2', 'r1', 'success', NULL, NULL), "
    "('x3', 't1', 'r2', 'success', NULL, NULL), ('x4', 't2', 'r2', 'success', NULL, NULL)",
    "INSERT INTO run_metadata VALUES ('m1', 'build_uuid', 'dddddddddddddddddddddddddddddddd', 'r1'), "
    "('m2', 'build_uuid', 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', 'r2')",
]


def _fill_subunit2sql(conn: Any, key: str) -> None:
    """A database in subunit2sql's schema (the tables and columns the adapter reads)."""
    cur = conn.cursor()
    for table in ("run_metadata", "test_runs", "runs", "tests"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in SUBUNIT2SQL_SCHEMA:
        cur.execute(statement.format(key=key))
    conn.commit()


def _subunit2sql_db(path: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(path)
    _fill_subunit2sql(conn, '"key"')
    conn.close()
    return f"sqlite:///{path}"


def _check_subunit2sql_source(uri: str) -> None:
    from elastic_recheck.adapters.subunit2sql.results import Subunit2SqlSource

    db = Subunit2SqlSource(uri)
    assert db.failed_tests("d" * 32) == {"tempest.api.compute.test_servers.test_create"}
    assert db.failed_tests("e" * 32) == set()  # known run, nothing failed
    assert db.failed_tests("f" * 32) is None  # unknown build


MYSQL_ENV = "ELASTIC_RECHECK_TEST_MYSQL_URI"


def test_subunit2sql_over_mysql() -> None:
    """The MySQL path against a real server (subunit2sql's production database
    is MySQL): ``ELASTIC_RECHECK_TEST_MYSQL_URI=mysql+pymysql://user:pass@host/db``
    names a scratch database whose four subunit2sql tables this test replaces."""
    import os
    from urllib.parse import unquote, urlsplit

    uri = os.environ.get(MYSQL_ENV)
    if not uri:
        pytest.skip(f"no MySQL server: set {MYSQL_ENV} to run the subunit2sql MySQL path (docs/testing.md)")
    pymysql = pytest.importorskip("pymysql", reason="pymysql is needed for the MySQL path")
    parts = urlsplit(uri)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or ""),
                           password=unquote(parts.password or ""), database=parts.path.lstrip("/"))
    try:
        _fill_subunit2sql(conn, "`key`")
    finally:
        conn.close()
    _check_subunit2sql_source(uri)
    from elastic_recheck.adapters.subunit2sql.results import Subunit2SqlSource
    from elastic_recheck.core.errors import BackendError

    wrong = uri.replace(f":{parts.password}@", ":Wrong-Secret-42@")
    with pytest.raises(BackendError) as err:
        Subunit2SqlSource(wrong).failed_tests("d" * 32)
    assert "Wrong-Secret-42" not in str(err.value) and "***" in str(err.value)


def test_subunit2sql_database_is_a_second_source_of_failed_tests(tmp_path: Path) -> None:
    from elastic_recheck.adapters.subunit2sql.results import test_results_from_config

    uri = _subunit2sql_db(tmp_path / "subunit2sql.db")
    _check_subunit2sql_source(uri)
    store = EmbeddedStore(tmp_path / "store.db")
    store.add_documents([_doc(u, 1, n) for u in ("d" * 32, "e" * 32) for n in range(2)])  # no subunit ingested
    fp = _fp("1000004", "test_ids:\n  - tempest.api.compute.test_servers.test_create\n")
    classifier = Classifier(store, [fp], test_results=test_results_from_config(store, uri))
    assert classifier.classify(BuildRef(uuid="d" * 32)).bugs == ["1000004"]
    assert classifier.classify(BuildRef(uuid="e" * 32)).bugs == []
    assert Classifier(store, [fp]).classify(BuildRef(uuid="d" * 32)).bugs == []  # without the database: unknown


def test_subunit2sql_uri_errors_are_clear_and_redacted() -> None:
    from elastic_recheck.adapters.subunit2sql.results import Subunit2SqlSource
    from elastic_recheck.core.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Subunit2SqlSource("postgresql://query:s3cret@db.example.org/subunit2sql")
    assert "s3cret" not in str(info.value) and "unsupported" in str(info.value)

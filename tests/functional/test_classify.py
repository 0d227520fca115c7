"""Classifier semantics on a real embedded store: voting, suppress-notification, test_ids, one round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.classify import BuildRef, Classifier
from elastic_recheck.fingerprints import parse_fingerprint
from elastic_recheck.search.embedded import EmbeddedStore

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

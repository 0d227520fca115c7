"""``elastic-recheck prune``: old builds leave the store whole, the rest answers as before, the file shrinks."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite import retention
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.search_types import Filters, QuerySpec

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-11-20T00:00:00Z"


@pytest.fixture
def store_path(sample_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    for src in sample_store.parent.glob(sample_store.name + "*"):
        shutil.copy(src, tmp_path / src.name.replace(sample_store.name, "store.db"))
    return path


def _run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--store", str(path), "prune", *args])
    return result.exit_code, result.output


def _queries() -> list[str]:
    return [fp.query for fp in load_fingerprints(REPO / "queries").fingerprints]


def _hits(store: EmbeddedStore, query: str) -> set[str]:
    return {h.id for h in store.search(QuerySpec(queries=(query,)), size=100_000).hits}


def _free_pages(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        conn.close()


def _orphans(path: Path) -> tuple[int, int, int]:
    """Keyword rows of no line; shapes of no line; rows of no shape or build, builds of no shape."""
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("SELECT COUNT(*) FROM kw WHERE doc NOT IN (SELECT id FROM docs)").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM shapes WHERE id NOT IN (SELECT shape FROM docs)").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM kw_shape WHERE shape NOT IN (SELECT id FROM shapes)").fetchone()[0]
            + conn.execute("SELECT COUNT(*) FROM kw_build WHERE build NOT IN (SELECT id FROM builds)").fetchone()[0]
            + conn.execute("SELECT COUNT(*) FROM builds WHERE id NOT IN (SELECT build FROM shapes)").fetchone()[0],
        )
    finally:
        conn.close()


def test_prune_drops_whole_old_builds_and_keeps_answers(store_path: Path) -> None:
    store = EmbeddedStore(store_path)
    before = store.builds()
    docs_before = store.count_documents()
    size_before = store.file_size()
    # A cutoff inside one build: it straddles, and stays whole.
    ordered = sorted(before, key=lambda b: b.last_seen or datetime.min.replace(tzinfo=UTC))
    straddler = next(b for b in ordered[len(ordered) // 3 :] if b.first_seen and b.last_seen and b.first_seen < b.last_seen)
    assert straddler.first_seen is not None
    cutoff = straddler.first_seen + timedelta(milliseconds=1)
    gone = {b.uuid for b in before if b.last_seen is not None and b.last_seen < cutoff}
    kept = [b for b in before if b.uuid not in gone]
    assert gone and kept and straddler.uuid not in gone
    hits_before = {q: _hits(store, q) for q in _queries()}
    kept_ids = {h.id for b in kept for h in store.search(QuerySpec(filters=Filters(build_uuid=b.uuid)), size=100_000).hits}
    store.close()

    age = f"{(datetime.fromisoformat(NOW.replace('Z', '+00:00')) - cutoff).total_seconds()}s"
    code, out = _run(store_path, "--older-than", age, "--now", NOW, "--dry-run")
    assert code == 0, out
    lines_gone = docs_before - sum(b.docs for b in kept)
    assert out.startswith(f"would prune {len(gone):,} builds ({lines_gone:,} lines) whose newest line is older than ")
    check = EmbeddedStore(store_path)
    assert check.count_documents() == docs_before  # a dry run changes nothing
    check.close()

    code, out = _run(store_path, "--older-than", age, "--now", NOW)
    assert code == 0, out
    assert out.startswith(f"pruned {len(gone):,} builds ({lines_gone:,} lines) whose newest line is older than ")
    assert out.rstrip().endswith("(incremental)")  # a store created since schema 5 is in auto-vacuum mode

    store = EmbeddedStore(store_path)
    after = store.builds()
    assert [(b.uuid, b.docs, b.first_seen, b.last_seen) for b in after] == [(b.uuid, b.docs, b.first_seen, b.last_seen) for b in kept]
    assert store.count_documents() == docs_before - lines_gone
    for query, hits in hits_before.items():
        assert _hits(store, query) == hits & kept_ids, query
    assert store.file_size() < size_before and _free_pages(store_path) == 0
    assert store.integrity_check() == []
    store.close()
    assert _orphans(store_path) == (0, 0, 0)


def test_an_older_store_is_vacuumed_once_then_frees_pages_in_place(store_path: Path) -> None:
    conn = sqlite3.connect(store_path)  # as a store created before schema 5 is: no auto-vacuum
    conn.execute("PRAGMA auto_vacuum=NONE")
    conn.execute("VACUUM")
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    conn.close()
    code, out = _run(store_path, "--older-than", "8d", "--now", NOW)
    assert code == 0 and out.rstrip().endswith("(vacuum)"), out
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental from now on
    conn.close()
    store = EmbeddedStore(store_path)
    size, docs = store.file_size(), store.count_documents()
    store.close()
    code, out = _run(store_path, "--older-than", "5d", "--now", NOW)
    assert code == 0 and out.rstrip().endswith("(incremental)"), out
    assert _free_pages(store_path) == 0  # every page of the deleted rows went back
    store = EmbeddedStore(store_path)
    assert store.count_documents() < docs and store.file_size() < size
    assert store.integrity_check() == []
    store.close()
    assert _orphans(store_path) == (0, 0, 0)


def test_nothing_old_enough_changes_nothing(store_path: Path) -> None:
    code, out = _run(store_path, "--older-than", "30d", "--now", NOW)
    assert code == 0
    assert out.startswith("pruned 0 builds (0 lines)") and "(vacuum)" not in out


@pytest.mark.parametrize("age", ["yesterday", "10x", ""])
def test_a_bad_age_is_one_line(store_path: Path, age: str) -> None:
    code, out = _run(store_path, "--older-than", age)
    assert code == 2
    assert "--older-than" in out and "Traceback" not in out


def test_a_build_that_got_a_new_line_stays(store_path: Path) -> None:
    store = EmbeddedStore(store_path)
    cutoff = datetime(2026, 11, 12, tzinfo=UTC)
    plan = retention.plan_prune(store, cutoff)
    late_uuid = plan.builds[0][0]
    doc = store.search(QuerySpec(filters=Filters(build_uuid=late_uuid)), size=1).hits[0].source
    store.add_documents([{**doc, "id": "late-line", "@timestamp": "2026-11-19T00:00:00.000Z", "message": "a late line"}])
    store.record_test_results(plan.builds[1][0], [("tempest.a", "fail")])
    result = retention.prune(store, plan)
    assert result.builds == len(plan.builds) - 1
    assert store.count_builds(QuerySpec(filters=Filters(build_uuid=late_uuid))) == 1
    assert store.failed_tests(plan.builds[1][0]) is None  # its test results went with it
    store.close()


def test_lines_of_no_build_go_by_their_own_time(store_path: Path) -> None:
    store = EmbeddedStore(store_path)
    store.add_documents(
        [
            {"id": "old", "@timestamp": "2026-11-01T00:00:00Z", "message": "loose old line", "tags": ["x"]},
            {"id": "new", "@timestamp": "2026-11-19T00:00:00Z", "message": "loose new line", "tags": ["x"]},
        ]
    )
    plan = retention.plan_prune(store, datetime(2026, 11, 10, tzinfo=UTC))
    assert plan.loose_lines == 1 and plan.builds == []
    result = retention.prune(store, plan)
    assert result.loose_lines == 1
    assert {h.id for h in store.search(QuerySpec(queries=("message:loose",)), size=10).hits} == {"new"}
    store.close()


def test_a_pruned_build_can_be_ingested_again(store_path: Path) -> None:
    store = EmbeddedStore(store_path)
    plan = retention.plan_prune(store, datetime(2026, 11, 11, tzinfo=UTC))
    uuid, lines, _ = plan.builds[-1]
    docs = [h.source for h in store.search(QuerySpec(filters=Filters(build_uuid=uuid)), size=100_000).hits]
    retention.prune(store, plan)
    assert store.count_builds(QuerySpec(filters=Filters(build_uuid=uuid))) == 0
    store.add_documents(docs)
    again = store.search(QuerySpec(filters=Filters(build_uuid=uuid, build_status=docs[0]["build_status"])), size=100_000)
    assert again.total == lines
    store.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10d", datetime(2026, 11, 10, tzinfo=UTC)),
        ("-10d", datetime(2026, 11, 10, tzinfo=UTC)),
        ("36h", datetime(2026, 11, 18, 12, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 6, tzinfo=UTC)),
        ("3", datetime(2026, 11, 17, tzinfo=UTC)),
        ("2026-11-15T06:00:00Z", datetime(2026, 11, 15, 6, tzinfo=UTC)),
        ("1794700800", datetime.fromtimestamp(1794700800, tz=UTC)),
    ],
)
def test_age_forms(text: str, expected: datetime) -> None:
    from elastic_recheck.core.timestamps import parse_cutoff

    assert parse_cutoff(text, datetime(2026, 11, 20, tzinfo=UTC)) == expected


def test_progress_counts_up_to_every_listed_build(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CHUNK_LINES", 500)  # several transactions on the small store
    store = EmbeddedStore(store_path)
    plan = retention.plan_prune(store, datetime(2026, 11, 12, tzinfo=UTC))
    calls: list[tuple[int, int, int]] = []
    result = retention.prune(store, plan, progress=lambda *a: calls.append(a))
    store.close()
    assert len(calls) > 2
    assert [c[0] for c in calls] == sorted({c[0] for c in calls})  # strictly increasing
    assert all(c[1] == len(plan.builds) for c in calls)
    assert calls[-1] == (len(plan.builds), len(plan.builds), plan.lines) == (result.builds, len(plan.builds), result.lines)


def test_prune_drops_the_failure_signatures_of_pruned_builds(store_path: Path) -> None:
    """The signatures kept in the store's file age out with the builds (and the backfill's span with them)."""
    from elastic_recheck.adapters.sqlite.signatures import SignatureIndex
    from elastic_recheck.core.search_types import BuildSummary
    from elastic_recheck.core.signatures import FailureSignature

    store = EmbeddedStore(store_path)
    builds = sorted((b for b in store.builds() if b.last_seen), key=lambda b: b.last_seen or datetime.min)
    store.close()
    middle = builds[len(builds) // 2]
    assert middle.last_seen is not None
    cutoff = middle.last_seen + timedelta(seconds=1)
    old = [b for b in builds if b.last_seen is not None and b.last_seen < cutoff]
    new = [b for b in builds if b.last_seen is not None and b.last_seen >= cutoff]
    assert old and new
    index = SignatureIndex(store_path)
    sig = FailureSignature(lines=("ERROR boom",))
    index.put_many((BuildSummary(b.uuid, b.fields, b.first_seen, b.last_seen), sig) for b in old + new)
    first = builds[0].last_seen
    assert first is not None
    index.set_covered(first.timestamp(), builds[-1].last_seen.timestamp() if builds[-1].last_seen else 0.0)
    index.close()

    code, out = _run(store_path, "--older-than", cutoff.isoformat(), "--now", NOW)
    assert code == 0, out

    index = SignatureIndex(store_path)
    kept = index.known([b.uuid for b in old + new])
    covered = index.covered()
    index.close()
    assert kept == {b.uuid for b in new}
    assert covered is not None and covered[0] == cutoff.timestamp()


def test_prune_without_a_signature_index_beside_a_separate_file(store_path: Path, tmp_path: Path) -> None:
    """A configured signature index that does not exist yet is not created by prune."""
    missing = tmp_path / "elsewhere" / "signatures.db"
    config = tmp_path / "er.conf"
    config.write_text(f"[data_source]\nsignature_index = {missing}\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "--store", str(store_path), "prune", "--older-than", "1d", "--now", NOW])
    assert result.exit_code == 0, result.output
    assert not missing.exists()

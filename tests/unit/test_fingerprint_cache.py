"""The on-disk cache of parsed fingerprints: same results, never stale, damage ignored."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from elastic_recheck.core import fingerprint_cache
from elastic_recheck.core.fingerprint_cache import FingerprintCache
from elastic_recheck.core.fingerprint_loading import LoadResult, load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene import parser as lucene
from elastic_recheck.core.schema import DEFAULT_MAPPING

QUERIES = {
    "1000001.yaml": 'query: >-\n  message:"Timed out waiting for a reply" AND\n  tags:"screen-n-cpu.txt"\nbug_title: Timeouts\n',
    "1000002.yaml": "query: message:libvirtError AND build_status:FAILURE\nsuppress-graph: true\ntest_ids: [tempest.a]\n",
    "1000003.yaml": "query: 'message:/conn[a-z]+ion/ AND NOT message:fine~1'\nresolved_at: 2026-11-01\nprojects: [openstack/nova]\n",
    "1000004.yaml": "query: \"message:(ssh OR \\\"via SSH\\\") \"\nodd-key: 1\n",
}


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    qdir = tmp_path / "queries"
    qdir.mkdir()
    for name, text in QUERIES.items():
        (qdir / name).write_text(text, encoding="utf-8")
    (qdir / "9999999.yaml").write_text("query: 'message:\"unclosed'\n", encoding="utf-8")  # a bad file
    return qdir


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("ELASTIC_RECHECK_CACHE_DIR", str(path))
    return path


def _state(result: LoadResult) -> list[tuple[Fingerprint, object, tuple[str, ...]]]:
    return [(fp, fp.ast, fp.warnings) for fp in result.fingerprints]


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "fingerprints").glob("*.pickle"))


def _hits(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("fingerprints: ")]


def test_a_cached_load_equals_a_fresh_parse(queries: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="elastic_recheck.core")
    first = load_fingerprints(queries)
    assert len(_cache_files(cache_dir)) == 1
    second = load_fingerprints(queries)
    assert _hits(caplog) == ["fingerprints: 0 from the cache, 4 parsed", "fingerprints: 4 from the cache, 0 parsed"]
    monkeypatch.setenv("ELASTIC_RECHECK_CACHE_DIR", "off")
    fresh = load_fingerprints(queries)
    assert _state(first) == _state(second) == _state(fresh)
    assert [fp.path for fp in second.fingerprints] == sorted(queries / n for n in QUERIES)
    # the bad file is not cached: it is parsed, and reported, every time
    assert [e.path for e in second.errors] == [str(queries / "9999999.yaml")]
    assert second.warnings == fresh.warnings and len(fresh.warnings) == 1


def test_a_cached_fingerprint_logs_its_warnings_again(queries: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_fingerprints(queries)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.core"):
        load_fingerprints(queries)
    assert any("unknown key 'odd-key'" in r.getMessage() and "1000004.yaml" in r.getMessage() for r in caplog.records)


def test_an_edited_file_is_parsed_again(queries: Path, cache_dir: Path) -> None:
    load_fingerprints(queries)
    target = queries / "1000002.yaml"
    stat = target.stat()
    text = QUERIES["1000002.yaml"].replace("libvirtError", "libvirtErrer")  # same size
    target.write_text(text, encoding="utf-8")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime too
    result = load_fingerprints(queries)
    fp = next(f for f in result.fingerprints if f.bug == "1000002")
    assert fp.query == "message:libvirtErrer AND build_status:FAILURE"
    assert fp.ast == lucene.parse(fp.query)


def test_a_renamed_file_keeps_its_own_name(queries: Path, cache_dir: Path) -> None:
    load_fingerprints(queries)
    (queries / "1000001.yaml").rename(queries / "1000009.yaml")
    result = load_fingerprints(queries)
    assert "1000009" in [fp.bug for fp in result.fingerprints]
    assert "1000001" not in [fp.bug for fp in result.fingerprints]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # torn
        lambda p: p.write_bytes(b"not a pickle at all"),
        lambda p: p.write_bytes(pickle.dumps({"x": ("not", "entries")})),
        lambda p: p.write_bytes(b""),
    ],
    ids=["truncated", "garbage", "foreign-pickle", "empty"],
)
def test_a_damaged_cache_is_ignored_and_replaced(queries: Path, cache_dir: Path, damage: object, monkeypatch: pytest.MonkeyPatch) -> None:
    load_fingerprints(queries)
    (file,) = _cache_files(cache_dir)
    damage(file)  # type: ignore[operator]
    result = load_fingerprints(queries)
    monkeypatch.setenv("ELASTIC_RECHECK_CACHE_DIR", "off")
    assert _state(result) == _state(load_fingerprints(queries))
    # rewritten whole: the next load reads every entry back
    cache = FingerprintCache(file, DEFAULT_MAPPING, True)
    assert len(cache._old) == len(QUERIES)


class _Planted:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(Path(os.environ["ELASTIC_RECHECK_CACHE_DIR"]) / "pwned"),))


def test_a_planted_pickle_is_not_run(queries: Path, cache_dir: Path) -> None:
    load_fingerprints(queries)
    (file,) = _cache_files(cache_dir)
    file.write_bytes(pickle.dumps({"k": _Planted()}))
    result = load_fingerprints(queries)
    assert not (cache_dir / "pwned").exists()
    assert len(result.fingerprints) == len(QUERIES)


def test_another_parser_version_does_not_see_the_entries(queries: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_fingerprints(queries)
    monkeypatch.setattr(fingerprint_cache, "parser_version", lambda: "another parser")
    other = FingerprintCache.open([queries], DEFAULT_MAPPING, True)
    assert other.file not in _cache_files(cache_dir) and other._old == {}
    # nor does another query mode
    assert FingerprintCache.open([queries], DEFAULT_MAPPING, False).file != FingerprintCache.open([queries], DEFAULT_MAPPING, True).file


def test_the_version_covers_every_module_a_parse_runs() -> None:
    import sys

    from elastic_recheck.core import fingerprints

    fingerprints.parse_fingerprint("query: 'message:/a[bc]+/ AND tags:x* AND message:\"a b\"~2'\n", "1.yaml")
    ran = {Path(m.__file__).resolve() for name, m in sys.modules.items() if name.startswith("elastic_recheck") and getattr(m, "__file__", None)}
    assert ran <= set(fingerprint_cache.parser_sources())
    assert fingerprint_cache.parser_version() is not None


def test_concurrent_writers_leave_one_whole_file(queries: Path, cache_dir: Path) -> None:
    a = FingerprintCache.open([queries], DEFAULT_MAPPING, True)
    b = FingerprintCache.open([queries], DEFAULT_MAPPING, True)
    good = load_fingerprints(queries)  # a third writer, first to finish
    for cache, fp in ((a, good.fingerprints[0]), (b, good.fingerprints[1])):
        assert fp.path is not None
        cache.put(fp.path, fp.path.read_text(encoding="utf-8"), fp)
    a.save()
    b.save()
    (file,) = _cache_files(cache_dir)
    assert list(file.parent.iterdir()) == [file]  # no temporary file left behind
    assert [e[0] for e in FingerprintCache(file, DEFAULT_MAPPING, True)._old.values()] == [good.fingerprints[1]]
    assert _state(load_fingerprints(queries)) == _state(good)


def test_an_unwritable_cache_only_costs_the_parse(queries: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ELASTIC_RECHECK_CACHE_DIR", str(blocker / "cache"))
    result = load_fingerprints(queries)
    assert len(result.fingerprints) == len(QUERIES)


def test_off_writes_nothing(queries: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTIC_RECHECK_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_fingerprints(queries)
    assert not (tmp_path / "xdg").exists()
    monkeypatch.delenv("ELASTIC_RECHECK_CACHE_DIR")
    load_fingerprints(queries)
    assert len(list((tmp_path / "xdg" / "elastic-recheck" / "fingerprints").glob("*.pickle"))) == 1


def test_a_hit_hands_the_stripped_query_parse_to_lucene(queries: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_fingerprints(queries)
    monkeypatch.setattr(lucene, "_REMEMBERED", {})
    result = load_fingerprints(queries)
    for fp in result.fingerprints:
        remembered = lucene._REMEMBERED[(fp.query, DEFAULT_MAPPING, True, "OR")]
        assert lucene.parse(fp.query) is remembered  # the store's parse of the spec text: no new parse
        assert remembered == lucene._parse_cached.__wrapped__(fp.query, DEFAULT_MAPPING, True, "OR")

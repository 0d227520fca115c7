"""Hostile fingerprints and remote YAML: bounded in time and memory, one bad file never stops the rest.

Regression tests for the attacks of issue 20 (fingerprint values the YAML
reader refuses, alias bombs, huge files, an alias-bomb ``inventory.yaml``).
Bounds are asserted on results and on memory (``tracemalloc`` peaks),
never on time; the timeout only stops a regression from hanging the run.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.zuul.api import parse_inventory
from elastic_recheck.cli.main import cli
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import MAX_FINGERPRINT_BYTES
from elastic_recheck.core.zuul_build import NodeInfo

pytestmark = pytest.mark.timeout(120)

GOOD = 'query: >-\n  message:"Timed out waiting for thing"\n'


def bomb(key: str, depth: int = 9) -> str:
    """A 'billion laughs' YAML document: ``key`` stands for 10**depth strings (a few hundred bytes)."""
    lines = ['query: message:"x"', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, depth):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"{key}: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def peak_mb(fn: Callable[[], Any]) -> tuple[Any, float]:
    tracemalloc.start()
    try:
        result = fn()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 1e6


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("notes: 2024-13-45", 3),
        ("resolved_at: 0000-01-01", 3),
        ("notes: !!int abc", 3),
        ("notes: " + "7" * 5000, 3),
    ],
    ids=["bad-timestamp", "year-zero", "int-tag", "5000-digits"],
)
def test_a_value_the_yaml_reader_refuses_is_one_file_error(tmp_path: Path, line: str, where: int) -> None:
    (tmp_path / "1.yaml").write_text(GOOD)
    (tmp_path / "2.yaml").write_text(GOOD + line + "\n")
    (tmp_path / "3.yaml").write_text(GOOD)
    result = load_fingerprints(tmp_path)
    assert [fp.bug for fp in result.fingerprints] == ["1", "3"]
    [error] = result.errors
    assert str(error).startswith(f"{tmp_path / '2.yaml'}:{where}:")
    assert "\n" not in str(error) and len(str(error)) < 400


@pytest.mark.parametrize("key", ["suppress-graph", "suppress-notification", "allow-nonvoting", "resolved_at", "test_ids", "projects"])
def test_alias_bombs_are_refused_with_a_short_message(tmp_path: Path, key: str) -> None:
    path = tmp_path / "5.yaml"
    path.write_text(bomb(key))
    assert path.stat().st_size < 700
    (tmp_path / "6.yaml").write_text(GOOD)
    result, peak = peak_mb(lambda: load_fingerprints(tmp_path))
    assert [fp.bug for fp in result.fingerprints] == ["6"]
    [error] = result.errors
    assert "expands to more than" in str(error)
    assert len(str(error)) < 400
    assert peak < 50, f"{peak:.0f} MB"


def test_a_small_bomb_under_the_node_bound_still_gives_a_short_message(tmp_path: Path) -> None:
    """3 levels (1,000 values) pass the expansion bound: the type error must not print them all."""
    path = tmp_path / "7.yaml"
    path.write_text(bomb("suppress-graph", depth=3))
    [error] = load_fingerprints(tmp_path).errors
    assert "'suppress-graph' must be true or false" in str(error)
    assert len(str(error)) < 400


def test_a_huge_fingerprint_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "8.yaml"
    with big.open("wb") as fh:  # 200 MB, sparse: only what is read costs memory
        fh.write(GOOD.encode())
        fh.truncate(200 * 1024 * 1024)
    (tmp_path / "9.yaml").write_text(GOOD)
    result, peak = peak_mb(lambda: load_fingerprints(tmp_path))
    assert [fp.bug for fp in result.fingerprints] == ["9"]
    [error] = result.errors
    assert f"too large: more than {MAX_FINGERPRINT_BYTES} bytes" in str(error)
    assert peak < 20, f"{peak:.0f} MB"


def test_check_queries_reports_bad_files_and_lints_the_rest(tmp_path: Path) -> None:
    (tmp_path / "1.yaml").write_text(GOOD)
    (tmp_path / "2.yaml").write_text(GOOD + "notes: 2024-13-45\n")
    (tmp_path / "3.yaml").write_text(bomb("suppress-graph"))
    result = CliRunner().invoke(cli, ["check-queries", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "internal" not in result.output
    assert f"{tmp_path / '2.yaml'}:3:" in result.output
    assert f"{tmp_path / '3.yaml'}:" in result.output
    assert len(result.output) < 4000
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_alias_bomb_inventory_is_unreadable_not_a_crash() -> None:
    text = bomb("x").replace('query: message:"x"', "all:\n  hosts:\n    node: {nodepool: {provider: *a8}}")
    # the provider refers to the bomb: 10**9 strings once expanded
    info, peak = peak_mb(lambda: parse_inventory(text))
    assert info == NodeInfo()
    assert peak < 50, f"{peak:.0f} MB"


def test_inventory_keeps_only_short_scalars() -> None:
    text = (
        "all:\n  hosts:\n    controller:\n      nodepool: {provider: [a, b], region: " + "r" * 1000 + ", host_id: abc}\n"
        "    compute1:\n      nodepool: {provider: rax-dfw}\n"
    )
    info = parse_inventory(text)
    assert info.node_provider == "rax-dfw"
    assert info.hosts_id == ("abc",)
    assert info.hosts_region == ()
    assert info.nodes == ("controller", "compute1")


def test_bomb_repr_never_reaches_a_message() -> None:
    from elastic_recheck.core.errors import short_repr

    shared: list[Any] = ["lol"] * 10
    for _ in range(8):
        shared = [shared] * 10
    assert len(short_repr(shared)) <= 120
    assert len(short_repr("x" * 10_000_000)) <= 120


# -- one long log line ------------------------------------------------------------------------


def _gzip_file(path: Path, parts: list[tuple[bytes, int]]) -> None:
    """Write ``parts`` (chunk, repeat count) gzipped, without holding the whole text."""
    import gzip

    with gzip.open(path, "wb", compresslevel=1) as fh:
        for chunk, times in parts:
            for _ in range(times):
                fh.write(chunk)


def test_a_100mb_log_line_is_truncated_in_bounded_memory(tmp_path: Path) -> None:
    from elastic_recheck.ingest.build_info import BuildInfo
    from elastic_recheck.ingest.log_lines import MAX_LINE_BYTES, documents_for_lines, open_maybe_gz, read_lines

    path = tmp_path / "job-output.txt.gz"
    _gzip_file(
        path,
        [
            (b"2024-05-06 10:00:00.000000 | controller | first\n", 1),
            (b"2024-05-06 10:00:01.000000 | controller | " + b"A" * 1024, 1),
            (b"A" * (1024 * 1024), 100),  # the same line goes on for 100 MB
            (b"\n2024-05-06 10:00:02.000000 | controller | after the long line\n", 1),
        ],
    )
    build = BuildInfo(uuid="u" * 32, name="job")

    def ingest() -> list[dict[str, Any]]:
        with open_maybe_gz(path) as fh:
            return list(documents_for_lines("job-output.txt.gz", read_lines(fh), build))

    docs, peak = peak_mb(ingest)
    assert [d["message"].split("| ")[-1][:5] for d in docs] == ["first", "AAAAA", "after"]
    assert MAX_LINE_BYTES - 100 < len(docs[1]["message"]) <= MAX_LINE_BYTES
    assert docs[2]["message"].endswith("after the long line")
    assert peak < 30, f"{peak:.0f} MB"


def test_jsonl_keeps_a_document_with_one_bad_byte_and_refuses_a_huge_line(tmp_path: Path) -> None:
    from elastic_recheck.ingest.jsonl import MAX_JSONL_LINE_BYTES, iter_jsonl
    from elastic_recheck.ports.loading import IngestStats

    path = tmp_path / "docs.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"message": "caf\xe9 ok", "build_uuid": "a"}\n')
        fh.write(b'{"message": "' + b"x" * (MAX_JSONL_LINE_BYTES + 10) + b'"}\n')
        fh.write(b'{"message": "last", "build_uuid": "b"}\n')
    stats = IngestStats()

    def read() -> list[dict[str, Any]]:
        with path.open("rb") as fh:
            return list(iter_jsonl(fh, stats))

    docs, peak = peak_mb(read)
    assert [d["message"] for d in docs] == ["caf\ufffd ok", "last"]
    assert stats.bad_lines == 1
    assert peak < 3 * MAX_JSONL_LINE_BYTES / 1e6 + 5, f"{peak:.0f} MB"


# -- smaller items ----------------------------------------------------------------------------


def test_manifest_sizes_that_are_not_finite_numbers_are_unknown_not_fatal() -> None:
    import json

    from elastic_recheck.collect.files import manifest_files

    manifest = json.loads(
        '{"tree": [{"name": "job-output.txt", "size": 1e999}, {"name": "a.txt", "size": NaN},'
        ' {"name": "b.txt", "size": -5}, {"name": "c.txt", "size": 12}, {"name": "d.txt", "size": true}]}'
    )
    assert manifest_files(manifest) == {"job-output.txt": None, "a.txt": None, "b.txt": None, "c.txt": 12, "d.txt": None}


def test_a_document_dated_9999_does_not_hide_the_indexing_lag(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.report.health import probe_backend

    store = EmbeddedStore(tmp_path / "store.db")
    try:
        store.add_documents([
            {"message": "real", "@timestamp": "2026-12-01T10:00:00Z", "build_uuid": "a"},
            {"message": "forged", "@timestamp": "9999-12-31T23:59:59Z", "build_uuid": "b"},
        ])
        probe = probe_backend(store, now=datetime(2026, 12, 7, tzinfo=UTC))
    finally:
        store.close()
    assert probe.newest_event == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "hits"),
    [
        ("message:/([a-f0-9]+)+z/", ["z"]),
        ("message:/.*.*.*.*.*.*.*.*.*.*.*.*x/", ["x"]),
        ("message:*a*a*a*a*a*b", ["b"]),
    ],
)
def test_the_store_answers_catastrophic_patterns_over_long_terms(tmp_path: Path, query: str, hits: list[str]) -> None:
    """The store's leaf predicates (search, classify, render) used Python's backtracking ``re``: > 100 s each."""
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.core.search_types import QuerySpec

    long_hex = "0a1b2c3d4e5f" * 10  # 120 characters
    store = EmbeddedStore(tmp_path / "store.db")
    try:
        store.add_documents([
            {"message": f"{long_hex}!", "build_uuid": "n", "filename": "none"},
            {"message": "a" * 120, "build_uuid": "n", "filename": "none"},
            {"message": "y" * 250, "build_uuid": "n", "filename": "none"},
            {"message": "0a1b2c3d4e5fz", "build_uuid": "z", "filename": "z"},
            {"message": "yyyyyyyyyyyyyyyyyyyyx", "build_uuid": "x", "filename": "x"},
            {"message": "xaaaaab", "build_uuid": "b", "filename": "b"},
        ])
        result = store.search(QuerySpec(queries=(query,)), size=10)
    finally:
        store.close()
    assert sorted(h.get("filename") for h in result.hits) == hits

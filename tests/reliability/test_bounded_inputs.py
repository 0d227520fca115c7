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

from elastic_recheck.cli import cli
from elastic_recheck.fingerprints import MAX_FINGERPRINT_BYTES, load_fingerprints
from elastic_recheck.zuul import NodeInfo, parse_inventory

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
    from elastic_recheck.errors import short_repr

    shared: list[Any] = ["lol"] * 10
    for _ in range(8):
        shared = [shared] * 10
    assert len(short_repr(shared)) <= 120
    assert len(short_repr("x" * 10_000_000)) <= 120

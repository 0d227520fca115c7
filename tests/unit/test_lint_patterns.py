"""check-queries: match-everything, broad and slow multi-term clauses (issue 20, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.contrib.lint import lint_search


def codes(query: str) -> list[str]:
    return [f.code for f in lint_search(query) if f.code in ("match-all", "broad-pattern", "slow-pattern")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("*:*", ["match-all"]),
        ("message:*", ["match-all"]),
        ("message:/.*/", ["match-all"]),
        ("message:/@/", ["match-all"]),
        ("message:/(.|x)*/", ["match-all"]),
        ('message:"boom" OR message:/.*/', ["match-all"]),
        ("message:a*", ["broad-pattern"]),
        ("message:/fo.*/", ["broad-pattern"]),
        ("message:/.*foo/", ["slow-pattern"]),
        ("message:/[a-z]+error/", ["slow-pattern"]),
        ("message:/[ab]*a[ab]{10}/", ["slow-pattern"]),
        ('message:"Timed out" AND NOT message:/.*/', []),  # inside NOT it excludes, it does not match
        ("message:/connection(refused|reset)/", []),
        ("message:conn*", []),
        ("build_name:a*", []),  # a keyword field: one value per line, not a token scan
    ],
)
def test_findings(query: str, expected: list[str]) -> None:
    assert codes(query) == expected


def test_the_real_fingerprints_have_none(shared_data: Path) -> None:
    result = CliRunner().invoke(cli, ["check-queries", "--no-measure", str(shared_data / "elastic-recheck-queries")])
    for code in ("match-all", "broad-pattern", "slow-pattern"):
        assert f"[{code}]" not in result.output


def test_findings_are_backed_by_the_share_of_lines_on_the_store(tmp_path: Path) -> None:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store.db")
    store.add_documents([{"message": m, "build_uuid": "u"} for m in ("alpha one", "beta two", "gamma three", "apple four")])
    store.close()
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "1.yaml").write_text("query: 'message:a*'\n")
    (queries / "2.yaml").write_text("query: '*:*'\n")
    result = CliRunner().invoke(cli, ["--store", str(tmp_path / "store.db"), "check-queries", str(queries)])
    assert "(measured on the store: 2 of 4 lines, 50.0%) [broad-pattern]" in result.output
    assert "(measured on the store: 4 of 4 lines, 100.0%) [match-all]" in result.output
    plain = CliRunner().invoke(cli, ["--store", str(tmp_path / "store.db"), "check-queries", "--no-measure", str(queries)])
    assert "measured" not in plain.output and "[match-all]" in plain.output

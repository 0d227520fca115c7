"""Differential tests: one meaning for a query on every path, and Lucene's meaning.

Three tiers (``tests/differential/``):

* the regression corpus (``regressions.json``): every disagreement ever found,
  with Lucene's answer; each path must give that answer (no Java needed);
* generated corpora (seeded, deterministic): the store, the matcher and
  percolation must agree with each other on every query, in both modes;
* ``@pytest.mark.oracle``: the same kind of corpora compared with the real
  Lucene oracle (``../shared/tools/lucene-oracle``); skipped, with the reason,
  where Java or the oracle is missing.

The CLI is checked on the issue's minimal cases: ``search --batch`` with
``--lucene-mode`` and with ``[data_source] lucene_mode``, and ``classify``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from tests.differential import oracle
from tests.differential.generate import corpus
from tests.differential.paths import BUILD, PATHS, Corpus
from tests.differential.regressions import load

MODES = ("es", "lucene")
REGRESSIONS = load()["corpora"]
#: Generated corpora compared path against path in every run (40 documents, 200 queries each).
AGREEMENT_SEEDS = range(0, 16)
#: Generated corpora compared with the oracle (one oracle run per seed and mode).
ORACLE_SEEDS = range(1000, 1006)


def _report(rows: list[dict[str, Any]]) -> str:
    head = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:10])
    return f"{len(rows)} disagreements (record them with `python -m tests.differential record`):\n{head}"


@pytest.fixture(scope="module", params=[(c["name"], m) for c in REGRESSIONS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def regression(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Corpus]]:
    name, mode = request.param
    case = next(c for c in REGRESSIONS if c["name"] == name)
    paths = Corpus(case["docs"], tmp_path_factory.mktemp("regression"), mode == "es")
    yield case, paths
    paths.close()


def test_regression_corpus_gets_lucenes_answers_on_every_path(regression: tuple[dict[str, Any], Corpus]) -> None:
    case, paths = regression
    mode = "es" if paths.es_mode else "lucene"
    queries = [c["query"] for c in case["cases"]]
    got = paths.outcomes(queries)
    wrong = [
        {"query": q, "expected": c[mode], **{p: got[p][i] for p in PATHS}}
        for i, (q, c) in enumerate(zip(queries, case["cases"], strict=True))
        if any(got[p][i] != c[mode] for p in PATHS)
    ]
    assert not wrong, _report(wrong)


def test_regression_corpus_holds_the_issue_cases() -> None:
    names = {c["name"] for c in REGRESSIONS}
    assert {"issue-21-minimal", "elasticsearch-id-metadata"} <= names
    total = sum(len(c["cases"]) for c in REGRESSIONS)
    assert total >= 400


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", AGREEMENT_SEEDS)
def test_generated_queries_mean_the_same_on_every_path(seed: int, mode: str, tmp_path: Path) -> None:
    docs, queries = corpus(seed)
    paths = Corpus(docs, tmp_path, mode == "es")
    try:
        got = paths.outcomes(queries)
    finally:
        paths.close()
    wrong = [
        {"seed": seed, "mode": mode, "query": q, **{p: got[p][i] for p in PATHS}}
        for i, q in enumerate(queries)
        if len({json.dumps(got[p][i]) for p in PATHS}) > 1
    ]
    assert not wrong, _report(wrong)
    # the corpus is not trivial: queries hit, miss and fail
    outcomes = got["store"]
    assert any(o == "error" for o in outcomes)
    assert any(o == [] for o in outcomes)
    assert sum(1 for o in outcomes if isinstance(o, list) and o) > len(queries) // 8


def test_generation_is_deterministic() -> None:
    assert corpus(7) == corpus(7)
    assert corpus(7) != corpus(8)


@pytest.fixture(scope="module")
def oracle_ready() -> None:
    reason = oracle.available()
    if reason:
        if os.environ.get("CI") and oracle.ORACLE.is_file():
            pytest.fail(f"CI has the oracle but cannot run it: {reason}")
        pytest.skip(reason)


@pytest.mark.oracle
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_generated_queries_get_lucenes_answers(seed: int, mode: str, tmp_path: Path, oracle_ready: None) -> None:
    docs, queries = corpus(seed, count=300)
    paths = Corpus(docs, tmp_path, mode == "es")
    try:
        got = paths.outcomes(queries)
    finally:
        paths.close()
    expected = oracle.run(paths.docs, queries, mode == "es", tmp_path)
    assert "missing" not in expected
    wrong = [
        {"seed": seed, "mode": mode, "query": q, "oracle": expected[i], **{p: got[p][i] for p in PATHS}}
        for i, q in enumerate(queries)
        if any(got[p][i] != expected[i] for p in PATHS)
    ]
    assert not wrong, _report(wrong)


# -- the CLI ---------------------------------------------------------------

MINIMAL = next(c for c in REGRESSIONS if c["name"] == "issue-21-minimal")


@pytest.fixture
def minimal_store(tmp_path: Path) -> Path:
    docs = tmp_path / "docs.jsonl"
    build = {"build_uuid": BUILD, "build_status": "FAILURE", "voting": 1, "build_name": "job-a"}
    docs.write_text("".join(json.dumps({**d, **build}) + "\n" for d in MINIMAL["docs"]))
    store = tmp_path / "store.db"
    result = CliRunner().invoke(cli, ["--store", str(store), "ingest", "--jsonl", str(docs)])
    assert result.exit_code == 0, result.output
    return store


def _batch(store: Path, tmp_path: Path, args: list[str], config: Path | None = None) -> list[dict[str, Any]]:
    batch = tmp_path / "q.jsonl"
    batch.write_text("".join(json.dumps({"qid": i, "query": c["query"]}) + "\n" for i, c in enumerate(MINIMAL["cases"])))
    head = ["-c", str(config)] if config is not None else []
    result = CliRunner().invoke(cli, [*head, "--store", str(store), "search", "--batch", str(batch), "--ids", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _expected_lines(mode: str) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(MINIMAL["cases"]):
        if c[mode] == "error":
            out.append({"qid": i, "ok": False})
        else:
            out.append({"qid": i, "ok": True, "hits": c[mode]})
    return out


def _strip_errors(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for line in lines:
        if not line["ok"]:
            assert line.pop("error")
    return lines


@pytest.mark.parametrize("mode", MODES)
def test_search_batch_honours_lucene_mode(minimal_store: Path, tmp_path: Path, mode: str) -> None:
    lines = _batch(minimal_store, tmp_path, ["--lucene-mode", mode])
    assert _strip_errors(lines) == _expected_lines(mode)


def test_config_lucene_mode_reaches_search_and_classify(minimal_store: Path, tmp_path: Path) -> None:
    conf = tmp_path / "er.conf"
    conf.write_text("[data_source]\nlucene_mode = lucene\n")
    assert _strip_errors(_batch(minimal_store, tmp_path, [], config=conf)) == _expected_lines("lucene")

    queries = tmp_path / "queries"
    queries.mkdir()
    bugs = {}
    for i, c in enumerate(MINIMAL["cases"]):
        if c["lucene"] == "error" or "\n" in c["query"]:
            continue
        bug = str(1_000_000 + i)
        (queries / f"{bug}.yaml").write_text("query: " + json.dumps(c["query"]) + "\n")
        bugs[bug] = c["lucene"]
    result = CliRunner().invoke(
        cli, ["-c", str(conf), "--store", str(minimal_store), "classify", "--queries", str(queries), "--build-uuid", BUILD, "--json"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["bugs"]
    assert got == sorted((b for b, hits in bugs.items() if hits), key=int)
    # plain Lucene differs from ES on these: the classifier followed the config
    assert str(1_000_000 + 1) not in got  # _exists_:message
    assert str(1_000_000 + 3) not in got  # message:>a


def test_one_bad_query_in_a_batch_costs_only_its_own_line(minimal_store: Path, tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    rows = [
        {"qid": 0, "query": "build_name:\\uD83D"},
        {"qid": 1, "query": "message:\\uD83D*"},
        {"qid": 2, "query": "foo AND ("},
        {"qid": 3, "query": 17},
        {"qid": 4, "query": "\\uD83D\\uDE00 OR foo"},
        {"qid": 5, "query": '"\ud83d" OR bar'},  # a raw lone surrogate in the JSON text
    ]
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    result = CliRunner().invoke(cli, ["--store", str(minimal_store), "search", "--batch", str(batch), "--ids"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["qid"] for line in lines] == [0, 1, 2, 3, 4, 5, None]
    assert lines[0] == {"qid": 0, "ok": True, "hits": []}
    assert lines[1] == {"qid": 1, "ok": True, "hits": []}
    assert [line["ok"] for line in lines[2:4]] == [False, False]
    assert lines[4] == {"qid": 4, "ok": True, "hits": ["d1"]}
    assert lines[5] == {"qid": 5, "ok": True, "hits": ["d1"]}


def test_plain_lucene_mode_on_a_cluster_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "er.conf"
    conf.write_text("[data_source]\nbackend = elasticsearch\nes_url = http://127.0.0.1:9\nlucene_mode = lucene\n")
    result = CliRunner().invoke(cli, ["-c", str(conf), "search", "foo"])
    assert result.exit_code == 1
    assert "needs the embedded store" in result.output
    assert "Traceback" not in result.output

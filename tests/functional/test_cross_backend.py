"""Cross-backend agreement: a fingerprint means the same on every backend.

The same history is loaded, with the project's own writer (``elastic-recheck
ingest --jsonl``), into the embedded store and into a real OpenSearch 2.19
and Elasticsearch 7.10.2 node (:mod:`tests.fixtures.cluster`). Three
histories:

* ``sample``: the bundled sample (``sample/``, ~43,000 lines, 348 builds);
* ``generated``: a larger one from ``sample/generate.py`` with another seed;
* ``conformance``: the documents of the Lucene conformance fixture
  ``tests/conformance/fingerprints.json.gz``, one build per document.

Then, for every fingerprint of ``queries/`` and every query of the
conformance fixture, these must be identical on the three backends:

* the hits per build (``builds()``: build uuid -> matching lines), or the
  fact that the query is rejected;
* the output of ``classify --builds``;
* the output of ``bot --replay --dry-run --actions-out`` (the sample's own
  events, and events made the same way for the generated history);
* the JSON of ``graph`` and ``uncategorized``.

Every command runs as a user would run it: against the store with
``--store``, against a node with ``-c`` and a config file naming it.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import backend_from_config
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import load_config
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.schema import parse_voting
from elastic_recheck.core.search_types import QuerySpec
from elastic_recheck.ports.search import SearchBackend
from sample import generate as sample_generate
from sample.make_events import report_event
from tests.fixtures.cluster import ClusterNode, cluster_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
QUERIES = REPO / "queries"
CONFORMANCE = REPO / "tests" / "conformance" / "fingerprints.json.gz"
NOW = "2026-11-20T00:00:00Z"
ENGINES = ("opensearch", "elasticsearch")

#: The generated history: another seed, larger than the sample.
GENERATED_SEED = 4242
GENERATED_BUILDSETS = 120

#: Every this-many conformance documents is a failed gate build (the ones
#: classify, the bot and uncategorized look at); the rest passed in check.
CONFORMANCE_FAILED_EVERY = 20

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]


# ---------------------------------------------------------------------------
# histories


@dataclass
class History:
    name: str
    logs: Path
    builds: list[dict[str, Any]]
    events: Path | None
    queries: Path
    #: (label, query text) of every fingerprint compared hit by hit.
    fingerprints: list[tuple[str, str]]
    #: uuids of the builds given to classify --builds
    classify_uuids: list[str] = field(default_factory=list)


def queries_fingerprints() -> list[tuple[str, str]]:
    loaded = load_fingerprints(QUERIES)
    return [(fp.bug, fp.query) for fp in loaded.fingerprints]


def conformance_cases() -> list[dict[str, Any]]:
    with gzip.open(CONFORMANCE, "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data["cases"]


def all_fingerprints() -> list[tuple[str, str]]:
    return queries_fingerprints() + [(f"conformance-{i}", case["q"]) for i, case in enumerate(conformance_cases())]


def write_events(builds: list[dict[str, Any]], path: Path) -> Path:
    """One Zuul report per buildset, in the order they ended (as sample/make_events.py writes them)."""
    sets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in builds:
        sets[b["buildset"]["uuid"]].append(b)
    ordered = sorted(sets.values(), key=lambda bs: max(b["end_time"] for b in bs))
    path.write_text("".join(json.dumps(report_event(bs)) + "\n" for bs in ordered), encoding="utf-8")
    return path


def conformance_history(directory: Path) -> History:
    """The conformance documents as builds (one line each) on 2026-11-15, in a queries dir of their own."""
    with gzip.open(CONFORMANCE, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    start = datetime(2026, 11, 15, tzinfo=UTC)
    builds: list[dict[str, Any]] = []
    logs = directory / "conformance.jsonl.gz"
    with gzip.open(logs, "wt", encoding="utf-8") as out:
        for i, doc in enumerate(data["docs"]):
            failed = i % CONFORMANCE_FAILED_EVERY == 0
            uuid = f"{i + 1:032x}"
            ts = (start + timedelta(seconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            defaults = {
                "filename": "job-output.txt",
                "build_name": "conformance-job",
                "build_status": "FAILURE" if failed else "SUCCESS",
                "build_queue": "gate" if failed else "check",
                "build_change": str(900000 + i),
                "build_patchset": "1",
                "build_branch": "master",
                "project": "openstack/nova",
                "voting": "1",
            }
            # The document's own fields (message, tags, build_name...: what
            # the queries look at) win; a build identity and time are added.
            record = {**defaults, **{k: v for k, v in doc.items() if v is not None}}
            record.update({
                "@timestamp": ts,
                "build_uuid": uuid,
                "build_short_uuid": uuid[:7],
                "log_url": f"https://logs.ci.example.org/{i}/{record['filename']}",
            })
            out.write(json.dumps(record) + "\n")
            builds.append({"uuid": uuid, "failed": failed})
    queries = directory / "conformance-queries"
    queries.mkdir()
    cases = conformance_cases()
    for i, case in enumerate(cases):
        (queries / f"{i + 1}.yaml").write_text(json.dumps({"query": case["q"]}) + "\n", encoding="utf-8")
    fingerprints = [(f"conformance-{i}", case["q"]) for i, case in enumerate(cases)]
    return History(
        "conformance", logs, builds, None, queries, fingerprints + queries_fingerprints(),
        classify_uuids=[b["uuid"] for b in builds if b["failed"]],
    )


def make_history(name: str, directory: Path) -> History:
    if name == "conformance":
        return conformance_history(directory)
    if name == "sample":
        logs, builds_json, events = SAMPLE / "logs.jsonl.gz", SAMPLE / "builds.json", SAMPLE / "events.jsonl"
        builds = json.loads(builds_json.read_text())["builds"]
    else:
        sample_generate.write_sample(directory, None, None, GENERATED_BUILDSETS, GENERATED_SEED)
        logs = directory / "logs.jsonl.gz"
        builds = json.loads((directory / "builds.json").read_text())["builds"]
        events = write_events(builds, directory / "events.jsonl")
    # The conformance queries run on the sample (realistic text) and on their
    # own documents; the generated history has the sample's vocabulary.
    fingerprints = all_fingerprints() if name == "sample" else queries_fingerprints()
    # classify: the builds the bot would look at (failed), and the passed
    # ones that hold a bug all the same.
    uuids = [b["uuid"] for b in builds if b["result"] != "SUCCESS" or b["injected_bugs"]]
    return History(name, logs, builds, events, QUERIES, fingerprints, classify_uuids=uuids)


# ---------------------------------------------------------------------------
# loading


@dataclass
class Loaded:
    history: History
    #: backend name -> the CLI's global arguments that select it
    args: dict[str, list[str]]
    backends: dict[str, SearchBackend]
    workdir: Path


def run(args: list[str], ok: tuple[int, ...] = (0,)) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code in ok, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


@pytest.fixture(scope="module", params=["sample", "generated", "conformance"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    nodes: dict[str, ClusterNode] = {e: request.getfixturevalue(f"{e}_node") for e in ENGINES}
    workdir = tmp_path_factory.mktemp(f"agree-{request.param}")
    history = make_history(request.param, workdir)
    store = workdir / "store.db"
    args: dict[str, list[str]] = {"embedded": ["--store", str(store)]}
    prefixes: dict[str, str] = {}
    for engine, node in nodes.items():
        prefix = f"eragree-{request.param}-{uuidlib.uuid4().hex[:8]}"
        prefixes[engine] = prefix
        conf = cluster_config(workdir / f"{engine}.conf", engine, node.url, prefix)
        args[engine] = ["-c", str(conf)]
    # The two nodes load at the same time (each its own process, as a user runs it).
    procs = [
        subprocess.Popen([sys.executable, "-m", "elastic_recheck", *args[e], "ingest", "--jsonl", str(history.logs)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for e in ENGINES
    ]
    run([*args["embedded"], "ingest", "--jsonl", str(history.logs)])
    for engine, proc in zip(ENGINES, procs, strict=True):
        out, _ = proc.communicate(timeout=1200)
        assert proc.returncode == 0, f"ingest into {engine}: {out}"
    backends: dict[str, SearchBackend] = {"embedded": EmbeddedStore(store)}
    for engine in ENGINES:
        backends[engine] = backend_from_config(load_config(args[engine][1]))
    try:
        yield Loaded(history, args, backends, workdir)
    finally:
        for b in backends.values():
            b.close()
        for engine, node in nodes.items():
            node.drop(prefixes[engine])


# ---------------------------------------------------------------------------
# comparisons


def hits_per_build(backend: SearchBackend, query: str) -> dict[str, Any] | str:
    """build uuid -> (matching lines, first and last match, build fields), newest first; or "rejected"."""
    try:
        infos = backend.builds(QuerySpec(queries=(query,)))
    except BackendError:
        return "rejected"
    return {i.uuid: (i.docs, i.first_seen, i.last_seen, build_fields(i.fields)) for i in infos}


def build_fields(fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A build's fields; ``voting`` as the flag it means (the bulk writer spells it as the cluster's filter asks)."""
    return sorted({**fields, "voting": parse_voting(fields.get("voting"))}.items())


def all_hits(backend: SearchBackend, queries: list[str]) -> list[dict[str, Any] | str]:
    """hits_per_build of every query, a few at a time (both kinds of backend serve threads)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda q: hits_per_build(backend, q), queries))


def test_hits_per_build_agree(loaded: Loaded) -> None:
    differences: dict[str, list[str]] = {e: [] for e in ENGINES}
    queries = [q for _, q in loaded.history.fingerprints]
    answers = {name: all_hits(backend, queries) for name, backend in loaded.backends.items()}
    compared = len(queries)
    for i, (label, query) in enumerate(loaded.history.fingerprints):
        want = answers["embedded"][i]
        for engine in ENGINES:
            got = answers[engine][i]
            if got != want:
                differences[engine].append(f"{label} {query!r}: embedded {_short(want, got)} vs {engine} {_short(got, want)}")
    report = {e: len(d) for e, d in differences.items()}
    print(f"{loaded.history.name}: {compared} fingerprints x {len(loaded.history.builds)} builds; differences {report}")
    for engine in ENGINES:
        assert not differences[engine], f"{len(differences[engine])}/{compared} differ on {engine}:\n" + "\n".join(differences[engine][:25])


def _short(value: dict[str, Any] | str, other: dict[str, Any] | str) -> str:
    """The answer's size and its first build that differs from ``other``."""
    if isinstance(value, str):
        return value
    lines = sum(v[0] for v in value.values())
    first = next((u for u in value if not isinstance(other, dict) or other.get(u) != value[u]), None)
    return f"{len(value)} builds/{lines} lines, first differing {first}: {value.get(first) if first else None}"


def test_classify_output_agrees(loaded: Loaded) -> None:
    uuids = loaded.workdir / "classify-uuids.txt"
    uuids.write_text("\n".join(loaded.history.classify_uuids) + "\n")
    outputs = {
        name: run([*args, "classify", "--queries", str(loaded.history.queries), "--builds", str(uuids)], ok=(0, 1))
        for name, args in loaded.args.items()
    }
    assert outputs["embedded"].count("\n") >= len(loaded.history.classify_uuids)
    for engine in ENGINES:
        assert outputs[engine] == outputs["embedded"], engine


def test_bot_replay_agrees(loaded: Loaded) -> None:
    if loaded.history.events is None:
        pytest.skip("the conformance history has no Gerrit events")
    outputs = {}
    for name, args in loaded.args.items():
        actions = loaded.workdir / f"actions-{name}.jsonl"
        stdout = run([
            *args, "bot", "--queries", str(loaded.history.queries), "--replay", str(loaded.history.events),
            "--dry-run", "--no-irc", "--readiness-timeout", "0", "--workers", "1", "--state", str(loaded.workdir / f"state-{name}.db"),
            "--actions-out", str(actions),
        ])
        outputs[name] = (stdout, actions.read_text())
    assert outputs["embedded"][1].count("\n") > 10
    for engine in ENGINES:
        assert outputs[engine][0] == outputs["embedded"][0], f"{engine}: bot output"
        assert outputs[engine][1] == outputs["embedded"][1], f"{engine}: actions"


#: Fields of graph.json / uncategorized.json that measure the run, not the data.
TIMING_FIELDS = frozenset({"took", "took_ms", "elapsed", "generated", "generated_at", "duration"})


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_graph_and_uncategorized_agree(loaded: Loaded) -> None:
    q = ["--queries", str(loaded.history.queries), "--now", NOW, "--days", "10"]
    graphs, uncategorized = {}, {}
    for name, args in loaded.args.items():
        out = loaded.workdir / f"graph-{name}.json"
        run([*args, "graph", *q, "-o", str(out)], ok=(0, 4))
        graphs[name] = without_timing(json.loads(out.read_text()))
        udir = loaded.workdir / f"uncat-{name}"
        run([*args, "uncategorized", *q, "-o", str(udir)], ok=(0, 4))
        uncategorized[name] = without_timing(json.loads((udir / "uncategorized.json").read_text()))
    assert graphs["embedded"]["buglist"]
    for engine in ENGINES:
        assert graphs[engine] == graphs["embedded"], engine
        assert uncategorized[engine] == uncategorized["embedded"], engine

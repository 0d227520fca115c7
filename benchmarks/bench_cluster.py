"""The embedded store against a real OpenSearch node, on the same generated history.

    python -m benchmarks cluster                          # 200,000 lines, 1,000 fingerprints, 10 days
    python -m benchmarks cluster --lines 50000 --builds-to-classify 20
    python -m benchmarks cluster --url http://127.0.0.1:9200 --flavor opensearch   # a node you started

One run, both backends, the same documents (the report benchmark's seeded
generator, ``tests/fixtures/report_data.py``: builds of voting and non-voting
jobs in gate and check, bug lines injected with Zipf-like frequency) and the
same 1,000 fingerprints:

1. **ingest**: documents/s through ``EmbeddedStore.add_documents`` (then
   ``optimize``) and through the cluster's bulk writer (``ingest``'s and
   ``collect``'s: template, daily indices, ``_bulk``, ``_refresh``);
2. **size**: the store file against the node's indices (``_stats`` store
   size of the primaries after a flush, and again after merging each index
   to one segment, the steady state of old daily indices);
3. **classify**: latency per build (p50/p95/mean) classifying
   ``--builds-to-classify`` failed builds with every fingerprint, as
   ``classify`` does (look the build up, one multi-search), and on the
   cluster the HTTP requests per build by endpoint;
4. **graph + uncategorized** for the window, as the ``graph`` and
   ``uncategorized`` commands compute and write them.

The node is started by :mod:`tests.fixtures.cluster` (OpenSearch 2.19 from
Maven Central, 127.0.0.1, a free port, heap ``$ELASTIC_RECHECK_TEST_NODE_HEAP``
or 1g here) and stopped at the end, unless ``--url`` names one. Its indices
(``bench-<random>-*``) are deleted afterwards. Prints one JSON object and
the Markdown table of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.bulk import BulkWriter
from elastic_recheck.adapters.elastic.clients import server_info
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.classify import BuildRef, Classifier
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import LoadResult, load_fingerprints
from elastic_recheck.core.search_types import TimeWindow
from elastic_recheck.report.graph import collect_bug_stats, graph_json
from elastic_recheck.report.health import probe_backend
from elastic_recheck.report.site_data import collect_uncategorized_data
from elastic_recheck.report.site_pages import write_json, write_uncategorized
from elastic_recheck.report.window import ReportWindow
from tests.fixtures.report_data import NOW, Dataset, bug_options, iter_builds

LINES_PER_BUILD = 48


def documents(builds: int, fingerprints: int, days: float, failed: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The seeded history (the same on every call); uuids of failed voting builds of the window go to ``failed``."""
    recent = NOW - timedelta(days=days - 1)
    for b, docs in iter_builds(builds=builds, bugs=fingerprints, lines_per_build=LINES_PER_BUILD, days=days):
        if failed is not None and b.failed and b.voting and b.end > recent:
            failed.append(b.uuid)
        yield from docs


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def classify_latency(backend: Any, loaded: LoadResult, uuids: list[str], window: TimeWindow) -> dict[str, Any]:
    classifier = Classifier(backend, loaded.fingerprints, window=window)
    seconds: list[float] = []
    matched = 0
    for uuid in uuids:
        result, took = timed(lambda u=uuid: classifier.classify(BuildRef(uuid=u)))
        assert result.error is None, result.error
        matched += bool(result.matches)
        seconds.append(took)
    return {
        "builds": len(uuids),
        "builds_with_a_match": matched,
        "p50_ms": round(1000 * statistics.median(seconds), 1),
        "p95_ms": round(1000 * percentile(seconds, 0.95), 1),
        "mean_ms": round(1000 * statistics.fmean(seconds), 1),
    }


def reports(backend: Any, loaded: LoadResult, window: ReportWindow, out: Path) -> dict[str, float]:
    config = from_mapping({"site": {"suggestions": False}})
    fps = [fp for fp in loaded.fingerprints if not fp.suppress_graph]

    def graph() -> None:
        probe = probe_backend(backend)
        stats = collect_bug_stats(backend, fps, window)
        write_json(out / "graph.json", graph_json(stats, window, last_indexed=probe.newest_event, status=probe.status))

    def uncategorized() -> None:
        data = collect_uncategorized_data(backend, loaded, config, window)
        write_uncategorized(data, out / "uncategorized")

    out.mkdir(parents=True, exist_ok=True)
    _, g = timed(graph)
    _, u = timed(uncategorized)
    return {"graph_s": round(g, 2), "uncategorized_s": round(u, 2), "total_s": round(g + u, 2)}


def index_bytes(backend: ElasticBackend, pattern: str) -> int:
    stats = backend._call("stats", lambda: backend._request("GET", f"/{pattern}/_stats/store"))
    return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])


def mib(n: int) -> float:
    return round(n / 1024 / 1024, 1)


def table(r: dict[str, Any]) -> str:
    e, c = r["embedded"], r["cluster"]
    reqs = ", ".join(f"{v:g} {k}" for k, v in sorted(c["classify"]["requests_per_build"].items()))
    rows = [
        ("ingest (documents/s)", f"{e['ingest']['docs_per_s']:,.0f}", f"{c['ingest']['docs_per_s']:,.0f}"),
        ("size on disk (MiB)", f"{e['size_mib']}", f"{c['size_mib']} as loaded, {c['size_mib_merged']} merged"),
        ("classify one build, p50 / p95 (ms)", f"{e['classify']['p50_ms']} / {e['classify']['p95_ms']}",
         f"{c['classify']['p50_ms']} / {c['classify']['p95_ms']}"),
        ("requests per classified build", "-", reqs),
        ("graph + uncategorized (s)", f"{e['reports']['total_s']} ({e['reports']['graph_s']} + {e['reports']['uncategorized_s']})",
         f"{c['reports']['total_s']} ({c['reports']['graph_s']} + {c['reports']['uncategorized_s']})"),
    ]
    head = f"| {r['documents']:,} documents, {r['builds']:,} builds, {r['fingerprints']:,} fingerprints | embedded store | {r['cluster_engine']} node |"
    lines = [head, "|---|---|---|"] + [f"| {a} | {b} | {cc} |" for a, b, cc in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000, help="log lines (default 200,000)")
    ap.add_argument("--fingerprints", type=int, default=1000, help="fingerprints (default 1000)")
    ap.add_argument("--days", type=float, default=10.0, help="window length (default 10)")
    ap.add_argument("--builds-to-classify", type=int, default=50, help="failed builds classified (default 50)")
    ap.add_argument("--url", help="use this running node instead of starting one")
    ap.add_argument("--flavor", default="opensearch", help="with --url: opensearch, elasticsearch or cluster")
    ap.add_argument("--workdir", type=Path, help="where the store, node data and outputs go (default: a temp dir)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    builds = max(1, args.lines // (LINES_PER_BUILD + 2))
    queries = Dataset(now=NOW, days=args.days, bugs=args.fingerprints, builds=[], docs=[],
                      options=bug_options(args.fingerprints)).write_queries(work / "queries")
    loaded = load_fingerprints(queries)
    assert not loaded.errors, loaded.errors
    window = ReportWindow(now=NOW, days=args.days)
    classify_window = window.time_window
    result: dict[str, Any] = {"builds": builds, "fingerprints": len(loaded.fingerprints), "days": args.days}

    node = None
    if args.url:
        url, flavor = args.url, args.flavor
    else:
        from tests.fixtures.cluster import start_node
        from tests.fixtures.ircd import free_port

        os.environ.setdefault("ELASTIC_RECHECK_TEST_NODE_HEAP", "1g")
        node, started = timed(lambda: start_node("opensearch", free_port(), work / "node"))
        url, flavor = node.url, "opensearch"
        result["node_start_s"] = round(started, 1)
    prefix = f"bench-{uuidlib.uuid4().hex[:8]}"
    backend = ElasticBackend(ClusterSettings(url=url, flavor=flavor, index_format=prefix + "-%Y.%m.%d", timeout=120, retries=2))
    try:
        # 1. ingest
        store_path = work / "store.db"
        store = EmbeddedStore(store_path)
        failed: list[str] = []
        stats, took = timed(lambda: store.add_documents(documents(builds, args.fingerprints, args.days, failed)))
        _, opt = timed(store.optimize)
        store.close()
        n = stats.docs
        result["documents"] = n
        result["embedded"] = {"ingest": {"seconds": round(took + opt, 1), "docs_per_s": round(n / (took + opt))}}
        writer = BulkWriter(backend, template=prefix)
        cstats, ctook = timed(lambda: writer.add_documents(documents(builds, args.fingerprints, args.days)))
        assert cstats.docs == n and not cstats.bad_lines, (cstats.docs, n, cstats.bad_line_samples)
        result["cluster"] = {"ingest": {"seconds": round(ctook, 1), "docs_per_s": round(n / ctook),
                                        "bulk_requests": backend.requests["_bulk"]}}
        info = backend._call("info", lambda: backend._request("GET", "/"))
        result["cluster_engine"] = str(server_info(info))
        print(json.dumps(result), file=sys.stderr, flush=True)

        # 2. size
        result["embedded"]["size_mib"] = mib(sum(p.stat().st_size for p in work.glob("store.db*")))
        pattern = prefix + "-*"
        backend._call("flush", lambda: backend._request("POST", f"/{pattern}/_flush"))
        result["cluster"]["size_mib"] = mib(index_bytes(backend, pattern))
        backend._call("forcemerge", lambda: backend._request("POST", f"/{pattern}/_forcemerge", params={"max_num_segments": "1"}))
        result["cluster"]["size_mib_merged"] = mib(index_bytes(backend, pattern))
        print(json.dumps(result), file=sys.stderr, flush=True)

        # 3. classify
        sample = failed[-args.builds_to_classify:]
        store = EmbeddedStore(store_path)
        result["embedded"]["classify"] = classify_latency(store, loaded, sample, classify_window)
        before = Counter(backend.requests)
        result["cluster"]["classify"] = classify_latency(backend, loaded, sample, classify_window)
        sent = backend.requests - before
        result["cluster"]["classify"]["requests_per_build"] = {k: round(v / len(sample), 2) for k, v in sent.items()}
        print(json.dumps(result), file=sys.stderr, flush=True)

        # 4. graph + uncategorized
        result["embedded"]["reports"] = reports(store, loaded, window, work / "out-embedded")
        result["cluster"]["reports"] = reports(backend, loaded, window, work / "out-cluster")
        store.close()
    finally:
        try:
            # by name: Elasticsearch 8+ refuses wildcards in DELETE (action.destructive_requires_name)
            names = backend._request("GET", f"/_cat/indices/{prefix}-*", params={"format": "json", "h": "index"})
            if names:
                backend._request("DELETE", "/" + ",".join(sorted(i["index"] for i in names)))
            backend._call("cleanup", lambda: backend._request("DELETE", f"/_index_template/{prefix}"), retries=0)
        except Exception as exc:  # noqa: BLE001 - the numbers matter more than the cleanup
            print(f"cleanup: {exc}", file=sys.stderr)
        backend.close()
        if node is not None:
            node.stop()
    result["workdir"] = str(work)
    print(json.dumps(result, indent=2))
    print()
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

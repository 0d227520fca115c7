"""Benchmark the cron report: graph.json, uncategorized and the whole site.

    python benchmarks/bench_report.py                       # 1,000,000 lines, 1,000 fingerprints, 10 days
    python benchmarks/bench_report.py --lines 200000 --fingerprints 200
    python benchmarks/bench_report.py --store /tmp/bench.db  # reuse a store made earlier (same options)

The data comes from the report tests' generator (``tests/fixtures/report_data.py``,
seeded): builds of voting and non-voting jobs in gate and check, each with
filler lines and ``Job complete, result: ...``; bug ``k``'s lines are injected
into failed builds with Zipf-like frequency, so a few fingerprints hit often
and most rarely or never, like a real query directory. Loading the store is
timed separately and is not part of the target (<= 5 s for the three reports).

Prints one JSON object with the sizes and the seconds of each phase.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.report.graph import collect_bug_stats, graph_json
from elastic_recheck.report.health import probe_backend
from elastic_recheck.report.site import render_site
from elastic_recheck.report.site_data import collect_uncategorized_data
from elastic_recheck.report.site_pages import write_json, write_uncategorized
from elastic_recheck.report.window import ReportWindow
from tests.fixtures.report_data import NOW, Dataset, bug_options, iter_builds

LINES_PER_BUILD = 48


def make_store(path: Path, lines: int, fingerprints: int, days: float) -> dict[str, Any]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    builds = max(1, lines // (LINES_PER_BUILD + 2))
    store = EmbeddedStore(path)
    n = 0
    started = time.perf_counter()

    def docs() -> Any:
        nonlocal n
        for _, bdocs in iter_builds(builds=builds, bugs=fingerprints, lines_per_build=LINES_PER_BUILD, days=days):
            n += len(bdocs)
            yield from bdocs

    store.add_documents(docs())
    optimize = getattr(store, "optimize", None)
    if callable(optimize):
        optimize()
    store.close()
    return {"builds": builds, "documents": n, "load_seconds": round(time.perf_counter() - started, 2)}


def write_queries(directory: Path, fingerprints: int, days: float) -> Path:
    ds = Dataset(now=NOW, days=days, bugs=fingerprints, builds=[], docs=[], options=bug_options(fingerprints))
    return ds.write_queries(directory)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="log lines in the store (default 1,000,000)")
    ap.add_argument("--fingerprints", type=int, default=1000, help="fingerprints (default 1000)")
    ap.add_argument("--days", type=float, default=10.0, help="window length (default 10)")
    ap.add_argument("--store", type=Path, help="store path (reused when it exists)")
    ap.add_argument("--workdir", type=Path, help="where queries and outputs go (default: a temp dir)")
    ap.add_argument(
        "--no-suggestions",
        action="store_true",
        help="turn off [site] suggestions (the uncategorized page's drafted fingerprints) to time the reports alone",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    store_path = args.store or work / "store.db"
    result: dict[str, Any] = {"lines_requested": args.lines, "fingerprints": args.fingerprints, "days": args.days}
    if not store_path.exists():
        result["store"] = make_store(store_path, args.lines, args.fingerprints, args.days)
    else:
        result["store"] = {"reused": str(store_path)}
    queries = write_queries(work / "queries", args.fingerprints, args.days)
    t = time.perf_counter()
    loaded = load_fingerprints(queries)
    load_seconds = time.perf_counter() - t
    assert not loaded.errors, loaded.errors
    config = from_mapping({"site": {"suggestions": not args.no_suggestions}})
    result["suggestions"] = not args.no_suggestions
    window = ReportWindow(now=NOW, days=args.days)
    backend = EmbeddedStore(store_path)
    seconds: dict[str, float] = {"load_fingerprints": load_seconds}

    t = time.perf_counter()
    probe = probe_backend(backend)
    fps = [fp for fp in loaded.fingerprints if not fp.suppress_graph]
    stats = collect_bug_stats(backend, fps, window)
    write_json(work / "graph.json", graph_json(stats, window, last_indexed=probe.newest_event, status=probe.status))
    seconds["graph"] = time.perf_counter() - t

    t = time.perf_counter()
    data = collect_uncategorized_data(backend, loaded, config, window)
    write_uncategorized(data, work / "uncategorized")
    seconds["uncategorized"] = time.perf_counter() - t

    t = time.perf_counter()
    res = render_site(backend, loaded, config, work / "site", window=window)
    seconds["render"] = time.perf_counter() - t
    seconds["render_collect"] = res.seconds["collect"]
    seconds["render_write"] = res.seconds["write"]
    seconds["total"] = seconds["graph"] + seconds["uncategorized"] + seconds["render"]
    result["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    result["site_files"] = res.files
    result["failed_gate_builds"] = data.uncategorized.overall.failed
    result["classification_rate"] = data.uncategorized.overall.rate
    result["workdir"] = str(work)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

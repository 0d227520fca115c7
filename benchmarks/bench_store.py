"""Benchmark the embedded store: ingest speed, size, and the queries the bot and the cron job run.

    python -m benchmarks store                      # 1,000,000 log lines over 10 days
    python -m benchmarks store --lines 100000       # CI-size run
    python -m benchmarks store --store /tmp/b.db    # keep (or reuse) the store file
    python -m benchmarks store --corpus /big/c.jsonl.gz  # keep (or reuse) the generated corpus
    python -m benchmarks store --lines 1000000 --builds 1382  # the builds of 200k lines, five times longer

The documents come from the sample generator (``sample/generate.py``: the same
jobs, files, message vocabulary and injected bugs, seeded), written to a
temporary ``.jsonl.gz`` first (not timed), then loaded with
:func:`elastic_recheck.ingest.jsonl.ingest_jsonl` (timed: JSON parsing, analysis,
SQLite). The fingerprints are the sample's seven plus synthetic ones made of
phrases from the same vocabulary (some match often, most rarely or never),
1,000 in all.

Measured (targets in brackets, from the store's issues; 2-core machine):

* ingest lines/s [>= 40,000], wall clock, with the CPU seconds it took and
  the machine's load average (the machine is shared: a busy one gives the
  ingest's two threads less than two cores), and the store's size on disk;
* one phrase fingerprint restricted to one build, median [<= 5 ms];
* an hourly histogram of distinct builds for one fingerprint over the 10 days [<= 100 ms];
* classify: ``msearch`` of 1,000 fingerprints against one build of about
  2,500-3,700 lines (the ten biggest builds: 2,781 lines median at 200k
  lines, 3,640 at 1M), on a freshly opened store.
  cold [median <= 50 ms]: the first call for a build (load its lines from
  SQLite, build the in-memory index, evaluate): the bot classifies each build
  once, so this is the real cost. eval: the index loaded, no clause evaluated
  yet. warm [median <= 50 ms]: a repeat (clauses memoized per build). Medians
  and 90th percentiles over the builds;
* peak RSS while classifying [<= 300 MB]: the queries run in a fresh
  process (like the bot's), whose peak is reset before the classifications
  where Linux allows it; also that process's peak over all its queries, and
  the ingesting process's peak.

* graph + uncategorized (+ render) for 1,000 fingerprints
  (``benchmarks/store_scale.py``'s report phase): seconds, CPU seconds, the
  same per build (issue 19: they should grow with the builds, not the
  lines; ``--builds`` holds the builds fixed while ``--lines`` grows), and
  the report process's peak RSS and anonymous memory.

Prints a table and, with ``--json``, one JSON object; each phase's figures
also go to stderr as it ends (``[ingest done] {...}``), for runs stopped early.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import multiprocessing
import os
import pickle
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.store_scale import add_arguments, partial, run_phases
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.ingest.jsonl import ingest_jsonl
from sample import generate as gen

#: How many times a big build's log files are generated (about 2,500 lines).
BIG_ROUNDS = 20

TARGETS = {
    "ingest_lines_per_s": (">=", 40_000),
    "build_phrase_ms": ("<=", 5.0),
    "histogram_ms": ("<=", 100.0),
    "classify_cold_ms": ("<=", 50.0),
    "classify_warm_ms": ("<=", 50.0),
    "classify_rss_mb": ("<=", 300.0),
    "store_vs_jsonl": ("<=", 0.35),
    "store_reclaimed_vs_jsonl": ("<=", 0.35),
    "bot_peak_rss_mb": ("<=", 300.0),
    "ingest_vs_lucene": (">=", 1.0),
}


def _phrase(field: str, text: str) -> qa.Query:
    toks = tokenize(text)
    if len(toks) == 1:
        return qa.Term(field, toks[0])
    return qa.Phrase(field, tuple(toks), tuple(range(len(toks))))


def write_corpus(path: Path, lines: int, seed: int, builds: int | None = None) -> dict[str, Any]:
    """Generate builds over the sample's 10 days until ``lines`` documents are written.

    By default the builds grow with the lines (one build's files once, one
    build in 100 twenty times: ~144 lines a build). With ``builds``, exactly
    that many builds are generated and the lines are spread over them (each
    build's files generated as many times as its share needs, a big build's
    share twenty times an ordinary one's, at least once each): the same
    builds with longer files as ``lines`` grows, so a cost that grows with
    the builds can be told apart from one that grows with the lines.
    """
    if builds is not None:
        return _write_fixed_builds(path, lines, seed, builds)
    rng = random.Random(seed)
    written = raw_bytes = 0
    made: list[gen.Build] = []
    sizes: dict[str, int] = {}
    with gzip.open(path, "wb", compresslevel=6) as out:  # gzip's default level, the "gzipped JSONL"
        while written < lines:
            batch = gen.generate_builds(rng, 50)
            for build in batch:
                # One build in 100 is big (a devstack job's few thousand INFO+ lines).
                rounds = BIG_ROUNDS if len(made) % 100 == 0 else 1
                size = 0
                for k in range(rounds):
                    n, nbytes = _write_round(out, seed, build, k)
                    raw_bytes += nbytes
                    written += n
                    size += n
                made.append(build)
                sizes[build.uuid] = size
                if written >= lines:
                    break
    return {"docs": written, "builds": made, "sizes": sizes, "raw_bytes": raw_bytes, "gz_bytes": path.stat().st_size}


def _write_round(out: Any, seed: int, build: gen.Build, k: int) -> tuple[int, int]:
    """Write round ``k`` of ``build``'s documents (seeded by both) to ``out``; returns (lines, bytes)."""
    n = nbytes = 0
    for doc in gen.build_documents(random.Random(f"{seed}:{build.uuid}:{k}"), build):
        line = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        out.write(line)
        nbytes += len(line)
        n += 1
    return n, nbytes


def _write_fixed_builds(path: Path, lines: int, seed: int, nbuilds: int) -> dict[str, Any]:
    """:func:`write_corpus` with exactly ``nbuilds`` builds (the same ones for any ``lines``)."""
    rng = random.Random(seed)
    made: list[gen.Build] = []
    while len(made) < nbuilds:
        made += gen.generate_builds(rng, 50)
    del made[nbuilds:]
    weights = [BIG_ROUNDS if i % 100 == 0 else 1 for i in range(nbuilds)]
    total_weight = sum(weights)
    written = raw_bytes = cumulative = 0
    sizes: dict[str, int] = {}
    with gzip.open(path, "wb", compresslevel=6) as out:
        for build, weight in zip(made, weights, strict=True):
            cumulative += weight
            target = lines * cumulative // total_weight  # where the lines written so far should be
            size = k = 0
            while k == 0 or written < target:
                n, nbytes = _write_round(out, seed, build, k)
                raw_bytes += nbytes
                written += n
                size += n
                k += 1
            sizes[build.uuid] = size
    return {"docs": written, "builds": made, "sizes": sizes, "raw_bytes": raw_bytes, "gz_bytes": path.stat().st_size}


def fingerprints(n: int, seed: int) -> list[qa.Query]:
    """The sample's fingerprints plus synthetic ones from the generator's vocabulary."""
    rng = random.Random(seed)
    out: list[qa.Query] = []
    for bug in gen.BUGS:
        parts = []
        for clause in bug.query.split(" AND "):
            name, _, text = clause.partition(":")
            parts.append(_phrase(name.strip(), text.strip().strip('"')))
        out.append(qa.Bool(must=tuple(parts)))
    texts = [t for t in gen._INFO_TEXTS + gen._WARNING_TEXTS + gen._DEBUG_TEXTS]
    words = sorted({w for t in texts for w in tokenize(t.format(req="r", ip="i", ms=1, sec=2, host="h", inst="x")) if w.isalpha()})
    files = ["screen-n-cpu.txt", "screen-q-svc.txt", "job-output.txt", "screen-c-vol.txt", "syslog"]
    while len(out) < n:
        kind = rng.random()
        if kind < 0.5:  # a phrase from a real template, often with a made-up word: rarely matches
            t = rng.choice(texts).format(req="r", ip="i", ms=1, sec=2, host="h", inst="x")
            toks = [w for w in tokenize(t) if w.isalpha()]
            start = rng.randrange(max(len(toks) - 3, 1))
            phrase = toks[start : start + rng.randint(2, 4)]
            if rng.random() < 0.7:
                phrase.append(f"bug{len(out)}")
            clauses: list[qa.Query] = [qa.Phrase("message", tuple(phrase), tuple(range(len(phrase))))]
        elif kind < 0.8:  # several rare words
            clauses = [qa.Term("message", f"nosuch{len(out)}"), qa.Term("message", rng.choice(words))]
        else:  # common words, an OR and a NOT
            clauses = [
                qa.Bool(should=(qa.Term("message", rng.choice(words)), qa.Term("message", rng.choice(words)))),
                qa.Bool(must=(qa.MatchAll(),), must_not=(qa.Term("message", rng.choice(words)),)),
            ]
        clauses.append(_phrase("tags", rng.choice(files)))
        out.append(qa.Bool(must=tuple(clauses)))
    return out[:n]


def timed(fn: Callable[[], Any], repeat: int, cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds of each call (and, into ``cpu``, the process's CPU milliseconds)."""
    out = []
    for _ in range(repeat):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c) * 1000)
    return out


def _status_kb(name: str) -> int | None:
    """A ``/proc/self/status`` value in kB (None where there is no procfs)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _median_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
    return statistics.median(ordered), p90


def corpus_info(corpus: Path, lines: int, seed: int, builds: int | None = None) -> tuple[dict[str, Any], float]:
    """The corpus at ``corpus`` (and its generation time): reused when a previous run of the same
    ``lines``, ``seed`` and ``builds`` kept it there (its build list beside it, ``.meta.pickle``), else generated."""
    meta = corpus.with_name(corpus.name + ".meta.pickle")
    key: tuple[int, ...] = (lines, seed) if builds is None else (lines, seed, builds)
    if corpus.exists() and meta.exists():
        with open(meta, "rb") as f:
            kept = pickle.load(f)
        if kept.get("key") == key and kept["info"]["gz_bytes"] == corpus.stat().st_size:
            return kept["info"], kept["generate_s"]
    t = time.perf_counter()
    info = write_corpus(corpus, lines, seed, builds)
    gen_s = time.perf_counter() - t
    with open(meta, "wb") as f:
        pickle.dump({"key": key, "info": info, "generate_s": gen_s}, f)
    return info, gen_s


def run(
    lines: int,
    nfp: int,
    seed: int,
    store_path: Path | None,
    phases: argparse.Namespace | None = None,
    corpus_path: Path | None = None,
    nbuilds: int | None = None,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-", dir=os.environ.get("BENCH_TMPDIR")))
    corpus = corpus_path or tmp / "corpus.jsonl.gz"
    if corpus_path is not None:
        info, gen_s = corpus_info(corpus, lines, seed, nbuilds)
    else:
        t = time.perf_counter()
        info = write_corpus(corpus, lines, seed, nbuilds)
        gen_s = time.perf_counter() - t
    path = store_path or tmp / "store.db"
    reuse = path.exists()
    tokenize("warm up")  # compile the analyzer's tables outside the timing
    ingest: dict[str, Any] = {}
    if not reuse:
        store = EmbeddedStore(path)
        load_before = os.getloadavg()[0]
        cpu = time.process_time()
        stats = ingest_jsonl(store, corpus)
        cpu = time.process_time() - cpu
        t = time.perf_counter()
        store.optimize()
        ingest = {
            "ingest_docs": stats.docs,
            "ingest_s": round(stats.seconds, 2),
            "ingest_lines_per_s": round(stats.docs / stats.seconds),
            "ingest_cpu_s": round(cpu, 2),
            "ingest_load_avg": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
            "optimize_s": round(time.perf_counter() - t, 2),
        }
        store.close()
        partial("ingest", ingest)
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    builds: list[gen.Build] = info["builds"]
    rng = random.Random(seed + 1)
    sample = [b.uuid for b in rng.sample(builds, min(20, len(builds)))]
    sizes: dict[str, int] = info["sizes"]
    biggest = [b.uuid for b in sorted(builds, key=lambda b: -sizes[b.uuid])[:10]]
    # The queries run in a fresh process, like the bot's or the CLI's: nothing
    # of the ingest (caches, freed memory) is in it, and its RSS is its own.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        queries = pool.submit(query_phases, path, sample, biggest, nfp, seed).result()
    partial("queries", queries)
    ingest_rss = round((_status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1)
    extra = run_phases(phases, corpus, info["docs"], path, builds) if phases is not None else {}
    if phases is not None and phases.reclaim:
        # What the first `prune` does to it (FTS5 merge, VACUUM into incremental auto-vacuum):
        # the size of a store after its first day of retention.
        t = time.perf_counter()
        with EmbeddedStore(path) as store:
            store.reclaim_space()
        reclaimed = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        extra["reclaim_s"] = round(time.perf_counter() - t, 1)
        extra["store_reclaimed_mb"] = round(reclaimed / 1e6, 1)
        extra["store_reclaimed_bytes_per_line"] = round(reclaimed / info["docs"])
        extra["store_reclaimed_vs_jsonl"] = round(reclaimed / info["raw_bytes"], 3)
    if "report_graph_uncategorized_s" in extra and builds:
        # What issue 19 asks to grow with the builds, not the lines: per build (wall and CPU).
        extra["report_graph_uncategorized_ms_per_build"] = round(extra["report_graph_uncategorized_s"] * 1000 / len(builds), 2)
        extra["report_graph_uncategorized_cpu_ms_per_build"] = round(
            extra["report_graph_uncategorized_cpu_s"] * 1000 / len(builds), 2)
        extra["report_lines_per_build"] = round(info["docs"] / len(builds))
    if "lucene_docs_per_s" in extra and "ingest_lines_per_s" in ingest:
        extra["ingest_vs_lucene"] = round(ingest["ingest_lines_per_s"] / extra["lucene_docs_per_s"], 2)
    shutil.rmtree(tmp, ignore_errors=True)  # the corpus and the store, unless --corpus and --store put them elsewhere
    return {
        "lines": info["docs"],
        "builds": len(builds),
        "fingerprints": nfp,
        "generate_s": round(gen_s, 1),
        **ingest,
        "ingest_peak_rss_mb": ingest_rss,
        "jsonl_mb": round(info["raw_bytes"] / 1e6, 1),
        "jsonl_gz_mb": round(info["gz_bytes"] / 1e6, 1),
        "store_mb": round(size / 1e6, 1),
        "store_bytes_per_line": round(size / info["docs"]),
        "jsonl_bytes_per_line": round(info["raw_bytes"] / info["docs"]),
        "jsonl_gz_bytes_per_line": round(info["gz_bytes"] / info["docs"]),
        "store_vs_jsonl": round(size / info["raw_bytes"], 3),
        "store_vs_jsonl_gz": round(size / info["gz_bytes"], 2),
        **queries,
        "classify_build_lines": statistics.median(sizes[u] for u in biggest),
        **extra,
    }


def query_phases(path: Path, sample: list[str], biggest: list[str], nfp: int, seed: int) -> dict[str, Any]:
    """The query measurements, on a freshly opened store (run in a process of its own)."""
    tokenize("warm up")
    fps = fingerprints(nfp, seed)
    store = EmbeddedStore(path)

    # 1. one phrase fingerprint, one build (what the bot asks for one bug)
    fp = fps[3]  # the DB deadlock fingerprint
    per_build = []
    for uuid in sample:
        spec = QuerySpec(filters=Filters(build_uuid=uuid))
        per_build += timed(functools.partial(store.search, spec, size=1, query=fp), 3)

    # 2. hourly histogram over everything for one fingerprint
    hist = timed(lambda: store.build_histogram(QuerySpec(), timedelta(hours=1), query=fp), 5)
    count = store.count_builds(QuerySpec(), query=fp)

    # 3. classify: 1,000 fingerprints against one build
    queries_hwm = _status_kb("VmHWM")
    rss_reset = _reset_peak_rss()
    load_before = os.getloadavg()[0]
    cold, fresh, warm = [], [], []
    cold_cpu: list[float] = []
    for uuid in biggest:
        specs = [QuerySpec(filters=Filters(build_uuid=uuid), label=str(i)) for i in range(len(fps))]
        classify = functools.partial(store.msearch, specs, size=1, queries=fps)
        cold += timed(classify, 1, cold_cpu)
        for entry in store.percolator.builds.values():  # keep the loaded index, forget evaluated clauses
            entry.memo.clear()
        fresh += timed(classify, 1)
        warm += timed(classify, 3)
    specs = [QuerySpec(filters=Filters(build_uuid=biggest[0]), label=str(i)) for i in range(len(fps))]
    matched = sum(r.total > 0 for r in store.msearch(specs, size=1, queries=fps))
    classify_load = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    hwm = _status_kb("VmHWM")
    # (ru_maxrss would count the pages a spawned child shared with its parent before exec)
    peak_kb = max(hwm or 0, queries_hwm or 0) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.close()
    cold_med, cold_p90 = _median_p90(cold)
    warm_med, warm_p90 = _median_p90(warm)
    return {
        "build_phrase_ms": round(statistics.median(per_build), 2),
        "build_phrase_p95_ms": round(sorted(per_build)[int(len(per_build) * 0.95) - 1], 2),
        "histogram_ms": round(statistics.median(hist), 1),
        "histogram_builds": count,
        "classify_cold_ms": round(cold_med, 1),
        "classify_cold_p90_ms": round(cold_p90, 1),
        "classify_cold_cpu_ms": round(statistics.median(cold_cpu), 1),
        "classify_eval_ms": round(statistics.median(fresh), 1),
        "classify_warm_ms": round(warm_med, 1),
        "classify_warm_p90_ms": round(warm_p90, 1),
        "classify_load_avg": classify_load,
        "classify_matched_in_first_build": matched,
        "classify_rss_mb": round((hwm if rss_reset and hwm is not None else peak_kb) / 1024, 1),
        "query_process_peak_rss_mb": round(peak_kb / 1024, 1),
        "classify_cold_all_ms": [round(x, 1) for x in cold],
    }


def table(result: dict[str, Any]) -> str:
    rows = [f"{'measure':<34} {'value':>14}  target"]
    for key, value in result.items():
        target = TARGETS.get(key)
        mark = ""
        if target is not None:
            op, bound = target
            ok = value >= bound if op == ">=" else value <= bound
            mark = f"{op} {bound:,}  {'ok' if ok else 'MISSED'}"
        shown = f"{value:,}" if isinstance(value, (int, float)) else str(value)
        rows.append(f"{key:<34} {shown:>14}  {mark}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks store", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="log lines (documents) to generate")
    ap.add_argument("--fingerprints", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--builds", type=int, default=None,
                    help="hold the builds at this many and make each build's files longer as --lines grows "
                         "(default: builds grow with the lines, ~144 lines a build)")
    ap.add_argument("--store", type=Path, default=None, help="store file to create (or reuse when it exists)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="where to keep the generated .jsonl.gz (reused by a later run of the same --lines and --seed)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_arguments(ap)
    args = ap.parse_args(argv)
    result = run(args.lines, args.fingerprints, args.seed, args.store, args, args.corpus, args.builds)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The store benchmark's whole-system phases (``python -m benchmarks store``), each in a fresh process.

* :func:`lucene_phase`: real Lucene's single-threaded indexing rate on the same
  documents (``../shared/tools/lucene-oracle``: it reports the seconds it took
  to index; one ``IndexWriter`` fed by one thread, serial GC). Above
  ``sample`` documents it indexes an even sample of them (every k-th line),
  so the oracle's in-memory index stays a few hundred MB.
* :func:`report_phase`: what the cron job computes and writes for 1,000
  fingerprint files over the 10 days: ``graph`` (graph.json),
  ``uncategorized`` (its pages and JSON) and the whole site (``render``):
  seconds and CPU seconds, the process's peak RSS and its peak anonymous
  memory (sampled: RSS also counts the store's memory-mapped pages).
* :func:`bot_phase`: the bot (:mod:`benchmarks.bench_bot`'s throughput phase:
  the real :class:`~elastic_recheck.bot.service.Bot`, four workers) replaying
  Gerrit events whose failure reports name the store's failed builds; its
  peak RSS and anonymous memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ORACLE = ROOT.parent / "shared" / "tools" / "lucene-oracle" / "oracle"
#: Documents the oracle indexes at most (an even sample above that).
LUCENE_SAMPLE = 1_000_000

_INDEXED = re.compile(r"indexed (\d+) docs in ([0-9.]+)s")


def in_fresh_process(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a spawned process: its memory figures are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def lucene_phase(corpus: Path, docs: int, tmp: Path, sample: int = LUCENE_SAMPLE) -> dict[str, Any]:
    """Index (a sample of) the corpus with the Lucene oracle; its own indexing time and CPU."""
    oracle = Path(os.environ.get("LUCENE_ORACLE", ORACLE))
    if not oracle.exists():
        return {"lucene": f"skipped: no oracle at {oracle}"}
    step = max(1, -(-docs // sample))  # ceil: at most `sample` documents
    sample_path = tmp / "lucene-docs.jsonl"
    n = 0
    with gzip.open(corpus, "rb") as src, open(sample_path, "wb") as out:
        for i, line in enumerate(src):
            if i % step:
                continue
            doc = json.loads(line)
            doc["id"] = str(i)
            out.write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
            n += 1
    queries = tmp / "lucene-queries.jsonl"
    queries.write_text('{"qid": "q", "query": "message:error"}\n', encoding="utf-8")
    env = dict(os.environ, ORACLE_JAVA_OPTS="-XX:+UseSerialGC -Xmx4g")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([str(oracle), str(sample_path), str(queries)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample_path.unlink()
    m = _INDEXED.search(proc.stderr)
    if proc.returncode != 0 or m is None:
        return {"lucene": f"failed: {proc.stderr.strip()[-300:]}"}
    indexed, seconds = int(m.group(1)), float(m.group(2))
    return {
        "lucene_docs": indexed,
        "lucene_sample": "all" if step == 1 else f"every {step}th line",
        "lucene_index_s": seconds,
        "lucene_docs_per_s": round(indexed / seconds),
        "lucene_process_wall_s": round(wall, 1),
        "lucene_process_cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
    }


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _limit_memory() -> int:
    """Cap this process's address space (``BENCH_PHASE_MEM_GB``, default 8): a phase that
    outgrows it fails with MemoryError, reported in the table, instead of swapping the machine."""
    gb = int(os.environ.get("BENCH_PHASE_MEM_GB", "8"))
    resource.setrlimit(resource.RLIMIT_AS, (gb << 30, gb << 30))
    return gb


def report_phase(store_path: Path, nfp: int, seed: int, work: Path, render: bool = True) -> dict[str, Any]:
    """graph + uncategorized (+ render) (see :func:`_report`), within :func:`_limit_memory`."""
    gb = _limit_memory()
    try:
        return _report(store_path, nfp, seed, work, render)
    except MemoryError:
        return {"report": f"failed: MemoryError (address space capped at {gb} GB)", "report_peak_rss_mb": _peak_rss_mb()}


def _report(store_path: Path, nfp: int, seed: int, work: Path, render: bool) -> dict[str, Any]:
    """graph + uncategorized (+ render) for ``nfp`` fingerprint files over the sample's 10 days."""
    from benchmarks.bench_bot import RssSampler
    from benchmarks.bench_startup import write_queries
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.core.config import from_mapping
    from elastic_recheck.core.fingerprint_loading import load_fingerprints
    from elastic_recheck.report.graph import collect_bug_stats, graph_json
    from elastic_recheck.report.health import probe_backend
    from elastic_recheck.report.site import render_site
    from elastic_recheck.report.site_data import collect_uncategorized_data
    from elastic_recheck.report.site_pages import write_json, write_uncategorized
    from elastic_recheck.report.window import ReportWindow
    from sample import generate as gen

    queries = work / "queries"
    write_queries(queries, nfp, seed)
    loaded = load_fingerprints(queries)
    config = from_mapping({})
    window = ReportWindow(now=gen.END, days=gen.DAYS)
    # as the report commands open it (`AppContext.store(scan=True)`)
    backend = EmbeddedStore(store_path, scan=True)
    out: dict[str, Any] = {"report_load_avg": f"{os.getloadavg()[0]:.1f}"}
    # RSS counts the store's memory-mapped pages the queries touched (all of
    # the file, up to SQLite's 2 GiB cap: shared page cache, not the process's
    # own): the sampled anonymous memory is the report's own.
    sampler = RssSampler(lambda: 0, interval=0.5)
    sampler.start()
    cpu = time.process_time()
    t = time.perf_counter()
    probe = probe_backend(backend)
    stats = collect_bug_stats(backend, [fp for fp in loaded.fingerprints if not fp.suppress_graph], window)
    write_json(work / "graph.json", graph_json(stats, window, last_indexed=probe.newest_event, status=probe.status))
    out["report_graph_s"] = round(time.perf_counter() - t, 2)
    graph_cpu = time.process_time() - cpu
    t = time.perf_counter()
    data = collect_uncategorized_data(backend, loaded, config, window)
    write_uncategorized(data, work / "uncategorized")
    out["report_uncategorized_s"] = round(time.perf_counter() - t, 2)
    uncategorized_cpu = time.process_time() - cpu - graph_cpu
    # The units the two grow with (issue 19): graph, the (fingerprint, matched build) pairs it
    # summarizes; uncategorized, the failed gate builds it classifies against every fingerprint.
    pairs = sum(len(s.builds) for s in stats)
    out["report_graph_cpu_s"] = round(graph_cpu, 2)
    out["report_graph_matched_pairs"] = pairs
    out["report_graph_cpu_us_per_pair"] = round(graph_cpu * 1e6 / max(1, pairs), 1)
    out["report_uncategorized_cpu_s"] = round(uncategorized_cpu, 2)
    out["report_uncategorized_cpu_ms_per_failed_build"] = round(
        uncategorized_cpu * 1000 / max(1, data.uncategorized.overall.failed), 1)
    out["report_graph_uncategorized_s"] = round(out["report_graph_s"] + out["report_uncategorized_s"], 2)
    out["report_graph_uncategorized_cpu_s"] = round(time.process_time() - cpu, 2)
    out["report_failed_gate_builds"] = data.uncategorized.overall.failed
    out["report_peak_rss_graph_uncategorized_mb"] = _peak_rss_mb()
    out["report_peak_anon_graph_uncategorized_mb"] = round(max(a for _, _, a, _ in sampler.samples), 1)
    if render:
        cpu = time.process_time()
        t = time.perf_counter()
        site = render_site(backend, loaded, config, work / "site", window=window)
        out["report_render_s"] = round(time.perf_counter() - t, 2)
        out["report_render_cpu_s"] = round(time.process_time() - cpu, 2)
        out["report_total_s"] = round(out["report_graph_uncategorized_s"] + out["report_render_s"], 2)
        out["report_site_files"] = site.files
    backend.close()
    sampler.stop()
    out["report_peak_rss_mb"] = _peak_rss_mb()
    out["report_peak_anon_mb"] = round(max(a for _, _, a, _ in sampler.samples), 1)
    return out


def bot_phase(store_path: Path, builds: list[Any], nfp: int, events: int, seed: int, work: Path) -> dict[str, Any]:
    """The bot's throughput phase (every event at once) on the store; its memory."""
    import logging

    gb = _limit_memory()

    from benchmarks.bench_bot import bench_fingerprints, make_events, phase_throughput
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    logging.basicConfig(level=logging.ERROR)
    fps = bench_fingerprints(nfp, seed)
    evs, reports = make_events(builds, events, 200, seed)
    try:
        with EmbeddedStore(store_path, mmap_size=0) as store:  # as `elastic-recheck bot` opens it
            r = phase_throughput(store, fps, evs, 4, work, passes=1)
    except MemoryError:
        return {"bot": f"failed: MemoryError (address space capped at {gb} GB)", "bot_peak_rss_mb": _peak_rss_mb()}
    return {
        "bot_fingerprints": len(fps),
        "bot_events": r["events"],
        "bot_failure_reports": r["failure_reports_queued"],
        "bot_failure_reports_per_s": r["failure_reports_per_s"],
        "bot_backlog_p50_ms": r["backlog_p50_ms"],
        "bot_peak_rss_mb": r["peak_rss_mb"],
        "bot_peak_anon_mb": r["peak_anon_mb"],
    }


def partial(phase: str, values: dict[str, Any]) -> None:
    """A finished phase's figures, on stderr at once: a long run stopped early keeps them."""
    print(f"[{phase} done] {json.dumps(values)}", file=sys.stderr, flush=True)


def run_phases(args: argparse.Namespace, corpus: Path, docs: int, store_path: Path, builds: list[Any]) -> dict[str, Any]:
    """The phases ``args`` asks for (``--no-lucene``, ``--no-report``, ``--no-bot`` leave one out)."""
    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-store-phases-"))
    try:
        if not args.no_lucene:
            out.update(lucene_phase(corpus, docs, work, args.lucene_sample))
            partial("lucene", out)
        if not args.no_report:
            report = in_fresh_process(report_phase, store_path, args.fingerprints, args.seed, work / "report", args.render)
            partial("report", report)
            out.update(report)
        if not args.no_bot:
            (work / "bot").mkdir()
            bot = in_fresh_process(bot_phase, store_path, builds, args.fingerprints, args.bot_events, args.seed, work / "bot")
            partial("bot", bot)
            out.update(bot)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--no-lucene", action="store_true", help="skip real Lucene's indexing rate")
    ap.add_argument("--lucene-sample", type=int, default=LUCENE_SAMPLE,
                    help="documents the Lucene oracle indexes at most (an even sample of the corpus above that)")
    ap.add_argument("--no-report", action="store_true", help="skip graph + uncategorized + render")
    ap.add_argument("--no-render", dest="render", action="store_false",
                    help="graph + uncategorized only (render, the whole site, grows with the hits and takes longest)")
    ap.add_argument("--no-bot", action="store_true", help="skip the bot's replay")
    ap.add_argument("--bot-events", type=int, default=2000, help="Gerrit events the bot replays")
    ap.add_argument("--no-reclaim", dest="reclaim", action="store_false",
                    help="skip the last step: the store's size after what the first `prune` does (FTS5 merge, VACUUM)")

"""Load-test the bot: replay a day's worth of Gerrit events against a big embedded store.

    python -m benchmarks bot                                  # 10,000 events, 1,000,000-line store
    python -m benchmarks bot --events 2000 --lines 100000     # small run (a minute)
    python -m benchmarks bot --store /tmp/bot-bench.db        # keep (or reuse) the store file

What runs is the real :class:`elastic_recheck.bot.service.Bot` (scheduler, worker
pool, SQLite state, classifier, comment formatting, IRC routing) on the real
:class:`~elastic_recheck.adapters.sqlite.store.EmbeddedStore`; only the reviewer is
a recorder (it notes when each comment would be posted) and IRC messages are
routed but not sent.

* **Store**: documents from the store benchmark's generator
  (:func:`benchmarks.bench_store.write_corpus`, i.e. ``sample/generate.py``:
  its jobs, files, vocabulary and injected bugs), ``--lines`` of them.
* **Fingerprints**: the sample's seven (``queries/``) plus synthetic ones
  rendered from :func:`benchmarks.bench_store.fingerprints` (``--fingerprints``
  in all; production has about a hundred), leaving out its "common words"
  kind that matches most builds (real builds match zero to two bugs).
* **Events**: ``--events`` Gerrit events in a realistic mix: most are not
  failure reports (``patchset-created``, ``change-merged``, human comments,
  "Build succeeded", "Starting ... jobs"), about 15 % are Zuul "Build failed"
  reports of the generated failed buildsets, spread over ``--changes``
  changes (several patch sets and rechecks each), plus duplicates and a few
  malformed events.

Two phases, each on fresh bot state (the logs are indexed before the events
arrive, so "logs ready" is the moment the event is accepted):

1. **latency**: ``--latency-events`` failure reports submitted at ``--rate``
   per second; p50/p99 time from acceptance to the comment;
2. **throughput**: every event submitted as fast as one thread can (like a
   stream backlog after an outage), ``--passes`` times (later passes report
   the same builds on new patch sets, so they are processed again);
   events/s until the bot is idle, the same latency figures (now including
   queueing), and the process memory sampled every 0.25 s: RSS and its
   anonymous part (the rest of the RSS is the store file mapped by SQLite's
   ``mmap_size`` in each connection when ``--mmap-mb`` is not 0: shared,
   reclaimable page cache, counted once per mapping; the bot runs with 0). Growth is the anonymous memory at the end of the last
   pass minus that at the end of the first (caches are warm by then; a leak
   keeps growing with every pass).

The replay runs in a fresh process (``multiprocessing`` spawn), so the
memory figures are the bot's own, not the generator's or the ingest's.

``--malloc-arenas N`` sets ``MALLOC_ARENA_MAX`` for the replay process (glibc
gives each worker thread its own heap arena by default).

Targets: peak anonymous memory <= 300 MB, no growth between passes.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_store import fingerprints as synthetic_fingerprints
from benchmarks.bench_store import write_corpus
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.notify import IrcReporter
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.channels import parse_channel_config
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene import parser as lucene
from elastic_recheck.ingest.jsonl import ingest_jsonl
from sample.make_events import report_event

TARGETS = {"peak_anon_mb": ("<=", 300.0), "anon_growth_mb": ("<=", 20.0)}


# -- inputs ----------------------------------------------------------------------------


def bench_fingerprints(n: int, seed: int) -> list[Fingerprint]:
    real = load_fingerprints(ROOT / "queries").fingerprints
    out = list(real)
    known = {fp.query for fp in out}
    for i, q in enumerate(synthetic_fingerprints(3 * max(n, len(real)) + 50, seed)):
        if len(out) >= n:
            break
        if _matches_most_builds(q):
            continue
        text = lucene.to_string(q)
        if text in known:
            continue
        known.add(text)
        out.append(Fingerprint(bug=str(3_000_000 + i), query=text, bug_title=f"synthetic bug {i}"))
    return out[: max(n, len(real))]


def _matches_most_builds(q: qa.Query) -> bool:
    """The store benchmark's "common words, an OR and a NOT" fingerprints match most
    builds; real fingerprints match few (a comment naming 20 bugs is not realistic)."""
    return isinstance(q, qa.Bool) and any(isinstance(c, qa.Bool) and (c.should or c.must_not) for c in q.must)


def _other_event(rng: random.Random, change: int, patchset: int, now: int) -> dict[str, Any]:
    project = rng.choice(("openstack/nova", "openstack/neutron", "openstack/cinder"))
    chg = {"project": project, "branch": "master", "number": change, "url": f"https://review.example.org/{change}",
           "id": f"I{change:040x}", "subject": f"Change {change}", "status": "NEW"}
    ps = {"number": patchset, "revision": f"{change * 31 + patchset:040x}"}
    kind = rng.random()
    if kind < 0.40:
        return {"type": "patchset-created", "change": chg, "patchSet": ps, "uploader": {"username": "ada"}, "eventCreatedOn": now}
    if kind < 0.50:
        return {"type": "change-merged", "change": chg, "patchSet": ps, "submitter": {"username": "core"}, "eventCreatedOn": now}
    if kind < 0.55:
        return {"type": "ref-updated", "refUpdate": {"project": project, "refName": "refs/heads/master"}, "eventCreatedOn": now}
    if kind < 0.80:
        text = rng.choice(("recheck", "LGTM", "Please fix the nit in line 3.", "> Build failed (gate pipeline).\n\nrecheck"))
        return {"type": "comment-added", "change": chg, "patchSet": ps, "author": {"username": "ada"},
                "comment": f"Patch Set {patchset}: Code-Review+1\n\n{text}", "eventCreatedOn": now}
    pipeline = rng.choice(("check", "gate"))
    text = (f"Build succeeded ({pipeline} pipeline).\n\n- tox-py311 https://zuul.example.org/t/openstack/build/{rng.getrandbits(128):032x} : SUCCESS in 9m 02s"
            if kind < 0.95 else f"Starting {pipeline} jobs.")
    return {"type": "comment-added", "change": chg, "patchSet": ps, "author": {"username": "zuul"},
            "comment": f"Patch Set {patchset}:\n\n{text}", "eventCreatedOn": now}


def make_events(builds: list[Any], n: int, changes: int, seed: int) -> tuple[list[dict[str, Any]], int]:
    """``n`` events; returns them and how many are distinct failure reports."""
    rng = random.Random(seed)
    sets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in builds:
        sets[b.buildset].append(b.record())
    failed = [bs for bs in sets.values() if any(b["result"] == "FAILURE" and b["voting"] for b in bs)]
    rng.shuffle(failed)
    wanted = max(1, int(n * 0.15))
    failed = failed[:wanted]
    if len(failed) < wanted:
        print(f"note: only {len(failed)} failed buildsets in the store for {wanted} wanted failure reports", file=sys.stderr)
    base = 940_000
    patchsets: dict[int, int] = defaultdict(int)
    reports = []
    now = int(time.time())
    for i, bs in enumerate(failed):
        change = base + i % changes
        patchsets[change] += 1
        for b in bs:  # the same change number as the event (documents keep the generator's)
            b["change"] = change
            b["patchset"] = str(patchsets[change])
            b["ref_url"] = f"https://review.example.org/{change}"
        ev = report_event(bs)
        ev["eventCreatedOn"] = now
        reports.append(ev)
    dups = [dict(r) for r in rng.sample(reports, k=min(len(reports), max(1, len(reports) // 20)))]
    malformed: list[dict[str, Any]] = [
        {"type": "comment-added", "author": {"username": "zuul"}, "comment": "Build failed.\n\n- x http://l/1/2/gate/x/abcdef0/ : FAILURE",
         "change": {"number": "not-a-number"}, "patchSet": {"number": 1}},
    ] * max(1, n // 1000)
    others = [
        _other_event(rng, base + rng.randrange(changes * 5), rng.randint(1, 12), now)
        for _ in range(max(0, n - len(reports) - len(dups) - len(malformed)))
    ]
    # Failure reports spread evenly through the stream, the rest shuffled around them.
    rest = others + dups + malformed
    rng.shuffle(rest)
    events: list[dict[str, Any]] = []
    step = max(1, (len(rest) + len(reports)) // max(1, len(reports)))
    it = iter(rest)
    for r in reports:
        events.append(r)
        events.extend(x for _, x in zip(range(step - 1), it, strict=False))
    events.extend(it)
    return events[:n] if len(events) > n else events, len(reports)


# -- measurement --------------------------------------------------------------------------------


def memory_mb() -> tuple[float, float]:
    """(RSS, anonymous part of it) of this process in MB.

    The rest of the RSS is file-backed: the store's pages mapped by SQLite's
    ``mmap_size`` (shared page cache, reclaimable by the kernel, not a leak).
    """
    rss = anon = 0.0
    try:
        with open("/proc/self/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Anonymous:"):
                    anon = int(line.split()[1]) / 1024
    except OSError:  # older kernels: VmRSS only
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = anon = int(line.split()[1]) / 1024
    return rss, anon


def rss_mb() -> float:
    return memory_mb()[0]


class RssSampler(threading.Thread):
    """Samples (time, RSS MB, anonymous MB, events processed) every ``interval`` seconds."""

    def __init__(self, progress: Any, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.progress = progress
        self.samples: list[tuple[float, float, float, int]] = []
        self._halt = threading.Event()

    def _sample(self) -> None:
        rss, anon = memory_mb()
        self.samples.append((time.monotonic(), rss, anon, int(self.progress())))

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._sample()

    def at_progress(self, done: int) -> tuple[float, float]:
        """(RSS, anonymous) at the first sample where ``done`` events were processed."""
        for _, rss, anon, n in self.samples:
            if n >= done:
                return round(rss, 1), round(anon, 1)
        return round(self.samples[-1][1], 1), round(self.samples[-1][2], 1)


@dataclass
class TimedReviewer:
    """Records when each comment would be posted."""

    posted_at: dict[tuple[str, str], float] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def review(self, change: str, patchset: str, message: str) -> None:
        with self.lock:
            self.posted_at.setdefault((change, patchset), time.monotonic())
            self.count += 1

    def posted(self, change: str, patchset: str, message: str) -> bool | None:
        return None  # cannot tell (what a reviewer without a query answers)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _bot(store: EmbeddedStore, fps: list[Fingerprint], state_path: Path, workers: int) -> tuple[Bot, TimedReviewer, BotState]:
    state = BotState(state_path)
    reviewer = TimedReviewer()
    channels = parse_channel_config({"channels": {"openstack-qa": {"projects": ["all"], "events": ["positive", "negative"]}}})
    bot = Bot(store, fps, state, BotSettings(deadline_s=600, first_poll_s=1.0, workers=workers), reviewer=reviewer,
              notifier=IrcReporter(channels, None), actions_out=io.StringIO())
    return bot, reviewer, state


def _latencies(submitted: dict[tuple[str, str], float], reviewer: TimedReviewer) -> list[float]:
    return [(reviewer.posted_at[k] - t) * 1000 for k, t in submitted.items() if k in reviewer.posted_at]


def _key(event: dict[str, Any]) -> tuple[str, str]:
    return (str(event["change"]["number"]), str(event["patchSet"]["number"]))


def phase_latency(store: EmbeddedStore, fps: list[Fingerprint], reports: list[dict[str, Any]], rate: float,
                  workers: int, tmp: Path) -> dict[str, Any]:
    bot, reviewer, state = _bot(store, fps, tmp / "state-latency.db", workers)
    bot.start()
    submitted: dict[tuple[str, str], float] = {}
    t0 = time.monotonic()
    for i, ev in enumerate(reports):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        submitted[_key(ev)] = time.monotonic()
        bot.submit(ev)
    bot.wait_idle(600)
    bot.stop()
    state.close()
    lat = _latencies(submitted, reviewer)
    return {
        "latency_reports": len(reports),
        "latency_rate_per_s": rate,
        "latency_commented": len(lat),
        "ready_to_comment_p50_ms": round(_pct(lat, 50), 1),
        "ready_to_comment_p99_ms": round(_pct(lat, 99), 1),
        "ready_to_comment_max_ms": round(max(lat), 1) if lat else float("nan"),
    }


def _again(event: dict[str, Any], n: int) -> dict[str, Any]:
    """Pass ``n`` of a failure report: the same builds reported on a later patch set (a new key)."""
    if n == 0 or (event.get("author") or {}).get("username") != "zuul" or "patchSet" not in event:
        return event
    again = dict(event)
    again["patchSet"] = {**event["patchSet"], "number": int(event["patchSet"]["number"]) + 100 * n}
    return again


def phase_throughput(store: EmbeddedStore, fps: list[Fingerprint], events: list[dict[str, Any]], workers: int,
                     tmp: Path, passes: int = 1) -> dict[str, Any]:
    """Every event as fast as possible, ``passes`` times (failure reports on new patch sets each pass)."""
    bot, reviewer, state = _bot(store, fps, tmp / "state-throughput.db", workers)
    sampler = RssSampler(lambda: bot.stats["processed"] + bot.stats["timeouts"])
    sampler.start()
    bot.start()
    submitted: dict[tuple[str, str], float] = {}
    ends: list[tuple[float, float]] = []
    t0 = time.monotonic()
    submit_s = 0.0
    for n in range(passes):
        ts = time.monotonic()
        for ev in events:
            ev = _again(ev, n)
            key = bot.submit(ev)
            if key is not None:
                submitted.setdefault(_key(ev), time.monotonic())
        submit_s += time.monotonic() - ts
        bot.wait_idle(3600)
        rss, anon = memory_mb()
        ends.append((round(rss, 1), round(anon, 1)))
    wall = time.monotonic() - t0
    bot.stop()
    sampler.stop()
    counts = state.counts()
    state.close()
    lat = _latencies(submitted, reviewer)
    total = len(submitted)
    mem: dict[str, Any] = {}
    for pct in (10, 50, 90, 100):
        rss, anon = sampler.at_progress(max(1, total * pct // 100))
        mem[f"rss_at_{pct}pct_mb"] = rss
        mem[f"anon_at_{pct}pct_mb"] = anon
    mem["rss_anon_after_each_pass_mb"] = ends
    out = {
        "passes": passes,
        "events": len(events) * passes,
        "failure_reports_queued": total,
        "comments": reviewer.count,
        "state_counts": counts,
        "duplicates": bot.stats["duplicates"],
        "malformed": bot.stats["malformed"],
        "submit_s": round(submit_s, 2),
        "wall_s": round(wall, 2),
        "events_per_s": round(len(events) * passes / wall, 1),
        "failure_reports_per_s": round(total / wall, 2),
        "backlog_p50_ms": round(_pct(lat, 50), 1),
        "backlog_p99_ms": round(_pct(lat, 99), 1),
        **mem,
        "peak_rss_mb": round(max(s[1] for s in sampler.samples), 1),
        "peak_anon_mb": round(max(s[2] for s in sampler.samples), 1),
    }
    # Growth after warm-up: the end of the last pass against the end of the first
    # (caches are full by then; a leak keeps growing with every pass).
    if passes > 1:
        out["anon_growth_mb"] = round(ends[-1][1] - ends[0][1], 1)
        out["rss_growth_mb"] = round(ends[-1][0] - ends[0][0], 1)
    return out


def _replay(store_path: Path, fps: list[Fingerprint], events: list[dict[str, Any]], args: argparse.Namespace,
            tmp: Path) -> dict[str, Any]:
    """Both phases, each with its own store handle (its own SQLite connections)."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    result: dict[str, Any] = {"mmap_mb": args.mmap_mb, "rss_before_replay_mb": round(rss_mb(), 1)}
    store = EmbeddedStore(store_path, mmap_size=args.mmap_mb * 1024 * 1024)
    result.update(phase_throughput(store, fps, events, args.workers, tmp, args.passes))
    store.close()
    reports = [e for e in events if (e.get("author") or {}).get("username") == "zuul"
               and "Build failed" in str(e.get("comment", "")) and isinstance(e["change"].get("number"), int)]
    seen: set[tuple[str, str]] = set()
    distinct = [r for r in reports if not (_key(r) in seen or seen.add(_key(r)))]  # type: ignore[func-returns-value]
    store = EmbeddedStore(store_path, mmap_size=args.mmap_mb * 1024 * 1024)
    result.update(phase_latency(store, fps, distinct[: args.latency_events], args.rate, args.workers, tmp))
    store.close()
    return result


def _replay_child(queue: Any, *args: Any) -> None:
    queue.put(_replay(*args))


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bot-"))
    corpus = tmp / "corpus.jsonl.gz"
    t = time.perf_counter()
    info = write_corpus(corpus, args.lines, args.seed)
    result: dict[str, Any] = {"lines": info["docs"], "builds": len(info["builds"]),
                              "failed_builds": sum(1 for b in info["builds"] if b.result == "FAILURE"),
                              "generate_s": round(time.perf_counter() - t, 1)}
    path = args.store or tmp / "store.db"
    if not path.exists():
        with EmbeddedStore(path) as store:
            stats = ingest_jsonl(store, corpus)
            store.optimize()
        result["ingest_s"] = round(stats.seconds, 1)
    result["store_mb"] = round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6, 1)
    corpus.unlink()
    fps = bench_fingerprints(args.fingerprints, args.seed)
    events, nreports = make_events(info["builds"], args.events, args.changes, args.seed)
    result.update({"fingerprints": len(fps), "changes": args.changes, "failure_reports": nreports})
    # The replay runs in a fresh process, so its memory figures are the bot's alone
    # (not the generator's or the ingest's).
    if args.malloc_arenas:
        # Read by glibc when the child process starts (not settable from inside).
        os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arenas)
    result["malloc_arena_max"] = os.environ.get("MALLOC_ARENA_MAX", "glibc default")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_replay_child, args=(queue, path, fps, events, args, tmp))
    child.start()
    result.update(queue.get())
    child.join()
    return result


def table(result: dict[str, Any]) -> str:
    rows = []
    for key, value in result.items():
        target = TARGETS.get(key)
        mark = ""
        if target is not None and isinstance(value, (int, float)):
            op, bound = target
            ok = value >= bound if op == ">=" else value <= bound
            mark = f"{op} {bound:,}  {'ok' if ok else 'MISSED'}"
        shown = f"{value:,}" if isinstance(value, (int, float)) else str(value)
        rows.append(f"{key:<30} {shown:>22}  {mark}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks bot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000, help="Gerrit events replayed")
    ap.add_argument("--lines", type=int, default=1_000_000, help="log lines (documents) in the store")
    ap.add_argument("--changes", type=int, default=200, help="changes the failure reports are spread over")
    ap.add_argument("--fingerprints", type=int, default=100)
    ap.add_argument("--latency-events", type=int, default=300, help="failure reports of the paced latency phase")
    ap.add_argument("--rate", type=float, default=2.0, help="failure reports per second in the latency phase")
    ap.add_argument("--workers", type=int, default=4, help="bot workers ([recheckwatch] workers)")
    ap.add_argument("--passes", type=int, default=2, help="replays of the event list in the throughput phase "
                    "(later passes report the same builds on new patch sets); growth is measured between passes")
    ap.add_argument("--malloc-arenas", type=int, default=0, help="MALLOC_ARENA_MAX for the replay process "
                    "(0: glibc's default, 8 per core; each worker thread then gets its own heap arena)")
    ap.add_argument("--mmap-mb", type=int, default=0, help="MiB of the store each connection memory-maps; 0 like "
                    "'elastic-recheck bot' (mapped pages count in RSS once per worker connection)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--store", type=Path, default=None, help="store file to create (or reuse when it exists)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    result = run(args)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark failure signatures: is "probably not caused by this change" right, and what does it cost?

    python -m benchmarks signatures                    # 1,500 buildsets (~5,000 builds, ~650k lines)
    python -m benchmarks signatures --buildsets 300    # CI-size run
    python -m benchmarks signatures --store /tmp/s.db  # keep (or reuse) the store file

The history comes from the sample generator with ``--unknown-sources``
(``sample/generate.py``): every failure no injected bug explains has a known
source, either one of four unknown errors that fail builds of many changes
(``recurring-<k>``) or an error of that build alone (``oneoff-<uuid>``). The
failed builds are classified like the bot does, oldest first, with the
sample's fingerprints and failure signatures on; then:

* **precision** of the claim (``Recurring.claim``, ``--min-changes``): of
  the builds that got it, how many really fail with an error other changes
  have too (a recurring unknown source, or a known bug the fingerprints do
  not count there, e.g. on a non-voting job) [>= 95 %];
* **claims on one-offs** [0];
* **recall**: of the builds with a recurring unknown source that failed
  builds of at least ``--min-changes`` other changes in the 24 hours before
  (the ground truth), how many got the claim;
* **cluster purity and completeness** of the signatures against the sources
  (purity: the share of builds whose signature's majority source is their
  own; completeness: the share of builds whose source's majority signature is
  their own), over every signed build (known bugs on jobs their fingerprints
  do not count, e.g. non-voting ones, included) and over the unknown sources
  alone;
* **cost**: the signature step per unexplained build (median, p90, mean: the
  lookup, the backfill of the window amortized over the builds, the flaky
  check), and classification per failed build with and without signatures
  (``--fingerprints 993``: against 1,000 fingerprints, the sample's 7 and
  synthetic ones from the generator's vocabulary; some of those match
  ordinary lines, so the quality numbers are taken without them).

Prints a table and, with ``--json``, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sample.generate as gen  # noqa: E402
from elastic_recheck.adapters.sqlite.signatures import SignatureIndex  # noqa: E402
from elastic_recheck.adapters.sqlite.store import EmbeddedStore  # noqa: E402
from elastic_recheck.core.classify import BuildRef, Classifier  # noqa: E402
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene.analysis import tokenize  # noqa: E402
from elastic_recheck.core.signatures import SignatureService  # noqa: E402
from elastic_recheck.ingest.jsonl import ingest_jsonl  # noqa: E402

TARGETS = {"claim_precision": (">=", 0.95), "oneoff_claims": ("<=", 0), "signature_ms_mean": ("<=", 50.0)}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=gen.UTC)


def truth_label(build: dict[str, Any]) -> str:
    if build.get("unknown_source"):
        return str(build["unknown_source"])
    if build["injected_bugs"]:
        return "bug:" + "+".join(sorted(build["injected_bugs"]))
    return "none"


def recurring_truth(builds: list[dict[str, Any]], hours: float, min_changes: int) -> set[str]:
    """Builds whose true source failed builds of >= ``min_changes`` other changes in the ``hours`` before."""
    failed = sorted((b for b in builds if b["result"] == "FAILURE"), key=lambda b: b["end_time"])
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in failed:
        by_label[truth_label(b)].append(b)
    out: set[str] = set()
    for label, group in by_label.items():
        if not label.startswith("recurring-"):
            continue  # one-offs never recur; a known bug's other builds are explained, not peers
        for b in group:
            end = _when(b["end_time"])
            others = {
                o["change"] for o in group
                if o["change"] != b["change"] and end - timedelta(hours=hours) <= _when(o["end_time"]) <= end
            }
            if len(others) >= min_changes:
                out.add(b["uuid"])
    return out


def purity(clusters: dict[str, list[str]], labels: dict[str, str]) -> float:
    total = sum(len(v) for v in clusters.values())
    if not total:
        return 0.0
    return sum(Counter(labels[u] for u in members).most_common(1)[0][1] for members in clusters.values()) / total


def synthetic_fingerprints(n: int, seed: int) -> list[Fingerprint]:
    """``n`` extra fingerprints from the generator's vocabulary (phrases with a made-up word: they
    rarely match, like most of a real queries/ directory), to classify against 1,000 of them."""
    rng = random.Random(seed)
    texts = [t.format(req="r", ip="i", ms=1, sec=2, host="h", inst="x") for t in gen._INFO_TEXTS + gen._WARNING_TEXTS]
    files = ["screen-n-cpu.txt", "screen-q-svc.txt", "job-output.txt", "screen-c-vol.txt", "syslog"]
    out = []
    for i in range(n):
        words = [w for w in tokenize(rng.choice(texts)) if w.isalpha()]
        start = rng.randrange(max(len(words) - 3, 1))
        phrase = " ".join(words[start : start + rng.randint(2, 4)] + ([f"bug{i}"] if rng.random() < 0.7 else []))
        out.append(Fingerprint(bug=f"9{i:06d}", query=f'message:"{phrase}" AND tags:"{rng.choice(files)}"'))
    return out


def run(
    buildsets: int, seed: int, store_path: Path | None, min_changes: int, hours: float, extra_fingerprints: int = 0
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="er-bench-sig-"))
    try:
        return _run(tmp, buildsets, seed, store_path, min_changes, hours, extra_fingerprints)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    tmp: Path, buildsets: int, seed: int, store_path: Path | None, min_changes: int, hours: float, extra_fingerprints: int
) -> dict[str, Any]:
    summary = gen.write_sample(tmp, None, None, buildsets, seed, unknown_sources=True)
    builds = json.loads((tmp / "builds.json").read_text())["builds"]
    path = store_path or tmp / "store.db"
    t0 = time.perf_counter()
    if not path.exists():
        store = EmbeddedStore(path)
        ingest_jsonl(store, tmp / "logs.jsonl.gz")
        store.close()
    ingest_s = time.perf_counter() - t0
    fps = load_fingerprints(ROOT / "queries").fingerprints + synthetic_fingerprints(extra_fingerprints, seed)
    failed = sorted((b for b in builds if b["result"] == "FAILURE"), key=lambda b: (b["end_time"], b["uuid"]))

    # classification without signatures (the baseline), on a freshly opened store
    store = EmbeddedStore(path)
    plain = Classifier(store, fps)
    base_ms = []
    for b in failed:
        t = time.perf_counter()
        plain.classify(BuildRef(uuid=b["uuid"]))
        base_ms.append((time.perf_counter() - t) * 1000)
    store.close()

    # with signatures (a fresh index: every signature is computed during the run)
    index_path = tmp / "signatures.db"
    store = EmbeddedStore(path)
    service = SignatureService(store, SignatureIndex(index_path), hours=hours, min_changes=min_changes)
    sig_ms: list[float] = []
    real_describe = service.describe

    def timed_describe(info: Any) -> Any:
        t = time.perf_counter()
        try:
            return real_describe(info)
        finally:
            sig_ms.append((time.perf_counter() - t) * 1000)

    service.describe = timed_describe  # type: ignore[method-assign]
    classifier = Classifier(store, fps, signatures=service)
    with_ms = []
    results = {}
    for b in failed:
        t = time.perf_counter()
        results[b["uuid"]] = classifier.classify(BuildRef(uuid=b["uuid"]))
        with_ms.append((time.perf_counter() - t) * 1000)
    store.close()

    by_uuid = {b["uuid"]: b for b in builds}
    labels = {u: truth_label(by_uuid[u]) for u in results}
    signed = {u: r.signature for u, r in results.items() if r.signature is not None and not r.signature.signature.empty}
    claims = [u for u, s in signed.items() if s.recurring.claim(min_changes)]
    correct = [u for u in claims if not labels[u].startswith("oneoff-") and labels[u] != "none"]
    oneoff_claims = [u for u in claims if labels[u].startswith("oneoff-")]
    eligible = recurring_truth(builds, hours, min_changes) & set(signed)
    recall_hits = [u for u in eligible if u in set(claims)]
    clusters: dict[str, list[str]] = defaultdict(list)
    for u, s in signed.items():
        clusters[s.signature.key].append(u)
    by_source: dict[str, list[str]] = defaultdict(list)
    sig_of = {u: s.signature.key for u, s in signed.items()}
    for u in signed:
        by_source[labels[u]].append(u)
    oneoffs = sum(1 for u in signed if labels[u].startswith("oneoff-"))
    unknown = {u: sig_of[u] for u in signed if labels[u].startswith(("recurring-", "oneoff-"))}
    unknown_clusters: dict[str, list[str]] = defaultdict(list)
    unknown_sources: dict[str, list[str]] = defaultdict(list)
    for u, key in unknown.items():
        unknown_clusters[key].append(u)
        unknown_sources[labels[u]].append(u)

    def med_p90(values: list[float]) -> tuple[float, float]:
        if not values:
            return 0.0, 0.0
        ordered = sorted(values)
        return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    sig_med, sig_p90 = med_p90(sig_ms)
    base_med, _ = med_p90(base_ms)
    with_med, _ = med_p90(with_ms)
    return {
        "buildsets": buildsets,
        "seed": seed,
        "builds": summary["builds"],
        "documents": summary["documents"],
        "failed_builds": len(failed),
        "ingest_s": round(ingest_s, 1),
        "unknown_sources": summary.get("unknown_sources", {}),
        "signed_builds": len(signed),
        "signed_oneoffs": oneoffs,
        "claims": len(claims),
        "claim_precision": round(len(correct) / len(claims), 4) if claims else None,
        "oneoff_claims": len(oneoff_claims),
        "recall_eligible": len(eligible),
        "recall": round(len(recall_hits) / len(eligible), 4) if eligible else None,
        "clusters": len(clusters),
        "cluster_purity": round(purity(clusters, labels), 4),
        "cluster_completeness": round(purity(dict(by_source), sig_of), 4),
        "unknown_cluster_purity": round(purity(unknown_clusters, labels), 4),
        "unknown_cluster_completeness": round(purity(unknown_sources, sig_of), 4),
        "claims_on_known_bugs": sum(1 for u in claims if labels[u].startswith("bug:")),
        "signature_ms_median": round(sig_med, 1),
        "signature_ms_p90": round(sig_p90, 1),
        "signature_ms_mean": round(statistics.fmean(sig_ms), 1) if sig_ms else 0.0,
        "classify_ms_mean_without": round(statistics.fmean(base_ms), 1),
        "classify_ms_mean_with": round(statistics.fmean(with_ms), 1),
        "classify_ms_median_without": round(base_med, 1),
        "classify_ms_median_with": round(with_med, 1),
        "fingerprints": len(fps),
        "min_changes": min_changes,
        "hours": hours,
        "load_avg": round(os.getloadavg()[0], 1),
    }


def table(result: dict[str, Any]) -> str:
    rows = []
    for key, value in result.items():
        target = TARGETS.get(key)
        mark = ""
        if target is not None and value is not None:
            op, limit = target
            ok = value >= limit if op == ">=" else value <= limit
            mark = f"  [{op} {limit}: {'ok' if ok else 'MISSED'}]"
        rows.append(f"{key:28} {value}{mark}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildsets", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=gen.SEED)
    ap.add_argument("--store", type=Path, default=None, help="store file to create (or reuse when it exists)")
    ap.add_argument("--min-changes", type=int, default=2)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--fingerprints", type=int, default=0,
                    help="synthetic fingerprints added to the sample's 7 (993: 1,000 in all, for the cost; they also explain some builds)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.buildsets, args.seed, args.store, args.min_changes, args.hours, args.fingerprints)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

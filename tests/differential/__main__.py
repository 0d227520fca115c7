"""Measure the query paths against the Lucene oracle, or record regression cases.

    python -m tests.differential measure [--seeds 0:50] [--queries 400]
        generated corpora, both modes: agreement with the oracle per mode and
        path; every disagreement is printed as one JSON line (keep them with
        ``record``).
    python -m tests.differential record CASES.jsonl
        each line ``{"name": ..., "docs": [...], "queries": [...]}``: the oracle's
        answers in both modes are added to ``regressions.json``.

Needs Java 17 and the oracle beside the checkout (``../shared/tools/lucene-oracle``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.differential import oracle
from tests.differential.generate import corpus
from tests.differential.paths import PATHS, Corpus
from tests.differential.regressions import REGRESSIONS, load, save


def measure(seeds: range, count: int) -> int:
    agree: dict[tuple[str, str], list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            docs, queries = corpus(seed, count=count)
            for es_mode in (True, False):
                mode = "es" if es_mode else "lucene"
                work = Path(tmp) / f"{seed}-{mode}"
                work.mkdir()
                paths = Corpus(docs, work, es_mode)
                try:
                    got = paths.outcomes(queries)
                finally:
                    paths.close()
                expected = oracle.run(paths.docs, queries, es_mode, work)
                for i, query in enumerate(queries):
                    for path in PATHS:
                        tally = agree.setdefault((mode, path), [0, 0])
                        tally[1] += 1
                        tally[0] += got[path][i] == expected[i]
                    if any(got[p][i] != expected[i] for p in PATHS):
                        row = {"seed": seed, "mode": mode, "query": query, "oracle": expected[i]}
                        row.update({p: got[p][i] for p in PATHS})
                        print(json.dumps(row, ensure_ascii=False))
    print("| mode | path | queries | agree with Lucene |", file=sys.stderr)
    print("| --- | --- | ---: | ---: |", file=sys.stderr)
    for (mode, path), (same, total) in sorted(agree.items()):
        print(f"| {mode} | {path} | {total:,} | {same:,} ({100.0 * same / total:.2f} %) |", file=sys.stderr)
    return 0


def record(cases_file: Path) -> int:
    data = load()
    with tempfile.TemporaryDirectory() as tmp:
        for line in cases_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            answers = {
                mode: oracle.run(case["docs"], case["queries"], mode == "es", Path(tmp)) for mode in ("es", "lucene")
            }
            data["corpora"].append(
                {
                    "name": case["name"],
                    "docs": case["docs"],
                    "cases": [
                        {"query": q, "es": answers["es"][i], "lucene": answers["lucene"][i]}
                        for i, q in enumerate(case["queries"])
                    ],
                }
            )
    save(data)
    print(f"{REGRESSIONS}: {sum(len(c['cases']) for c in data['corpora'])} cases", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--seeds", default="0:50", help="START:STOP (a Python range)")
    m.add_argument("--queries", type=int, default=400)
    r = sub.add_parser("record")
    r.add_argument("cases", type=Path)
    args = parser.parse_args(argv)
    reason = oracle.available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if args.command == "measure":
        start, stop = (int(x) for x in args.seeds.split(":"))
        return measure(range(start, stop), args.queries)
    return record(args.cases)


if __name__ == "__main__":
    sys.exit(main())

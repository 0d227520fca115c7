"""Benchmark whole ``elastic-recheck`` processes: start-up, a small search, classify.

    python -m benchmarks startup                          # sample store; classify on it
    python -m benchmarks startup --store /tmp/b.db        # classify on a store from `python -m benchmarks store --store /tmp/b.db`
    python -m benchmarks startup --code /tmp/old-checkout # measure another source tree (e.g. a "before")

Each command runs as a fresh process under hyperfine (``apt-get install
hyperfine``), after warm-up runs, and the table gives the minimum and the
median wall time over the runs, and the mean CPU time (user + system: what
a busy machine inflates least):

* ``--help`` [<= 0.3 s];
* ``search`` of one phrase on the small store (the sample's 43,000 lines,
  ingested into a temporary store first) [<= 0.3 s];
* ``classify --build-uuid U`` with 1,000 fingerprint files (the sample's
  seven plus synthetic phrases from the sample generator's vocabulary, written
  as ``queries/*.yaml``) on ``--store`` (default: the small store), ``U`` being
  the store's biggest build [<= 1 s]; once with the fingerprint cache (filled
  by the warm-up runs) and once with it off (every file parsed);
* ``python -c pass``: the interpreter's own start-up, the floor.

The processes run like an installed package's: byte-code is cached (in a
temporary ``PYTHONPYCACHEPREFIX``, whatever ``PYTHONDONTWRITEBYTECODE``
says) and the fingerprint cache lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample import generate as gen

TARGETS = {"help": 0.3, "search": 0.3, "classify": 1.0, "classify-nocache": 1.0}
FILES = ("screen-n-cpu.txt", "screen-q-svc.txt", "job-output.txt", "screen-c-vol.txt", "syslog")


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w.isalpha()]


def fingerprint_queries(n: int, seed: int) -> list[str]:
    """``n`` Lucene queries: the sample's bugs, then phrases from the generator's vocabulary (mostly rare)."""
    rng = random.Random(seed)
    out = [bug.query for bug in gen.BUGS]
    texts = [t.format(req="r", ip="i", ms=1, sec=2, host="h", inst="x") for t in gen._INFO_TEXTS + gen._WARNING_TEXTS + gen._DEBUG_TEXTS]
    words = sorted({w.lower() for t in texts for w in _words(t)})
    while len(out) < n:
        kind = rng.random()
        tags = f'tags:"{rng.choice(FILES)}"'
        if kind < 0.5:  # a phrase from a real template, often with a made-up word: rarely matches
            toks = _words(rng.choice(texts))
            start = rng.randrange(max(len(toks) - 3, 1))
            phrase = toks[start : start + rng.randint(2, 4)]
            if rng.random() < 0.7:
                phrase.append(f"bug{len(out)}")
            out.append(f'message:"{" ".join(phrase)}" AND {tags}')
        elif kind < 0.8:  # several rare words
            out.append(f"message:nosuch{len(out)} AND message:{rng.choice(words)} AND {tags}")
        else:  # common words, an OR and a NOT
            a, b, c = (rng.choice(words) for _ in range(3))
            out.append(f"(message:{a} OR message:{b}) AND NOT message:{c} AND {tags}")
    return out[:n]


def write_queries(directory: Path, n: int, seed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, query in enumerate(fingerprint_queries(n, seed)):
        (directory / f"{9_000_000 + i}.yaml").write_text(
            f"query: >-\n  {query}\nbug_title: synthetic fingerprint {i}\n", encoding="utf-8"
        )


def biggest_build(store: Path) -> str:
    """The uuid of the store's build with the most lines (read-only SQL on the store file)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT b.build_uuid FROM docs d JOIN shapes s ON s.id = d.shape JOIN builds b ON b.id = s.build "
            "WHERE b.build_uuid IS NOT NULL GROUP BY b.build_uuid ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        raise SystemExit(f"{store}: no builds")
    return str(row[0])


def hyperfine(commands: dict[str, str], env: dict[str, str], runs: int, warmup: int, out: Path) -> dict[str, dict[str, float]]:
    args = ["hyperfine", "-N", "--style", "basic", "--runs", str(runs), "--warmup", str(warmup), "--export-json", str(out)]
    for name, cmd in commands.items():
        args += ["--command-name", name, cmd]
    subprocess.run(args, env=env, check=True, stdout=sys.stderr)
    results = json.loads(out.read_text())["results"]
    return {
        r["command"]: {
            "min_s": r["min"],
            "median_s": r["median"],
            "mean_s": r["mean"],
            "cpu_s": r["user"] + r["system"],
            "runs": len(r["times"]),
        }
        for r in results
    }


def run(code: Path, store: Path | None, nfp: int, runs: int, warmup: int, seed: int) -> dict[str, Any]:
    if shutil.which("hyperfine") is None:
        raise SystemExit("hyperfine is not installed (apt-get install hyperfine)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            PYTHONPATH=str(code),
            PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
            ELASTIC_RECHECK_CACHE_DIR=str(tmp / "cache"),
            ELASTIC_RECHECK_CONFIG=str(tmp / "none.conf"),
        )
        (tmp / "none.conf").write_text("", encoding="utf-8")
        py = shlex.quote(sys.executable)
        er = f"{py} -m elastic_recheck"
        small = tmp / "small.db"
        subprocess.run(
            [sys.executable, "-m", "elastic_recheck", "--store", str(small), "-q", "ingest", "--jsonl", str(ROOT / "sample" / "logs.jsonl.gz")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        queries = tmp / "queries"
        write_queries(queries, nfp, seed)
        target = store or small
        uuid = biggest_build(target)
        classify = f"{er} --store {shlex.quote(str(target))} classify --build-uuid {uuid} --queries {shlex.quote(str(queries))}"
        commands = {
            "python -c pass": f"{py} -c pass",
            "help": f"{er} --help",
            "search": f"{er} --store {shlex.quote(str(small))} search 'message:\"Timed out waiting\" AND tags:\"screen-c-vol.txt\"'",
            "classify": classify,
        }
        results = hyperfine(commands, env, runs, warmup, tmp / "hyperfine.json")
        nocache_env = dict(env, ELASTIC_RECHECK_CACHE_DIR="off")
        results.update(hyperfine({"classify-nocache": classify}, nocache_env, runs, warmup, tmp / "hyperfine2.json"))
        return {
            "code": str(code),
            "classify_store": str(target),
            "classify_build": uuid,
            "fingerprints": nfp,
            "load_avg": os.getloadavg()[0],
            "results": results,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(result: dict[str, Any]) -> str:
    rows = [
        f"code: {result['code']}; classify on {result['classify_store']} build {result['classify_build']}, "
        f"{result['fingerprints']} fingerprints; load average {result['load_avg']:.1f}",
        f"{'command':<18} {'min s':>8} {'median s':>9} {'CPU s':>7}  target",
    ]
    for name, r in result["results"].items():
        target = TARGETS.get(name)
        mark = f"<= {target}  {'ok' if r['median_s'] <= target else 'MISSED'}" if target else ""
        rows.append(f"{name:<18} {r['min_s']:>8.3f} {r['median_s']:>9.3f} {r['cpu_s']:>7.3f}  {mark}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="store to classify on (default: the sample store)")
    ap.add_argument("--code", type=Path, default=ROOT, help="source tree whose elastic_recheck runs (default: this checkout)")
    ap.add_argument("--fingerprints", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    result = run(args.code.resolve(), args.store, args.fingerprints, args.runs, args.warmup, args.seed)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

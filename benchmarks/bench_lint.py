"""Time ``elastic-recheck check-queries`` over a directory of many fingerprints.

    python -m benchmarks lint                    # 1,200 files
    python -m benchmarks lint --files 5000

The files are the real production queries in ``../shared/data/elastic-recheck-queries``
when that directory is present (else the project's own ``queries/``), repeated
with seeded random edits (operators, quotes, wildcards, misspelt fields
inserted or deleted) until there are ``--files`` of them, so the linter meets
broken YAML, Lucene syntax errors and every lint rule, not only clean input.
The target (issue "query contribution workflow"): 1,000+ real-world queries
in seconds, with no internal error. Prints wall time, files/s, and the count
of findings per level.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_QUERIES = ROOT.parent / "shared" / "data" / "elastic-recheck-queries"
EDITS = (" AND ", " OR ", " NOT ", "(", ")", '"', "'", "*", "?", "\\", ":", "-", "/", "~", "^2", "[", "]", "{")


def _edit(text: str, rng: random.Random, n: int) -> str:
    chars = list(text)
    for _ in range(n):
        pos = rng.randrange(len(chars) + 1)
        if rng.random() < 0.6:
            chars[pos:pos] = list(rng.choice(EDITS) + rng.choice(("x", "message:", "tags:", "mesage:", "*a", '"b c"')))
        elif chars:
            del chars[min(pos, len(chars) - 1)]
    return "".join(chars)


def write_files(target: Path, count: int, seed: int) -> str:
    source = SHARED_QUERIES if SHARED_QUERIES.is_dir() else ROOT / "queries"
    originals = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(source.glob("*.yaml"))]
    if not originals:
        raise SystemExit(f"no fingerprints found in {source}")
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        name, text = originals[n % len(originals)]
        variant = text if n < len(originals) else _edit(text, rng, rng.randrange(0, 4))
        (target / f"{n:05d}-{name}").write_text(variant, encoding="utf-8")
    return str(source)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1200, help="fingerprint files to check (default 1200)")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from click.testing import CliRunner

    from elastic_recheck.cli.main import cli

    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        source = write_files(Path(tmp) / "queries", args.files, args.seed)
        start = time.perf_counter()
        result = CliRunner().invoke(cli, ["check-queries", "--format", "json", str(Path(tmp) / "queries")])
        seconds = time.perf_counter() - start
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    levels = {lvl: sum(1 for f in findings if f["level"] == lvl) for lvl in ("error", "warning")}
    internal = sum(1 for f in findings if f["code"] == "internal")
    rows = [
        ("source", source),
        ("files", f"{args.files:,}"),
        ("seconds", f"{seconds:.2f}"),
        ("files_per_s", f"{args.files / seconds:,.0f}"),
        ("errors", str(levels["error"])),
        ("warnings", str(levels["warning"])),
        ("internal_errors", f"{internal}  (target 0)"),
        ("exit_code", str(result.exit_code)),
    ]
    for name, value in rows:
        print(f"{name:<18}{value}")
    return 0 if internal == 0 and result.exit_code in (0, 1) else 1


if __name__ == "__main__":
    raise SystemExit(main())

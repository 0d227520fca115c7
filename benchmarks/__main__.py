"""``python -m benchmarks NAME [options]``: run ``benchmarks/bench_NAME.py``'s ``main``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    names = sorted(p.stem[len("bench_") :] for p in Path(__file__).parent.glob("bench_*.py"))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        print(f"usage: python -m benchmarks {{{','.join(names)}}} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"benchmarks.bench_{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

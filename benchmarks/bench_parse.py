"""Time the Lucene parser and the tokenizer on pathological input.

    python -m benchmarks parse

The tests only check that these inputs are rejected or handled (guarded by
pytest-timeout); how fast is measured here. Prints the seconds per input, and
the tokenizer's cost ratio for a 4x longer single token (linear: ~4x,
quadratic: ~16x).
"""

from __future__ import annotations

import argparse
import time

INPUTS = {
    "word x200000": "word " * 200_000,
    "x x200000": "x" * 200_000,
    "nested parens x5000": "message:(" * 5_000 + "x" + ")" * 5_000,
    "a~ x10000": "a~" * 10_000,
}


def _seconds(fn: object, *args: object) -> float:
    started = time.perf_counter()
    try:
        fn(*args)  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - rejections are the expected outcome
        pass
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m benchmarks parse", description=__doc__).parse_args(argv)
    from elastic_recheck.core.lucene.analysis import tokenize
    from elastic_recheck.core.lucene.parser import parse

    for name, text in INPUTS.items():
        # (a fresh string each time: parse() caches by text)
        total = sum(_seconds(lambda t, es=es: parse(t, es_mode=es), text + " ") for es in (True, False))
        print(f"parse {name:<22} {total:8.3f} s")
    small = _seconds(tokenize, "QUJD" * 12_500)
    big = _seconds(tokenize, "QUJD" * 50_000)
    print(f"tokenize 50k chars {small:8.3f} s, 200k chars {big:8.3f} s, ratio {big / max(small, 1e-9):.1f}x")
    return 0

"""Run the real Lucene oracle (``../shared/tools/lucene-oracle``) on a corpus.

The oracle is a small Java program over Apache Lucene 8.8 (see its README);
it needs Java 17 and Debian's Lucene jars (its wrapper installs them).
:func:`available` tells whether it can run here, and why not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import REPO

ORACLE = REPO.parent / "shared" / "tools" / "lucene-oracle" / "oracle"

Outcome = list[str] | str


def available() -> str | None:
    """None when the oracle can run, else the reason it cannot."""
    if not ORACLE.is_file():
        return f"the Lucene oracle is not beside the checkout ({ORACLE})"
    if shutil.which("java") is None or shutil.which("javac") is None:
        return "Java 17 (java, javac) is not installed"
    return None


def run(docs: Sequence[Mapping[str, Any]], queries: Sequence[str], es_mode: bool, workdir: Path) -> list[Outcome]:
    """The oracle's outcome for each query: sorted hit ids, or ``"error"`` when Lucene rejects it."""
    tag = "es" if es_mode else "lucene"
    docs_path = workdir / f"oracle-docs-{tag}.jsonl"
    queries_path = workdir / f"oracle-queries-{tag}.jsonl"
    docs_path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    queries_path.write_text(
        "".join(json.dumps({"qid": i, "query": q}) + "\n" for i, q in enumerate(queries)), encoding="utf-8"
    )
    cmd = [str(ORACLE), *(["--es"] if es_mode else []), str(docs_path), str(queries_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the Lucene oracle failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out: list[Outcome] = ["missing"] * len(queries)
    for line in proc.stdout.splitlines():
        if line.strip():
            row = json.loads(line)
            out[int(row["qid"])] = sorted(row["hits"]) if row["ok"] else "error"
    return out

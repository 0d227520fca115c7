"""``elastic-recheck suggest``: draft fingerprints from uncategorized failures.

Exit codes: 0 ok (with or without drafts); 2 bad command line; 3 the backend
is unavailable.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from elastic_recheck.cli.common import parse_now
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

EXIT_BACKEND_DOWN = 3


def _fingerprints(app: AppContext, directory: Path) -> list[Fingerprint]:
    if not directory.is_dir():
        raise click.ClickException(f"fingerprint directory {directory} not found (pass --queries)")
    es_mode = app.es_mode
    result = load_fingerprints(directory, es_mode=es_mode)
    if result.errors:
        # A fingerprint that does not load explains nothing: its builds may show up as drafts.
        click.echo(f"warning: {len(result.errors)} fingerprint file(s) in {directory} failed to load", err=True)
    return result.fingerprints


def _queues(text: str) -> tuple[str, ...]:
    return tuple(q.strip() for q in text.split(",") if q.strip())


@click.command()
@click.option(
    "--queries",
    "queries_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Existing fingerprints: builds they explain are not mined (default: [bot] queries).",
)
@click.option(
    "--days", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True, help="Window: the last N days."
)
@click.option("--now", "now_text", metavar="TIME", help="End of the window (ISO 8601, epoch; default: now).")
@click.option(
    "--queues",
    default="gate,check",
    show_default=True,
    help="Queues (pipelines) whose failed voting builds are mined, comma separated; empty: all.",
)
@click.option(
    "--min-builds",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="A draft needs an error line seen in at least this many uncategorized builds.",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0.0, 1.0),
    default=0.9,
    show_default=True,
    help="Drop drafts whose backtest precision (failed / (failed + successful) builds hit) is lower.",
)
@click.option("--all", "include_all", is_flag=True, help="Keep drafts below --min-precision too.")
@click.option(
    "--merge",
    "merge_threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.75,
    show_default=True,
    help="Merge near-duplicate lines from this token Jaccard similarity (0 or 1: exact normalized lines only).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "yaml", "json"]), default="text", show_default=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each draft to DIR/new-<n>.yaml (existing files are never overwritten).",
)
@click.pass_obj
def suggest(
    app: AppContext,
    queries_dir: Path | None,
    days: float,
    now_text: str | None,
    queues: str,
    min_builds: int,
    min_precision: float,
    include_all: bool,
    merge_threshold: float,
    fmt: str,
    out_dir: Path | None,
) -> None:
    """Draft fingerprints from clusters of uncategorized failures.

    Takes the failed voting builds of --queues in the window that no
    fingerprint in --queries explains, extracts their error lines (ERROR and
    CRITICAL records, exception lines, FAIL/E: lines of console logs),
    normalizes volatile parts (ids, numbers, addresses, times), clusters the
    lines across builds and, for each cluster seen in at least --min-builds
    builds, drafts a query on its longest stable phrase. Every draft is
    backtested over the window: a query that also hits successful builds
    (precision below --min-precision) is dropped unless --all.

    \b
    Examples:
      elastic-recheck suggest --now 2026-11-20T00:00:00Z
      elastic-recheck suggest --format yaml -o queries/
    """
    from elastic_recheck.contrib.suggest import format_text, renumber, run_suggest, yaml_documents

    directory = queries_dir or app.config.queries_dir
    fingerprints = _fingerprints(app, directory)
    window = ReportWindow(now=parse_now(now_text), days=days)
    try:
        backend = app.backend()
        report = run_suggest(
            backend,
            fingerprints,
            window,
            app.config,
            queues=_queues(queues),
            min_builds=min_builds,
            min_precision=min_precision,
            include_all=include_all,
            merge_threshold=merge_threshold if 0 < merge_threshold < 1 else None,
        )
    except BackendError as exc:
        click.echo(f"error: backend unavailable: {exc}", err=True)
        sys.exit(EXIT_BACKEND_DOWN)
    written: list[Path] = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        taken = {p.stem for p in out_dir.glob("*.yaml")}
        if queries_dir is None or queries_dir.resolve() != out_dir.resolve():
            taken |= {p.stem for p in directory.glob("*.yaml")} if directory.is_dir() else set()
        renumber(report.drafts, taken)
        from elastic_recheck.report.drafts import draft_yaml

        builds = report.builds_by_uuid()
        for d in report.drafts:
            path = out_dir / f"{d.name}.yaml"
            with path.open("x", encoding="utf-8") as fh:  # never overwrite
                fh.write(draft_yaml(d, window, builds))
            written.append(path)
    out = sys.stdout
    if fmt == "json":
        data = report.as_json()
        data["written"] = [str(p) for p in written]
        out.write(json.dumps(data, indent=2) + "\n")
    elif fmt == "yaml":
        out.write(yaml_documents(report))
    else:
        out.write(format_text(report.drafts, report))
        for p in written:
            out.write(f"wrote {p}\n")

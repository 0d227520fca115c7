"""``elastic-recheck prune``: drop old builds from the embedded store."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from elastic_recheck.cli.common import parse_now
from elastic_recheck.cli.ingest import _progress
from elastic_recheck.cli.main import AppContext

if TYPE_CHECKING:
    from elastic_recheck.adapters.sqlite.signatures import SignatureIndex
from elastic_recheck.core.timestamps import parse_cutoff


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _signature_index(app: AppContext) -> SignatureIndex | None:
    """The failure-signature index kept beside this store, when there is one (it is pruned too)."""
    from elastic_recheck.adapters.sqlite.signatures import SignatureIndex, index_path

    path = index_path(app.store_path, False, app.config.data_source.signature_index)
    return SignatureIndex(path) if path.exists() else None


@click.command()
@click.option(
    "--older-than",
    "age",
    required=True,
    metavar="AGE",
    help="Drop builds whose newest line is older than this: 10d, 36h, 2w (a bare number is days), "
    "or a time (ISO 8601, epoch).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped.")
@click.option("--now", "now_text", metavar="TIME", help="Count the age from this time instead of now (ISO 8601, epoch).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when stderr is a terminal and -q is not given).")
@click.pass_obj
def prune(app: AppContext, age: str, dry_run: bool, now_text: str | None, progress: bool | None) -> None:
    """Drop whole builds whose newest line is older than AGE from the embedded
    store, then give the space back to the file system.

    A build that straddles the cutoff stays whole. Documents of no build go
    line by line. Run it daily from cron to keep the store to what the site
    shows, e.g. 'elastic-recheck prune --older-than 10d'.

    The first prune of a store rewrites it once (VACUUM, needing free disk
    space about twice the store's size) and switches it to incremental
    vacuuming; later prunes free pages in place.
    """
    if app.config.backend != "embedded" and app.store_override is None:
        raise click.ClickException(
            "prune works on the embedded store; a cluster drops old daily indices itself "
            "(index lifecycle management or curator)"
        )
    try:
        cutoff = parse_cutoff(age, parse_now(now_text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    from elastic_recheck.adapters.sqlite.retention import plan_prune
    from elastic_recheck.adapters.sqlite.retention import prune as run_prune

    store = app.store()
    plan = plan_prune(store, cutoff)
    what = f"{len(plan.builds):,} builds ({plan.lines:,} lines) whose newest line is older than {_iso(cutoff)}"
    if plan.loose_lines:
        what += f", and {plan.loose_lines:,} older lines of no build"
    if dry_run:
        if plan.builds:
            what += f" (oldest build {_iso(plan.builds[0][2])}, newest {_iso(plan.builds[-1][2])})"
        click.echo(f"would prune {what}; store {_mb(plan.size)}")
        return
    show = (sys.stderr.isatty() and not app.quiet) if progress is None else progress
    with _progress(show and bool(plan.builds), len(plan.builds), "pruning builds") as update:
        last = [0]

        def step(done: int, total: int, lines: int) -> None:
            if update is not None:
                update(done - last[0])
            last[0] = done

        result = run_prune(store, plan, progress=step, signatures=_signature_index(app))
    how = f" ({result.reclaimed})" if result.reclaimed else ""
    if not app.quiet:
        done = f"{result.builds:,} builds ({result.lines:,} lines) whose newest line is older than {_iso(cutoff)}"
        if result.loose_lines:
            done += f", and {result.loose_lines:,} older lines of no build"
        click.echo(f"pruned {done}; store {_mb(plan.size)} -> {_mb(result.size_after)}{how}")

"""``elastic-recheck rechecks``: record recheck comments, list the ones no fingerprint explains."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.cli.common import note, queries_option
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.events import DEFAULT_CI_USERS
from elastic_recheck.core.rechecks import Recheck, rechecks_from_events, rechecks_from_query
from elastic_recheck.report.window import DEFAULT_DAYS, ReportWindow

LOG = logging.getLogger(__name__)

#: Most pages of ``gerrit query`` read by one backfill (500 changes a page on Gerrit's default).
MAX_PAGES = 50


def ci_users(app: AppContext) -> tuple[str, ...]:
    return tuple(app.config.ci_usernames) or DEFAULT_CI_USERS


def backfill_query(window: ReportWindow) -> str:
    """Changes updated since the window's first day (Gerrit's ``since:``; a leading ``-age:`` would read as an option)."""
    return f"since:{window.start:%Y-%m-%d}"


def query_rechecks(app: AppContext, query: str, users: tuple[str, ...]) -> list[Recheck]:
    """The rechecks in ``gerrit query --comments`` over SSH, every page."""
    from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer

    found: list[Recheck] = []
    with GerritReviewer.from_config(app.config) as reviewer:
        start = 0
        for _ in range(MAX_PAGES):
            records = reviewer.query(query, ["--comments", f"--start={start}"])
            if not records:
                break
            found.extend(rechecks_from_query(records, users))
            start += len(records)
        else:
            LOG.warning("gerrit query %r: stopped after %d pages", query, MAX_PAGES)
    return found


@click.command("rechecks")
@click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Record the rechecks of a file of Gerrit stream events (one JSON object a line).")
@click.option("--backfill", is_flag=True, help="Record the rechecks of 'gerrit query --comments' (SSH, [gerrit]).")
@click.option("--query", "gerrit_query", metavar="QUERY",
              help="The Gerrit search of --backfill (default: changes updated within --days).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The bot's state file holding the rechecks (default: as the bot).")
@click.option("--days", type=float, default=DEFAULT_DAYS, show_default=True, help="Window in days.")
@click.option("--now", "now_text", metavar="TIME", help="End of the window (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the unexplained rechecks as JSON.")
@click.option("--no-list", is_flag=True, help="Only record; do not list the unexplained rechecks.")
@queries_option
@click.pass_obj
def rechecks(app: AppContext, events_file: Path | None, backfill: bool, gerrit_query: str | None,
             state_path: Path | None, days: float, now_text: str | None, as_json: bool, no_list: bool,
             queries_dir: Path | None) -> None:
    """Record recheck comments, then list the rechecks no fingerprint explains.

    The bot records rechecks from the events it receives; --events and
    --backfill add older ones (already known ones are skipped). The list is
    the original's unaccounted_rechecks: rechecks left on patch sets whose
    failed builds (indexed in the store) no fingerprint explains, newest first.
    """
    from elastic_recheck.cli.report import _backend, _load, _window

    path = state_path or app.bot_state_path
    users = ci_users(app)
    log = RecheckLog(path)
    try:
        new: list[Recheck] = []
        if events_file is not None:
            with events_file.open(encoding="utf-8", errors="replace") as f:
                new.extend(rechecks_from_events(f, users))
        window = _window(now_text, days)
        if backfill:
            new.extend(query_rechecks(app, gerrit_query or backfill_query(window), users))
        if new:
            added = log.record(new)
            note(f"recorded {added} new recheck(s) of {len(new)} found in {path}")
        known = log.between(window.start, window.now)
    finally:
        log.close()
    if no_list:
        return
    loaded = _load(app, queries_dir)
    backend = _backend(app)
    try:
        report = _impact(app, backend, loaded.fingerprints, window, known)
    except BackendError as exc:
        raise click.ClickException(f"backend down or failing: {exc}") from None
    unexplained = report.unexplained
    if as_json:
        click.echo(json.dumps(report.summary_json(), indent=2))
        return
    note(f"{len(known)} recheck(s) in the window: {sum(1 for c in report.causes if c.bugs)} explained, "
         f"{len(unexplained)} unexplained, {report.without_builds} without an indexed failed build")
    for c in unexplained:
        r = c.recheck
        jobs = ", ".join(sorted({b.job_name or "?" for b in c.failed}))
        urls = " ".join(b.log_url for b in c.failed if b.log_url)
        click.echo(f"{r.at:%Y-%m-%dT%H:%M:%SZ} {r.change},{r.patchset} {r.author or '-'} {jobs} {urls}".rstrip())


def _impact(app: AppContext, backend: Any, fingerprints: Any, window: ReportWindow, known: list[Recheck]) -> Any:
    from elastic_recheck.report.graph import collect_bug_stats
    from elastic_recheck.report.impact import collect_impact, load_zuul_durations

    stats = collect_bug_stats(backend, fingerprints, window, histogram=False)
    return collect_impact(backend, stats, window, app.config.site.gate_queue,
                          rechecks=known, zuul_seconds=load_zuul_durations(app.store_path))

"""Commands for fingerprint contributors: ``backtest``, ``success`` and ``stale``.

Both ask the configured backend about fingerprints and print ``text`` (for
people), ``json`` (for tools) or, for ``backtest``, a ``gerrit`` comment body.

Exit codes: 0 ok; 1 something needs attention (see each command);
2 bad command line; 3 the backend is unavailable; 4 (``stale --irc``) IRC
not configured or unreachable.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from elastic_recheck.cli.common import note, parse_now
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError, ElasticRecheckError, FingerprintError
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint, load_file
from elastic_recheck.report.window import ReportWindow

if TYPE_CHECKING:
    from elastic_recheck.ports.bugs import BugInfo
    from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)

EXIT_ATTENTION = 1
EXIT_BACKEND_DOWN = 3
EXIT_IRC = 4


def _last_days(func: Any) -> Any:
    """``--days`` (default 10) and ``--now``: the window of ``backtest`` and ``success``."""
    func = click.option("--now", "now_text", metavar="TIME", help="End of the window (ISO 8601, epoch; default: now).")(func)
    return click.option(
        "--days", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
        help="Window: the last N days.",
    )(func)


def _queries_and_format(func: Any) -> Any:
    """``--queries DIR`` and ``--format text|json`` of ``success`` and ``stale``."""
    func = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)(func)
    return click.option(
        "--queries", "queries_dir", type=click.Path(file_okay=False, path_type=Path),
        help="Fingerprint directory (default: [bot] queries).",
    )(func)


def _queries_dir(app: AppContext, queries_dir: Path | None) -> Path:
    return queries_dir or app.config.queries_dir


def _existing(app: AppContext, directory: Path) -> list[Fingerprint]:
    if not directory.is_dir():
        LOG.warning("no fingerprint directory at %s: nothing to compare against", directory)
        return []
    es_mode = app.es_mode
    result = load_fingerprints(directory, es_mode=es_mode)
    if result.errors:
        click.echo(f"warning: {len(result.errors)} existing fingerprint file(s) failed to load", err=True)
    return result.fingerprints


def _backend(app: AppContext) -> Any:
    try:
        return app.backend(scan=True)
    except BackendError as exc:
        click.echo(f"error: backend unavailable: {exc}", err=True)
        sys.exit(EXIT_BACKEND_DOWN)


def _window_with_data(backend: SearchBackend, window: ReportWindow) -> ReportWindow:
    """``window`` ending at the newest indexed event when "now" would leave it empty (and say so)."""
    newest = backend.latest_timestamp()
    moved = window.at_data(newest)
    if moved is not window:
        note(
            f"no event indexed in the {window.days:g} days before now: the newest is from "
            f"{newest:%Y-%m-%d %H:%M}Z, so the window ends there ({moved.start:%Y-%m-%d %H:%M}Z to "
            f"{moved.now:%Y-%m-%d %H:%M}Z); --now TIME sets the end"
        )
    return moved


def _emit(text: str) -> None:
    sys.stdout.write(text)


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--git-diff", "rev", metavar="REV", help="Backtest the fingerprint files added or modified since REV (git).")
@_last_days
@click.option(
    "--queries",
    "queries_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Existing fingerprints, for overlap and classification rate (default: [bot] queries).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "gerrit"]), default="text", show_default=True)
@click.pass_obj
def backtest(
    app: AppContext,
    files: tuple[Path, ...],
    rev: str | None,
    days: float,
    now_text: str | None,
    queries_dir: Path | None,
    fmt: str,
) -> None:
    """Measure new or changed fingerprints against the builds of the last days.

    Without --now the window ends now, or, when the store's newest event is
    older than the window's start (data that ended days ago), at that event.

    For each FILE (or each queries/*.yaml changed since REV with --git-diff):
    failed and successful builds hit (more than 10% successful: too broad),
    precision, distinct jobs/projects/node providers, overlap with existing
    fingerprints and the change in the classification rate of failed voting
    gate builds ([site] all_fails_query and gate_queue) if it were merged.

    Exit status: 0 ok; 1 a fingerprint does not load, is rejected by the
    backend or is too broad; 2 bad command line; 3 backend unavailable.

    \b
    Examples:
      elastic-recheck backtest queries/1234567.yaml
      elastic-recheck backtest --git-diff origin/master --format gerrit
    """
    from elastic_recheck.contrib.backtest import (
        changed_fingerprints,
        format_gerrit,
        format_text,
        previous_versions,
        run_backtest,
    )

    if not files and not rev:
        raise click.UsageError("give fingerprint FILES or --git-diff REV")
    directory = _queries_dir(app, queries_dir)
    paths = list(files)
    previous: dict[str, Fingerprint] = {}
    if rev:
        try:
            changed = changed_fingerprints(rev, directory)
        except ElasticRecheckError as exc:
            raise click.ClickException(str(exc)) from None
        if not changed and not paths:
            note(f"no fingerprint added or modified in {directory} since {rev}")
            return
        paths += [c.path for c in changed if c.path not in paths]
        previous = previous_versions(changed)
    es_mode = app.es_mode
    candidates: list[Fingerprint] = []
    load_errors: list[FingerprintError] = []
    for p in paths:
        try:
            candidates.append(load_file(p, es_mode=es_mode))
        except FingerprintError as exc:
            load_errors.append(exc)
    window = ReportWindow(now=parse_now(now_text), days=days)
    existing = _existing(app, directory)
    backend = _backend(app)
    try:
        if now_text is None:
            window = _window_with_data(backend, window)
        report = run_backtest(
            backend, candidates, existing, window, app.config, previous=previous, load_errors=load_errors
        )
    except BackendError as exc:
        click.echo(f"error: backend failed: {exc}", err=True)
        sys.exit(EXIT_BACKEND_DOWN)
    if fmt == "json":
        _emit(json.dumps(report.as_json(), indent=2) + "\n")
    elif fmt == "gerrit":
        _emit(format_gerrit(report))
    else:
        _emit(format_text(report))
    if not report.ok:
        sys.exit(EXIT_ATTENTION)


@click.command()
@_last_days
@_queries_and_format
@click.pass_obj
def success(app: AppContext, days: float, now_text: str | None, queries_dir: Path | None, fmt: str) -> None:
    """List the fingerprints that hit successful builds: queries that are too broad.

    The check of the old elastic-recheck-success. Counting rules are those of
    the trend pages (voting builds unless allow-nonvoting); more than 10% of
    successful builds among those hit is flagged TOO BROAD.

    Exit status: 0 ok (whatever was listed); 3 backend unavailable.
    """
    from elastic_recheck.contrib.backtest import format_success, success_hits

    fingerprints = _existing(app, _queries_dir(app, queries_dir))
    window = ReportWindow(now=parse_now(now_text), days=days)
    backend = _backend(app)
    try:
        results = success_hits(backend, fingerprints, window)
    except BackendError as exc:
        click.echo(f"error: backend failed: {exc}", err=True)
        sys.exit(EXIT_BACKEND_DOWN)
    if fmt == "json":
        _emit(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    else:
        _emit(format_success(results, window, len(fingerprints)))


def _bug_statuses(app: AppContext, fingerprints: list[Fingerprint]) -> dict[str, BugInfo]:
    """bug -> tracker record (with ``status``); empty when no tracker is available."""
    try:
        from elastic_recheck.adapters.launchpad.trackers import tracker_from_config
    except ImportError:
        LOG.warning("no bug tracker support in this build: bug statuses unknown")
        return {}
    try:
        tracker = tracker_from_config(app.config, fingerprints)
        return dict(tracker.get_many(fp.bug for fp in fingerprints))
    except ElasticRecheckError as exc:
        click.echo(f"warning: bug tracker unavailable, statuses unknown: {exc}", err=True)
        return {}


@click.command()
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=14.0,
    show_default=True,
    help="Quiet means no hit in the last N days.",
)
@click.option("--now", "now_text", metavar="TIME", help="End of the window (ISO 8601, epoch; default: now).")
@_queries_and_format
@click.option("--all", "show_all", is_flag=True, help="Also list the active fingerprints (text format).")
@click.option(
    "--irc",
    is_flag=True,
    help="Also post each resolved bug that came back to the IRC channels subscribed to negative "
    "([ircbot] server and channel_config), unless already announced with the same builds.",
)
@click.option(
    "--irc-state",
    "irc_state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="What --irc announced (JSON; default: returning-announced.json next to the store).",
)
@click.option(
    "--irc-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to connect to IRC before giving up (exit 4).",
)
@click.pass_obj
def stale(
    app: AppContext,
    days: float,
    now_text: str | None,
    queries_dir: Path | None,
    fmt: str,
    show_all: bool,
    irc: bool,
    irc_state: Path | None,
    irc_timeout: float,
) -> None:
    """List quiet fingerprints, and resolved bugs that came back.

    Quiet fingerprints (no hit in --days) are removal candidates when their
    bug is closed (Fix Released, Invalid, Won't Fix...) or has resolved_at in
    its YAML; they are kept when they are suppress-graph infrastructure
    issues or their bug is still open. Bug statuses come from the tracker
    ([bugs] tracker). Resolved bugs with failed builds after their
    resolution are listed with those builds.

    With --irc, each of those bugs is also posted (one message per bug) to
    the channels subscribed to negative in [ircbot] channel_config. The
    bugs announced are remembered in --irc-state: an hourly cron job
    repeats a bug only when a failed build hit that no earlier message
    counted, or when its resolved_at changed. IRC is contacted only when
    something is due; the state is updated only after every line was sent.

    Exit status: 0 ok; 1 the --irc state file is locked by another run or
    unusable; 2 bad command line; 3 backend unavailable; 4 --irc but IRC is
    not configured ([ircbot] server, a channel subscribed to negative) or
    unreachable, or the messages could not all be sent (nothing recorded:
    the next run tries again).

    \b
    Example (cron, hourly):
      elastic-recheck stale --irc > /dev/null
    """
    from elastic_recheck.report.stale_fingerprints import find_stale, format_text

    channels = _negative_channels(app) if irc else []
    directory = _queries_dir(app, queries_dir)
    if not directory.is_dir():
        raise click.ClickException(f"fingerprint directory {directory} not found (pass --queries)")
    fingerprints = _existing(app, directory)
    bugs = _bug_statuses(app, fingerprints)
    backend = _backend(app)
    try:
        report = find_stale(backend, fingerprints, bugs, parse_now(now_text), days=days)
    except BackendError as exc:
        click.echo(f"error: backend failed: {exc}", err=True)
        sys.exit(EXIT_BACKEND_DOWN)
    if fmt == "json":
        _emit(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        _emit(format_text(report, show_active=show_all))
    if irc:
        sys.stdout.flush()
        titles = {
            r.bug: (info.title if (info := bugs.get(r.bug)) else None) or r.fingerprint.bug_title
            for r in report.returning
        }
        _announce(app, list(report.returning), titles, channels, irc_state, irc_timeout, report.now)


def _negative_channels(app: AppContext) -> list[str]:
    """The channels subscribed to negative; exits 4 when IRC is not configured."""
    from elastic_recheck.core.channels import channel_config_from_config

    if not app.config.ircbot.server.strip():
        click.echo("error: --irc needs an IRC server ([ircbot] server)", err=True)
        sys.exit(EXIT_IRC)
    try:
        names = [c.name for c in channel_config_from_config(app.config).subscribed("negative")]
    except ElasticRecheckError as exc:
        click.echo(f"error: --irc: {exc}", err=True)
        sys.exit(EXIT_IRC)
    if not names:
        click.echo(
            "error: --irc: no channel is subscribed to negative events ([ircbot] channel_config, "
            "events: [negative])",
            err=True,
        )
        sys.exit(EXIT_IRC)
    return names


def _announce(
    app: AppContext,
    returning: list[Any],
    titles: dict[str, str | None],
    channels: list[str],
    state: Path | None,
    timeout: float,
    now: datetime,
) -> None:
    from elastic_recheck.contrib.announce import IrcUnavailable, announce, default_ledger_path, locked_ledger
    from elastic_recheck.core.errors import StoreError

    path = state or default_ledger_path(app.store_path)
    try:
        with locked_ledger(path) as ledger:
            done = announce(app.config, returning, titles, channels, ledger, now, timeout=timeout)
    except IrcUnavailable as exc:
        click.echo(f"error: {exc}; nothing recorded, the next run tries again", err=True)
        sys.exit(EXIT_IRC)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ATTENTION)
    if done:
        note(
            f"IRC: announced {len(done)} returning bug(s) ({', '.join(r.bug for r in done)}) "
            f"to {', '.join(channels)}"
        )
    else:
        note(f"IRC: nothing new to announce ({len(returning)} returning bug(s) already announced)")

"""Click subcommands of ``elastic-recheck`` and the option bundles they share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from elastic_recheck.core.search_types import TimeWindow
from elastic_recheck.core.timestamps import parse_duration, parse_time

F = TypeVar("F", bound=Callable[..., Any])


def quiet() -> bool:
    """Whether the global ``-q/--quiet`` was given (outside a command: False)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(getattr(obj, "quiet", False))


def note(message: str, nl: bool = True) -> None:
    """A progress or summary line on stderr; ``-q`` silences it (cron mails any output)."""
    if not quiet():
        click.echo(message, err=True, nl=nl)


def window_options(func: F) -> F:
    """``--days``, ``--since``, ``--until``: the time window of a search (default: all time)."""
    func = click.option("--until", metavar="TIME", help="End of the window (ISO 8601, epoch, 'now', or 1d / -1d ago).")(func)
    func = click.option("--since", metavar="TIME", help="Start of the window (ISO 8601, epoch, or 10d / -10d ago, as in collect).")(func)
    func = click.option("--days", type=float, help="Window of the last N days (ending --until or now).")(func)
    return func


def parse_now(text: str | None) -> datetime:
    """The ``--now TIME`` option of the report commands: the given time, else the current one."""
    if not text:
        return datetime.now(UTC)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def make_window(days: float | None, since: str | None, until: str | None, now: datetime | None = None) -> TimeWindow:
    now = now or datetime.now(UTC)
    try:
        end = parse_time(until, now) if until else None
        start = parse_time(since, now) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if days is not None:
        end = end or now
        # exactly days x 24 hours, as ReportWindow (docs/compatibility.md)
        start = end - timedelta(days=days)
    if start is not None and end is not None and start > end:
        raise click.BadParameter(
            f"--since {since} ({start:%Y-%m-%dT%H:%M:%SZ}) is later than --until {until} ({end:%Y-%m-%dT%H:%M:%SZ}): "
            "the window would be empty",
            param_hint="--since/--until",
        )
    return TimeWindow(start=start, end=end)


def queries_option(func: F) -> F:
    return click.option(
        "--queries",
        "queries_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory of fingerprints (default: [bot] queries in the config, else ./queries).",
    )(func)


def duration_type(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

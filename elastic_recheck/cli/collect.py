"""``elastic-recheck collect``: fetch build logs from Zuul into the store or a cluster."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from elastic_recheck.cli.common import note
from elastic_recheck.cli.main import AppContext
from elastic_recheck.collect.runner import (
    DEFAULT_SUCCESS_SAMPLE,
    WOULD_COLLECT,
    CollectOptions,
    CollectResult,
    RunSummary,
    collector_from_config,
)
from elastic_recheck.collect.sinks import ClusterSink, EmbeddedSink, Sink
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.timestamps import parse_time


def _since(text: str, now: datetime) -> datetime:
    """``10d``/``12h`` (a window back from now), ``-10d``, or an ISO time (the one parser of every --since)."""
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; or a window like 10d, 12h", param_hint="--since") from None


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` (builds in flight are finished); a second one aborts."""
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            for num, old in previous.items():
                signal.signal(num, old)
            raise KeyboardInterrupt
        click.echo(f"{signal.Signals(signum).name}: stopping after the builds in flight", err=True)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[int(signum)] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for num, old in previous.items():
            signal.signal(num, old)


@click.command()
@click.option("--zuul", "zuul_url", metavar="URL", help="Zuul web URL (default: [zuul] url), e.g. https://zuul.opendev.org.")
@click.option("--tenant", metavar="TENANT", help="Zuul tenant (default: [zuul] tenant); '' for a white-labelled Zuul.")
@click.option("--pipeline", "pipelines", multiple=True, metavar="NAME", help="Pipeline to collect (repeatable). Default: gate and check.")
@click.option("--project", "projects", multiple=True, metavar="NAME", help="Only this project (repeatable), e.g. openstack/nova.")
@click.option("--job", "jobs", multiple=True, metavar="NAME", help="Only this job name (repeatable).")
@click.option("--result", "results", multiple=True, metavar="RESULT", help="Build result to collect (repeatable). Default: FAILURE and SUCCESS.")
@click.option("--include-nonvoting", is_flag=True, help="Also collect non-voting jobs.")
@click.option("--since", "since_text", default="1d", show_default=True, metavar="WINDOW", help="Builds started within this window (10d, 12h) or since a time (ISO 8601).")
@click.option("--follow", is_flag=True, help="Keep polling Zuul for new builds until interrupted.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=60.0, show_default=True, help="Seconds between polls with --follow.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=4, show_default=True, help="Builds fetched in parallel.")
@click.option(
    "--success-sample",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_SUCCESS_SAMPLE,
    show_default=True,
    help="Share of SUCCESS builds collected (chosen by uuid hash: reruns pick the same ones).",
)
@click.option("--to", "target", type=click.Choice(["embedded", "elasticsearch", "opensearch", "cluster"]), help="Where documents go (default: [data_source] backend; cluster: the es_url's, elasticsearch or opensearch as GET / says).")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many builds.")
@click.option("--dry-run", is_flag=True, help="List the builds that would be collected; fetch nothing.")
@click.option("--max-bytes", type=click.IntRange(min=1), help="Skip log files larger than this (default: [zuul] max_bytes).")
@click.option("--file", "extra_globs", multiple=True, metavar="GLOB", help="Also fetch files matching this glob (relative to log_url; repeatable).")
@click.option("--uuid", "uuids", multiple=True, metavar="UUID", help="Collect these builds (repeatable) instead of listing.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), help="SQLite file remembering collected builds (default: the store file).")
@click.option("--keep-logs", type=click.Path(file_okay=False, path_type=Path), help="Keep downloaded files under DIR/<uuid> (default: temporary).")
@click.option("--keep-debug", is_flag=True, help="Also index DEBUG lines.")
@click.pass_obj
def collect(
    app: AppContext,
    zuul_url: str | None,
    tenant: str | None,
    pipelines: tuple[str, ...],
    projects: tuple[str, ...],
    jobs: tuple[str, ...],
    results: tuple[str, ...],
    include_nonvoting: bool,
    since_text: str,
    follow: bool,
    interval: float,
    concurrency: int,
    success_sample: float,
    target: str | None,
    limit: int | None,
    dry_run: bool,
    max_bytes: int | None,
    extra_globs: tuple[str, ...],
    uuids: tuple[str, ...],
    state_path: Path | None,
    keep_logs: Path | None,
    keep_debug: bool,
) -> None:
    """Fetch build logs from Zuul's REST API into the store or a cluster.

    Lists builds (newest first), keeps voting FAILURE builds and a sample of
    SUCCESS builds, downloads job-output.txt and the service logs of each
    (see docs/collect.md for the file rules) and ingests them like
    'elastic-recheck ingest' does. Collected builds are remembered in the
    store, so a rerun (or a restarted --follow) fetches only new builds.

    Progress goes to stderr; with --dry-run the builds are listed on stdout.
    """
    config = app.config
    now = datetime.now(UTC)
    since = _since(since_text, now)
    target = target or config.backend
    opts = CollectOptions(
        pipelines=pipelines or ("gate", "check"),
        projects=projects,
        results=tuple(r.upper() for r in results) or ("FAILURE", "SUCCESS"),
        job_names=jobs,
        include_nonvoting=include_nonvoting,
        since=since,
        success_sample=success_sample,
        limit=limit,
        concurrency=concurrency,
        dry_run=dry_run,
    )
    sink: Sink | None = None
    try:
        if not dry_run:
            if target == "embedded":
                sink = EmbeddedSink(app.store(create=True), keep_debug=keep_debug)
            else:
                if not config.data_source.es_url:
                    raise click.UsageError(f"--to {target} needs [data_source] es_url")
                sink = ClusterSink(app.writer(target), keep_debug=keep_debug)
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
        collector = collector_from_config(
            config,
            state_path=state_path or app.store_path,
            sink=sink,
            zuul_url=zuul_url,
            tenant=tenant,
            max_bytes=max_bytes,
            extra_globs=extra_globs,
            workdir=keep_logs,
        )
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None

    count = 0

    def progress(res: CollectResult) -> None:
        nonlocal count
        count += 1
        if res.status == WOULD_COLLECT and res.build is not None:
            b = res.build
            when = b.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if b.start_time else "-"
            click.echo(f"{b.uuid}\t{when}\t{b.pipeline}\t{b.project}\t{b.change or '-'},{b.patchset or '-'}\t{b.job_name}\t{b.result}\t{b.log_url}")
            return
        note(f"[{count}] {res.describe()}")

    def polled(summary: RunSummary) -> None:
        note(f"poll: {summary.line()}")

    stop = threading.Event()
    summary = RunSummary()
    try:
        with _stop_on_signals(stop):
            if uuids:
                for uuid in uuids:
                    summary.listed += 1
                    if dry_run:
                        b = collector.zuul.build(uuid)
                        progress(CollectResult(uuid=uuid, status=WOULD_COLLECT, build=b))
                        continue
                    res = collector.collect_build(uuid)
                    summary.add(res)
                    progress(res)
            elif follow:
                note(
                    f"following {collector.zuul.api_url('builds')} every {interval:g} s "
                    f"(since {since:%Y-%m-%d %H:%M}Z, into {target}); Ctrl-C to stop"
                )
                summary = collector.follow(opts, interval, stop, progress=progress, on_poll=polled)
            else:
                summary = collector.run_once(opts, progress=progress, stop=stop)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if sink is not None:
            sink.close()
        collector.state.close()
    note(("dry run: " if dry_run else "") + summary.line())

"""``elastic-recheck ingest``: load CI logs into the embedded store or the configured cluster."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.schema import parse_voting
from elastic_recheck.ingest.build_dir import ingest_build_dir, list_build_files
from elastic_recheck.ingest.build_info import BuildInfo, load_zuul_build
from elastic_recheck.ingest.jsonl import ingest_jsonl
from elastic_recheck.ports.loading import IngestStats

LOG = logging.getLogger(__name__)


@contextmanager
def _progress(enabled: bool, length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A click progress bar on stderr sized in bytes (or nothing)."""
    if not enabled or length <= 0:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=False, show_percent=True) as bar:
        yield bar.update


def _report(stats: IngestStats, what: str) -> None:
    for lineno, why in stats.bad_line_samples:
        click.echo(f"{what}:{lineno}: {why}", err=True)
    if stats.bad_lines > len(stats.bad_line_samples):
        click.echo(f"{what}: ... and {stats.bad_lines - len(stats.bad_line_samples)} more bad lines", err=True)
    for rel in stats.files_skipped:
        click.echo(f"{what}: skipped {rel}", err=True)
    click.echo(f"{what}: {stats.summary()}")


def _voting(value: str | None) -> bool | None:
    if value is None:
        return None
    try:
        flag = parse_voting(value.strip(), strict=True)
    except ValueError:
        flag = None
    if flag is None:
        raise click.BadParameter(f"expected 1/0/true/false, not {value!r}", param_hint="--voting")
    return flag


@click.command(name="ingest")
@click.option(
    "--jsonl",
    "jsonl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON-lines file (.gz ok) of logstash documents; repeatable.",
)
@click.option(
    "--build-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory holding one build's log files (subunit streams become test results).",
)
@click.option(
    "--zuul-build",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Zuul build record (JSON, flat or nested 'ref') with the build's metadata.",
)
@click.option("--build-uuid", help="Build uuid (required with --build-dir unless --zuul-build gives it).")
@click.option("--build-name", help="Job name.")
@click.option("--build-change", help="Gerrit change number.")
@click.option("--build-patchset", help="Gerrit patchset number.")
@click.option("--build-queue", help="Pipeline (check, gate...).")
@click.option("--build-status", help="Build result (SUCCESS, FAILURE...).")
@click.option("--project", help="Project, e.g. openstack/nova.")
@click.option("--voting", help="1 if the job votes, 0 if not.")
@click.option("--node-provider", help="Node provider (cloud region).")
@click.option("--log-url", help="Base URL of the build's logs (file paths are appended).")
@click.option("--branch", help="Branch of the change.")
@click.option("--keep-debug", is_flag=True, help="Keep DEBUG lines (dropped by default).")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 1_000_000), help="Documents per transaction (per _bulk request on a cluster).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when stderr is a terminal and -q is not given).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0, 64), help="Worker processes that parse and analyze big --jsonl files (embedded store).")
@click.pass_obj
def ingest(
    app: AppContext,
    jsonl_files: tuple[Path, ...],
    build_dir: Path | None,
    zuul_build: Path | None,
    build_uuid: str | None,
    build_name: str | None,
    build_change: str | None,
    build_patchset: str | None,
    build_queue: str | None,
    build_status: str | None,
    project: str | None,
    voting: str | None,
    node_provider: str | None,
    log_url: str | None,
    branch: str | None,
    keep_debug: bool,
    batch_size: int,
    progress: bool | None,
    workers: int,
) -> None:
    """Load CI log documents (--jsonl) or one build's log files (--build-dir) into the embedded store.

    With a cluster configured ([data_source] backend, or es_url alone), the
    documents go to the cluster instead: _bulk requests into the daily
    index_format indices of their @timestamp, after installing the
    index_template (message and tags text, everything else keyword), with
    the same stable document ids as 'collect' (loading twice replaces).

    \b
    Examples:
      elastic-recheck ingest --jsonl sample/logs.jsonl.gz
      elastic-recheck ingest --build-dir ./logs --zuul-build build.json
      elastic-recheck ingest --build-dir ./logs --build-uuid 38bf2cd... \\
          --build-name tempest-full --build-status FAILURE --project openstack/nova
    """
    if not jsonl_files and build_dir is None:
        raise click.UsageError("give --jsonl FILE and/or --build-dir DIR")
    show = (sys.stderr.isatty() and not app.quiet) if progress is None else progress
    try:
        store = app.writer() if app.cluster else app.store(create=True)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    if app.cluster:
        workers = 0  # the worker processes prepare rows of the embedded store

    total = IngestStats()
    try:
        for path in jsonl_files:
            with _progress(show, path.stat().st_size, path.name) as update:
                stats = ingest_jsonl(store, path, batch_size=batch_size, progress=update, workers=workers)
            _report(stats, str(path))
            total.merge(stats)
        if build_dir is not None:
            build = _build_info(
                zuul_build,
                build_uuid=build_uuid,
                name=build_name,
                change=build_change,
                patchset=build_patchset,
                queue=build_queue,
                status=build_status,
                project=project,
                voting=_voting(voting),
                node_provider=node_provider,
                log_url=log_url,
                branch=branch,
            )
            exclude = [zuul_build] if zuul_build is not None else []
            size = sum(p.stat().st_size for _, p in list_build_files(build_dir, exclude=exclude))
            with _progress(show, size, build.short_uuid) as update:
                stats = ingest_build_dir(
                    store, build_dir, build, keep_debug=keep_debug, batch_size=batch_size, progress=update, exclude=exclude
                )
            _report(stats, str(build_dir))
            total.merge(stats)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if app.cluster:
            store.close()
    if len(jsonl_files) + (build_dir is not None) > 1:
        click.echo(f"total: {total.summary()}")


def _build_info(zuul_build: Path | None, build_uuid: str | None, **overrides: Any) -> BuildInfo:
    """Build metadata from a Zuul record, then the explicit options (which win)."""
    if zuul_build is not None:
        try:
            info = load_zuul_build(zuul_build)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--zuul-build") from None
        if build_uuid:
            info = replace(info, uuid=build_uuid)
    else:
        if not build_uuid:
            raise click.UsageError("--build-dir needs --build-uuid or --zuul-build")
        info = BuildInfo(uuid=build_uuid)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(info, **changes) if changes else info

"""``graph``, ``uncategorized``, ``render`` and ``serve``: the cron report commands."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from elastic_recheck.cli.common import note, parse_now
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError, ElasticRecheckError
from elastic_recheck.core.fingerprint_loading import LoadResult, load_fingerprints
from elastic_recheck.report.graph import BugData, bug_data_from_fingerprint, collect_bug_stats, graph_json
from elastic_recheck.report.health import probe_backend
from elastic_recheck.report.impact import load_rechecks, load_zuul_durations
from elastic_recheck.report.site import render_site
from elastic_recheck.report.site_data import EXIT_CODES_HELP, ExitCode, collect_uncategorized_data
from elastic_recheck.report.site_pages import write_json, write_uncategorized
from elastic_recheck.report.window import DEFAULT_DAYS, ReportWindow

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def window_options(f: F) -> F:
    """``--now``, ``--days`` and ``--queries``, shared by the report commands."""
    f = click.option(
        "--queries",
        "queries_dir",
        type=click.Path(exists=True, path_type=Path),
        help="Fingerprint directory (default: [bot] queries from the config).",
    )(f)
    f = click.option(
        "--days",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_DAYS,
        show_default=True,
        help="Length of the window [now - days, now).",
    )(f)
    f = click.option(
        "--now",
        "now_text",
        metavar="TIME",
        help="Compute everything as of this time: ISO 8601 (UTC unless an offset is given), "
        "epoch seconds or ms. Default: the current time.",
    )(f)
    return f


def _window(now_text: str | None, days: float) -> ReportWindow:
    return ReportWindow(now=parse_now(now_text), days=days)


def _load(app: AppContext, queries_dir: Path | None) -> LoadResult:
    path = queries_dir or app.config.queries_dir
    if not path.exists():
        raise click.ClickException(f"fingerprint directory {path} not found (pass --queries)")
    es_mode = app.es_mode
    result = load_fingerprints(path, es_mode=es_mode)
    if result.errors:
        click.echo(f"warning: {len(result.errors)} fingerprint file(s) failed to load:", err=True)
        for e in result.errors:
            click.echo(f"  {e}", err=True)
    return result


def _backend_name(app: AppContext) -> str:
    """The backend as the published pages name it (no local path, no URL)."""
    return "embedded store" if app.config.backend == "embedded" else app.config.backend


def _bug_data(app: AppContext, result: LoadResult, days: float) -> dict[str, BugData]:
    """Titles and affected projects from the bug tracker, open reviews from Gerrit, dashboard links.

    Optional: without :mod:`elastic_recheck.adapters.launchpad.trackers` (or when the tracker fails)
    the pages use the ``bug_title``/``projects`` keys of the fingerprints;
    without Gerrit (``[site] open_reviews``) the reviews stay empty; without
    ``[data_source] ls_url`` there is no dashboard link.
    """
    from elastic_recheck.core.dashboard import dashboard_url

    data: dict[str, BugData] = {}
    try:
        from elastic_recheck.report.bug_data import bug_data_from_tracker

        data = bug_data_from_tracker(app.config, result.fingerprints)
    except ImportError:
        pass
    except ElasticRecheckError as exc:
        LOG.warning("bug tracker unavailable, using titles from the fingerprint files: %s", exc)
    reviews: dict[str, list[int]] = {}
    try:
        from elastic_recheck.report.reviews import open_reviews_from_config

        source = open_reviews_from_config(app.config)
        if source is not None:
            reviews = source.get_many(fp.bug for fp in result.fingerprints)
    except ElasticRecheckError as exc:
        LOG.warning("open reviews unavailable: %s", exc)
    fixes = _fixes(app, [fp.bug for fp in result.fingerprints])
    ls_url = app.config.data_source.ls_url
    url_format = app.config.data_source.ls_url_format
    for fp in result.fingerprints:
        base = data.get(fp.bug) or bug_data_from_fingerprint(fp)
        data[fp.bug] = replace(
            base,
            reviews=tuple(reviews.get(fp.bug, base.reviews)),
            fixes=tuple(fixes.get(fp.bug, ())),
            logstash_url=dashboard_url(ls_url, url_format, fp.query, days),
        )
    return data


def _fixes(app: AppContext, bugs: list[str]) -> dict[str, list[Any]]:
    """bug -> its fixes from Gerrit (``[site] fixes``), marked "in the gate" from Zuul's status when ``[zuul] url`` is set."""
    from elastic_recheck.core.fixes import with_gate
    from elastic_recheck.report.reviews import fixes_from_config

    try:
        source = fixes_from_config(app.config)
        found = source.get_many(bugs) if source is not None else {}
    except ElasticRecheckError as exc:
        LOG.warning("fixes unavailable: %s", exc)
        return {}
    if not any(found.values()) or not app.config.zuul.url:
        return dict(found)
    from elastic_recheck.adapters.zuul.gate_queue import gate_status_from_config

    try:
        status = gate_status_from_config(app.config)
    except ElasticRecheckError as exc:
        LOG.warning("Zuul status unavailable (fixes in the gate not marked): %s", exc)
        return dict(found)
    in_gate = status.change_ids(app.config.site.gate_queue)
    return {bug: with_gate(fixes, in_gate) for bug, fixes in found.items()}


class ProgressPrinter:
    """Progress on stderr, a rewritten line, only when stderr is a terminal and ``-q`` is not given."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.enabled and total > 0:
            note(f"\r{phase}: {done}/{total}", nl=done == total)


def _backend(app: AppContext) -> Any:
    try:
        return app.backend(scan=True)
    except BackendError as exc:
        click.echo(f"error: backend unavailable: {exc}", err=True)
        sys.exit(ExitCode.BACKEND_DOWN)


def _fail_backend(exc: BackendError) -> None:
    click.echo(f"error: backend down or failing: {exc} (previous output kept)", err=True)
    sys.exit(ExitCode.BACKEND_DOWN)


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default: stdout).")
@click.option("--queue", help="Only builds of this queue (build_queue), e.g. gate. (No -q short form: -q is the global --quiet.)")
@click.option(
    "--es-query-suffix",
    metavar="LUCENE",
    help="An extra Lucene query every hit must also match (kept separate, never pasted into the fingerprint).",
)
@window_options
@click.pass_obj
def graph(
    app: AppContext,
    output: Path | None,
    queue: str | None,
    es_query_suffix: str | None,
    now_text: str | None,
    days: float,
    queries_dir: Path | None,
) -> None:
    """Write graph.json: distinct builds per hour and status for every bug.

    The format of the original elastic-recheck-graph: now, last_indexed,
    behind (ms), status, and buglist sorted by failures in the last 24 hours,
    then in the window. Fingerprints with suppress-graph are left out.
    """
    window = _window(now_text, days)
    loaded = _load(app, queries_dir)
    backend = _backend(app)
    probe = probe_backend(backend, now=window.now)
    if not probe.up:
        _fail_backend(BackendError(probe.error or "no answer"))
    fps = [fp for fp in loaded.fingerprints if not fp.suppress_graph]
    try:
        stats = collect_bug_stats(
            backend, fps, window, queue=queue, suffix=es_query_suffix, progress=ProgressPrinter(output is not None)
        )
    except BackendError as exc:
        _fail_backend(exc)
        return
    doc = graph_json(
        stats, window, last_indexed=probe.newest_event, status=probe.status, bug_data=_bug_data(app, loaded, window.days)
    )
    try:
        if output is None:
            click.echo(json.dumps(doc))
        else:
            write_json(output, doc)
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc}", err=True)
        sys.exit(ExitCode.FAILED)
    if loaded.errors or any(s.error for s in stats):
        sys.exit(ExitCode.PARTIAL)


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for uncategorized.html, integrated_gate.html, others.html and uncategorized.json.",
)
@click.option("--templates", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Template overrides.")
@window_options
@click.pass_obj
def uncategorized(
    app: AppContext,
    output: Path,
    templates: Path | None,
    now_text: str | None,
    days: float,
    queries_dir: Path | None,
) -> None:
    """Failed voting gate builds that no fingerprint explains, and the classification rate.

    All failed builds are found with [site] all_fails_query in the [site]
    gate_queue queue (voting builds only); the integrated gate is the projects
    matching [site] integrated_projects_re.
    """
    window = _window(now_text, days)
    loaded = _load(app, queries_dir)
    backend = _backend(app)
    try:
        data = collect_uncategorized_data(
            backend, loaded, app.config, window, progress=ProgressPrinter(), backend_name=_backend_name(app)
        )
    except BackendError as exc:
        _fail_backend(exc)
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
        write_uncategorized(data, output, templates=templates)
    except (OSError, ElasticRecheckError) as exc:
        click.echo(f"error: cannot write the uncategorized pages: {exc}", err=True)
        sys.exit(ExitCode.FAILED)
    rate = data.uncategorized.overall
    note(
        f"{rate.explained} of {rate.failed} failed gate builds explained "
        f"({'n/a' if rate.rate is None else f'{rate.rate:.1f}%'}); {rate.uncategorized} uncategorized"
    )
    if data.health.failed_fingerprints:
        sys.exit(ExitCode.PARTIAL)


def _render(
    app: AppContext,
    output: Path,
    templates: Path | None,
    now_text: str | None,
    days: float,
    queries_dir: Path | None,
) -> ExitCode:
    window = _window(now_text, days)
    loaded = _load(app, queries_dir)
    backend = _backend(app)
    started = time.monotonic()
    try:
        result = render_site(
            backend,
            loaded,
            app.config,
            output,
            window=window,
            templates=templates,
            bug_data=_bug_data(app, loaded, window.days),
            progress=ProgressPrinter(),
            backend_name=_backend_name(app),
            rechecks=load_rechecks(app.bot_state_path, window),
            zuul_seconds=load_zuul_durations(app.store_path),
        )
    except BackendError as exc:
        _fail_backend(exc)
        return ExitCode.BACKEND_DOWN
    except (OSError, ElasticRecheckError) as exc:
        click.echo(f"error: rendering failed: {exc} (previous site kept)", err=True)
        return ExitCode.FAILED
    except Exception:
        LOG.exception("rendering failed (previous site kept)")
        return ExitCode.FAILED
    note(f"rendered {result.files} files into {output} in {time.monotonic() - started:.1f}s")
    if app.config.bugs.update and result.impact is not None:
        _update_bugs(app, loaded, result.impact, window)
    return result.exit_code


def _update_bugs(app: AppContext, loaded: LoadResult, impact: Any, window: ReportWindow) -> None:
    """``[bugs] update``: comment on the bugs over the threshold (failures are warnings: the site is written)."""
    from elastic_recheck.adapters.launchpad.trackers import bug_cache_dir
    from elastic_recheck.report.bug_updates import LEDGER_NAME, BugUpdateLedger, LaunchpadCommenter, update_bugs

    cfg = app.config
    creds = cfg.bugs.launchpad_credentials
    if not creds:
        click.echo("warning: [bugs] update needs [bugs] launchpad_credentials (an OAuth token); no bug commented", err=True)
        return
    commenter = LaunchpadCommenter(cfg.bugs.launchpad_url, creds, cfg.bugs.timeout)
    done = update_bugs(impact.bugs, loaded.fingerprints, commenter, BugUpdateLedger.load(bug_cache_dir(cfg) / LEDGER_NAME),
                       threshold=cfg.bugs.update_threshold, days=window.days,
                       site_url=cfg.site.url, now=window.now)
    if done:
        note(f"commented on Launchpad bug(s) {', '.join(done)}")


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Site directory; replaced in one step when rendering succeeds.",
)
@click.option(
    "--templates",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory whose templates (and static/ files) override the built-in ones.",
)
@window_options
@click.pass_obj
def render(
    app: AppContext,
    output: Path,
    templates: Path | None,
    now_text: str | None,
    days: float,
    queries_dir: Path | None,
) -> None:
    """Render the static trend site (for cron).

    Pages: every fingerprint with its trend chart, the gate queue, one page per
    bug, the uncategorized failures and a health page; plus graph.json,
    uncategorized.json and health.json. The site is rendered next to OUTPUT
    and swapped into place, so readers never see a half-written site.
    """
    code = _render(app, output, templates, now_text, days, queries_dir)
    if code != ExitCode.OK:
        sys.exit(int(code))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s - %s", self.address_string(), format % args)


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Site directory.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--render/--no-render",
    "render_first",
    default=None,
    help="Render OUTPUT first (as of --now, default the current time). Default: serve the site "
    "already in OUTPUT as it is (e.g. what 'demo' or the cron job rendered) and render only when "
    "there is none.",
)
@click.option("--templates", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Template overrides.")
@window_options
@click.pass_obj
def serve(
    app: AppContext,
    output: Path,
    port: int,
    host: str,
    render_first: bool | None,
    templates: Path | None,
    now_text: str | None,
    days: float,
    queries_dir: Path | None,
) -> None:
    """Preview the site over HTTP: the rendered site in OUTPUT as it is, or
    (``--render``, or when OUTPUT holds none) rendered first by the same code
    as ``render``."""
    has_site = (output / "index.html").is_file()
    if render_first is None:
        render_first = not has_site
    if render_first:
        code = _render(app, output, templates, now_text, days, queries_dir)
        if code in (ExitCode.FAILED, ExitCode.BACKEND_DOWN):
            sys.exit(int(code))
    elif not has_site:
        raise click.ClickException(f"{output} holds no rendered site (run 'elastic-recheck render -o {output}', or drop --no-render)")
    handler = functools.partial(_QuietHandler, directory=str(output))
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server uses it? pick another --port, or --port 0)"
        ) from None
    with httpd:
        bound_port = httpd.server_address[1]
        click.echo(f"serving {output} on http://{host}:{bound_port}/ (Ctrl-C to stop)", err=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)

"""``elastic-recheck bot``: the long-running service (or a replay of recorded events)."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings, parse_required_files
from elastic_recheck.cli.common import note, queries_option
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.config import Config, _list
from elastic_recheck.core.errors import ConfigError, ElasticRecheckError, StoreError
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.ports.review import Reviewer

if TYPE_CHECKING:
    from elastic_recheck.adapters.irc.client import IrcNotifier
    from elastic_recheck.bot.notify import IrcReporter
    from elastic_recheck.core.signatures import SignatureService
    from elastic_recheck.ports.bugs import BugTracker
    from elastic_recheck.ports.search import SearchBackend, TestResultSource

LOG = logging.getLogger(__name__)


class EchoReviewer:
    """Dry-run reviewer: prints the comment it would post (and, as ``irc``, the IRC messages)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def review(self, change: str, patchset: str, message: str) -> None:
        self._write(f"=== would comment on {change},{patchset}:\n{message}\n\n")

    def posted(self, change: str, patchset: str, message: str) -> None:
        """A dry run cannot tell what reached Gerrit."""
        return None

    def irc(self, channel: str, message: str) -> None:
        self._write(f"=== would send to IRC {channel}: {message}\n\n")


def settings_from_config(cfg: Config, **overrides: Any) -> BotSettings:
    from elastic_recheck.core.comments import load_messages

    setting = "[recheckwatch] messages" if cfg.recheckwatch.messages else "[ircbot] channel_config"
    messages_file = cfg.recheckwatch.messages or cfg.ircbot.channel_config
    try:
        messages = load_messages(messages_file) if messages_file else {}
    except ConfigError as exc:  # one line naming the setting and the file (the original: a traceback)
        raise ConfigError(f"{setting}: {exc}") from None
    settings = BotSettings(
        ci_users=tuple(cfg.ci_usernames),
        results=tuple(_list(cfg.recheckwatch.results)),
        jobs_re=cfg.recheckwatch.jobs_re,
        comment_unmatched=cfg.recheckwatch.comment_unmatched,
        recurring_changes=cfg.recheckwatch.recurring_changes,
        deadline_s=cfg.recheckwatch.readiness_timeout,
        first_poll_s=cfg.recheckwatch.readiness_poll,
        workers=cfg.recheckwatch.workers,
        count_cache_s=cfg.recheckwatch.count_cache,
        refused_grace_s=cfg.recheckwatch.refused_grace,
        attempt_budget_s=cfg.recheckwatch.attempt_budget,
        required_files=parse_required_files(cfg.recheckwatch.required_files),
        messages=messages,
        site_url=cfg.site.url.strip(),
    )
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


def _signatures(
    app: AppContext, backend: SearchBackend, test_results: TestResultSource, state_path: Path | None
) -> SignatureService | None:
    """The failure-signature service: signatures live with the bot's state when ``--state`` (or a
    dry run's scratch state) names a file, else where ``classify`` keeps them."""
    from elastic_recheck.adapters.sqlite.signatures import service_from_config

    path = None
    if state_path is not None and not app.config.data_source.signature_index:
        path = state_path
    return service_from_config(app.config, backend, app.store_path, app.cluster, test_results, path=path)


def _log_config(cfg: Config) -> None:
    """``[ircbot] log_config``: the original bot's logging configuration file (``logging.config`` INI format).

    Added to the logging already set up (secrets stay redacted on its handlers).
    """
    import logging.config

    from elastic_recheck.cli.main import redact_logs

    path = cfg.ircbot.log_config
    if not path:
        return
    if not Path(path).expanduser().is_file():
        raise click.ClickException(f"[ircbot] log_config: {path}: no such file")
    try:
        logging.config.fileConfig(Path(path).expanduser(), disable_existing_loggers=False)
    except Exception as exc:  # the logging module raises KeyError, ValueError, configparser errors...
        raise click.ClickException(f"[ircbot] log_config: {path}: {type(exc).__name__}: {exc}") from None
    redact_logs(cfg)


#: bot_meta key: ``eventCreatedOn`` of the newest stream event handled (epoch seconds).
STREAM_POSITION = "stream_position"


def _resume_position(state: BotState) -> float | None:
    value = state.get_meta(STREAM_POSITION)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _advance_position(state: BotState, event: dict[str, Any], position: float | None) -> float | None:
    """Persist the event's time once it was handled (only forward; an older position is always safe)."""
    created = event.get("eventCreatedOn")
    if isinstance(created, bool) or not isinstance(created, int | float):
        return position
    if position is not None and created <= position:
        return position
    try:
        state.set_meta(STREAM_POSITION, repr(float(created)))
    except ElasticRecheckError as exc:
        LOG.warning("could not record the stream position: %s", exc)
        return position
    return float(created)


def _submit(the_bot: Bot, event: dict[str, Any], stop: threading.Event) -> bool:
    """Hand one event to the bot, waiting while it cannot be persisted (disk full, locked).

    False when stopping first: the event was not persisted and the stream
    position not advanced, so the next start recovers it.
    """
    delay = 1.0
    while True:
        try:
            the_bot.submit(event)
            return True
        except StoreError as exc:
            LOG.error("cannot persist an event (%s); retrying in %.0f s", exc, delay)
        if stop.wait(delay):
            return False
        delay = min(delay * 2, 60.0)


def _irc_reporter(
    app: AppContext, enabled: bool, dry_run: bool, bugs: BugTracker | None, echo: Callable[[str, str], None] | None = None
) -> tuple[IrcReporter | None, IrcNotifier | None]:
    """(reporter, notifier-to-stop) — the reporter routes even when sending is off;
    a dry run with IRC enabled shows the messages through ``echo``."""
    from elastic_recheck.bot.notify import IrcReporter
    from elastic_recheck.core.channels import channel_config_from_config

    cfg = app.config
    if not cfg.ircbot.channel_config:
        return None, None
    channels = channel_config_from_config(cfg)
    if not enabled or dry_run or not cfg.ircbot.server:
        return IrcReporter(channels, None, bugs, echo=echo if enabled and dry_run else None), None
    from elastic_recheck.adapters.irc.client import IrcNotifier

    notifier = IrcNotifier.from_config(cfg, channels.names)
    if notifier is None:
        return IrcReporter(channels, None, bugs), None
    notifier.start()
    return IrcReporter(channels, notifier.send, bugs), notifier


def _log_fetcher(app: AppContext) -> Any:
    """Readiness with a Zuul URL: fetch the build's logs now, into the embedded
    store or the cluster (through the one bulk writer).

    The collector shares its state with ``collect --follow``, so a build is
    never fetched twice.
    """
    from elastic_recheck.collect.runner import collector_from_config
    from elastic_recheck.collect.sinks import ClusterSink, EmbeddedSink, Sink

    sink: Sink = ClusterSink(app.writer()) if app.cluster else EmbeddedSink(app.store(create=True))
    collector = collector_from_config(app.config, state_path=app.store_path, sink=sink)

    def fetch(report: Any, job: Any) -> None:
        if job.build_uuid:  # old report formats carry no full uuid: nothing to ask Zuul
            result = collector.collect_build(job.build_uuid)
            LOG.info("%s: logs %s (%d documents)", job.name, result.status, result.documents)

    return fetch


@click.command()
@queries_option
@click.option("--replay", "replay_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Process recorded events (JSON lines, gzip ok) and exit.")
@click.option("--dry-run", is_flag=True, help="Do everything but post: the comments and IRC messages it would send are printed (IRC ones unless --no-irc).")
@click.option("-n", "--no-comment", is_flag=True, help="Never comment on Gerrit.")
@click.option("--no-irc", is_flag=True, help="Do not connect to IRC.")
@click.option("--actions-out", type=click.File("w"), help="Write one JSON line per processed event (- for stdout).")
@click.option("--readiness-timeout", type=float, help="Seconds to wait for a build's logs (default [recheckwatch] readiness_timeout, 1200; in replay on a static embedded store: 0).")
@click.option("--workers", type=int, help="Events classified concurrently.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), help="Bot state file (default: the embedded store file).")
@click.pass_obj
def bot(
    app: AppContext,
    queries_dir: Path | None,
    replay_file: Path | None,
    dry_run: bool,
    no_comment: bool,
    no_irc: bool,
    actions_out: IO[str] | None,
    readiness_timeout: float | None,
    workers: int | None,
    state_path: Path | None,
) -> None:
    """Watch Gerrit for failed builds, classify them, comment and notify.

    Runs in the foreground (systemd-friendly; stop with SIGTERM/Ctrl-C).
    Events are persisted before processing, so a restart resumes pending
    work; comments are posted at most once per (change, patchset, builds).

    \b
    Replay recorded events without posting anything:
      elastic-recheck bot --replay sample/events.jsonl --dry-run --actions-out -
    """
    cfg = app.config
    _log_config(cfg)
    qdir = queries_dir or cfg.queries_dir
    loaded = load_fingerprints(qdir, es_mode=app.es_mode)
    for err in loaded.errors:
        click.echo(f"warning: fingerprint skipped: {err}", err=True)
    if not loaded.fingerprints:
        raise click.ClickException(f"no usable fingerprints in {qdir}")
    note(f"loaded {len(loaded.fingerprints)} fingerprints from {qdir}")

    static_store = cfg.backend == "embedded" and not cfg.zuul.url
    if readiness_timeout is None and replay_file is not None and static_store:
        readiness_timeout = 0.0
        LOG.info("replay on a static embedded store: logs are checked once, no waiting")
    try:
        settings = settings_from_config(
            cfg,
            deadline_s=readiness_timeout,
            workers=workers,
            dry_run=dry_run or None,
            comment=False if no_comment else None,
        )
    except ElasticRecheckError as exc:  # e.g. [ircbot] channel_config names a missing file
        raise click.ClickException(str(exc)) from None
    from elastic_recheck.adapters.gerrit.credentials import FIX, check_gerrit

    problems = check_gerrit(cfg, stream=replay_file is None, comment=not (dry_run or no_comment))
    if problems:
        raise click.ClickException(f"cannot log in to Gerrit: {'; '.join(problems)} ({FIX})")
    if not settings.site_url:
        LOG.warning("[site] url is not set: comments will not link the status page (set it to the URL "
                    "where the rendered site is published)")
    tmpdir = None
    if state_path is None and dry_run:
        # A dry run must not mark anything as reported in the real ledger.
        tmpdir = tempfile.TemporaryDirectory(prefix="er-dry-run-")
        state_path = Path(tmpdir.name) / "state.db"
    try:
        if cfg.backend == "embedded":
            # the collector fills it on demand; a long-running process maps no pages
            app.store(create=static_store is False, long_running=True)
        backend = app.backend()
        state = BotState(state_path or app.bot_state_path)
        from elastic_recheck.adapters.sqlite.rechecks import RecheckLog

        recheck_log = RecheckLog(state.path)  # rechecks seen in the stream, for the impact report
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None

    bugs: BugTracker | None = None
    try:
        from elastic_recheck.adapters.launchpad.trackers import tracker_from_config

        bugs = tracker_from_config(cfg, loaded.fingerprints)
    except (ImportError, ElasticRecheckError) as exc:
        LOG.info("no bug tracker: %s", exc)

    reviewer: Reviewer | None = None
    echo = EchoReviewer(sys.stdout if actions_out is not sys.stdout else sys.stderr) if dry_run else None
    if dry_run and not no_comment:
        reviewer = echo
    elif not no_comment:
        from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer

        reviewer = GerritReviewer.from_config(cfg)
    try:
        irc_reporter, notifier = _irc_reporter(app, not no_irc, dry_run, bugs, echo.irc if echo else None)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None

    log_fetcher = None
    if cfg.zuul.url:
        log_fetcher = _log_fetcher(app)

    from elastic_recheck.adapters.subunit2sql.results import test_results_from_config

    try:
        test_results = test_results_from_config(backend, cfg.data_source.db_uri)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    the_bot = Bot(
        backend,
        loaded.fingerprints,
        state,
        settings,
        reviewer=reviewer,
        notifier=irc_reporter,
        bugs=bugs,
        actions_out=actions_out,
        log_fetcher=log_fetcher,
        test_results=test_results,
        rechecks=recheck_log,
        signatures=_signatures(app, backend, test_results, state_path),
    )
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    the_bot.start()
    try:
        if replay_file is not None:
            from elastic_recheck.bot.replay import replay_events

            for item in replay_events(replay_file):
                if stop.is_set():
                    break
                if isinstance(item, Exception):
                    the_bot.stats["malformed"] += 1
                    LOG.warning("skipping malformed event: %s", item)
                    continue
                the_bot.submit(item)
            while not stop.is_set() and not the_bot.wait_idle(timeout=1.0):
                pass
        else:
            from elastic_recheck.adapters.gerrit.stream import GerritEventStream

            # Resume from the newest event already persisted, so that events
            # Gerrit sent while the bot was down are recovered (gerrit query).
            position = _resume_position(state)
            stream = GerritEventStream.from_config(cfg, since=position)
            stream.start()
            try:
                while not stop.is_set():
                    event = stream.get(timeout=1.0)
                    if stream.fatal is not None:
                        raise click.ClickException(f"cannot log in to Gerrit: {stream.fatal} ({FIX})")
                    if event is not None and _submit(the_bot, event, stop):
                        position = _advance_position(state, event, position)
            finally:
                stream.stop()
    except KeyboardInterrupt:
        LOG.info("interrupted: pending events resume at the next start")
    finally:
        the_bot.stop()
        if notifier is not None:
            notifier.stop(flush_timeout=300.0 if replay_file is not None else 5.0)
        state.close()
        if tmpdir is not None:
            tmpdir.cleanup()
    s = the_bot.stats
    note(
        f"events: {s['events']}, failure reports: {s['reports']}, processed: {s['processed']}, "
        f"timeouts: {s['timeouts']}, duplicates: {s['duplicates']}, malformed: {s['malformed']}"
    )
    if dry_run and replay_file is not None:
        sys.stdout.flush()

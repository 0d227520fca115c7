"""The ``elastic-recheck`` command group.

Each subcommand lives in ``elastic_recheck/commands/<name>.py`` and is
imported only when used, so ``--help`` stays fast and a broken optional
dependency of one command never breaks the others.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from elastic_recheck.core.config import Config, load_config
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.log_filters import EscapeControls, RedactSecrets

if TYPE_CHECKING:
    from elastic_recheck.adapters.elastic.backend import ElasticBackend
    from elastic_recheck.adapters.elastic.bulk import BulkWriter
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)

#: name -> (module, attribute, one-line help shown in ``--help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("elastic_recheck.cli.demo", "demo", "Run the whole pipeline on the bundled sample data (no server)."),
    "ingest": ("elastic_recheck.cli.ingest", "ingest", "Load CI log documents or a build's log files into the store or the configured cluster."),
    "search": ("elastic_recheck.cli.search", "search", "Search log lines with a Lucene query."),
    "query": ("elastic_recheck.cli.search", "query", "Show hits of one fingerprint and their top attribute values."),
    "classify": ("elastic_recheck.cli.classify", "classify", "Tell which known bugs explain failed builds."),
    "bot": ("elastic_recheck.cli.bot", "bot", "Watch Gerrit events, classify failures, comment on reviews and IRC."),
    "graph": ("elastic_recheck.cli.report", "graph", "Write graph.json: hits per bug over time."),
    "uncategorized": ("elastic_recheck.cli.report", "uncategorized", "Write the uncategorized-failures report."),
    "render": ("elastic_recheck.cli.report", "render", "Render the static trend site."),
    "serve": ("elastic_recheck.cli.report", "serve", "Preview the rendered site on a local web server."),
    "check-queries": ("elastic_recheck.cli.lint", "check_queries", "Validate and lint fingerprint files without a backend."),
    "backtest": ("elastic_recheck.cli.contrib", "backtest", "Measure new or changed fingerprints against recent builds."),
    "success": ("elastic_recheck.cli.contrib", "success", "List fingerprints that hit successful builds (too broad)."),
    "stale": ("elastic_recheck.cli.contrib", "stale", "List quiet fingerprints and resolved bugs that came back."),
    "suggest": ("elastic_recheck.cli.suggest", "suggest", "Draft fingerprints from clusters of uncategorized failures."),
    "collect": ("elastic_recheck.cli.collect", "collect", "Fetch build logs from Zuul into the store or a cluster."),
    "prune": ("elastic_recheck.cli.prune", "prune", "Drop old builds from the embedded store and reclaim the space."),
    "config": ("elastic_recheck.cli.misc", "show_config", "Print the effective configuration (secrets redacted)."),
    "rechecks": ("elastic_recheck.cli.impact", "rechecks", "Record recheck comments; list those no fingerprint explains."),
    "promote": ("elastic_recheck.cli.promote", "promote", "Move approved fixes of the worst gate bugs to the front of the gate (dry run by default)."),
}


@dataclass
class AppContext:
    """What every subcommand gets: the validated config and lazily opened adapters."""

    config: Config
    store_override: Path | None = None
    #: ``-q``: no progress and no summary lines, only warnings and errors.
    quiet: bool = False
    #: ``-v`` count (2 with ``--debug``): tracebacks are shown from 1 on.
    verbose: int = 0
    #: ``es`` or ``lucene`` from a command's ``--lucene-mode`` (None: ``[data_source] lucene_mode``)
    lucene_mode: str | None = None
    _store: EmbeddedStore | None = field(default=None, repr=False)
    _cluster: ElasticBackend | None = field(default=None, repr=False)

    @property
    def store_path(self) -> Path:
        return self.store_override or self.config.store_path

    @property
    def bot_state_path(self) -> Path:
        """The bot's state file unless ``--state``: the store file, or ``bot-state.db`` beside it with a cluster."""
        return self.store_path if self.config.backend == "embedded" else self.store_path.with_name("bot-state.db")

    @property
    def es_mode(self) -> bool:
        """Whether queries mean what Elasticsearch's ``query_string`` makes of them (else plain Lucene)."""
        return (self.lucene_mode or self.config.data_source.lucene_mode) == "es"

    def store(self, create: bool = False, long_running: bool = False, scan: bool = False) -> EmbeddedStore:
        """The embedded store (opened once).

        ``long_running`` (the bot) turns memory-mapped reads off unless
        ``[data_source] store_mmap_mb`` says otherwise: mapped pages count in
        the process's RSS, once per worker connection. ``scan`` (the report
        commands, which read the whole window) maps the whole file and keeps
        every build's decoded fields (``EmbeddedStore``'s ``scan``).
        """
        if self._store is None:
            from elastic_recheck.adapters.sqlite.store import EmbeddedStore

            path = self.store_path
            if not create and not path.exists():
                raise click.ClickException(
                    f"no embedded store at {path}; load logs first with 'elastic-recheck ingest' "
                    "(or 'elastic-recheck demo'), or pass --store"
                )
            mmap_mb = self.config.data_source.store_mmap_mb
            mmap_size = mmap_mb * 1024 * 1024 if mmap_mb >= 0 else 0 if long_running else None  # None: the store's
            self._store = EmbeddedStore(path, es_mode=self.es_mode, mmap_size=mmap_size, scan=scan)
            LOG.info("backend: embedded store at %s", path)
        return self._store

    @property
    def cluster(self) -> bool:
        """True when ``[data_source]`` names a cluster (``backend``, or the old ``es_url`` alone)."""
        return self.config.backend != "embedded"

    def backend(self, scan: bool = False) -> SearchBackend:
        """The configured SearchBackend: the embedded store, or the cluster's adapter (opened once).

        ``scan``: the caller reads the whole window (reports; see :meth:`store`)."""
        return self.cluster_backend() if self.cluster else self.store(scan=scan)

    def cluster_backend(self) -> ElasticBackend:
        """The configured cluster's adapter (opened once), also for what only a cluster answers (its mapping)."""
        if self._cluster is None:
            if not self.es_mode:
                raise click.ClickException(
                    "lucene_mode = lucene needs the embedded store: an Elasticsearch/OpenSearch cluster "
                    "always reads queries as query_string"
                )
            from elastic_recheck.adapters.elastic.backend import backend_from_config

            backend = backend_from_config(self.config)
            LOG.info("backend: %s", backend.describe())
            self._cluster = backend
        return self._cluster

    def writer(self, flavor: str | None = None) -> BulkWriter:
        """The cluster's bulk writer (``ingest`` and ``collect``; ``flavor`` overrides ``backend``)."""
        from elastic_recheck.adapters.elastic.bulk import writer_from_config

        writer = writer_from_config(self.config, flavor)
        LOG.info("backend: %s (writing)", writer.backend.describe())
        return writer


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, short = spec
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("elastic_recheck"):
                return _unavailable(cmd_name, short, str(exc))
            raise
        command: click.Command = getattr(module, attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Errors end in one line; the traceback only with ``-v``/``--debug``."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt, BrokenPipeError):
            raise  # click ends a broken pipe (``| head``) quietly
        except Exception as exc:
            app = ctx.obj if isinstance(ctx.obj, AppContext) else None
            if ctx.params.get("verbose") or ctx.params.get("debug"):  # also before the group callback ran
                raise
            if isinstance(exc, ElasticRecheckError):
                message = str(exc)
            elif isinstance(exc, OSError) and exc.strerror:
                message = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
            else:
                message = f"internal error ({type(exc).__name__}: {exc}); run again with -v for the traceback and report it"
            for secret in app.config.secret_values() if app is not None else ():
                message = message.replace(secret, "***")
            raise click.ClickException(message) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, short: str, why: str) -> click.Command:
    @click.command(name=name, help=short)
    def _cmd() -> None:
        raise click.ClickException(f"'{name}' is not available in this build: {why}")

    return _cmd


def redact_logs(config: Config) -> None:
    """Install :class:`RedactSecrets` for ``config``'s secrets on the root logger's handlers."""
    secrets = config.secret_values()
    if not secrets:
        return
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(RedactSecrets(secrets))


#: Third-party loggers that log every retry with a traceback; at the default
#: verbosity only their errors show (our own adapters report the outcome).
NOISY_LOGGERS = ("elasticsearch", "elastic_transport", "opensearch", "urllib3", "paramiko", "gerritlib")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class NoTracebackFormatter(logging.Formatter):
    """One line per record: the traceback of a logged exception shows only with ``-v``/``--debug``."""

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return super().format(record)
        exc = record.exc_info[1] if record.exc_info else None
        bare = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        text = super().format(bare)
        if exc is not None:
            text += f" [{type(exc).__name__}; -v shows the traceback]"
        return text


def setup_logging(verbose: int, quiet: bool, debug: bool = False, log_file: Path | None = None) -> None:
    """Log records to stderr, or to ``log_file`` (appended) instead.

    Default: warnings and errors, one line each. ``-v``: also info and
    tracebacks; ``-vv`` or ``--debug``: everything. ``-q``: warnings and errors.
    """
    if debug:
        verbose = max(verbose, 2)
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    handler: logging.Handler
    if log_file is not None:
        try:
            handler = logging.FileHandler(log_file.expanduser(), encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot open {log_file}: {exc.strerror or exc}", param_hint="--log-file") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT) if verbose else NoTracebackFormatter(LOG_FORMAT))
    handler.addFilter(EscapeControls())
    logging.basicConfig(level=level, handlers=[handler])
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)


def _print_version(ctx: click.Context, value: bool) -> None:
    """``--version``, as ``click.version_option`` prints it, with the version looked up only then."""
    if not value or ctx.resilient_parsing:
        return
    from elastic_recheck import __version__

    click.echo(f"elastic-recheck, version {__version__}", color=ctx.color)
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ELASTIC_RECHECK_CONFIG",
    help="INI config file (elasticRecheck.conf format). Env: ELASTIC_RECHECK_CONFIG.",
)
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Path of the embedded store. Default: $ELASTIC_RECHECK_STORE or ~/.local/share/elastic-recheck/store.db.",
)
@click.option("-v", "--verbose", count=True, help="More logging, with tracebacks (-vv for debug).")
@click.option("--debug", is_flag=True, help="Debug logging with tracebacks (same as -vv).")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the log to this file instead of stderr (command output and errors stay on stdout/stderr).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors: no progress, no summary lines (for cron).")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, param, value: _print_version(ctx, value),
    help="Show the version and exit.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    store: Path | None,
    verbose: int,
    debug: bool,
    log_file: Path | None,
    quiet: bool,
) -> None:
    """elastic-recheck: explain CI failures with fingerprints of known bugs.

    Fingerprints are Lucene queries in queries/<bug>.yaml. Logs are searched
    in the embedded store (default, no server) or an Elasticsearch/OpenSearch
    cluster ([data_source] backend in the config file).
    """
    setup_logging(verbose, quiet, debug, log_file)
    try:
        config = load_config(config_path)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    redact_logs(config)
    ctx.obj = AppContext(config=config, store_override=store, quiet=quiet, verbose=2 if debug else verbose)


def main() -> None:
    cli(prog_name="elastic-recheck")


if __name__ == "__main__":
    main()

"""One validated configuration object.

The file format is INI, compatible with the old ``elasticRecheck.conf``
(sections ``[ircbot]``, ``[gerrit]``, ``[data_source]``, ``[recheckwatch]``),
plus new sections (``[bot]``, ``[bugs]``, ``[zuul]``, ``[site]``). Every
setting has a default here, in one table, and environment variables
``ELASTIC_RECHECK_<SECTION>_<KEY>`` override the file. Nothing is read at
import time.

The table is one frozen dataclass per section (:class:`GerritSection`, ...),
one typed field per setting; :data:`SETTINGS` is derived from them, and a
loaded :class:`Config` offers each section as a typed view
(``cfg.gerrit.port`` is an ``int``), so mypy checks every read.
"""

from __future__ import annotations

import configparser
import difflib
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from elastic_recheck.core.errors import ConfigError

LOG = logging.getLogger(__name__)

ENV_STORE = "ELASTIC_RECHECK_STORE"


def default_store_path() -> Path:
    """``$ELASTIC_RECHECK_STORE``, else ``$XDG_DATA_HOME/elastic-recheck/store.db``."""
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "elastic-recheck" / "store.db"


@dataclass(frozen=True)
class Setting:
    """One setting, as the table (the section views below) declares it."""

    section: str
    key: str
    default: Any
    help: str
    secret: bool = False
    #: The field of the section view (``key`` unless that is a Python keyword).
    attr: str = ""


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: str) -> list[str]:
    return [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]


T = TypeVar("T")


def setting(default: T, help: str, *, secret: bool = False, key: str = "") -> T:
    """One row of the settings table: a field of a section view, with its default and help.

    ``key`` is the INI key when it differs from the field's name.
    """
    return field(default=default, repr=not secret, metadata={"help": help, "secret": secret, "key": key})


# The settings table: one frozen dataclass per INI section, one field per
# setting, in the order ``config --defaults`` writes them. The field's type is
# the type of its value (``int``, ``float``, ``bool`` or ``str``).
@dataclass(frozen=True)
class DataSourceSection:
    """``[data_source]``: where the logs are: the embedded store or a cluster, and how queries and links are read."""

    backend: str = setting("embedded", "embedded | elasticsearch | opensearch | cluster (elasticsearch or opensearch, read from the server's GET /); "
        "when not given, an es_url (the old configuration's key) means cluster")
    store: str = setting("", "path of the embedded store (default: $ELASTIC_RECHECK_STORE or ~/.local/share/elastic-recheck/store.db)")
    store_mmap_mb: int = setting(-1, "MiB of the embedded store each connection memory-maps: -1 = automatic (256 for one-shot commands, "
        "the whole file for the reports, 0 for the long-running bot, so its RSS stays small), 0 = off")
    es_url: str = setting("", "Elasticsearch/OpenSearch URL (may include user:password@)", secret=True)
    index_format: str = setting("logstash-%Y.%m.%d", "strftime pattern of the daily indices")
    index_template: str = setting("elastic-recheck", "index template that ingest and collect install before writing to a cluster (the logstash mapping: "
        "message and tags text, everything else keyword); empty: install none")
    username: str = setting("", "cluster user name")
    password: str = setting("", "cluster password", secret=True)
    verify_certs: bool = setting(True, "verify the cluster's TLS certificate")
    ca_certs: str = setting("", "CA bundle for the cluster's TLS certificate")
    timeout: float = setting(30.0, "seconds before a cluster request times out")
    retries: int = setting(3, "retries of a failed cluster request (5xx, timeouts)")
    signature_index: str = setting("", "SQLite file of failure signatures (default: the embedded store's file; with a cluster backend, "
        "signatures.db beside the store path)")
    db_uri: str = setting("", "optional subunit2sql database (sqlite:///path or mysql+pymysql://...): a second source of failed test ids", secret=True)
    ls_url: str = setting("", "Kibana / OpenSearch Dashboards URL: each bug's logstash_url in graph.json and its page link run the "
        "fingerprint there (empty: no link)")
    ls_url_format: str = setting("kibana3", "link format: kibana3 (the original's /#/dashboard/file/logstash.json?<state>), discover (Kibana 7+ and "
        "OpenSearch Dashboards) or a template with {ls_url} {query} {rison_query} {days} {seconds} {kibana3_state}")
    mapping: str = setting("", "JSON file with the index mapping fingerprints are checked against (a GET <index>/_mapping answer, an "
        "index template or {\"properties\": ...}); empty: the cluster's own mapping, else the built-in one")
    lucene_mode: str = setting("es", "es (Elasticsearch query_string) or lucene (plain classic QueryParser)")
    voting_values: str = setting("1,0", "cluster terms for a voting and a non-voting build in the voting filter: 1,0 (OpenDev) or true,false "
        "(a boolean mapping); the embedded store accepts every spelling")
    keyword_suffix: str = setting("", "suffix of the exact-match sub-field used in cluster filters and aggregations: empty when build_* are keyword fields (OpenDev), .keyword or .raw for logstash text mappings")


@dataclass(frozen=True)
class GerritSection:
    """``[gerrit]``: the Gerrit the bot listens to and comments on."""

    host: str = setting("review.opendev.org", "Gerrit SSH host")
    port: int = setting(29418, "Gerrit SSH port")
    user: str = setting("", "Gerrit SSH user")
    key: str = setting("", "path of the SSH private key", secret=True)
    query_file: str = setting("", "directory of fingerprints (old name of [bot] queries)")
    url: str = setting("", "Gerrit web URL used in links (default https://<host>)")
    comment_via: str = setting("ssh", "ssh (gerrit review) or rest (HTTP password)")
    http_user: str = setting("", "Gerrit REST user")
    http_password: str = setting("", "Gerrit REST HTTP password", secret=True)


@dataclass(frozen=True)
class RecheckwatchSection:
    """``[recheckwatch]``: which reports the bot classifies, and how patiently."""

    ci_username: str = setting("zuul,jenkins", "CI account(s) whose comments are reports (comma separated); zuul's are always read, as in the original")
    # Departure from the original (docs/compatibility.md): jobs_re defaults to
    # empty (every report), not dsvm.
    jobs_re: str = setting("", "regex searched in the whole report comment: a report that matches has all its failed jobs classified, "
        "others are skipped (empty: every report; the original's default was dsvm)")
    comment_unmatched: bool = setting(False, "also comment (the no_bugs_found message) on reports where no bug matched; the original did not")
    recurring_changes: int = setting(2, "say 'probably not caused by this change' on an unrecognized failure whose signature failed builds of "
        "at least this many other changes in the last recurring_hours (0: never)")
    recurring_hours: float = setting(24.0, "look-back window of the recurring-signature evidence")
    results: str = setting("FAILURE", "job results that are classified (comma separated)")
    irc_pipelines: str = setting("gate", "pipelines whose failures go to IRC")
    readiness_timeout: float = setting(1200.0, "seconds to wait for a build's logs to be indexed")
    readiness_poll: float = setting(10.0, "first poll interval (doubles up to 60 s)")
    required_files: str = setting("", "job-regex=file[,file] lines: files that must be indexed before classifying")
    workers: int = setting(4, "events classified concurrently")
    count_cache: float = setting(300.0, "seconds of report time a matched bug's 'failures in the last 24 h' count is reused for "
        "later reports (0: counted for every report)")
    refused_grace: float = setting(3600.0, "seconds past the readiness deadline that a comment Gerrit refuses is retried before giving up")
    attempt_budget: float = setting(300.0, "seconds one attempt at one event (readiness, classification, comment) may take; past it the event is "
        "given up as failed and the worker serves the next one")
    messages: str = setting("", "YAML file with a messages: block (old recheckwatchbot.yaml)")


@dataclass(frozen=True)
class BotSection:
    """``[bot]``: the fingerprints and old report formats."""

    queries: str = setting("queries", "directory of fingerprints")
    log_base_url: str = setting("", "base URL of build logs for old report formats")


@dataclass(frozen=True)
class IrcbotSection:
    """``[ircbot]``: the IRC connection (``pass`` is the attribute ``password``: ``pass`` is a Python keyword)."""

    nick: str = setting("RecheckWatchBot", "IRC nick")
    password: str = setting("", "NickServ password", secret=True, key="pass")
    server_password: str = setting("", "IRC server password (sent as PASS), for servers that need one", secret=True)
    server: str = setting("", "IRC server host (empty: IRC off)")
    port: int = setting(6667, "IRC server port")
    ssl: bool = setting(False, "connect with TLS")
    channel_config: str = setting("", "YAML file with channels: and messages: (recheckwatchbot.yaml)")
    log_config: str = setting("", "logging configuration file of the bot (Python logging.config INI format, as the original)")


@dataclass(frozen=True)
class BugsSection:
    """``[bugs]``: the bug tracker and its cache."""

    tracker: str = setting("offline", "offline (titles from YAML) | launchpad")
    cache_dir: str = setting("", "on-disk cache of bug data (default next to the store)")
    cache_ttl: float = setting(3600.0, "seconds before cached bug data is refreshed")
    bugs_file: str = setting("", "optional YAML file of bug titles/projects for the offline tracker")
    launchpad_url: str = setting("https://api.launchpad.net/devel/", "Launchpad API root")
    timeout: float = setting(10.0, "seconds before a tracker request times out")
    update: bool = setting(False, "after 'render', comment on a Launchpad bug whose fingerprint hit at least update_threshold failed builds "
        "in the window (at most once a week per bug; needs launchpad_credentials)")
    update_threshold: float = setting(20.0, "failed builds in the window that make [bugs] update comment on a bug")
    launchpad_credentials: str = setting("", "launchpadlib credentials file (an OAuth access token of the bot's Launchpad account) for [bugs] update", secret=True)


@dataclass(frozen=True)
class ZuulSection:
    """``[zuul]``: the Zuul API: collecting logs and promoting fixes."""

    url: str = setting("", "Zuul web URL, e.g. https://zuul.opendev.org")
    tenant: str = setting("openstack", "Zuul tenant")
    log_hosts: str = setting("", "allowed log hosts (comma separated; empty: the Zuul host and its build log_url hosts)")
    log_files: str = setting("", "job-regex=glob[,glob] lines: log files collected besides the defaults (see docs/collect.md)")
    max_bytes: int = setting(200 * 1024 * 1024, "log files larger than this (uncompressed bytes) are skipped by collect")
    timeout: float = setting(30.0, "seconds before a Zuul API or log server request times out")
    download_deadline: float = setting(600.0, "seconds one log file's download may take in all, however slowly the server sends it (timeout only counts silence)")
    promote: bool = setting(False, "let 'promote --apply' ask Zuul to move approved fixes of the worst bugs to the front of the gate")
    auth_token: str = setting("", "Zuul API token (JWT) allowed to promote in the tenant (for 'promote --apply')", secret=True)
    promote_threshold: float = setting(10.0, "a bug's approved fixes are promoted when its share of the failed gate builds of the last 24 h is at least this many percent")
    promote_channel: str = setting("#openstack-qa", "IRC channel told when 'promote --apply' promoted fixes (empty: none)")


@dataclass(frozen=True)
class SiteSection:
    """``[site]``: the rendered site and what its reports count."""

    url: str = setting("", "public URL of the rendered site (the status page), linked in the bot's comments: "
        "the footer and each bug's trend page; empty: no links (the bot warns at start)")
    gate_queue: str = setting("gate", "queue shown on the gate page and counted as gate failures")
    integrated_projects_re: str = setting(
        r"^(openstack/(cinder|glance|keystone|neutron|nova|requirements|tempest|devstack|grenade)"
        r"|openstack-dev/(devstack|grenade)|openstack-infra/devstack-gate)$",
        "projects grouped as integrated gate (default: the original's list, plus devstack and grenade under "
        "their current openstack/ names)")
    excluded_jobs_re: str = setting("(api-site|operations-guide|openstack-manuals|ansible|puppet)", "failed builds of jobs matching this regex are left out of the uncategorized page and the classification "
        "rate (the original's default: teams that did not use elastic-recheck); empty: none left out")
    included_projects_re: str = setting("(^openstack/|devstack|grenade)", "besides the integrated gate projects, only failed builds of projects matching this regex are counted "
        "(the original's default); empty: every project")
    open_reviews: str = setting("auto", "where the bug pages' open reviews come from: rest or ssh (Gerrit), off, or auto (rest when [gerrit] host "
        "or url is configured, as the original always asked Gerrit)")
    fixes: str = setting("off", "where the bug pages' fixes (changes whose commit message names the bug) come from: rest, ssh, off, or auto "
        "(rest when [gerrit] host or url is configured); 'promote' reads auto for off")
    open_reviews_exclude: str = setting("openstack-infra/elastic-recheck", "project whose changes are not counted as a bug's open reviews (the fingerprints' own repository)")
    suggestions: bool = setting(True, "show possible fingerprints (drafted by 'suggest' from error lines shared by uncategorized builds) on the uncategorized page")
    all_fails_query: str = setting('build_status:"FAILURE"', "Lucene query that finds failed builds (the old ALL_FAILS_QUERY; gate queue and voting are added as filters)")



#: The INI sections and their typed views, in table order.
SECTIONS: dict[str, type[Any]] = {
    "data_source": DataSourceSection,
    "gerrit": GerritSection,
    "recheckwatch": RecheckwatchSection,
    "bot": BotSection,
    "ircbot": IrcbotSection,
    "bugs": BugsSection,
    "zuul": ZuulSection,
    "site": SiteSection,
}

SETTINGS: tuple[Setting, ...] = tuple(
    Setting(section, f.metadata["key"] or f.name, f.default, f.metadata["help"], f.metadata["secret"], f.name)
    for section, view in SECTIONS.items()
    for f in fields(view)
)

_BY_KEY = {(s.section, s.key): s for s in SETTINGS}


_SectionT = TypeVar("_SectionT")


@dataclass
class Config:
    """The validated settings. Build with :func:`load_config` or from a dict in tests.

    Read them through the typed section views (``cfg.gerrit.host``,
    ``cfg.zuul.timeout``); :meth:`value` is for code that walks the table.
    """

    #: The settings that were given (file, environment, dict), converted to their types.
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    path: Path | None = None

    def _view(self, view: type[_SectionT], section: str) -> _SectionT:
        return view(**{s.attr: self.values[(section, s.key)] for s in SETTINGS
                       if s.section == section and (section, s.key) in self.values})

    @cached_property
    def data_source(self) -> DataSourceSection:
        return self._view(DataSourceSection, "data_source")

    @cached_property
    def gerrit(self) -> GerritSection:
        return self._view(GerritSection, "gerrit")

    @cached_property
    def recheckwatch(self) -> RecheckwatchSection:
        return self._view(RecheckwatchSection, "recheckwatch")

    @cached_property
    def bot(self) -> BotSection:
        return self._view(BotSection, "bot")

    @cached_property
    def ircbot(self) -> IrcbotSection:
        return self._view(IrcbotSection, "ircbot")

    @cached_property
    def bugs(self) -> BugsSection:
        return self._view(BugsSection, "bugs")

    @cached_property
    def zuul(self) -> ZuulSection:
        return self._view(ZuulSection, "zuul")

    @cached_property
    def site(self) -> SiteSection:
        return self._view(SiteSection, "site")

    def value(self, setting: Setting) -> Any:
        """The value of one row of :data:`SETTINGS` (for code that walks the table)."""
        return getattr(getattr(self, setting.section), setting.attr)

    # Convenience accessors for the settings used everywhere.
    @property
    def backend(self) -> str:
        """The configured backend; an ``es_url`` without a ``backend`` (the old configuration) means ``cluster``."""
        if ("data_source", "backend") not in self.values and self.data_source.es_url:
            return "cluster"
        return self.data_source.backend

    @property
    def store_path(self) -> Path:
        value = self.data_source.store
        return Path(value).expanduser() if value else default_store_path()

    @property
    def queries_dir(self) -> Path:
        old = self.gerrit.query_file
        if ("bot", "queries") not in self.values and old:
            return Path(old)
        return Path(self.bot.queries)

    @property
    def ci_usernames(self) -> list[str]:
        """``[recheckwatch] ci_username`` plus ``zuul``: the original always read zuul's reports too."""
        users = _list(self.recheckwatch.ci_username)
        return users if "zuul" in (u.casefold() for u in users) else [*users, "zuul"]

    def secret_values(self) -> list[str]:
        """Values of the secret settings that are set (of URL ones: the password inside), longest first.

        Values shorter than 4 characters are left out: masking them would
        garble unrelated text.
        """
        found: set[str] = set()
        for s in SETTINGS:
            value = self.value(s)
            if not s.secret or not value:
                continue
            text = str(value)
            if "://" not in text:
                found.add(text)
                continue
            # Each URL's password is the secret (the URL itself is logged, e.g.
            # "backend: cluster at https://host:9200"); the whole text if it cannot be read.
            for one in text.split(","):
                try:
                    _clean, _user, password = split_credentials(one)
                except ConfigError:
                    found.add(text)
                    continue
                if password:
                    found.update({password, quote(password, safe="")})
                    raw = _raw_password(one)
                    if raw:
                        found.add(raw)
        return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)

    def redacted(self) -> dict[str, dict[str, Any]]:
        """All settings with secrets replaced by ``***`` (safe to log or print)."""
        out: dict[str, dict[str, Any]] = {}
        for s in SETTINGS:
            value = self.value(s)
            if s.secret and value:
                value = "***"
            out.setdefault(s.section, {})[s.key] = value
        return out


def _userinfo_split(url: str) -> tuple[str, str, str]:
    """``(scheme, userinfo, rest)`` of a URL whose password may hold unencoded ``/``, ``?`` or ``#``.

    The user info ends at the *last* ``@`` (RFC 3986 would end the host at
    the first ``/``, so ``http://bob:pa/ss@host`` would have host ``bob`` and
    port ``pa``, and Python's parser would put the password in its error).
    """
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    scheme, _, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return scheme, "", rest
    return scheme, userinfo, after


def _raw_password(url: str) -> str:
    userinfo = _userinfo_split(url)[1]
    return userinfo.partition(":")[2]


def split_credentials(url: str) -> tuple[str, str, str]:
    """``(url without user info, user, password)`` of one cluster URL (``http://`` if no scheme).

    :raises ConfigError: the URL cannot be read (e.g. a port that is not a
        number); the message shows the URL with its user info masked.
    """
    scheme, userinfo, rest = _userinfo_split(url)
    user, _, password = userinfo.partition(":")
    shown = f"{scheme}://{'***@' if userinfo else ''}{rest}"
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        port = parts.port
    except ValueError as exc:
        reason = "invalid port" if "port" in str(exc).lower() else "not a valid URL"
        raise ConfigError(f"[data_source] es_url: {reason} in {shown[:200]!r} (percent-encode / ? # @ : in a password)") from None
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"[data_source] es_url: no host in {shown[:200]!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(user), unquote(password)


def _convert(setting: Setting, raw: object) -> object:
    """``raw`` (text from a file or the environment, or a value from a dict) as the setting's type."""
    default = setting.default
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            return _bool(raw) if isinstance(raw, str) else bool(raw)
        if isinstance(default, int):
            return int(raw)  # type: ignore[call-overload]
        if isinstance(default, float):
            return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{setting.section}] {setting.key}: {exc}") from None
    return str(raw)


def from_mapping(data: Mapping[str, Mapping[str, Any]], path: Path | None = None) -> Config:
    """Build a Config from ``{section: {key: value}}``; unknown keys are warned about."""
    values: dict[tuple[str, str], Any] = {}
    for section, items in data.items():
        for key, raw in items.items():
            setting = _BY_KEY.get((section, key))
            if setting is None:
                LOG.warning("%s: unknown setting [%s] %s (ignored)", path or "config", section, key)
                continue
            values[(section, key)] = _convert(setting, raw)
    cfg = Config(values=values, path=path)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    backend = cfg.backend
    if backend not in ("embedded", "elasticsearch", "opensearch", "cluster"):
        raise ConfigError(f"[data_source] backend must be embedded, elasticsearch, opensearch or cluster, not {backend!r}")
    if backend != "embedded" and not cfg.data_source.es_url:
        raise ConfigError(f"[data_source] backend = {backend} needs es_url")
    if cfg.gerrit.comment_via not in ("ssh", "rest"):
        raise ConfigError("[gerrit] comment_via must be ssh or rest")
    for key, mode in (("open_reviews", cfg.site.open_reviews), ("fixes", cfg.site.fixes)):
        if mode.strip().lower() not in ("auto", "rest", "ssh", "off"):
            raise ConfigError(f"[site] {key} must be auto, rest, ssh or off")
    if cfg.data_source.lucene_mode not in ("es", "lucene"):
        raise ConfigError("[data_source] lucene_mode must be es or lucene")
    from elastic_recheck.core.dashboard import template_of

    try:
        template_of(cfg.data_source.ls_url_format)
    except ValueError as exc:
        raise ConfigError(f"[data_source] ls_url_format: {exc}") from None
    for section, key in REGEX_SETTINGS:
        try:
            re.compile(str(cfg.value(_BY_KEY[(section, key)])))
        except re.error as exc:
            raise ConfigError(f"[{section}] {key}: not a regular expression: {exc}") from None


#: Settings holding a Python regular expression (checked when the config is loaded).
REGEX_SETTINGS: tuple[tuple[str, str], ...] = (
    ("recheckwatch", "jobs_re"),
    ("site", "integrated_projects_re"),
    ("site", "excluded_jobs_re"),
    ("site", "included_projects_re"),
)


def format_value(value: Any) -> str:
    """A setting's value as the INI file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sample_config() -> str:
    """An ``elasticRecheck.conf`` holding every setting at its default, each after its help
    (``elastic-recheck config --defaults``; docs/deploy.md shows it and a test loads it)."""
    import textwrap

    out = [
        "# elasticRecheck.conf: every setting of elastic-recheck, commented out at its default.",
        "# Generated by 'elastic-recheck config --defaults'. Uncomment (remove the '#' before the",
        "# key) only what you change: some settings mean something by being set at all (an es_url",
        "# selects the cluster unless backend is set). ELASTIC_RECHECK_<SECTION>_<KEY> in the",
        "# environment overrides any of them.",
    ]
    section = None
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            out += ["", f"[{section}]"]
        out += textwrap.wrap(s.help + (" (secret)" if s.secret else ""), width=96,
                             initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)
        value = format_value(s.default)
        out.append(f"#{s.key} = {value}" if value else f"#{s.key} =")
    return "\n".join(out) + "\n"


ENV_PREFIX = "ELASTIC_RECHECK_"
#: The ``ELASTIC_RECHECK_*`` variables that are not settings (tests/unit/test_docs.py checks
#: that every name the package reads is here or a setting's).
OTHER_ENV = frozenset({
    "ELASTIC_RECHECK_CONFIG",  # the config file (cli.py)
    ENV_STORE,
    "ELASTIC_RECHECK_WEB",  # site templates (report/templating.py)
    "ELASTIC_RECHECK_CACHE_DIR",  # fingerprint cache (fingerprint_cache.py)
    "ELASTIC_RECHECK_FAULT",  # fault injection of the reliability tests (bot.py)
})
#: The test suite's own variables (docs/testing.md).
TEST_ENV_PREFIX = "ELASTIC_RECHECK_TEST_"


def env_name(setting: Setting) -> str:
    return f"{ENV_PREFIX}{setting.section.upper()}_{setting.key.upper()}"


def _env_overrides() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for s in SETTINGS:
        name = env_name(s)
        if name in os.environ:
            out.setdefault(s.section, {})[s.key] = os.environ[name]
    return out


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``ELASTIC_RECHECK_*`` variable that nothing reads (a typo is not silently ignored)."""
    known = sorted({env_name(s) for s in SETTINGS} | OTHER_ENV)
    out = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(TEST_ENV_PREFIX):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        out.append(f"unknown environment variable {name} (ignored){hint}")
    return out


def load_config(path: str | Path | None = None) -> Config:
    """Read an INI file (optional), apply env overrides, validate.

    A world-readable file that holds a secret gets a warning.
    """
    data: dict[str, dict[str, str]] = {}
    p: Path | None = None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(p, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: {exc}") from None
        for section in parser.sections():
            data[section] = dict(parser.items(section))
        _warn_world_readable(p, data)
    for section, items in _env_overrides().items():
        data.setdefault(section, {}).update(items)
    for warning in unknown_env(os.environ):
        LOG.warning("%s", warning)
    return from_mapping(data, path=p)


def _warn_world_readable(path: Path, data: Mapping[str, Mapping[str, str]]) -> None:
    has_secret = any(
        _BY_KEY.get((sec, key)) is not None and _BY_KEY[(sec, key)].secret and val
        for sec, items in data.items()
        for key, val in items.items()
    )
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if has_secret and mode & stat.S_IROTH:
        LOG.warning("%s holds secrets and is world-readable; chmod 600 it", path)

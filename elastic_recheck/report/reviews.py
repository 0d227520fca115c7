"""Open Gerrit reviews that mention a bug: graph.json's ``bug_data.reviews`` and the bug page's "Open Reviews".

As the original's graph: the numbers of the open changes whose commit
message mentions the bug, outside the fingerprints' own project
(``status:open message:<bug> NOT project:<[site] open_reviews_exclude>``).
Asked over Gerrit REST (``GET /changes/?q=``, ``/a/changes/`` with ``[gerrit]
http_password``) or SSH (``gerrit query``), per ``[site] open_reviews``.
Answers are cached for ``[bugs] cache_ttl`` seconds in
``<[bugs] cache_dir>/open-reviews.json``; a 502 is retried once, as the
original did. Any other failure leaves that bug's reviews as last cached
(else empty) with a warning: the pages never fail for want of reviews.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import requests

from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer, strip_xssi
from elastic_recheck.adapters.launchpad.trackers import bug_cache_dir
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import ElasticRecheckError, GerritError
from elastic_recheck.core.fixes import REST_OPTIONS, SSH_OPTIONS, Fix, fixes_from_records, fixes_query

LOG = logging.getLogger(__name__)

#: Bug ids that go into a Gerrit query as they are (Launchpad numbers, tracker keys).
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CACHE_FILE = "open-reviews.json"
FIXES_CACHE_FILE = "fixes.json"
#: The one status the original retried (once): Gerrit's proxy answering 502.
RETRY_STATUS = 502

#: ``query text -> open change numbers``.
Source = Callable[[str], list[int]]


def reviews_query(bug: str, exclude_project: str = "") -> str:
    """The Gerrit search for the open changes that mention ``bug``."""
    text = f"status:open message:{bug}"
    return f"{text} NOT project:{exclude_project}" if exclude_project else text


class RestSource:
    """``GET <url>/changes/?q=<query>`` (anonymous; ``/a/changes/`` with a password)."""

    def __init__(self, url: str, user: str = "", password: str = "", timeout: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.auth = (user, password) if user and password else None
        self.timeout = timeout
        self.session = session or requests.Session()

    kind = "rest"

    def __call__(self, query: str) -> list[int]:
        return sorted({int(c["_number"]) for c in self.records(query) if str(c.get("_number", "")).isdigit()})

    def records(self, query: str, options: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The ChangeInfo records of ``GET /changes/?q=<query>&o=<option>...``."""
        endpoint = self.url + ("/a/changes/" if self.auth else "/changes/")
        params: list[tuple[str, str]] = [("q", query), *(("o", o) for o in options)]
        for attempt in (1, 2):
            try:
                resp = self.session.get(endpoint, params=params, auth=self.auth, timeout=self.timeout,
                                        headers={"Accept": "application/json"})
            except requests.RequestException as exc:
                raise GerritError(f"GET {endpoint}: {type(exc).__name__}: {exc}") from None
            if resp.status_code == RETRY_STATUS and attempt == 1:
                LOG.info("GET %s?q=%s: HTTP 502; retrying once", endpoint, query)
                continue
            break
        body = resp.content.decode("utf-8", "replace")
        if resp.status_code >= 400:
            raise GerritError(f"GET {endpoint}: HTTP {resp.status_code}: {body.strip()[:200]}")
        try:
            changes = json.loads(strip_xssi(body))
        except ValueError:
            raise GerritError(f"GET {endpoint} answered non-JSON: {body[:200]!r}") from None
        if not isinstance(changes, list):
            raise GerritError(f"GET {endpoint}: expected a list of changes, got {type(changes).__name__}")
        return [c for c in changes if isinstance(c, dict)]


class SshSource:
    """``gerrit query --format=JSON <query>`` over SSH."""

    kind = "ssh"

    def __init__(self, reviewer: GerritReviewer) -> None:
        self.reviewer = reviewer

    def __call__(self, query: str) -> list[int]:
        return sorted({int(r["number"]) for r in self.records(query) if str(r.get("number", "")).isdigit()})

    def records(self, query: str, options: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The change records of ``gerrit query --format=JSON <options> <query>``."""
        return self.reviewer.query(query, options)


class BugQueryCache:
    """bug -> one Gerrit answer about it (JSON-able), through a JSON file cache of ``ttl`` seconds."""

    #: The key of the answer in a cache entry.
    field = "reviews"

    def __init__(self, cache_path: Path | None, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.cache_path = cache_path
        self.ttl = ttl
        self.clock = clock

    def _load(self) -> dict[str, Any]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            LOG.warning("%s: unreadable open-review cache (%s); asking Gerrit again", self.cache_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        if self.cache_path is None:
            return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
            tmp.replace(self.cache_path)
        except OSError as exc:
            LOG.warning("%s: cannot write the open-review cache: %s", self.cache_path, exc)

    def cached_many(self, bugs: Iterable[str], fetch: Callable[[str], Any], what: str) -> dict[str, Any]:
        """``fetch(bug)`` for every bug not cached within ``ttl`` (bugs that are not plain ids: empty).

        A failing fetch leaves the bug's last cached answer (else an empty list), with a warning.
        """
        cache = self._load()
        now = self.clock()
        out: dict[str, Any] = {}
        changed = False
        for bug in bugs:
            hit = cache.get(bug)
            cached = hit.get(self.field) if isinstance(hit, dict) else None
            if isinstance(hit, dict) and now - float(hit.get("fetched_at", 0)) < self.ttl:
                out[bug] = cached or []
                continue
            if not _PLAIN_ID.match(bug):
                out[bug] = []
                continue
            try:
                out[bug] = fetch(bug)
            except ElasticRecheckError as exc:
                LOG.warning("%s of bug %s: %s", what, bug, exc)
                out[bug] = cached or []
                continue
            cache[bug] = {self.field: out[bug], "fetched_at": now}
            changed = True
        if changed:
            self._save(cache)
        return out


class OpenReviews(BugQueryCache):
    """bug -> open review numbers, through a JSON file cache."""

    def __init__(self, source: Source, cache_path: Path | None, ttl: float, exclude_project: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(cache_path, ttl, clock)
        self.source = source
        self.exclude_project = exclude_project

    def get_many(self, bugs: Iterable[str]) -> dict[str, list[int]]:
        found = self.cached_many(bugs, lambda bug: self.source(reviews_query(bug, self.exclude_project)), "open reviews")
        return {bug: [int(n) for n in numbers] for bug, numbers in found.items()}


class BugFixes(BugQueryCache):
    """bug -> its fixes (:mod:`elastic_recheck.core.fixes`), through a JSON file cache."""

    field = "fixes"

    def __init__(self, source: RestSource | SshSource, cache_path: Path | None, ttl: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(cache_path, ttl, clock)
        self.source = source

    def _fetch(self, bug: str) -> list[dict[str, Any]]:
        options = REST_OPTIONS if self.source.kind == "rest" else SSH_OPTIONS
        records = self.source.records(fixes_query(bug), options)
        return [f.as_json() for f in fixes_from_records(records, bug, self.source.kind)]

    def get_many(self, bugs: Iterable[str]) -> dict[str, list[Fix]]:
        found = self.cached_many(bugs, self._fetch, "fixes")
        return {bug: [Fix.from_json(f) for f in fixes if isinstance(f, dict)] for bug, fixes in found.items()}


def fixes_from_config(config: Config) -> BugFixes | None:
    """``[site] fixes``: where the bug pages' fixes come from (None: off)."""
    source = gerrit_source_from_config(config, "fixes")
    if source is None:
        return None
    return BugFixes(source, bug_cache_dir(config) / FIXES_CACHE_FILE, config.bugs.cache_ttl)


def gerrit_source_from_config(
    config: Config, setting: Literal["fixes", "open_reviews"], when_off: str = "off"
) -> RestSource | SshSource | None:
    """The Gerrit query source ``[site] <setting>`` names: rest, ssh, off (read as ``when_off``), or auto (rest
    when ``[gerrit] host`` or ``url`` is configured)."""
    mode = (config.site.fixes if setting == "fixes" else config.site.open_reviews).strip().lower()
    if mode == "off":
        mode = when_off
    # Departure from the original (docs/compatibility.md): Gerrit is asked only
    # when one is configured, never review.openstack.org by default.
    if mode == "auto":
        explicit = any((("gerrit", k) in config.values) for k in ("host", "url"))
        mode = "rest" if explicit else "off"
    if mode == "off":
        return None
    host = config.gerrit.host
    if mode == "ssh":
        return SshSource(GerritReviewer(
            "ssh", host=host, port=config.gerrit.port, user=config.gerrit.user,
            keyfile=config.gerrit.key or None,
        ))
    return RestSource(config.gerrit.url or f"https://{host}",
                      config.gerrit.http_user or config.gerrit.user,
                      config.gerrit.http_password)


def open_reviews_from_config(config: Config) -> OpenReviews | None:
    """``[site] open_reviews``: rest, ssh, off, or auto (rest when ``[gerrit] host`` or ``url`` is configured)."""
    source = gerrit_source_from_config(config, "open_reviews")
    if source is None:
        return None
    cache = bug_cache_dir(config) / CACHE_FILE
    return OpenReviews(source, cache, config.bugs.cache_ttl, config.site.open_reviews_exclude)

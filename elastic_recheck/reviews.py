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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests

from elastic_recheck.bugs import bug_cache_dir
from elastic_recheck.config import Config
from elastic_recheck.errors import ElasticRecheckError, GerritError
from elastic_recheck.gerrit import GerritReviewer, strip_xssi

LOG = logging.getLogger(__name__)

#: Bug ids that go into a Gerrit query as they are (Launchpad numbers, tracker keys).
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CACHE_FILE = "open-reviews.json"
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

    def __call__(self, query: str) -> list[int]:
        endpoint = self.url + ("/a/changes/" if self.auth else "/changes/")
        for attempt in (1, 2):
            try:
                resp = self.session.get(endpoint, params={"q": query}, auth=self.auth, timeout=self.timeout,
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
        return sorted({int(c["_number"]) for c in changes if isinstance(c, dict) and str(c.get("_number", "")).isdigit()})


class SshSource:
    """``gerrit query --format=JSON <query>`` over SSH."""

    def __init__(self, reviewer: GerritReviewer) -> None:
        self.reviewer = reviewer

    def __call__(self, query: str) -> list[int]:
        records = self.reviewer.query(query)
        return sorted({int(r["number"]) for r in records if str(r.get("number", "")).isdigit()})


class OpenReviews:
    """bug -> open review numbers, through a JSON file cache."""

    def __init__(self, source: Source, cache_path: Path | None, ttl: float, exclude_project: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.cache_path = cache_path
        self.ttl = ttl
        self.exclude_project = exclude_project
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

    def get_many(self, bugs: Iterable[str]) -> dict[str, list[int]]:
        cache = self._load()
        now = self.clock()
        out: dict[str, list[int]] = {}
        changed = False
        for bug in bugs:
            hit = cache.get(bug)
            cached = [int(n) for n in hit.get("reviews", [])] if isinstance(hit, dict) else None
            if isinstance(hit, dict) and now - float(hit.get("fetched_at", 0)) < self.ttl:
                out[bug] = cached or []
                continue
            if not _PLAIN_ID.match(bug):
                out[bug] = []
                continue
            try:
                out[bug] = self.source(reviews_query(bug, self.exclude_project))
            except ElasticRecheckError as exc:
                LOG.warning("open reviews of bug %s: %s", bug, exc)
                out[bug] = cached or []
                continue
            cache[bug] = {"reviews": out[bug], "fetched_at": now}
            changed = True
        if changed:
            self._save(cache)
        return out


def open_reviews_from_config(config: Config) -> OpenReviews | None:
    """``[site] open_reviews``: rest, ssh, off, or auto (rest when ``[gerrit] host`` or ``url`` is configured)."""
    mode = str(config.get("site", "open_reviews")).strip().lower()
    # Departure from the original (docs/compatibility.md): Gerrit is asked only
    # when one is configured, never review.openstack.org by default.
    if mode == "auto":
        explicit = any((("gerrit", k) in config.values) for k in ("host", "url"))
        mode = "rest" if explicit else "off"
    if mode == "off":
        return None
    host = str(config.get("gerrit", "host"))
    if mode == "ssh":
        source: Source = SshSource(GerritReviewer(
            "ssh", host=host, port=int(config.get("gerrit", "port")), user=str(config.get("gerrit", "user")),
            keyfile=str(config.get("gerrit", "key")) or None,
        ))
    else:
        source = RestSource(str(config.get("gerrit", "url")) or f"https://{host}",
                            str(config.get("gerrit", "http_user")) or str(config.get("gerrit", "user")),
                            str(config.get("gerrit", "http_password")))
    cache = bug_cache_dir(config) / CACHE_FILE
    return OpenReviews(source, cache, float(config.get("bugs", "cache_ttl")), str(config.get("site", "open_reviews_exclude")))

"""Bug tracker adapters of the port :class:`~elastic_recheck.ports.bugs.BugTracker`:


* :class:`LaunchpadTracker` - Launchpad through ``launchpadlib`` (anonymous,
  configurable service root ``[bugs] launchpad_url``, request timeout
  ``[bugs] timeout``);
* :class:`OfflineTracker` - no network: ``bug_title``/``projects`` from the
  fingerprints' YAML and an optional ``[bugs] bugs_file``;
* :class:`CachedTracker` - wraps any tracker with an on-disk SQLite cache
  (``[bugs] cache_dir``, TTL ``[bugs] cache_ttl``); when the tracker is down
  it serves stale entries marked ``stale=True`` and logs the outage once.

Other trackers (GitHub issues, StoryBoard, Jira) are one more adapter class
implementing :class:`~elastic_recheck.ports.bugs.BugTracker` plus one entry in :data:`TRACKER_FACTORIES`
(the ``[bugs] tracker`` name); nothing else changes. The fingerprints'
``tracker`` key is reserved for routing bugs to several trackers.

Tracker answers are data, not errors: a bug that does not exist is
``missing=True``, one we may not see is ``private=True``. Only "the tracker
did not answer" (timeouts, connection errors, 5xx) raises
:class:`~elastic_recheck.core.errors.BugTrackerError`.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from elastic_recheck.core.errors import BugTrackerError, ConfigError
from elastic_recheck.core.timestamps import parse_timestamp
from elastic_recheck.ports.bugs import BugInfo, BugTask, BugTracker, summarize_status
from elastic_recheck.storage.sqlite import Schema, objects_exist, open_file

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config
    from elastic_recheck.core.fingerprints import Fingerprint

LOG = logging.getLogger(__name__)

LAUNCHPAD_WEB = "https://bugs.launchpad.net"


def default_bug_url(bug: str) -> str:
    return f"{LAUNCHPAD_WEB}/bugs/{bug}" if bug.isdigit() else bug


# --- offline ---------------------------------------------------------------


class OfflineTracker:
    """Bug data from the fingerprints (``bug_title``, ``projects``, ``bug_url``)
    and an optional YAML file ``{bug_id: {title, status, importance, projects, url}}``
    (the file wins where both say something). Unknown bugs have no title.
    """

    name = "offline"

    def __init__(self, fingerprints: Iterable[Fingerprint] = (), bugs_file: str | Path | None = None) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        for fp in fingerprints:
            entry: dict[str, Any] = {"url": fp.url}
            if fp.bug_title:
                entry["title"] = fp.bug_title
            if fp.projects:
                entry["projects"] = list(fp.projects)
            self._data[fp.bug] = entry
        if bugs_file:
            for bug, entry in load_bugs_file(bugs_file).items():
                self._data.setdefault(bug, {}).update(entry)

    def get(self, bug_id: str) -> BugInfo:
        bug = str(bug_id)
        entry = self._data.get(bug, {})
        status = entry.get("status")
        importance = entry.get("importance")
        tasks = tuple(BugTask(project=p, status=status, importance=importance, target=p)
                      for p in entry.get("projects", ()))
        return BugInfo(
            bug=bug,
            url=entry.get("url") or default_bug_url(bug),
            title=entry.get("title"),
            status=status,
            importance=importance,
            tasks=tasks,
            source=self.name,
        )

    def get_many(self, bug_ids: Iterable[str]) -> dict[str, BugInfo]:
        return {str(b): self.get(str(b)) for b in bug_ids}


def load_bugs_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read ``{bug_id: {title, status, importance, projects, url}}``.

    :raises ConfigError: when the file is unreadable or malformed.
    """
    p = Path(path).expanduser()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of bug id to {{title, status, projects}}")
    out: dict[str, dict[str, Any]] = {}
    for bug, entry in data.items():
        if isinstance(entry, str):
            entry = {"title": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{p}: bug {bug}: expected a mapping")
        clean: dict[str, Any] = {}
        for key in ("title", "status", "importance", "url"):
            value = entry.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise ConfigError(f"{p}: bug {bug}: {key!r} must be a string")
                clean[key] = value
        projects = entry.get("projects")
        if projects is not None:
            if isinstance(projects, str):
                projects = [projects]
            if not isinstance(projects, list) or not all(isinstance(x, str) for x in projects):
                raise ConfigError(f"{p}: bug {bug}: 'projects' must be a list of names")
            clean["projects"] = projects
        unknown = set(entry) - {"title", "status", "importance", "url", "projects"}
        if unknown:
            LOG.warning("%s: bug %s: unknown keys %s (ignored)", p, bug, ", ".join(sorted(map(str, unknown))))
        out[str(bug)] = clean
    return out


# --- Launchpad -------------------------------------------------------------


def split_service_root(api_url: str) -> tuple[str, str]:
    """``https://api.launchpad.net/devel/`` -> (``https://api.launchpad.net/``, ``devel``).

    launchpadlib wants the root without the API version and the version apart.
    A URL without a known version segment is used as the root of ``devel``.
    """
    url = api_url.rstrip("/")
    head, _, last = url.rpartition("/")
    if last in ("devel", "beta", "1.0") and head.count("/") >= 2:
        return head + "/", last
    return url + "/", "devel"


class LaunchpadTracker:
    """Launchpad via launchpadlib (anonymous, read-only).

    Login is lazy (first request) and retried after a failure. One bug costs
    two requests: the bug entry and its bug_tasks page. The adapter owns its
    timeout (``timeout`` seconds per request, connect and read) and does not
    let lazr.restfulclient sleep through its 502/503 retries (``max_retries``).
    """

    name = "launchpad"

    def __init__(
        self,
        api_url: str = "https://api.launchpad.net/devel/",
        timeout: float = 10.0,
        cache_dir: str | Path | None = None,
        web_url: str = LAUNCHPAD_WEB,
        max_retries: int = 0,
        consumer: str = "elastic-recheck",
    ) -> None:
        self.api_url = api_url
        self.service_root, self.version = split_service_root(api_url)
        self.timeout = timeout
        self.web_url = web_url.rstrip("/")
        self.max_retries = max_retries
        self.consumer = consumer
        # launchpadlib keeps its HTTP cache (the large WADL) here.
        self._lp_dir = Path(cache_dir) / "launchpadlib" if cache_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lp: Any = None
        self._lock = threading.Lock()

    def _login(self) -> Any:
        if self._lp is not None:
            return self._lp
        from launchpadlib.launchpad import Launchpad  # type: ignore[import-untyped,unused-ignore]  # heavy; lazy

        if self._lp_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="er-launchpadlib-")
            self._lp_dir = Path(self._tmp.name)
        lp_dir = self._lp_dir
        lp_dir.mkdir(parents=True, exist_ok=True)
        LOG.debug("launchpad: anonymous login to %s (%s)", self.service_root, self.version)
        lp = Launchpad.login_anonymously(
            self.consumer,
            service_root=self.service_root,
            launchpadlib_dir=str(lp_dir),
            timeout=self.timeout,
            version=self.version,
        )
        # lazr.restfulclient retries 502/503 with sleeps of up to 16 s; we
        # would rather fail fast and serve the cache.
        browser = getattr(lp, "_browser", None)
        if browser is not None and hasattr(browser, "max_retries"):
            browser.max_retries = self.max_retries
        self._lp = lp
        return lp

    def get(self, bug_id: str) -> BugInfo:
        bug = str(bug_id).strip()
        if not bug.isdigit():
            LOG.debug("launchpad: %r is not a Launchpad bug number", bug)
            return BugInfo(bug=bug, url=default_bug_url(bug), missing=True, source=self.name)
        with self._lock:
            try:
                return self._fetch(bug)
            except BugTrackerError:
                raise
            except Exception as exc:  # every library error is translated to one type
                LOG.debug("launchpad: bug %s failed", bug, exc_info=True)
                raise self._translate(exc, bug) from None

    def get_many(self, bug_ids: Iterable[str]) -> dict[str, BugInfo]:
        return {str(b): self.get(str(b)) for b in dict.fromkeys(bug_ids)}

    def _fetch(self, bug: str) -> BugInfo:
        from lazr.restfulclient.errors import HTTPError  # type: ignore[import-untyped,unused-ignore]

        url = f"{self.web_url}/bugs/{bug}"
        lp = self._login()
        try:
            entry = lp.bugs[int(bug)]
            title = entry.title
            private = bool(entry.private)
            dup_link = entry.duplicate_of_link
            tasks = tuple(self._task(t) for t in entry.bug_tasks)
        except KeyError:
            return BugInfo(bug=bug, url=url, missing=True, source=self.name)
        except HTTPError as exc:
            status = getattr(exc.response, "status", None)
            if status in (401, 403):
                return BugInfo(bug=bug, url=url, private=True, source=self.name)
            if status == 404:
                return BugInfo(bug=bug, url=url, missing=True, source=self.name)
            raise
        status_, importance = summarize_status(tasks)
        duplicate_of = str(dup_link).rstrip("/").rsplit("/", 1)[-1] if dup_link else None
        return BugInfo(
            bug=bug, url=url, title=title, status=status_, importance=importance, tasks=tasks,
            duplicate_of=duplicate_of, private=private, source=self.name,
        )

    @staticmethod
    def _task(task: Any) -> BugTask:
        target = str(task.bug_target_name)
        # "nova/kilo" is the kilo series task of nova; "nova (Ubuntu)" is a
        # distribution package and stays as it is.
        project = target.split("/", 1)[0] if "/" in target and " (" not in target else target
        released = getattr(task, "date_fix_released", None)
        if isinstance(released, str):  # launchpadlib normally gives a datetime already
            released = parse_timestamp(released)
        if not isinstance(released, datetime):
            released = None
        elif released.tzinfo is None:
            released = released.replace(tzinfo=UTC)
        return BugTask(project=project, status=task.status, importance=task.importance, target=target,
                       fix_released_at=released)

    def _translate(self, exc: Exception, bug: str) -> BugTrackerError:
        import httplib2  # type: ignore[import-untyped,unused-ignore]
        from lazr.restfulclient.errors import HTTPError  # type: ignore[import-untyped,unused-ignore]

        where = f"launchpad {self.service_root} (bug {bug})"
        if isinstance(exc, HTTPError):
            status = getattr(exc.response, "status", 0) or 0
            return BugTrackerError(f"{where}: HTTP {status}", retryable=status >= 500 or status == 429)
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return BugTrackerError(f"{where}: timed out after {self.timeout:g} s")
        if isinstance(exc, (OSError, httplib2.HttpLib2Error)):
            return BugTrackerError(f"{where}: {exc.__class__.__name__}: {exc}")
        return BugTrackerError(f"{where}: unexpected {exc.__class__.__name__}: {exc}")


# --- cache -------------------------------------------------------------------


def _cache_migration_1(conn: sqlite3.Connection) -> None:
    """The table as releases before the shared ledger created it."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bug_cache (tracker TEXT NOT NULL, bug TEXT NOT NULL, "
        "data TEXT NOT NULL, fetched_at REAL NOT NULL, PRIMARY KEY (tracker, bug))"
    )


#: The bug cache's migrations (append only; see :mod:`elastic_recheck.storage.sqlite`).
BUG_CACHE_SCHEMA = Schema("bug_cache", [_cache_migration_1], adopt=objects_exist("bug_cache"))


class BugCache:
    """SQLite file of ``(tracker, bug) -> BugInfo JSON, fetched_at``; thread-safe.

    :raises StoreError: when the file cannot be opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = open_file(self.path, BUG_CACHE_SCHEMA, "the bug cache", timeout=10, synchronous=None)
        self._lock = threading.Lock()

    def load(self, tracker: str, bugs: Iterable[str]) -> dict[str, tuple[BugInfo, float]]:
        ids = list(bugs)
        out: dict[str, tuple[BugInfo, float]] = {}
        if not ids:
            return out
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT bug, data, fetched_at FROM bug_cache WHERE tracker = ? AND bug IN ({marks})",
                    [tracker, *chunk],
                ).fetchall()
                for bug, data, fetched_at in rows:
                    try:
                        out[bug] = (BugInfo.from_dict(json.loads(data)), float(fetched_at))
                    except (ValueError, TypeError, KeyError) as exc:
                        LOG.warning("%s: unreadable cache entry for bug %s (%s); refetching", self.path, bug, exc)
        return out

    def save(self, tracker: str, info: BugInfo, fetched_at: float) -> None:
        data = json.dumps(info.to_dict(), sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO bug_cache (tracker, bug, data, fetched_at) VALUES (?, ?, ?, ?)",
                (tracker, info.bug, data, fetched_at),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedTracker:
    """Any tracker plus an on-disk cache.

    * fresh entries (younger than ``ttl`` seconds) are served without asking
      the tracker;
    * expired or unknown entries are fetched and stored;
    * when the tracker fails (:class:`BugTrackerError`), the remaining bugs
      are served from the cache with ``stale=True`` (bugs never cached come
      from ``fallback``, e.g. the offline tracker, also ``stale=True``), the
      outage is logged once, and the tracker is left alone for
      ``retry_after`` seconds.
    """

    def __init__(
        self,
        inner: BugTracker,
        cache: BugCache | str | Path,
        ttl: float = 3600.0,
        fallback: BugTracker | None = None,
        retry_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache if isinstance(cache, BugCache) else BugCache(cache)
        self.ttl = ttl
        self.fallback = fallback
        self.retry_after = retry_after
        #: Seconds since the epoch; injectable so tests need not sleep past the TTL.
        self.clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def tracker_down(self) -> bool:
        return self._down_since is not None

    def get(self, bug_id: str) -> BugInfo:
        return self.get_many([bug_id])[str(bug_id)]

    def get_many(self, bug_ids: Iterable[str]) -> dict[str, BugInfo]:
        ids = [str(b) for b in dict.fromkeys(bug_ids)]
        now = self.clock()
        try:
            cached = self.cache.load(self.name, ids)
        except sqlite3.Error as exc:
            LOG.warning("bug cache %s unreadable (%s); asking the tracker", self.cache.path, exc)
            cached = {}
        out: dict[str, BugInfo] = {}
        todo: list[str] = []
        for bug in ids:
            hit = cached.get(bug)
            if hit is not None and now - hit[1] < self.ttl:
                out[bug] = hit[0]
            else:
                todo.append(bug)
        if not todo:
            return {b: out[b] for b in ids}
        with self._lock:
            if self._down_since is not None and now < self._retry_at:
                LOG.debug("%s still considered down; %d bug(s) from the cache", self.name, len(todo))
            else:
                todo = self._refresh(todo, out)
        for bug in todo:
            out[bug] = self._stale(bug, cached.get(bug))
        return {b: out[b] for b in ids}

    def _refresh(self, todo: list[str], out: dict[str, BugInfo]) -> list[str]:
        """Fetch ``todo`` into ``out``; return the bugs left for the stale path."""
        left: list[str] = []
        for i, bug in enumerate(todo):
            try:
                info = self.inner.get(bug)
            except BugTrackerError as exc:
                if exc.retryable:  # the tracker is down: stop asking
                    self._mark_down(exc)
                    return left + todo[i:]
                LOG.warning("%s: %s", self.name, exc)  # concerns this bug only
                left.append(bug)
                continue
            fetched = self.clock()
            info = replace(info, stale=False, fetched_at=datetime.fromtimestamp(fetched, UTC))
            try:
                self.cache.save(self.name, info, fetched)
            except sqlite3.Error as exc:
                LOG.warning("bug cache %s not writable: %s", self.cache.path, exc)
            out[bug] = info
            if self._down_since is not None:
                LOG.info("%s answers again after %.0f s", self.name, fetched - self._down_since)
                self._down_since = None
        return left

    def _mark_down(self, exc: BugTrackerError) -> None:
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
            LOG.warning("%s unavailable (%s); serving cached bug data for %.0f s before retrying",
                        self.name, exc, self.retry_after)
        else:
            LOG.debug("%s still unavailable: %s", self.name, exc)
        self._retry_at = now + self.retry_after

    def _stale(self, bug: str, hit: tuple[BugInfo, float] | None) -> BugInfo:
        if hit is not None:
            return replace(hit[0], stale=True)
        if self.fallback is not None:
            try:
                return replace(self.fallback.get(bug), stale=True)
            except BugTrackerError:
                pass
        return BugInfo(bug=bug, url=default_bug_url(bug), stale=True, source=self.name)


# --- wiring ----------------------------------------------------------------


def bug_cache_dir(config: Config) -> Path:
    """``[bugs] cache_dir``, else ``bug-cache`` next to the store."""
    value = config.bugs.cache_dir
    return Path(value).expanduser() if value else config.store_path.parent / "bug-cache"


def _offline(config: Config, fingerprints: Iterable[Fingerprint]) -> OfflineTracker:
    return OfflineTracker(fingerprints, config.bugs.bugs_file or None)


def _launchpad(config: Config, offline: OfflineTracker) -> BugTracker:
    cache_dir = bug_cache_dir(config)
    lp = LaunchpadTracker(
        api_url=config.bugs.launchpad_url,
        timeout=config.bugs.timeout,
        cache_dir=cache_dir,
    )
    return CachedTracker(lp, cache_dir / "bugs.sqlite3", ttl=config.bugs.cache_ttl,
                         fallback=offline)


#: ``[bugs] tracker`` name -> factory(config, offline tracker). Add GitHub,
#: StoryBoard or Jira here.
TRACKER_FACTORIES: dict[str, Callable[[Config, OfflineTracker], BugTracker]] = {
    "launchpad": _launchpad,
}


def tracker_from_config(config: Config, fingerprints: Iterable[Fingerprint] = ()) -> BugTracker:
    """The tracker named by ``[bugs] tracker`` (``offline`` or ``launchpad``).

    Online trackers are wrapped in a :class:`CachedTracker` whose fallback is
    the offline data, so the bot always has a title when the fingerprint has one.

    :raises ConfigError: on an unknown tracker name or a bad ``bugs_file``.
    """
    kind = config.bugs.tracker.strip().lower()
    offline = _offline(config, fingerprints)
    if kind == "offline":
        return offline
    factory = TRACKER_FACTORIES.get(kind)
    if factory is None:
        names = ", ".join(["offline", *sorted(TRACKER_FACTORIES)])
        raise ConfigError(f"[bugs] tracker must be one of {names}, not {kind!r}")
    return factory(config, offline)


if TYPE_CHECKING:
    # mypy checks every adapter against the port.
    _ports: tuple[type[BugTracker], ...] = (OfflineTracker, LaunchpadTracker, CachedTracker)

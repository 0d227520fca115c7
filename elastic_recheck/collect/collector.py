"""Collect build logs from Zuul into the embedded store or a cluster.

Three parts:

* :class:`LogFetcher` downloads the interesting log files of one build into
  a local directory: ``job-output.txt`` plus files chosen by glob per job-name
  regex (:class:`FileRule`). It reads the build's ``zuul-manifest.json`` to
  know which files exist (and their sizes), else tries known paths. It only
  talks to allowed log hosts, never writes outside the download directory,
  skips files over ``max_bytes`` and un-gzips both ``Content-Encoding: gzip``
  answers and ``.gz`` files. It also reads ``zuul-info/inventory.yaml`` for
  the node provider.
* :class:`~elastic_recheck.collect.state.CollectorState` (its own module)
  remembers which builds were collected, so a restart continues and nothing
  is fetched twice.
* :class:`Collector` lists builds from Zuul (:class:`~elastic_recheck.adapters.zuul.api.ZuulClient`),
  filters and samples them, fetches them on a thread pool and hands each
  build directory to a :class:`Sink`: the same ingest pipeline as
  ``elastic-recheck ingest`` (:func:`elastic_recheck.ingest.pipeline.iter_build_dir`),
  into the embedded store or, through the one bulk writer
  (:class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`), into daily indices of
  Elasticsearch/OpenSearch.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import math
import os
import posixpath
import re
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

from elastic_recheck.adapters.zuul.api import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    USER_AGENT,
    NodeInfo,
    ZuulBuild,
    ZuulClient,
    parse_inventory,
    request_with_retries,
)
from elastic_recheck.collect.state import (
    COLLECTED,
    FAILED,
    FETCHING,
    FINAL_STATUSES,
    MISSING,
    NO_LOGS,
    REFUSED,
    CollectorState,
)
from elastic_recheck.core.errors import (
    BackendError,
    ConfigError,
    ElasticRecheckError,
    LogFetchError,
    ZuulError,
)

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config
    from elastic_recheck.ingest.pipeline import BuildInfo

LOG = logging.getLogger(__name__)

#: Files over this many (uncompressed) bytes are skipped by default.
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: The manifest and the inventory are read into memory: refuse bigger ones.
MANIFEST_MAX_BYTES = 32 * 1024 * 1024
INVENTORY_MAX_BYTES = 4 * 1024 * 1024
#: Redirects followed per download (each target host is checked).
MAX_REDIRECTS = 5
#: Size of one read from the network / the decompressor.
CHUNK = 256 * 1024
#: Seconds one log file's download may take in all (``[zuul] download_deadline``):
#: 200 MB (the default ``max_bytes``) at 1 MB/s takes 200 s.
DEFAULT_DOWNLOAD_DEADLINE = 600.0
#: --follow re-lists builds that started this long before the newest one seen,
#: because Zuul lists builds by start and a long job ends after shorter, later ones.
FOLLOW_OVERLAP = timedelta(hours=4)
#: Default share of SUCCESS builds collected (failures are always collected).
DEFAULT_SUCCESS_SAMPLE = 0.2

MANIFEST_NAME = "zuul-manifest.json"
INVENTORY_PATH = "zuul-info/inventory.yaml"
JOB_OUTPUT = "job-output.txt"

#: Result statuses that are not rows of the collector state's table.
ALREADY = "already"  # collect_build: somebody collected it before
BUSY = "busy"  # another worker holds the claim
WOULD_COLLECT = "would_collect"  # --dry-run


# ---------------------------------------------------------------------------
# Which files to fetch


def _glob_segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(_glob_segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return fnmatch.fnmatchcase(path[0], head) and _glob_segments_match(pattern[1:], path[1:])


def glob_match(pattern: str, path: str) -> bool:
    """Match a relative path against a glob: ``*``/``?``/``[..]`` stay within one
    path segment, ``**`` spans any number of segments (``**/*.subunit``)."""
    return _glob_segments_match(pattern.strip("/").split("/"), path.strip("/").split("/"))


def strip_gz(path: str) -> str:
    return path.removesuffix(".gz")


@dataclass(frozen=True)
class FileRule:
    """Log files (globs over paths relative to the build's ``log_url``) for jobs matching ``job_re``."""

    job_re: str
    globs: tuple[str, ...]

    def applies_to(self, job_name: str) -> bool:
        return re.search(self.job_re, job_name) is not None


DEFAULT_FILE_RULES: tuple[FileRule, ...] = (
    FileRule(".*", (JOB_OUTPUT, "testrepository.subunit", "*.subunit")),
    # devstack-based jobs (Zuul v3 layout: one directory per node).
    FileRule(
        ".*",
        (
            "*/logs/screen-*.txt",
            "*/logs/devstack@*.service.log.txt",
            "*/logs/syslog.txt",
            "controller/logs/devstacklog.txt",
        ),
    ),
    # Zuul v2 / devstack-gate layout.
    FileRule(".*", ("logs/screen-*.txt", "logs/syslog.txt", "logs/devstacklog.txt")),
)

#: Services whose screen logs are tried when a build has no manifest.
_KNOWN_SERVICES = (
    "n-api",
    "n-api-meta",
    "n-cond-cell1",
    "n-cpu",
    "n-sch",
    "n-super-cond",
    "q-svc",
    "q-agt",
    "q-dhcp",
    "q-l3",
    "q-meta",
    "q-ovn-metadata-agent",
    "c-api",
    "c-sch",
    "c-vol",
    "c-bak",
    "g-api",
    "keystone",
    "placement-api",
    "s-proxy",
)

#: Paths tried (if a rule selects them) when a build has no manifest.
KNOWN_PATHS: tuple[str, ...] = (
    JOB_OUTPUT,
    "testrepository.subunit",
    *(f"{host}/logs/screen-{svc}.txt" for host in ("controller", "compute1") for svc in _KNOWN_SERVICES),
    "controller/logs/syslog.txt",
    "compute1/logs/syslog.txt",
    "controller/logs/devstacklog.txt",
    *(f"logs/screen-{svc}.txt" for svc in _KNOWN_SERVICES),
    "logs/syslog.txt",
    "logs/devstacklog.txt",
)


def parse_file_rules(text: str) -> list[FileRule]:
    """``job-regex=glob[,glob]`` lines (the ``[zuul] log_files`` setting).

    :raises ConfigError: a line without ``=`` or with an invalid regex.
    """
    rules: list[FileRule] = []
    for raw in text.replace(";", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        job_re, sep, globs = line.partition("=")
        if not sep:
            raise ConfigError(f"[zuul] log_files: expected job-regex=glob[,glob], got {line!r}")
        job_re = job_re.strip() or ".*"
        try:
            re.compile(job_re)
        except re.error as exc:
            raise ConfigError(f"[zuul] log_files: bad job regex {job_re!r}: {exc}") from None
        patterns = tuple(g.strip() for g in globs.split(",") if g.strip())
        if patterns:
            rules.append(FileRule(job_re, patterns))
    return rules


def safe_relpath(path: str) -> str | None:
    """A normalized relative POSIX path, or None when it would leave the directory."""
    if not path or "\x00" in path or "\\" in path:
        return None
    if path.startswith("/"):
        return None
    norm = posixpath.normpath(path)
    if norm in (".", "..") or norm.startswith(("../", "/")):
        return None
    return norm


def _manifest_size(value: Any) -> int | None:
    """A manifest entry's size; None (unknown: the download's own limit applies) unless a finite number >= 0.

    JSON from a log server may say ``1e999`` (infinity) or ``NaN``: not a
    reason to fail the build.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, int | None]:
    """``{relative path: size}`` of the files listed in a Zuul manifest.

    The manifest is ``{"tree": [entry...], "index_links": bool}``; an entry is
    ``{"name", "mimetype", "encoding", "last_modified", "size"}``, or a
    directory with ``"mimetype": "application/directory"`` and ``"children"``.
    Entries whose path would leave the log root are dropped.
    """
    out: dict[str, int | None] = {}

    def walk(entries: Any, prefix: str, depth: int) -> None:
        if not isinstance(entries, list) or depth > 64:
            return
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                continue
            rel = safe_relpath(f"{prefix}{name}")
            if rel is None:
                LOG.warning("manifest entry %r leaves the log root, ignored", f"{prefix}{name}")
                continue
            children = entry.get("children")
            if entry.get("mimetype") == "application/directory" or isinstance(children, list):
                walk(children, rel + "/", depth + 1)
                continue
            size = entry.get("size")
            out[rel] = _manifest_size(size)

    walk(manifest.get("tree"), "", 0)
    return out


def sample_keep(uuid: str, rate: float) -> bool:
    """Deterministic sampling: the same uuid is always in (or out of) the sample."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.sha256(uuid.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < rate


# ---------------------------------------------------------------------------
# The fetcher


@dataclass(frozen=True)
class FetchedFile:
    path: str  # relative path as saved (``.gz`` removed once decompressed)
    url: str
    size: int  # bytes written (uncompressed)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class FetchResult:
    """What :meth:`LogFetcher.fetch` downloaded for one build."""

    build: ZuulBuild  # with node info from the inventory when there was one
    build_dir: Path
    files: list[FetchedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    used_manifest: bool = False
    node_info: NodeInfo | None = None

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


class _NotFound(Exception):
    pass


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _DeadlinePassed(Exception):
    """A download went on past its deadline."""


def _chunks_until(resp: requests.Response, until: float) -> Iterator[bytes]:
    """The body as it arrives (``Content-Encoding`` undone), until ``time.monotonic()`` passes ``until``.

    ``read1`` returns after one read of the socket, so a server sending one
    byte every few seconds is checked at every byte: the deadline holds
    within one inactivity ``timeout``, however slowly the body trickles in
    (``iter_content`` would wait for a whole chunk).
    """
    raw = resp.raw
    while True:
        if time.monotonic() > until:
            raise _DeadlinePassed
        try:
            data = raw.read1(CHUNK, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.Timeout(str(exc)) from None
        except urllib3.exceptions.ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
        except OSError as exc:
            raise requests.ConnectionError(str(exc)) from None
        if not data:
            return
        yield data


class _Gunzip:
    """Writes a byte stream to ``out``, gunzipping it when it starts with the gzip magic.

    The HTTP layer already undid ``Content-Encoding: gzip``; what is still
    gzip here is a ``.gz`` file served as is. Counts the bytes written and
    raises :class:`_TooLarge` past ``limit`` (so a gzip bomb stops early).
    """

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out = out
        self.limit = limit
        self.written = 0
        self._head = b""
        self._decided = False
        self._decomp: Any = None

    def _write(self, data: bytes) -> None:
        self.written += len(data)
        if self.written > self.limit:
            raise _TooLarge(self.written)
        self.out.write(data)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self._decided:
            self._head += chunk
            if len(self._head) < 2:
                return
            chunk, self._head = self._head, b""
            self._decided = True
            if chunk[:2] == b"\x1f\x8b":
                self._decomp = zlib.decompressobj(31)
        if self._decomp is None:
            self._write(chunk)
            return
        data = chunk
        while data:
            if self._decomp.eof:
                # Another gzip member follows (concatenated .gz files are valid).
                self._decomp = zlib.decompressobj(31)
            self._write(self._decomp.decompress(data, CHUNK))
            data = self._decomp.unconsumed_tail or (self._decomp.unused_data if self._decomp.eof else b"")

    def close(self) -> None:
        if not self._decided:
            self._decided = True
            if self._head:
                self._write(self._head)
            return
        if self._decomp is not None:
            self._write(self._decomp.flush())
            if not self._decomp.eof:
                raise ValueError("truncated gzip data")


class LogHostRefused(LogFetchError):
    """A log URL outside the allowed hosts (or not http(s))."""


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """``host`` equals a pattern or matches it as a glob (``*.rackcdn.com``); case-insensitive."""
    host = host.lower().rstrip(".")
    for pat in patterns:
        pat = pat.strip().lower().rstrip(".")
        if pat and (host == pat or fnmatch.fnmatchcase(host, pat)):
            return True
    return False


class LogFetcher:
    """Download one build's log files (see the module doc).

    :param allowed_hosts: log host names or globs (``[zuul] log_hosts``).
        Empty: the build's own ``log_url`` host and ``zuul_host`` are allowed.
    :param max_bytes: files bigger than this (uncompressed) are skipped.
    :param timeout: seconds of silence before a request fails (requests' timeout).
    :param deadline: seconds one file's download may take in all, however
        the server trickles it (past it: a retryable :class:`LogFetchError`).
    """

    def __init__(
        self,
        *,
        rules: Sequence[FileRule] = DEFAULT_FILE_RULES,
        allowed_hosts: Sequence[str] = (),
        zuul_host: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    ) -> None:
        self.rules = tuple(rules)
        self.deadline = deadline
        self.allowed_hosts = tuple(h.strip() for h in allowed_hosts if h.strip())
        self.zuul_host = zuul_host
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self._sleep = sleep

    # -- policy ------------------------------------------------------------

    def check_url(self, url: str, build: ZuulBuild | None = None) -> None:
        """Refuse a URL whose scheme is not http(s) or whose host is not allowed.

        :raises LogFetchError: with the host and the allow-list in the message.
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise LogHostRefused(f"refusing log URL {url!r}: not an http(s) URL", url=url)
        if self.allowed_hosts:
            if host_allowed(host, self.allowed_hosts):
                return
            raise LogHostRefused(
                f"refusing log URL {url}: host {host} is not in [zuul] log_hosts ({', '.join(self.allowed_hosts)})",
                url=url,
            )
        allowed = {h for h in (self.zuul_host,) if h}
        if build is not None and build.log_url:
            allowed.add(urlsplit(build.log_url).hostname or "")
        if host_allowed(host, allowed):
            return
        raise LogHostRefused(
            f"refusing log URL {url}: host {host} is neither the Zuul host nor the build's log host", url=url
        )

    def globs_for(self, job_name: str) -> list[str]:
        out: list[str] = []
        for rule in self.rules:
            if rule.applies_to(job_name):
                out.extend(g for g in rule.globs if g not in out)
        return out

    def select(self, job_name: str, available: Iterable[str]) -> list[str]:
        """The paths among ``available`` that the rules want for ``job_name``.

        A ``.gz`` file counts under its name without ``.gz``; when both exist,
        the plain one is taken. ``job-output.txt`` comes first.
        """
        globs = self.globs_for(job_name)
        chosen: dict[str, str] = {}
        for path in sorted(available):
            plain = strip_gz(path)
            if not any(glob_match(g, plain) for g in globs):
                continue
            if plain in chosen and not chosen[plain].endswith(".gz"):
                continue
            if plain in chosen and path.endswith(".gz"):
                continue
            chosen[plain] = path
        return sorted(chosen.values(), key=lambda p: (strip_gz(p) != JOB_OUTPUT, p))

    # -- HTTP --------------------------------------------------------------

    def file_url(self, build: ZuulBuild, rel: str) -> str:
        base = (build.log_url or "").rstrip("/") + "/"
        return urljoin(base, quote(rel, safe="/@:+,=~"))

    def _get(self, url: str, build: ZuulBuild | None) -> requests.Response:
        """GET with retries, following redirects only to allowed hosts."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url, build)
            resp = request_with_retries(
                self.session,
                url,
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                sleep=self._sleep,
                stream=True,
                allow_redirects=False,
                what="log server",
            )
            if resp.is_redirect and resp.headers.get("Location"):
                target = urljoin(url, resp.headers["Location"])
                resp.close()
                url = target
                continue
            return resp
        raise LogFetchError(f"too many redirects: {url}", url=url)

    def _download(self, url: str, out: IO[bytes], limit: int, build: ZuulBuild | None) -> int:
        """Stream ``url`` into ``out`` (un-gzipped); returns the bytes written.

        :raises _NotFound: 404/410 (also 403, which object stores answer for
            missing objects).
        :raises _TooLarge: more than ``limit`` bytes.
        :raises LogFetchError: other 4xx, retries exhausted, broken gzip,
            :attr:`deadline` passed.
        """
        started = time.monotonic()
        try:
            resp = self._get(url, build)
        except LogFetchError:
            raise
        except ZuulError as exc:
            raise LogFetchError(str(exc), status=exc.status, url=url, retryable=exc.retryable) from None
        with resp:
            status = resp.status_code
            if status in (403, 404, 410):
                raise _NotFound(status)
            if status >= 400:
                raise LogFetchError(f"log server refused {url}: {status} {resp.reason}", status=status, url=url)
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and not resp.headers.get("Content-Encoding") and int(length) > limit:
                raise _TooLarge(int(length))
            unzip = _Gunzip(out, limit)
            try:
                for chunk in _chunks_until(resp, started + self.deadline):
                    unzip.feed(chunk)
                unzip.close()
            except _DeadlinePassed:
                raise LogFetchError(
                    f"download of {url} took longer than {self.deadline:g} s ([zuul] download_deadline)", url=url, retryable=True
                ) from None
            except zlib.error as exc:
                raise LogFetchError(f"corrupt gzip data in {url}: {exc}", url=url) from None
            except ValueError as exc:  # truncated gzip stream
                raise LogFetchError(f"{exc}: {url}", url=url) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                raise LogFetchError(f"download of {url} broke off: {exc}", url=url, retryable=True) from None
            except requests.exceptions.ContentDecodingError as exc:
                raise LogFetchError(f"undecodable content in {url}: {exc}", url=url) from None
        return unzip.written

    def _fetch_small(self, url: str, limit: int, build: ZuulBuild) -> bytes | None:
        buf = io.BytesIO()
        try:
            self._download(url, buf, limit, build)
        except _NotFound:
            return None
        except _TooLarge as exc:
            LOG.warning("%s: over %d bytes (%d), ignored", url, limit, exc.size)
            return None
        return buf.getvalue()

    def fetch_manifest(self, build: ZuulBuild) -> dict[str, int | None] | None:
        """The build's manifest as ``{path: size}``, None when it has none."""
        candidates = []
        art = build.manifest_url
        if art:
            candidates.append(art)
        own = self.file_url(build, MANIFEST_NAME)
        if own not in candidates:
            candidates.append(own)
        for url in candidates:
            try:
                data = self._fetch_small(url, MANIFEST_MAX_BYTES, build)
            except LogFetchError as exc:
                if exc.retryable:
                    raise
                LOG.warning("build %s: manifest %s unusable: %s", build.short_uuid, url, exc)
                continue
            if data is None:
                continue
            try:
                manifest = json.loads(data)
            except ValueError as exc:
                LOG.warning("build %s: manifest %s is not JSON: %s", build.short_uuid, url, exc)
                continue
            if isinstance(manifest, Mapping) and isinstance(manifest.get("tree"), list):
                return manifest_files(manifest)
            LOG.warning("build %s: manifest %s has no tree", build.short_uuid, url)
        return None

    def fetch_inventory(self, build: ZuulBuild) -> NodeInfo | None:
        data = self._fetch_small(self.file_url(build, INVENTORY_PATH), INVENTORY_MAX_BYTES, build)
        if data is None:
            return None
        return parse_inventory(data.decode("utf-8", errors="replace"))

    def _fallback_paths(self, build: ZuulBuild, info: NodeInfo | None, v2: bool) -> list[str]:
        """Paths to try without a manifest: the rules' literal globs and the known paths they match.

        Zuul v3+ builds (they have an inventory) keep node logs under
        ``<node>/logs/``: only nodes the inventory lists are tried. Zuul v2
        builds (``v2``: neither ``job-output.txt`` nor an inventory) keep them
        under ``logs/``. ``job-output.txt`` is not part of the answer.
        """
        globs = self.globs_for(build.job_name)
        paths = [g for g in globs if not any(ch in g for ch in "*?[")]
        paths.extend(k for k in KNOWN_PATHS if any(glob_match(g, k) for g in globs))
        nodes = set(info.nodes) if info is not None else set()
        out: list[str] = []
        for p in paths:
            rel = safe_relpath(p)
            if rel is None or rel in out or rel == JOB_OUTPUT:
                continue
            first, sep, _ = rel.partition("/")
            if sep and first == "logs" and not v2:
                continue
            if sep and first != "logs" and first not in nodes:
                continue
            out.append(rel)
        return sorted(out)

    def _save(self, build: ZuulBuild, rel: str, root: Path, try_gz: bool) -> FetchedFile | SkippedFile | None:
        """Download one file into ``root``; None when the server does not have it."""
        saved = strip_gz(rel)
        target = (root / saved).resolve()
        if root not in target.parents:
            return SkippedFile(rel, "path leaves the download directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        names = [rel] + ([rel + ".gz"] if try_gz and not rel.endswith(".gz") else [])
        for name in names:
            url = self.file_url(build, name)
            part = target.with_name(target.name + ".part")
            try:
                with open(part, "wb") as out:
                    size = self._download(url, out, self.max_bytes, build)
            except _NotFound:
                part.unlink(missing_ok=True)
                continue
            except _TooLarge as exc:
                part.unlink(missing_ok=True)
                LOG.warning("build %s: %s is over max_bytes (%d > %d), skipped", build.short_uuid, name, exc.size, self.max_bytes)
                return SkippedFile(name, f"over max_bytes ({exc.size} > {self.max_bytes})")
            except LogFetchError as exc:
                part.unlink(missing_ok=True)
                if exc.retryable:
                    raise
                # One unusable file (corrupt gzip, 401, a redirect elsewhere) does not sink the build.
                LOG.warning("build %s: %s skipped: %s", build.short_uuid, name, exc)
                return SkippedFile(name, str(exc))
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, target)
            return FetchedFile(saved, url, size)
        return None

    @staticmethod
    def _record(result: FetchResult, rel: str, got: FetchedFile | SkippedFile | None, report_missing: bool) -> None:
        if got is None:
            if report_missing:
                result.skipped.append(SkippedFile(rel, "not found"))
        elif isinstance(got, SkippedFile):
            result.skipped.append(got)
        else:
            result.files.append(got)

    def fetch(self, build: ZuulBuild, dest: Path) -> FetchResult:
        """Download the build's log files into ``dest`` (created if needed).

        :raises LogFetchError: no ``log_url``, a refused host, no log file at all
            (``status=404``), or a retryable failure (``retryable=True``).
        """
        if not build.log_url:
            raise LogFetchError(f"build {build.uuid} has no log_url (result {build.result})")
        self.check_url(build.log_url, build)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        manifest = self.fetch_manifest(build)
        info: NodeInfo | None = None
        if manifest is None or INVENTORY_PATH in manifest:
            info = self.fetch_inventory(build)
        fetched = build.with_node_info(info) if info is not None else build
        result = FetchResult(build=fetched, build_dir=root, used_manifest=manifest is not None, node_info=info)
        if manifest is not None:
            for rel in self.select(build.job_name, manifest):
                size = manifest.get(rel)
                if size is not None and size > self.max_bytes:
                    LOG.warning("build %s: %s is over max_bytes (%d > %d), skipped", build.short_uuid, rel, size, self.max_bytes)
                    result.skipped.append(SkippedFile(rel, f"over max_bytes ({size} > {self.max_bytes})"))
                    continue
                self._record(result, rel, self._save(build, rel, root, try_gz=False), report_missing=True)
        else:
            # job-output.txt first: with the inventory it tells a Zuul v3+
            # build (node directories) from a Zuul v2 one (``logs/``, ``.gz``).
            has_output = False
            if JOB_OUTPUT in self.globs_for(build.job_name):
                got = self._save(build, JOB_OUTPUT, root, try_gz=True)
                has_output = isinstance(got, FetchedFile)
                self._record(result, JOB_OUTPUT, got, report_missing=True)
            v2 = info is None and not has_output
            for rel in self._fallback_paths(build, info, v2):
                self._record(result, rel, self._save(build, rel, root, try_gz=v2), report_missing=False)
        if not result.files:
            why = "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:5])
            if manifest is not None and not result.skipped:
                why = "the manifest lists none of the wanted files"
            raise LogFetchError(
                f"no log file fetched for build {build.uuid} from {build.log_url}" + (f" ({why})" if why else ""),
                status=404,
                url=build.log_url,
            )
        return result


# ---------------------------------------------------------------------------
# Sinks


class Sink(Protocol):
    """Where a fetched build's documents go."""

    target: str

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        """Ingest the build directory; returns ``(documents, test results)``."""
        ...

    def close(self) -> None: ...


def build_info(build: ZuulBuild) -> BuildInfo:
    """The ingest pipeline's :class:`~elastic_recheck.ingest.pipeline.BuildInfo` for a Zuul build."""
    from elastic_recheck.ingest.pipeline import BuildInfo

    return BuildInfo(
        uuid=build.uuid,
        name=build.job_name,
        status=build.result,
        change=str(build.change) if build.change is not None else None,
        patchset=build.patchset,
        queue=build.pipeline,
        project=build.project,
        voting=build.voting,
        node_provider=build.node_provider,
        log_url=build.log_url,
        branch=build.branch,
        ref=build.ref,
        newrev=build.newrev,
        build_set=build.buildset_uuid,
        tenant=build.tenant,
        start_time=build.start_time,
        end_time=build.end_time,
    )


def extra_fields(build: ZuulBuild) -> dict[str, Any]:
    """ci-log-processing fields the ingest pipeline's BuildInfo does not carry."""
    extra: dict[str, Any] = {"build_node": "zuul-executor"}
    if build.zuul_executor:
        extra["zuul_executor"] = build.zuul_executor
    if build.hosts_id:
        extra["hosts_id"] = list(build.hosts_id)
    return extra


def iter_build_documents(fetched: FetchResult, tests: list[Any], keep_debug: bool = False) -> Iterator[dict[str, Any]]:
    """Documents of a fetched build, from the shared ingest pipeline, each with a stable ``id``
    (:func:`~elastic_recheck.ingest.pipeline.stable_ids`).

    Subunit results are appended to ``tests``.
    """
    from elastic_recheck.ingest.pipeline import iter_build_dir, stable_ids

    extra = extra_fields(fetched.build)

    def docs() -> Iterator[dict[str, Any]]:
        for doc in iter_build_dir(fetched.build_dir, build_info(fetched.build), keep_debug=keep_debug, on_tests=tests.extend):
            for key, value in extra.items():
                doc.setdefault(key, value)
            yield doc

    return stable_ids(docs())


class EmbeddedSink:
    """Writes into the embedded store (one writer at a time)."""

    target = "embedded"

    def __init__(self, store: Any, keep_debug: bool = False, batch_size: int = 5000) -> None:
        self.store = store
        self.keep_debug = keep_debug
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        tests: list[Any] = []
        with self._lock:
            stored = self.store.add_documents(
                iter_build_documents(fetched, tests, keep_debug=self.keep_debug), batch_size=self.batch_size
            )
            if tests:
                self.store.record_test_results(fetched.build.uuid, tests)
        docs = stored if isinstance(stored, int) else int(getattr(stored, "docs", 0))
        return docs, len(tests)

    def close(self) -> None:
        return None


class ClusterSink(EmbeddedSink):
    """Writes into daily indices of Elasticsearch or OpenSearch through the one bulk
    writer (:class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`, the one ``ingest`` uses).

    A document the cluster rejects fails the build (it is tried again on a later pass).
    """

    def __init__(self, writer: Any, keep_debug: bool = False, batch_size: int = 2000) -> None:
        super().__init__(writer, keep_debug=keep_debug, batch_size=batch_size)
        self.target = str(writer.target)

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        tests: list[Any] = []
        with self._lock:
            stats = self.store.add_documents(
                iter_build_documents(fetched, tests, keep_debug=self.keep_debug), batch_size=self.batch_size
            )
        if stats.bad_lines:
            why = stats.bad_line_samples[0][1] if stats.bad_line_samples else "?"
            raise BackendError(f"bulk load into {self.target}: {stats.bad_lines} documents rejected, e.g. {why}")
        if tests:
            self.store.record_test_results(fetched.build.uuid, tests)
        return int(stats.docs), len(tests)

    def close(self) -> None:
        self.store.close()


# ---------------------------------------------------------------------------
# The collector


@dataclass(frozen=True)
class CollectOptions:
    """Which builds to collect."""

    pipelines: tuple[str, ...] = ("gate", "check")
    projects: tuple[str, ...] = ()
    results: tuple[str, ...] = ("FAILURE", "SUCCESS")
    job_names: tuple[str, ...] = ()
    include_nonvoting: bool = False
    since: datetime | None = None
    success_sample: float = DEFAULT_SUCCESS_SAMPLE
    limit: int | None = None
    concurrency: int = 4
    dry_run: bool = False


@dataclass
class CollectResult:
    """The outcome for one build."""

    uuid: str
    status: str
    build: ZuulBuild | None = None
    files: int = 0
    documents: int = 0
    test_results: int = 0
    bytes: int = 0
    skipped: tuple[SkippedFile, ...] = ()
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (COLLECTED, ALREADY)

    def describe(self) -> str:
        b = self.build
        who = f"{self.uuid[:7]} {b.job_name} {b.result} {b.pipeline} {b.project}" if b else self.uuid[:7]
        if self.status == COLLECTED:
            extra = f", {len(self.skipped)} skipped" if self.skipped else ""
            return f"collected {who}: {self.files} files{extra}, {self.documents} docs, {self.bytes / 1e6:.1f} MB ({self.seconds:.1f} s)"
        if self.status == WOULD_COLLECT:
            return f"would collect {who} {b.log_url if b else ''}"
        return f"{self.status} {who}" + (f": {self.error}" if self.error else "")


@dataclass
class RunSummary:
    """Counts of one listing pass (or of a whole ``--follow`` session)."""

    listed: int = 0
    known: int = 0
    sampled_out: int = 0
    filtered: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    bytes: int = 0
    seconds: float = 0.0
    polls: int = 0
    newest_start: datetime | None = None

    def add(self, res: CollectResult) -> None:
        self.statuses[res.status] = self.statuses.get(res.status, 0) + 1
        self.documents += res.documents
        self.bytes += res.bytes

    def merge(self, other: RunSummary) -> None:
        self.listed += other.listed
        self.known += other.known
        self.sampled_out += other.sampled_out
        self.filtered += other.filtered
        for k, v in other.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v
        self.documents += other.documents
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.polls += other.polls
        if other.newest_start and (self.newest_start is None or other.newest_start > self.newest_start):
            self.newest_start = other.newest_start

    @property
    def processed(self) -> int:
        return sum(self.statuses.values())

    def line(self) -> str:
        parts = [f"{self.listed} builds listed", f"{self.known} already known"]
        if self.sampled_out:
            parts.append(f"{self.sampled_out} SUCCESS builds sampled out")
        if self.filtered:
            parts.append(f"{self.filtered} filtered out")
        parts.extend(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        parts.append(f"{self.documents} documents, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s")
        if self.polls > 1:
            parts.append(f"{self.polls} polls")
        return ", ".join(parts)


class Collector:
    """Lists builds from Zuul, fetches their logs, feeds a sink, records state.

    ``sink`` may be None for dry runs only. ``workdir``: keep each build's
    files under ``workdir/<uuid>`` instead of a temporary directory.
    """

    def __init__(
        self,
        zuul: ZuulClient,
        fetcher: LogFetcher,
        state: CollectorState,
        sink: Sink | None,
        workdir: Path | None = None,
        wait_poll: float = 0.5,
    ) -> None:
        self.zuul = zuul
        self.fetcher = fetcher
        self.state = state
        self.sink = sink
        self.workdir = workdir
        self.wait_poll = wait_poll

    @property
    def target(self) -> str:
        return self.sink.target if self.sink is not None else "none"

    # -- one build ---------------------------------------------------------

    def _fetch_and_store(self, build: ZuulBuild) -> CollectResult:
        started = time.perf_counter()
        if self.sink is None:
            raise ElasticRecheckError("collector without a sink cannot collect")
        if self.workdir is not None:
            dest = self.workdir / build.uuid
            if dest.exists():
                shutil.rmtree(dest)
            return self._fetch_into(build, dest, started)
        with tempfile.TemporaryDirectory(prefix=f"er-collect-{build.short_uuid}-") as tmp:
            return self._fetch_into(build, Path(tmp), started)

    def _fetch_into(self, build: ZuulBuild, dest: Path, started: float) -> CollectResult:
        assert self.sink is not None
        fetched = self.fetcher.fetch(build, dest)
        docs, tests = self.sink.write(fetched)
        return CollectResult(
            uuid=build.uuid,
            status=COLLECTED,
            build=fetched.build,
            files=len(fetched.files),
            documents=docs,
            test_results=tests,
            bytes=fetched.bytes,
            skipped=tuple(fetched.skipped),
            seconds=time.perf_counter() - started,
        )

    def collect(self, build: ZuulBuild, wait: bool = False, wait_timeout: float = 600.0) -> CollectResult:
        """Fetch and ingest one build unless the state says it is done.

        With ``wait``, a build that another worker is fetching is waited for
        (up to ``wait_timeout`` seconds) and its outcome returned as ``already``.
        """
        if not self.state.claim(build, self.target):
            if wait:
                return self._wait_for(build, wait_timeout)
            row = self.state.get(build.uuid)
            return CollectResult(uuid=build.uuid, status=BUSY if row and row.status == FETCHING else ALREADY, build=build)
        started = time.perf_counter()
        try:
            res = self._fetch_and_store(build)
        except LogFetchError as exc:
            if exc.retryable:
                status = FAILED
            elif not build.log_url:
                status = NO_LOGS
            elif exc.status == 404:
                status = MISSING
            elif isinstance(exc, LogHostRefused):
                status = REFUSED
            else:
                status = FAILED
            self.state.finish(build.uuid, status, error=str(exc))
            return CollectResult(uuid=build.uuid, status=status, build=build, error=str(exc), seconds=time.perf_counter() - started)
        except (ElasticRecheckError, OSError) as exc:
            self.state.finish(build.uuid, FAILED, error=str(exc))
            return CollectResult(uuid=build.uuid, status=FAILED, build=build, error=str(exc), seconds=time.perf_counter() - started)
        except Exception as exc:
            LOG.exception("build %s: unexpected error", build.short_uuid)
            error = f"{exc.__class__.__name__}: {exc}"
            self.state.finish(build.uuid, FAILED, error=error)
            return CollectResult(uuid=build.uuid, status=FAILED, build=build, error=error, seconds=time.perf_counter() - started)
        except BaseException as exc:
            self.state.finish(build.uuid, FAILED, error=f"{exc.__class__.__name__}: {exc}")
            raise
        self.state.finish(
            build.uuid,
            COLLECTED,
            files=res.files,
            skipped_files=len(res.skipped),
            documents=res.documents,
            nbytes=res.bytes,
        )
        return res

    def _wait_for(self, build: ZuulBuild, timeout: float) -> CollectResult:
        deadline = time.monotonic() + timeout
        while True:
            row = self.state.get(build.uuid)
            if row is None:
                return self.collect(build, wait=False)
            if row.status != FETCHING:
                if row.status == FAILED and row.attempts < self.state.max_attempts:
                    return self.collect(build, wait=False)
                status = ALREADY if row.status == COLLECTED else row.status
                return CollectResult(
                    uuid=build.uuid,
                    status=status,
                    build=build,
                    files=row.files,
                    documents=row.documents,
                    bytes=row.bytes,
                    error=row.error,
                )
            if not self.state.is_done(build.uuid):  # the claim went stale
                return self.collect(build, wait=False)
            if time.monotonic() >= deadline:
                return CollectResult(uuid=build.uuid, status=BUSY, build=build, error="still being fetched by another worker")
            time.sleep(self.wait_poll)

    def collect_build(self, uuid: str, wait_timeout: float = 600.0) -> CollectResult:
        """Fetch one build's logs on demand (the bot's entry point).

        Shares the state with the ``--follow`` loop: a build collected before
        is not fetched again (``status == "already"``), one being fetched by
        another worker is waited for.

        :raises ZuulError: Zuul does not know the build (``status == 404``) or failed.
        """
        row = self.state.get(uuid)
        if row is not None and row.status in FINAL_STATUSES:
            return CollectResult(
                uuid=uuid,
                status=ALREADY if row.status == COLLECTED else row.status,
                files=row.files,
                documents=row.documents,
                bytes=row.bytes,
                error=row.error,
            )
        build = self.zuul.build(uuid)
        return self.collect(build, wait=True, wait_timeout=wait_timeout)

    # -- many builds -------------------------------------------------------

    def wanted(self, build: ZuulBuild, opts: CollectOptions) -> str | None:
        """Why a listed build is not wanted (None: wanted). Zuul filtered already; this guards old Zuuls."""
        if opts.results and build.result not in opts.results:
            return "filtered"
        if opts.pipelines and build.pipeline not in opts.pipelines:
            return "filtered"
        if opts.projects and build.project not in opts.projects:
            return "filtered"
        if opts.job_names and build.job_name not in opts.job_names:
            return "filtered"
        if not opts.include_nonvoting and not build.voting:
            return "filtered"
        if build.result == "SUCCESS" and not sample_keep(build.uuid, opts.success_sample):
            return "sampled_out"
        return None

    def candidates(self, opts: CollectOptions, since: datetime | None, summary: RunSummary) -> Iterator[ZuulBuild]:
        """Listed builds that pass the filters and the sample and are not done yet."""
        for build in self.zuul.builds(
            result=opts.results or None,
            pipeline=opts.pipelines or None,
            project=opts.projects or None,
            job_name=opts.job_names or None,
            voting=None if opts.include_nonvoting else True,
            since=since,
        ):
            summary.listed += 1
            if build.start_time and (summary.newest_start is None or build.start_time > summary.newest_start):
                summary.newest_start = build.start_time
            why = self.wanted(build, opts)
            if why == "sampled_out":
                summary.sampled_out += 1
                continue
            if why is not None:
                summary.filtered += 1
                continue
            if self.state.is_done(build.uuid):
                summary.known += 1
                continue
            yield build

    def run_once(
        self,
        opts: CollectOptions,
        since: datetime | None = None,
        progress: Callable[[CollectResult], None] | None = None,
        stop: threading.Event | None = None,
        limit: int | None = None,
    ) -> RunSummary:
        """One listing pass: collect every wanted build not collected yet.

        ``limit`` caps the builds processed (default ``opts.limit``). ``stop``
        ends the pass early; builds in flight are finished first.
        """
        summary = RunSummary(polls=1)
        started = time.perf_counter()
        limit = opts.limit if limit is None else limit
        since = opts.since if since is None else since
        submitted = 0
        stop = stop or threading.Event()

        def done(res: CollectResult) -> None:
            summary.add(res)
            if progress is not None:
                progress(res)

        if opts.dry_run:
            for build in self.candidates(opts, since, summary):
                if stop.is_set() or (limit is not None and submitted >= limit):
                    break
                submitted += 1
                done(CollectResult(uuid=build.uuid, status=WOULD_COLLECT, build=build))
            summary.seconds = time.perf_counter() - started
            return summary

        workers = max(1, opts.concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
            pending: set[Future[CollectResult]] = set()
            try:
                for build in self.candidates(opts, since, summary):
                    if stop.is_set() or (limit is not None and submitted >= limit):
                        break
                    pending.add(pool.submit(self.collect, build))
                    submitted += 1
                    # Keep listing only a little ahead of the workers.
                    while len(pending) >= workers * 2:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            done(fut.result())
            finally:
                for fut in pending:
                    done(fut.result())
        summary.seconds = time.perf_counter() - started
        return summary

    def follow(
        self,
        opts: CollectOptions,
        interval: float,
        stop: threading.Event,
        progress: Callable[[CollectResult], None] | None = None,
        max_polls: int | None = None,
        on_poll: Callable[[RunSummary], None] | None = None,
    ) -> RunSummary:
        """Poll Zuul every ``interval`` seconds until ``stop`` is set (or ``max_polls``).

        The first pass covers ``opts.since``; later passes list builds that
        started after the newest one seen, minus :data:`FOLLOW_OVERLAP`. A
        Zuul error ends nothing: it is logged and the next poll tries again.
        """
        total = RunSummary(polls=0)
        since = opts.since
        polls = 0
        while not stop.is_set():
            remaining = None if opts.limit is None else opts.limit - total.processed
            if remaining is not None and remaining <= 0:
                break
            try:
                summary = self.run_once(opts, since=since, progress=progress, stop=stop, limit=remaining)
            except ZuulError as exc:
                LOG.warning("poll failed: %s (next poll in %.0f s)", exc, interval)
                summary = RunSummary(polls=1)
            total.merge(summary)
            polls += 1
            if on_poll is not None:
                on_poll(summary)
            if total.newest_start is not None:
                nxt = total.newest_start - FOLLOW_OVERLAP
                since = nxt if opts.since is None or nxt > opts.since else opts.since
            if max_polls is not None and polls >= max_polls:
                break
            stop.wait(interval)
        return total


def collector_from_config(
    config: Config,
    *,
    state_path: Path,
    sink: Sink | None,
    zuul_url: str | None = None,
    tenant: str | None = None,
    max_bytes: int | None = None,
    extra_globs: Sequence[str] = (),
    workdir: Path | None = None,
) -> Collector:
    """A :class:`Collector` wired from ``[zuul]`` settings (arguments override them)."""
    url = zuul_url or str(config.get("zuul", "url") or "")
    if not url:
        raise ConfigError("no Zuul URL: pass --zuul or set [zuul] url")
    tenant_name = str(config.get("zuul", "tenant")) if tenant is None else tenant
    timeout = float(config.get("zuul", "timeout"))
    zuul = ZuulClient(url, tenant_name, timeout=timeout)
    rules = list(DEFAULT_FILE_RULES) + parse_file_rules(str(config.get("zuul", "log_files") or ""))
    if extra_globs:
        rules.append(FileRule(".*", tuple(extra_globs)))
    hosts = [h.strip() for h in str(config.get("zuul", "log_hosts") or "").split(",") if h.strip()]
    fetcher = LogFetcher(
        rules=rules,
        allowed_hosts=hosts,
        zuul_host=zuul.host,
        max_bytes=int(config.get("zuul", "max_bytes")) if max_bytes is None else max_bytes,
        timeout=timeout,
        deadline=float(config.get("zuul", "download_deadline")),
    )
    return Collector(zuul, fetcher, CollectorState(state_path), sink, workdir=workdir)

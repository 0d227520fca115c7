"""Download one build's log files from its log server: :class:`LogFetcher`.

It fetches ``job-output.txt`` plus the files the rules
(:mod:`elastic_recheck.collect.files`) select. It reads the build's
``zuul-manifest.json`` to know which files exist (and their sizes), else
tries known paths. It only talks to allowed log hosts, never writes outside
the download directory, skips files over ``max_bytes`` and un-gzips both
``Content-Encoding: gzip`` answers and ``.gz`` files. It also reads
``zuul-info/inventory.yaml`` for the node provider.
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

from elastic_recheck.adapters.zuul.api import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    USER_AGENT,
    parse_inventory,
    request_with_retries,
)
from elastic_recheck.collect.files import (
    DEFAULT_FILE_RULES,
    INVENTORY_PATH,
    JOB_OUTPUT,
    KNOWN_PATHS,
    MANIFEST_NAME,
    FileRule,
    glob_match,
    manifest_files,
    safe_relpath,
)
from elastic_recheck.core.errors import (
    LogFetchError,
    ZuulError,
)
from elastic_recheck.core.zuul_build import NodeInfo, ZuulBuild
from elastic_recheck.ingest.log_lines import strip_gz

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

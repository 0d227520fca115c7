"""The collector: lists builds from Zuul, fetches their logs, feeds a sink, records state.

:class:`Collector` lists builds from Zuul
(:class:`~elastic_recheck.adapters.zuul.api.ZuulClient`), filters and samples
them, fetches them (:class:`~elastic_recheck.collect.fetch.LogFetcher`) on a
thread pool and hands each build directory to a
:class:`~elastic_recheck.collect.sinks.Sink`, recording every outcome in the
:class:`~elastic_recheck.adapters.sqlite.collector_state.CollectorState`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from elastic_recheck.adapters.sqlite.collector_state import (
    COLLECTED,
    FAILED,
    FETCHING,
    FINAL_STATUSES,
    MISSING,
    NO_LOGS,
    REFUSED,
    CollectorState,
)
from elastic_recheck.adapters.zuul.api import ZuulClient
from elastic_recheck.collect.fetch import LogFetcher, LogHostRefused, SkippedFile
from elastic_recheck.collect.files import DEFAULT_FILE_RULES, FileRule, parse_file_rules
from elastic_recheck.collect.sinks import Sink
from elastic_recheck.core.errors import (
    ConfigError,
    ElasticRecheckError,
    LogFetchError,
    ZuulError,
)
from elastic_recheck.core.zuul_build import ZuulBuild

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config

LOG = logging.getLogger(__name__)

#: --follow re-lists builds that started this long before the newest one seen,
#: because Zuul lists builds by start and a long job ends after shorter, later ones.
FOLLOW_OVERLAP = timedelta(hours=4)
#: Default share of SUCCESS builds collected (failures are always collected).
DEFAULT_SUCCESS_SAMPLE = 0.2

#: Result statuses that are not rows of the collector state's table.
ALREADY = "already"  # collect_build: somebody collected it before
BUSY = "busy"  # another worker holds the claim
WOULD_COLLECT = "would_collect"  # --dry-run


def sample_keep(uuid: str, rate: float) -> bool:
    """Deterministic sampling: the same uuid is always in (or out of) the sample."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.sha256(uuid.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < rate


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
        if not opts.include_nonvoting and build.voting is False:
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
    url = zuul_url or config.zuul.url
    if not url:
        raise ConfigError("no Zuul URL: pass --zuul or set [zuul] url")
    tenant_name = config.zuul.tenant if tenant is None else tenant
    timeout = config.zuul.timeout
    zuul = ZuulClient(url, tenant_name, timeout=timeout)
    rules = list(DEFAULT_FILE_RULES) + parse_file_rules(config.zuul.log_files)
    if extra_globs:
        rules.append(FileRule(".*", tuple(extra_globs)))
    hosts = [h.strip() for h in config.zuul.log_hosts.split(",") if h.strip()]
    fetcher = LogFetcher(
        rules=rules,
        allowed_hosts=hosts,
        zuul_host=zuul.host,
        max_bytes=config.zuul.max_bytes if max_bytes is None else max_bytes,
        timeout=timeout,
        deadline=config.zuul.download_deadline,
    )
    return Collector(zuul, fetcher, CollectorState(state_path), sink, workdir=workdir)

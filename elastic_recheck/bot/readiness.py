"""Whether a report's failed builds can be classified yet: their console log (and the files
``[recheckwatch] required_files`` names) indexed. Waiting is the caller's business (a rescheduled check)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.classify import BuildRef
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.events import FailedJob, FailureReport
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.ports.search import SearchBackend

#: Files whose presence means a build's console log is indexed.
CONSOLE_FILES = ("job-output.txt", "console.html", "job-output.json")


class Readiness:
    """Finds each failed job's build in the backend and checks its files are indexed.

    ``log_fetcher`` (the bot's on-demand collector) is asked first to fetch a
    job's logs; its failure leaves the job waiting.
    """

    def __init__(
        self,
        backend: SearchBackend,
        settings: BotSettings,
        log_fetcher: Callable[[FailureReport, FailedJob], None] | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.log_fetcher = log_fetcher

    def check(self, report: FailureReport, jobs: Sequence[FailedJob]) -> tuple[list[tuple[FailedJob, BuildRef]], list[str]]:
        refs: list[tuple[FailedJob, BuildRef]] = []
        missing: list[str] = []
        for job in jobs:
            if self.log_fetcher is not None:
                try:
                    self.log_fetcher(report, job)
                except ElasticRecheckError as exc:
                    missing.append(f"{job.name}: fetching logs failed: {exc}")
                    continue
            uuid = job.build_uuid
            if not uuid:
                spec = QuerySpec(
                    filters=Filters(
                        build_short_uuid=job.build_short_uuid,
                        build_change=report.change,
                        build_patchset=report.patchset,
                    )
                )
                found = self.backend.builds(spec, limit=1)
                if not found and job.build_short_uuid:
                    # Documents without build_short_uuid: the job's builds on
                    # this patch set, matched on the uuid prefix.
                    spec = QuerySpec(
                        filters=Filters(build_change=report.change, build_patchset=report.patchset, build_name=job.name)
                    )
                    found = [b for b in self.backend.builds(spec) if b.uuid.startswith(job.build_short_uuid)]
                if not found:
                    missing.append(f"{job.name}: no documents yet")
                    continue
                uuid = found[0].uuid
            files = self.backend.indexed_files(uuid)
            if not any(_has_file(files, c) for c in CONSOLE_FILES):
                # Documents without file names (or a static store that nothing
                # fills any more): the build's documents are all we will get.
                lenient = not files or self.settings.deadline_s <= 0
                if not (lenient and self.backend.builds(QuerySpec(filters=Filters(build_uuid=uuid)), limit=1)):
                    missing.append(f"{job.name}: console log not indexed")
                    continue
            needed = [f for regex, fs in self.settings.required_files if re.search(regex, job.name) for f in fs]
            absent = [f for f in needed if not _has_file(files, f)]
            if absent:
                missing.append(f"{job.name}: missing {', '.join(absent)}")
                continue
            refs.append((job, BuildRef(uuid=uuid, change=report.change, patchset=report.patchset, job_name=job.name, voting=True)))
        return refs, missing


def _has_file(files: set[str], name: str) -> bool:
    return any(f == name or f.endswith("/" + name) for f in files)

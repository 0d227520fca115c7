"""Draft fingerprints from clusters of uncategorized failures (``elastic-recheck suggest``).

The uncategorized page lists failed builds that no fingerprint explains.
Many of them fail the same way; this command finds those ways and proposes a
``queries/new-<n>.yaml`` draft for each:

1. **Uncategorized builds.** Failed voting builds of the configured queues
   (gate and check by default) in the window, found with ``[site]
   all_fails_query`` as on the uncategorized page, minus those some
   fingerprint hits (helper functions of
   :mod:`elastic_recheck.report.uncategorized`): :func:`find_uncategorized`.
2. **Error lines.** Each build's candidate documents are fetched through the
   :class:`~elastic_recheck.ports.search.SearchBackend` port with a broad
   prefilter (:mod:`elastic_recheck.core.error_line_search`), and
   :func:`~elastic_recheck.core.error_lines.extract_lines` keeps the lines
   that say what went wrong, without their log prefix.
3. **Normalization.** :func:`~elastic_recheck.core.error_lines.signature`
   replaces volatile parts (timestamps, request ids, UUIDs, IPs, numbers...)
   with placeholders.
4. **Clusters.** Lines with the same normalized text form one group, and
   near-duplicate groups merge
   (:func:`~elastic_recheck.core.error_clusters.cluster_lines`).
5. **Drafts.** Each cluster's candidate queries are backtested over the
   window and ranked (:mod:`elastic_recheck.report.drafts`, which the site's
   "possible fingerprints" use too).

This module finds the builds (:func:`run_suggest`, :func:`suggest_drafts`)
and writes the drafts for people (:func:`format_text`) and as files
(:func:`yaml_documents`, :func:`renumber`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from elastic_recheck.core.config import Config
from elastic_recheck.core.error_clusters import DEFAULT_MERGE_THRESHOLD
from elastic_recheck.core.error_line_search import MAX_DOCS_PER_BUILD, Progress
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import BuildSummary, Filters, QuerySpec
from elastic_recheck.core.stats import newest_first
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.drafts import (
    DEFAULT_MIN_BUILDS,
    DEFAULT_MIN_PRECISION,
    Draft,
    SuggestReport,
    comment_text,
    draft_from_builds,
    draft_yaml,
    percent_text,
)
from elastic_recheck.report.graph import collect_bug_stats
from elastic_recheck.report.uncategorized import all_fails_spec, bug_hit_sets, build_uncategorized
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: Queues whose failed voting builds are mined by default.
DEFAULT_QUEUES: tuple[str, ...] = ("gate", "check")


def failed_builds_spec(config: Config, window: ReportWindow, queues: Sequence[str]) -> QuerySpec:
    """Failed voting builds of ``queues`` (all queues when empty), as the uncategorized page finds them."""
    spec = all_fails_spec(config, window)
    extra = {"build_queue": tuple(queues)} if queues else {}
    return replace(spec, filters=Filters(voting=True, extra=extra), label="suggest-fails")


def find_uncategorized(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config,
    queues: Sequence[str] = DEFAULT_QUEUES,
) -> tuple[list[BuildSummary], list[BuildSummary]]:
    """``(failed, uncategorized)`` voting builds of ``queues`` in the window, newest first."""
    failed = newest_first(backend.builds(failed_builds_spec(config, window, queues)))
    stats = collect_bug_stats(backend, fingerprints, window, histogram=False)
    report = build_uncategorized(failed, bug_hit_sets(stats), window, config.site.integrated_projects_re)
    return failed, report.uncategorized



def run_suggest(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config | None = None,
    *,
    queues: Sequence[str] = DEFAULT_QUEUES,
    min_builds: int = DEFAULT_MIN_BUILDS,
    min_precision: float = DEFAULT_MIN_PRECISION,
    include_all: bool = False,
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
    max_docs_per_build: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
) -> SuggestReport:
    """Find uncategorized builds, cluster their error lines and draft fingerprints.

    :raises BackendError: when the backend is unavailable (retryable); a
        query it rejects is logged and listed in :attr:`SuggestReport.errors`.
    """
    config = config or Config()
    failed, uncategorized = find_uncategorized(backend, fingerprints, window, config, queues)
    LOG.info("suggest: %d uncategorized of %d failed voting builds", len(uncategorized), len(failed))
    report = draft_from_builds(
        backend,
        uncategorized,
        window,
        config,
        min_builds=min_builds,
        min_precision=min_precision,
        include_all=include_all,
        merge_threshold=merge_threshold,
        max_docs_per_build=max_docs_per_build,
        progress=progress,
    )
    report.queues = tuple(queues)
    report.failed_builds = len(failed)
    return report



def suggest_drafts(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config | None = None,
    **options: Any,
) -> list[Draft]:
    """The drafts of :func:`run_suggest` (options are passed on), best first."""
    return run_suggest(backend, fingerprints, window, config, **options).drafts



def renumber(drafts: Sequence[Draft], taken: Iterable[str], start: int = 1) -> None:
    """Name drafts ``new-<n>`` in order, skipping names in ``taken`` (existing files)."""
    used = set(taken)
    n = start
    for d in drafts:
        while f"new-{n}" in used:
            n += 1
        d.name = f"new-{n}"
        used.add(d.name)
        n += 1


def yaml_documents(report: SuggestReport) -> str:
    """Every draft as a YAML file, separated by ``---`` (each loadable on its own)."""
    builds = report.builds_by_uuid()
    docs = [f"# file: {d.name}.yaml\n" + draft_yaml(d, report.window, builds) for d in report.drafts]
    return "---\n".join(docs)



def format_text(drafts: Sequence[Draft], report: SuggestReport | None = None) -> str:
    """Drafts for people: one block each, best first."""
    out: list[str] = []
    if report is not None:
        w = report.window
        out.append(
            f"Suggested fingerprints over {w.start:%Y-%m-%d %H:%M} to {w.now:%Y-%m-%d %H:%M} UTC ({w.days:g} days), "
            f"queues {', '.join(report.queues) or 'all'}"
        )
        out.append(
            f"{len(report.uncategorized)} of {report.failed_builds} failed voting builds uncategorized; "
            f"{report.lines} error lines in {report.cluster_count} clusters; "
            f"{len(report.drafts)} draft(s) shown"
            + (f", {report.dropped_low_precision} below {percent_text(report.min_precision)} precision left out" if report.dropped_low_precision else "")
        )
        if report.truncated:
            out.append(
                f"warning: {len(report.truncated)} build(s) had more than {report.max_docs_per_build} candidate lines; "
                "only the first were read"
            )
        if report.errors:
            out.append(f"warning: {len(report.errors)} quer(ies) failed on the backend: " + "; ".join(report.errors[:3]))
        out.append("")
    if not drafts:
        out.append("No draft: no error line is shared by enough uncategorized builds.")
    for d in drafts:
        out.append(f"{d.name}.yaml: {d.builds_affected} uncategorized build(s), precision {percent_text(d.precision)}")
        out.append(f"  query: {d.query}")
        out.append(f"  backtest: {d.failed} failed, {d.successful} successful builds hit")
        jobs = d.cluster.jobs()
        out.append("  jobs: " + ", ".join(f"{j} ({n})" for j, n in sorted(jobs.items(), key=lambda kv: (-kv[1], kv[0]))))
        out.append(f"  line: {comment_text(d.cluster.key, 200)}")
        for x in d.cluster.examples(3):
            out.append(f"    {x.build_uuid[:7]} {x.filename.rsplit('/', 1)[-1]}: {comment_text(x.body, 160)}")
        for alt in d.alternatives:
            out.append(f"  alternative: {alt}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"

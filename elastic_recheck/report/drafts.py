"""Draft fingerprints for clusters of uncategorized failures: backtest, ranking and YAML.

For every cluster (:mod:`elastic_recheck.core.error_clusters`) seen in at
least ``min_builds`` uncategorized builds, each candidate query
(:func:`~elastic_recheck.core.error_clusters.candidates_for`) is backtested
over the window (failed vs successful builds hit, the rules of
:func:`elastic_recheck.report.graph.fingerprint_spec`), and the draft must hit
every build of its cluster (the phrase re-matches the original lines,
:func:`rematches`). The simplest candidate is taken unless a narrower one
has a strictly better precision. Drafts are ranked by uncategorized builds
affected, then precision; a draft whose cluster's builds are already covered
by a better draft becomes that draft's alternative (:func:`rank_drafts`).

Used by ``elastic-recheck suggest`` (:mod:`elastic_recheck.contrib.suggest`)
and by the site's "possible fingerprints" (:func:`site_suggestions`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from elastic_recheck.core.config import Config
from elastic_recheck.core.error_clusters import (
    DEFAULT_MERGE_THRESHOLD,
    Cluster,
    ClusterQuery,
    candidates_for,
    cluster_lines,
)
from elastic_recheck.core.error_line_search import MAX_DOCS_PER_BUILD, Progress, fetch_error_lines
from elastic_recheck.core.error_lines import ErrorLine
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.core.stats import newest_first
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import fingerprint_spec
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

FAILURE = "FAILURE"
SUCCESS = "SUCCESS"

#: A cluster must be seen in at least this many uncategorized builds.
DEFAULT_MIN_BUILDS = 2
#: Drafts below this precision (failed / (failed + successful) builds hit) are dropped.
DEFAULT_MIN_PRECISION = 0.9

# ---------------------------------------------------------------------------
# Drafts
# ---------------------------------------------------------------------------


@dataclass
class Draft:
    """A proposed fingerprint for one cluster, with its backtest."""

    name: str
    candidate: ClusterQuery
    cluster: Cluster
    #: Every build the query hits in the window (voting builds), newest first.
    hits: list[BuildSummary] = field(default_factory=list)
    #: Queries of lower-ranked drafts whose builds this one already covers.
    alternatives: list[str] = field(default_factory=list)

    @property
    def query(self) -> str:
        return self.candidate.query

    @property
    def builds_affected(self) -> int:
        """Uncategorized failed builds in which the cluster's lines were seen."""
        return len(self.cluster.builds)

    def status_counts(self) -> Counter[str]:
        return Counter(b.status or "(none)" for b in self.hits)

    @property
    def failed_uuids(self) -> set[str]:
        return {b.uuid for b in self.hits if b.status == FAILURE}

    @property
    def successful_uuids(self) -> set[str]:
        return {b.uuid for b in self.hits if b.status == SUCCESS}

    @property
    def failed(self) -> int:
        return len(self.failed_uuids)

    @property
    def successful(self) -> int:
        return len(self.successful_uuids)

    @property
    def precision(self) -> float | None:
        """failed / (failed + successful) builds hit, 0..1 (None: nothing hit)."""
        total = self.failed + self.successful
        return self.failed / total if total else None

    @property
    def precision_percent(self) -> float | None:
        p = self.precision
        return None if p is None else 100.0 * p

    def sort_key(self) -> tuple[Any, ...]:
        return (
            -self.builds_affected,
            -(self.precision or 0.0),
            -self.failed,
            self.candidate.clauses,
            -len(tokenize(" ".join(self.candidate.phrases))),
            self.query,
        )

    def as_json(self) -> dict[str, Any]:
        jobs = self.cluster.jobs()
        files = self.cluster.files()
        return {
            "name": self.name,
            "file": f"{self.name}.yaml",
            "query": self.query,
            "phrases": list(self.candidate.phrases),
            "tag": self.candidate.tag,
            "jobs_scope": list(self.candidate.jobs),
            "normalized": self.cluster.key,
            "variants": sorted(self.cluster.groups),
            "builds_affected": self.builds_affected,
            "uncategorized_builds": sorted(self.cluster.builds),
            "failed_builds": self.failed,
            "successful_builds": self.successful,
            "other_builds": {k: v for k, v in sorted(self.status_counts().items()) if k not in (FAILURE, SUCCESS)},
            "precision": self.precision,
            "hit_builds": [
                {"uuid": b.uuid, "status": b.status, "job": b.job_name}
                for b in self.hits
            ],
            "jobs": [{"name": j, "builds": n} for j, n in sorted(jobs.items(), key=lambda kv: (-kv[1], kv[0]))],
            "files": [{"name": f, "builds": n} for f, n in sorted(files.items(), key=lambda kv: (-kv[1], kv[0]))],
            "examples": [
                {"build": x.build_uuid, "job": x.build_name, "file": x.filename, "line": x.body}
                for x in self.cluster.examples()
            ],
            "alternatives": list(self.alternatives),
        }


def percent_text(value: float | None) -> str:
    """A 0..1 share as ``12.3%`` (``n/a`` for None)."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")


def comment_text(text: str, limit: int = 240) -> str:
    """``text`` on one line, without control characters, cut to ``limit`` characters."""
    one = _CONTROL.sub(" ", text).replace("\n", " ").replace("\t", " ")
    return one if len(one) <= limit else one[: limit - 3] + "..."


def draft_yaml(draft: Draft, window: ReportWindow | None = None, builds: Mapping[str, BuildSummary] | None = None) -> str:
    """The draft as a ``queries/<name>.yaml`` file: a comment header and ``query:``.

    Loadable by :func:`elastic_recheck.core.fingerprints.parse_fingerprint`.
    """
    c = draft.cluster
    head = [
        f"# Draft fingerprint {draft.name} proposed by 'elastic-recheck suggest'.",
        "# Rename the file to <bug number>.yaml, review the query, add bug_title/projects.",
    ]
    if window is not None:
        head.append(f"# Window: {window.start:%Y-%m-%d %H:%M} to {window.now:%Y-%m-%d %H:%M} UTC ({window.days:g} days)")
    head += [
        "#",
        f"# Uncategorized failed builds with this error: {draft.builds_affected}",
        f"# Backtest: {draft.failed} failed and {draft.successful} successful voting builds hit; "
        f"precision {percent_text(draft.precision)}",
        "# Jobs: " + ", ".join(f"{j} ({n})" for j, n in sorted(c.jobs().items(), key=lambda kv: (-kv[1], kv[0]))),
        "# Files: " + ", ".join(f"{f} ({n})" for f, n in sorted(c.files().items(), key=lambda kv: (-kv[1], kv[0]))),
        "# Normalized line:",
        f"#   {comment_text(c.key)}",
        "# Example lines:",
    ]
    for x in c.examples():
        head.append(f"#   {comment_text(x.filename.rsplit('/', 1)[-1] + ': ' + x.body)}")
    head.append("# Builds:")
    for uuid in sorted(c.builds):
        info = (builds or {}).get(uuid)
        if info is not None:
            change = info.change and f"change {info.change},{info.patchset}"
            extra = " ".join(v for v in (info.job_name, info.project, change, info.log_url) if v)
            head.append(f"#   {uuid} {comment_text(extra)}")
        else:
            head.append(f"#   {uuid}")
    if draft.alternatives:
        head.append("# Alternative queries (same builds):")
        head.extend(f"#   {comment_text(q)}" for q in draft.alternatives)
    body = yaml.safe_dump({"query": draft.query}, default_flow_style=False, allow_unicode=True, width=1_000_000, sort_keys=False)
    return "\n".join(head) + "\n" + body



# ---------------------------------------------------------------------------
# Backtest and ranking
# ---------------------------------------------------------------------------

@dataclass
class SuggestReport:
    """What :func:`run_suggest` found, with the numbers behind it."""

    window: ReportWindow
    queues: tuple[str, ...]
    drafts: list[Draft]
    #: Failed voting builds of the queues in the window.
    failed_builds: int = 0
    uncategorized: list[BuildSummary] = field(default_factory=list)
    lines: int = 0
    cluster_count: int = 0
    #: Drafts left out for low precision (unless ``include_all``).
    dropped_low_precision: int = 0
    #: Drafts left out because their query missed builds of their own cluster.
    dropped_unverified: int = 0
    #: Builds whose candidate documents were more than ``max_docs_per_build``.
    truncated: list[str] = field(default_factory=list)
    max_docs_per_build: int = MAX_DOCS_PER_BUILD
    min_precision: float = DEFAULT_MIN_PRECISION
    #: Queries the backend rejected (non-retryable errors).
    errors: list[str] = field(default_factory=list)
    #: The error lines of the uncategorized builds (the site's rows show each build's first).
    error_lines: list[ErrorLine] = field(default_factory=list, repr=False)

    def builds_by_uuid(self) -> dict[str, BuildSummary]:
        return {b.uuid: b for b in self.uncategorized}

    def as_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "window": {"start": w.start.isoformat(), "end": w.now.isoformat(), "days": w.days},
            "queues": list(self.queues),
            "failed_builds": self.failed_builds,
            "uncategorized_builds": len(self.uncategorized),
            "error_lines": self.lines,
            "clusters": self.cluster_count,
            "min_precision": self.min_precision,
            "dropped_low_precision": self.dropped_low_precision,
            "dropped_unverified": self.dropped_unverified,
            "truncated_builds": list(self.truncated),
            "max_docs_per_build": self.max_docs_per_build,
            "errors": list(self.errors),
            "drafts": [d.as_json() for d in self.drafts],
        }



def backtest_builds(backend: SearchBackend, name: str, query: str, window: ReportWindow) -> list[BuildSummary]:
    """Builds a draft query hits in the window (the trend pages' rules: voting builds)."""
    fp = Fingerprint(bug=name, query=query)
    return newest_first(backend.builds(fingerprint_spec(fp, window)))


def _precision(hits: Sequence[BuildSummary]) -> float:
    statuses = Counter(b.status for b in hits)
    total = statuses[FAILURE] + statuses[SUCCESS]
    return statuses[FAILURE] / total if total else 0.0


def rematches(query: str, lines: Sequence[ErrorLine], es_mode: bool = True) -> bool:
    """The query parses and matches every document the lines came from.

    Parsed with :func:`elastic_recheck.core.lucene.parser.parse` and evaluated with
    :class:`elastic_recheck.core.lucene.matcher.MemoryIndex` over the lines' documents
    (lines without their document are only parsed).
    """
    from elastic_recheck.core.errors import QuerySyntaxError
    from elastic_recheck.core.lucene import parser as lucene
    from elastic_recheck.core.lucene.matcher import MemoryIndex

    try:
        ast = lucene.parse(query, es_mode=es_mode)
    except QuerySyntaxError as exc:
        LOG.warning("draft query %r does not parse: %s", query, exc)
        return False
    docs: dict[int, Mapping[str, Any]] = {}
    for line in lines:
        if line.doc is not None:
            docs.setdefault(id(line.doc), line.doc)
    if not docs:
        return True
    index = MemoryIndex(list(docs.values()))
    return len(index.search(ast)) == len(docs)


def evaluate_cluster(
    backend: SearchBackend,
    cluster: Cluster,
    window: ReportWindow,
    name: str = "draft",
    errors: list[str] | None = None,
    es_mode: bool = True,
) -> Draft | None:
    """Backtest a cluster's candidate queries and keep the best one.

    A candidate must parse and match every document its lines came from
    (:func:`rematches`), and it must hit every build of its cluster over the
    window; the simplest such candidate is taken unless a narrower one has a
    strictly better precision. None when no candidate works.
    """
    best: Draft | None = None
    best_precision = -1.0
    lines = cluster.lines
    for cand in candidates_for(cluster):
        if not rematches(cand.query, lines, es_mode=es_mode):
            LOG.warning("candidate %r does not re-match its own lines; skipped", cand.query)
            continue
        try:
            hits = backtest_builds(backend, name, cand.query, window)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("draft query %r rejected by the backend: %s", cand.query, exc)
            if errors is not None:
                errors.append(f"{cand.query}: {exc}")
            continue
        hit = {b.uuid for b in hits}
        if not cluster.builds <= hit:
            LOG.info("candidate %r misses %d build(s) of its cluster", cand.query, len(cluster.builds - hit))
            continue
        precision = _precision(hits)
        if precision > best_precision:
            best = Draft(name=name, candidate=cand, cluster=cluster, hits=hits)
            best_precision = precision
        if precision >= 1.0:
            break
    return best


def rank_drafts(drafts: Iterable[Draft]) -> list[Draft]:
    """Best first; a draft whose cluster builds a better draft already hits becomes its alternative."""
    kept: list[Draft] = []
    for d in sorted(drafts, key=Draft.sort_key):
        covering = next((k for k in kept if d.cluster.builds <= k.failed_uuids), None)
        if covering is not None:
            covering.alternatives.append(d.query)
            continue
        kept.append(d)
    for i, d in enumerate(kept, 1):
        d.name = f"new-{i}"
    return kept



def draft_from_builds(
    backend: SearchBackend,
    uncategorized: Sequence[BuildSummary],
    window: ReportWindow,
    config: Config | None = None,
    *,
    min_builds: int = DEFAULT_MIN_BUILDS,
    min_precision: float = DEFAULT_MIN_PRECISION,
    include_all: bool = False,
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
    max_docs_per_build: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
) -> SuggestReport:
    """Draft fingerprints from already known uncategorized builds (e.g. the site's).

    :raises BackendError: when the backend is unavailable (retryable).
    """
    config = config or Config()
    es_mode = config.data_source.lucene_mode == "es"
    report = SuggestReport(
        window=window,
        queues=(),
        drafts=[],
        failed_builds=len(uncategorized),
        uncategorized=list(uncategorized),
        max_docs_per_build=max_docs_per_build,
        min_precision=min_precision,
    )
    lines, report.truncated = fetch_error_lines(
        backend, uncategorized, window.time_window, max_docs=max_docs_per_build, progress=progress, errors=report.errors
    )
    wanted = {b.uuid for b in uncategorized}
    lines = [x for x in lines if x.build_uuid in wanted]
    report.lines = len(lines)
    report.error_lines = lines
    clusters = cluster_lines(lines, merge_threshold=merge_threshold)
    report.cluster_count = len(clusters)
    big = [c for c in clusters if len(c.builds) >= max(1, min_builds)]
    LOG.info("suggest: %d error lines, %d clusters, %d in >= %d builds", len(lines), len(clusters), len(big), min_builds)
    drafts: list[Draft] = []
    for i, cluster in enumerate(big):
        draft = evaluate_cluster(backend, cluster, window, name=f"cluster-{i + 1}", errors=report.errors, es_mode=es_mode)
        if draft is None:
            report.dropped_unverified += 1
        else:
            drafts.append(draft)
        if progress is not None:
            progress("clusters", i + 1, len(big))
    if not include_all:
        good = [d for d in drafts if d.precision is not None and d.precision >= min_precision]
        report.dropped_low_precision = len(drafts) - len(good)
        drafts = good
    report.drafts = rank_drafts(drafts)
    return report



def site_suggestions(
    backend: SearchBackend,
    uncategorized: Sequence[BuildSummary],
    window: ReportWindow,
    config: Config,
    **options: Any,
) -> SuggestReport | None:
    """Drafts for the uncategorized page, or None when the backend rejected a query.

    The site must render without them: a non-retryable backend error is
    logged and the section left out; an unavailable backend (retryable
    error) propagates like every other site query.
    """
    try:
        return draft_from_builds(backend, uncategorized, window, config, **options)
    except BackendError as exc:
        if exc.retryable:
            raise
        LOG.error("possible fingerprints left out: the backend rejected a query: %s", exc)
        return None

"""Backtest new or changed fingerprints against the builds of the last days.

Before a query patch merges, reviewers want to know what the fingerprint
would have done over the recent window:

* how many **failed** and how many **successful** builds it hits. A
  fingerprint is meant to explain failures; the old elastic-recheck rule of
  thumb is that when more than 10 % of the builds it hits succeeded, it is
  too broad (it matches noise that also appears in passing runs);
* its **precision** ``failed / (failed + successful)``;
* how widely it hits: distinct jobs, projects and node providers;
* its **overlap** with the fingerprints already in the tree: which of its
  failed builds some existing bug already explains, and which bugs;
* the change in the **classification rate** of failed voting gate builds
  (``[site] all_fails_query`` restricted to ``[site] gate_queue``, as on the
  uncategorized page) if it were merged.

Numbers come from the backend's distinct-build listings (never a capped
list of hits). Counting rules are those of the trend pages
(:func:`elastic_recheck.report.graph.fingerprint_spec`): voting builds only
unless the fingerprint says ``allow-nonvoting``.
"""

from __future__ import annotations

import logging
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import BackendError, ElasticRecheckError, FingerprintError
from elastic_recheck.core.fingerprints import Fingerprint, parse_fingerprint
from elastic_recheck.core.search_types import BuildSummary, TermCount
from elastic_recheck.core.stats import breakdown, newest_first, percent
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import fingerprint_spec
from elastic_recheck.report.uncategorized import all_failed_gate_builds
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: More than this share (percent) of successful builds among the builds hit: too broad.
TOO_BROAD_SUCCESS_PERCENT = 10.0

FAILURE = "FAILURE"
SUCCESS = "SUCCESS"

#: Build-level fields broken down in the report.
BREAKDOWN_FIELDS: tuple[str, ...] = ("build_name", "project", "node_provider")


@dataclass(frozen=True)
class RateChange:
    """Classification rate of failed voting gate builds, before and after a merge."""

    failed: int
    before: int
    after: int
    #: Failed gate builds only the new fingerprint(s) would explain (uuids, newest first).
    newly_explained: tuple[str, ...] = ()
    #: Failed gate builds only the replaced (old) version explained.
    no_longer_explained: tuple[str, ...] = ()

    @property
    def before_rate(self) -> float | None:
        return percent(self.before, self.failed)

    @property
    def after_rate(self) -> float | None:
        return percent(self.after, self.failed)

    def as_json(self) -> dict[str, Any]:
        return {
            "failed_gate_builds": self.failed,
            "explained_before": self.before,
            "explained_after": self.after,
            "rate_before": self.before_rate,
            "rate_after": self.after_rate,
            "newly_explained": list(self.newly_explained),
            "no_longer_explained": list(self.no_longer_explained),
        }


@dataclass
class BacktestResult:
    """What one candidate fingerprint would have hit in the window."""

    fingerprint: Fingerprint
    #: Distinct builds hit (newest first).
    builds: list[BuildSummary] = field(default_factory=list)
    #: The version being replaced (a changed fingerprint), when known.
    previous: Fingerprint | None = None
    #: Existing bug -> how many of this fingerprint's failed builds it also hits.
    overlap: dict[str, int] = field(default_factory=dict)
    #: Failed builds hit that some existing fingerprint already explains.
    overlap_builds: int = 0
    rate: RateChange | None = None
    #: The backend rejected the query.
    error: str | None = None

    @property
    def bug(self) -> str:
        return self.fingerprint.bug

    def status_counts(self) -> Counter[str]:
        return Counter(b.status or "(none)" for b in self.builds)

    @property
    def failed(self) -> int:
        return self.status_counts()[FAILURE]

    @property
    def successful(self) -> int:
        return self.status_counts()[SUCCESS]

    @property
    def precision(self) -> float | None:
        """Failed / (failed + successful) builds hit, in percent."""
        return percent(self.failed, self.failed + self.successful)

    @property
    def success_share(self) -> float | None:
        """Successful / (failed + successful) builds hit, in percent."""
        return percent(self.successful, self.failed + self.successful)

    @property
    def too_broad(self) -> bool:
        share = self.success_share
        return share is not None and share > TOO_BROAD_SUCCESS_PERCENT

    @property
    def flags(self) -> list[str]:
        """``error``, ``too-broad``, ``no-hits`` (nothing failed was hit: unverifiable)."""
        out = []
        if self.error:
            out.append("error")
        if self.too_broad:
            out.append("too-broad")
        if not self.error and self.failed == 0:
            out.append("no-hits")
        return out

    def breakdown(self, name: str) -> list[TermCount]:
        return breakdown(self.builds, name)

    def as_json(self) -> dict[str, Any]:
        fp = self.fingerprint
        return {
            "bug": fp.bug,
            "file": str(fp.path) if fp.path else None,
            "query": fp.query,
            "changed": self.previous is not None,
            "error": self.error,
            "failed_builds": self.failed,
            "successful_builds": self.successful,
            "other_builds": {k: v for k, v in sorted(self.status_counts().items()) if k not in (FAILURE, SUCCESS)},
            "precision": self.precision,
            "success_share": self.success_share,
            "too_broad": self.too_broad,
            "flags": self.flags,
            "distinct": {name: len(self.breakdown(name)) for name in BREAKDOWN_FIELDS},
            "breakdown": {
                name: [{"value": t.value, "builds": t.builds} for t in self.breakdown(name)] for name in BREAKDOWN_FIELDS
            },
            "overlap": dict(sorted(self.overlap.items(), key=lambda kv: (-kv[1], kv[0]))),
            "overlap_builds": self.overlap_builds,
            "classification_rate": self.rate.as_json() if self.rate else None,
        }


@dataclass
class BacktestReport:
    window: ReportWindow
    results: list[BacktestResult]
    #: All candidates merged together (None when there was no failed gate build data).
    combined: RateChange | None = None
    gate_queue: str = ""
    #: Candidate files that could not be loaded.
    load_errors: list[FingerprintError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every candidate loaded, none was rejected by the backend or flagged too broad."""
        return not self.load_errors and not any(r.error or r.too_broad for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.window.start.isoformat(), "end": self.window.now.isoformat(), "days": self.window.days},
            "gate_queue": self.gate_queue,
            "too_broad_success_percent": TOO_BROAD_SUCCESS_PERCENT,
            "results": [r.as_json() for r in self.results],
            "combined": self.combined.as_json() if self.combined else None,
            "load_errors": [{"file": e.path, "line": e.line, "col": e.col, "message": e.message} for e in self.load_errors],
        }


def _hit_builds(backend: SearchBackend, fp: Fingerprint, window: ReportWindow) -> list[BuildSummary]:
    return newest_first(backend.builds(fingerprint_spec(fp, window)))


def _measure(backend: SearchBackend, fp: Fingerprint, window: ReportWindow, previous: Fingerprint | None = None) -> BacktestResult:
    """The builds ``fp`` hits; a query the backend rejects sets ``error``, an unreachable backend raises."""
    res = BacktestResult(fingerprint=fp, previous=previous)
    try:
        res.builds = _hit_builds(backend, fp, window)
    except BackendError as exc:
        if exc.retryable:
            raise
        res.error = str(exc)
    return res


def _failed_hit_sets(backend: SearchBackend, fingerprints: Sequence[Fingerprint], window: ReportWindow) -> dict[str, set[str]]:
    """bug -> uuids of the *failed* builds its fingerprint hits (only those matter for overlap and rate).

    A fingerprint the backend rejects counts as hitting nothing (logged); an
    unreachable backend raises.
    """
    out: dict[str, set[str]] = {}
    for fp in fingerprints:
        spec = fingerprint_spec(fp, window)
        spec = replace(spec, filters=replace(spec.filters, build_status=FAILURE))
        try:
            builds = backend.builds(spec)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.warning("existing fingerprint %s: the backend rejected it: %s", fp.bug, exc)
            builds = []
        out.setdefault(fp.bug, set()).update(b.uuid for b in builds)
    return out


def _rate(
    failed_uuids: Sequence[str],
    baseline: Mapping[str, set[str]],
    removed: set[str],
    added: Sequence[set[str]],
) -> RateChange:
    """Explained failed builds with ``baseline``, and with ``removed`` bugs swapped for ``added`` hit sets."""
    failed = set(failed_uuids)
    before: set[str] = set()
    for hits in baseline.values():
        before |= hits
    after: set[str] = set()
    for bug, hits in baseline.items():
        if bug not in removed:
            after |= hits
    for hits in added:
        after |= hits
    before &= failed
    after &= failed
    order = {u: i for i, u in enumerate(failed_uuids)}
    return RateChange(
        failed=len(failed),
        before=len(before),
        after=len(after),
        newly_explained=tuple(sorted(after - before, key=order.__getitem__)),
        no_longer_explained=tuple(sorted(before - after, key=order.__getitem__)),
    )


def run_backtest(
    backend: SearchBackend,
    candidates: Sequence[Fingerprint],
    existing: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config,
    previous: Mapping[str, Fingerprint] | None = None,
    load_errors: Sequence[FingerprintError] = (),
) -> BacktestReport:
    """Backtest ``candidates`` over ``window``.

    :param existing: the fingerprints already in the tree (``--queries``);
        those with a candidate's bug id are the candidate's older version and
        are left out of its overlap.
    :param previous: bug -> the version of a changed fingerprint before the
        change (e.g. from ``git show REV:path``); it is the baseline of the
        classification rate, replaced by the candidate in "after".
    :param load_errors: candidate files that did not load (reported as such).
    :raises BackendError: when the backend is unreachable (a retryable error);
        a query the backend rejects is reported in :attr:`BacktestResult.error`.
    """
    previous = dict(previous or {})
    cand_bugs = {fp.bug for fp in candidates}
    baseline_fps = [fp for fp in existing if fp.bug not in cand_bugs]
    baseline_fps += [previous[bug] for bug in sorted(previous) if bug in cand_bugs]
    LOG.info("backtest: %d candidate(s), %d baseline fingerprints", len(candidates), len(baseline_fps))
    baseline = _failed_hit_sets(backend, baseline_fps, window)
    failed_gate = [b.uuid for b in all_failed_gate_builds(backend, config, window)]
    LOG.info("backtest: %d failed voting %s builds in the window", len(failed_gate), config.site.gate_queue)

    results: list[BacktestResult] = []
    for fp in candidates:
        res = _measure(backend, fp, window, previous.get(fp.bug))
        if res.error:
            results.append(res)
            continue
        failed_hits = [b.uuid for b in res.builds if b.status == FAILURE]
        others = {bug: hits for bug, hits in baseline.items() if bug != fp.bug}
        overlap: Counter[str] = Counter()
        explained = 0
        for uuid in failed_hits:
            bugs = [bug for bug, hits in others.items() if uuid in hits]
            overlap.update(bugs)
            explained += bool(bugs)
        res.overlap = dict(overlap)
        res.overlap_builds = explained
        res.rate = _rate(failed_gate, baseline, {fp.bug}, [{b.uuid for b in res.builds}])
        results.append(res)
    good = [r for r in results if not r.error]
    combined = _rate(failed_gate, baseline, {r.bug for r in good}, [{b.uuid for b in r.builds} for r in good])
    return BacktestReport(
        window=window,
        results=results,
        combined=combined,
        gate_queue=config.site.gate_queue,
        load_errors=list(load_errors),
    )


def success_hits(backend: SearchBackend, fingerprints: Sequence[Fingerprint], window: ReportWindow) -> list[BacktestResult]:
    """The fingerprints that hit successful builds in the window (the old ``elastic-recheck-success``).

    Most successful builds first. A query the backend rejects is returned
    with :attr:`BacktestResult.error` set; an unreachable backend raises.
    """
    out: list[BacktestResult] = []
    for fp in fingerprints:
        res = _measure(backend, fp, window)
        if res.error or res.successful:
            out.append(res)
    return sorted(out, key=lambda r: (r.error is None, -r.successful, -(r.success_share or 0.0), r.bug))


def format_success(results: Sequence[BacktestResult], window: ReportWindow, checked: int) -> str:
    """One line per fingerprint that hit successful builds (too broad: more than 10 % of its builds)."""
    lines = [f"{len([r for r in results if not r.error])} of {checked} fingerprints hit successful builds "
             f"in the {window.days:g} days up to {window.now:%Y-%m-%d %H:%M} UTC"]
    for r in results:
        if r.error:
            lines.append(f"  {r.bug}: rejected by the backend: {r.error}")
            continue
        broad = " -- TOO BROAD" if r.too_broad else ""
        lines.append(f"  {r.bug}: {r.successful} successful, {r.failed} failed builds "
                     f"({_pct(r.success_share)} successful){broad}  {r.fingerprint.url}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Which fingerprints changed (git)
# ---------------------------------------------------------------------------

#: Seconds before a git command is abandoned.
GIT_TIMEOUT = 30.0


def _git(args: Sequence[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ElasticRecheckError(f"git {args[0]}: {exc}") from None
    if proc.returncode != 0:
        raise ElasticRecheckError(f"git {' '.join(args)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout


@dataclass(frozen=True)
class ChangedFile:
    """A fingerprint file added (``A``) or modified (``M``) since a revision."""

    path: Path
    status: str
    #: The file's text at the revision (modified files only).
    old_text: str | None = None


def changed_fingerprints(rev: str, queries_dir: Path) -> list[ChangedFile]:
    """``queries/*.yaml`` files added or modified since ``rev`` (working tree included).

    Runs ``git diff --name-status --diff-filter=AM REV -- DIR`` in the
    repository that holds ``queries_dir``, and ``git show REV:path`` for the
    old text of modified files. New files not yet added to git (untracked,
    not ignored) count as added, so a fingerprint can be backtested before
    it is committed.

    :raises ElasticRecheckError: not a git repository, unknown revision, git failed.
    """
    if not rev or rev.startswith("-"):
        raise ElasticRecheckError(f"not a revision: {rev!r}")
    directory = queries_dir.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd=directory).strip())
    listing = _git(["diff", "--name-status", "--diff-filter=AM", "--no-renames", rev, "--", str(directory)], cwd=top)
    out: list[ChangedFile] = []
    for line in listing.splitlines():
        status, _, name = line.partition("\t")
        if not name or Path(name).suffix not in (".yaml", ".yml"):
            continue
        old = _git(["show", f"{rev}:{name}"], cwd=top) if status.startswith("M") else None
        out.append(ChangedFile(path=top / name, status=status[:1], old_text=old))
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--full-name", "--", str(directory)], cwd=top)
    for name in untracked.splitlines():
        if Path(name).suffix in (".yaml", ".yml"):
            out.append(ChangedFile(path=top / name, status="A"))
    return out


def previous_versions(changed: Sequence[ChangedFile]) -> dict[str, Fingerprint]:
    """bug -> the fingerprint as it was before the change (old versions that don't parse are skipped)."""
    out: dict[str, Fingerprint] = {}
    for c in changed:
        if c.old_text is None:
            continue
        try:
            fp = parse_fingerprint(c.old_text, c.path)
        except FingerprintError as exc:
            LOG.warning("%s: the old version does not load (%s); no baseline for it", c.path, exc.message)
            continue
        out[fp.bug] = fp
    return out


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

#: Rows shown per breakdown in text and Gerrit output (the JSON has them all).
TOP_VALUES = 5


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _top(rows: Sequence[TermCount], n: int = TOP_VALUES) -> str:
    shown = ", ".join(f"{t.value} ({t.builds})" for t in rows[:n])
    more = f", and {len(rows) - n} more" if len(rows) > n else ""
    return shown + more


def _result_lines(r: BacktestResult, bullet: str) -> list[str]:
    fp = r.fingerprint
    name = str(fp.path) if fp.path else fp.bug
    head = f"{name} (bug {fp.bug}{', changed' if r.previous else ', new'})"
    if r.error:
        return [head, f"{bullet}ERROR: the backend rejected the query: {r.error}"]
    lines = [head]
    broad = ""
    if r.too_broad:
        broad = f" -- TOO BROAD: more than {TOO_BROAD_SUCCESS_PERCENT:.0f}% of the builds it hits succeeded"
    lines.append(f"{bullet}Failed builds hit: {r.failed}")
    lines.append(f"{bullet}Successful builds hit: {r.successful} ({_pct(r.success_share)} of failed+successful){broad}")
    other = {k: v for k, v in sorted(r.status_counts().items()) if k not in (FAILURE, SUCCESS)}
    if other:
        lines.append(f"{bullet}Other results hit: " + ", ".join(f"{k} {v}" for k, v in other.items()))
    lines.append(f"{bullet}Precision: {_pct(r.precision)}")
    labels = {"build_name": "Jobs", "project": "Projects", "node_provider": "Node providers"}
    for name_, label in labels.items():
        rows = r.breakdown(name_)
        if rows:
            lines.append(f"{bullet}{label}: {len(rows)}: {_top(rows)}")
    if r.failed:
        if r.overlap:
            bugs = ", ".join(f"{b} ({n})" for b, n in sorted(r.overlap.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"{bullet}Already explained: {r.overlap_builds} of its {r.failed} failed builds, by {bugs}")
        else:
            lines.append(f"{bullet}Already explained: none of its failed builds (no overlap with existing fingerprints)")
    else:
        lines.append(f"{bullet}No failed build hit in the window: the fingerprint cannot be verified on this data")
    if r.rate is not None and r.rate.failed:
        rc = r.rate
        lines.append(
            f"{bullet}Gate classification rate: {_pct(rc.before_rate)} -> {_pct(rc.after_rate)} "
            f"({rc.before} -> {rc.after} of {rc.failed} failed voting gate builds; "
            f"+{len(rc.newly_explained)} newly explained"
            + (f", -{len(rc.no_longer_explained)} no longer explained" if rc.no_longer_explained else "")
            + ")"
        )
    elif r.rate is not None:
        lines.append(f"{bullet}Gate classification rate: no failed voting gate builds in the window")
    return lines


def _window_text(report: BacktestReport) -> str:
    w = report.window
    return f"{w.start:%Y-%m-%d %H:%M} to {w.now:%Y-%m-%d %H:%M} UTC ({w.days:g} days)"


def format_text(report: BacktestReport) -> str:
    out = [f"Backtest over {_window_text(report)}", ""]
    for e in report.load_errors:
        out.extend([f"{e}", ""])
    for r in report.results:
        out.extend(_result_lines(r, "  "))
        out.append("")
    if len(report.results) > 1 and report.combined is not None and report.combined.failed:
        c = report.combined
        out.append(f"All together: gate classification rate {_pct(c.before_rate)} -> {_pct(c.after_rate)}")
    return "\n".join(out).rstrip() + "\n"


def format_gerrit(report: BacktestReport) -> str:
    """A review comment body: plain text in Gerrit's comment formatting (``* `` bullets, blank-line paragraphs)."""
    flagged = [r for r in report.results if r.error or r.too_broad]
    problems = [f"{r.bug} ({'/'.join(f for f in r.flags if f != 'no-hits')})" for r in flagged]
    problems += [f"{e.path} (does not load)" for e in report.load_errors]
    verdict = "Looks good: no fingerprint is flagged." if not problems else "Needs attention: " + ", ".join(problems) + "."
    out = [f"elastic-recheck backtest over {_window_text(report)}.", "", verdict, ""]
    for e in report.load_errors:
        out.extend([f"* {e}", ""])
    for r in report.results:
        lines = _result_lines(r, "* ")
        out.append(lines[0] + ":")
        out.append("")
        out.extend(lines[1:])
        out.append("")
    if len(report.results) > 1 and report.combined is not None and report.combined.failed:
        c = report.combined
        out.append(
            f"All together, the gate classification rate goes from {_pct(c.before_rate)} to {_pct(c.after_rate)} "
            f"({c.before} -> {c.after} of {c.failed} failed voting {report.gate_queue} builds)."
        )
        out.append("")
    out.append(
        f"A fingerprint is flagged too broad when more than {TOO_BROAD_SUCCESS_PERCENT:.0f}% of the builds it hits "
        "succeeded. Counts are distinct builds; voting jobs only unless allow-nonvoting is set."
    )
    return "\n".join(out).rstrip() + "\n"

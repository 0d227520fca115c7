"""The classifier: which known bugs explain a failed build.

Pure orchestration over the :class:`~elastic_recheck.ports.search.SearchBackend`
port: every fingerprint becomes one :class:`QuerySpec` restricted to the build
by structured filters, and all of them go to the backend in **one**
``msearch`` call. Semantics follow the original elastic-recheck:

* fingerprints without ``allow-nonvoting: true`` only count on voting builds;
* ``suppress-notification`` fingerprints are reported as matched, but marked
  (:attr:`Match.suppressed`) so the bot stays silent about them;
* ``test_ids`` fingerprints match only if one of those tests failed in the
  build (failed test ids come from the backend's subunit results).

When the build is looked up (``classify``), the search is limited to the days
of its documents (:func:`build_days`): the same hits, but a cluster then
searches one or two daily indices instead of the whole index pattern.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import BuildSummary, Filters, Hit, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend, TestResultSource

if TYPE_CHECKING:
    from elastic_recheck.core.signatures import SignatureResult, SignatureService

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildRef:
    """Identifies one build; ``uuid`` or ``short_uuid`` (+ change/patchset) is required."""

    uuid: str | None = None
    short_uuid: str | None = None
    change: str | None = None
    patchset: str | None = None
    job_name: str | None = None
    #: None: unknown (look it up from the documents).
    voting: bool | None = None

    @property
    def key(self) -> str:
        return self.uuid or self.short_uuid or ""

    def filters(self, voting_only: bool) -> Filters:
        if self.uuid:
            base = Filters(build_uuid=self.uuid)
        else:
            base = Filters(
                build_short_uuid=self.short_uuid,
                build_change=self.change,
                build_patchset=self.patchset,
                build_name=self.job_name,
            )
        if voting_only:
            return Filters(**{**base.__dict__, "voting": True})
        return base


@dataclass(frozen=True)
class Match:
    """One bug that explains the build, with the evidence."""

    bug: str
    fingerprint: Fingerprint
    line: str
    file: str | None
    log_url: str | None
    timestamp: datetime | None = None
    doc_id: str | None = None

    @property
    def suppressed(self) -> bool:
        return self.fingerprint.suppress_notification


@dataclass(frozen=True)
class Classification:
    build: BuildRef
    matches: tuple[Match, ...] = ()
    error: str | None = None
    #: Fingerprints whose query failed on the backend (bug -> reason).
    query_errors: dict[str, str] = field(default_factory=dict)
    #: A failed build no fingerprint explains: its failure signature and how often it recurs.
    signature: SignatureResult | None = None

    @property
    def bugs(self) -> list[str]:
        return [m.bug for m in self.matches]

    @property
    def notify_bugs(self) -> list[str]:
        """Bugs the bot may talk about (``suppress-notification`` ones left out)."""
        return [m.bug for m in self.matches if not m.suppressed]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"build_uuid": self.build.key, "bugs": self.bugs}
        if self.error:
            out["error"] = self.error
            return out
        out["matches"] = [
            {
                "bug": m.bug,
                "file": m.file,
                "line": m.line,
                "log_url": m.log_url,
                "suppress_notification": m.suppressed,
            }
            for m in self.matches
        ]
        if self.query_errors:
            out["query_errors"] = self.query_errors
        if self.signature is not None:
            out["signature"] = self.signature.as_json()
        return out


def bug_sort_key(bug: str) -> tuple[int, int, str]:
    return (0, int(bug), "") if bug.isdigit() else (1, 0, bug)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _evidence(fp: Fingerprint, hit: Hit) -> Match:
    message = _first(hit.get("message")) or ""
    line = str(message).splitlines()[0] if message else ""
    filename = _first(hit.get("filename"))
    if filename is None:
        tags = hit.get("tags")
        if isinstance(tags, list) and tags:
            filename = tags[0]
    log_url = _first(hit.get("log_url"))
    if log_url and filename and not str(log_url).endswith(str(filename)):
        log_url = str(log_url).rstrip("/") + "/" + str(filename).lstrip("/")
    return Match(
        bug=fp.bug,
        fingerprint=fp,
        line=line,
        file=str(filename) if filename is not None else None,
        log_url=str(log_url) if log_url else None,
        timestamp=hit.timestamp,
        doc_id=hit.id,
    )


#: Margin around a build's first and last document in :func:`build_days`.
BUILD_MARGIN = timedelta(hours=12)


def _day(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def build_days(info: BuildSummary, outer: TimeWindow) -> TimeWindow:
    """The whole UTC days around a build's documents (12 hours of margin each side), within ``outer``.

    Every document of the build lies in it, so searching it finds what the
    whole window finds; on a cluster it names one or two daily indices
    instead of every index of the pattern.
    """
    if info.first_seen is None or info.last_seen is None:
        return outer
    start = _day(info.first_seen - BUILD_MARGIN)
    end = _day(info.last_seen + BUILD_MARGIN) + timedelta(days=1)
    if outer.start is not None and outer.start > start:
        start = outer.start
    if outer.end is not None and outer.end < end:
        end = outer.end
    return TimeWindow(start, end)


class Classifier:
    """Classify builds against a fixed set of fingerprints."""

    def __init__(
        self,
        backend: SearchBackend,
        fingerprints: Sequence[Fingerprint],
        window: TimeWindow | None = None,
        test_results: TestResultSource | None = None,
        signatures: SignatureService | None = None,
    ) -> None:
        self.backend = backend
        #: Signs failed builds that no fingerprint explains (None: no signatures).
        self.signatures = signatures
        self.fingerprints = list(fingerprints)
        self.window = window or TimeWindow()
        #: Where failed test ids come from (default: the backend's subunit results).
        self.test_results: TestResultSource = test_results or backend

    def _lookup(self, build: BuildRef) -> tuple[BuildRef, BuildSummary | None]:
        """Fill in voting and the full uuid from the build's documents; None if unknown."""
        spec = QuerySpec(filters=build.filters(voting_only=False), window=self.window)
        infos = self.backend.builds(spec, limit=1)
        if not infos:
            return build, None
        info = infos[0]
        voting = build.voting
        if voting is None:
            voting = info.voting
        return (
            BuildRef(
                uuid=build.uuid or info.uuid,
                short_uuid=build.short_uuid,
                change=build.change,
                patchset=build.patchset,
                job_name=build.job_name or info.job_name,
                voting=voting,
            ),
            info,
        )

    def classify(self, build: BuildRef, lookup: bool = True, failed: bool | None = None) -> Classification:
        """Run every fingerprint against one build in one multi-search.

        With ``lookup`` (the default) the build's voting flag is read from its
        documents when the caller does not know it, and an unknown build gives
        an error result instead of an empty match list.

        A build that failed (``failed``, else its documents' ``build_status``)
        and that no fingerprint explains gets a failure signature when the
        classifier has :attr:`signatures`.
        """
        if not build.key:
            return Classification(build, error="no build uuid given")
        info: BuildSummary | None = None
        if lookup:
            build, info = self._lookup(build)
            if info is None:
                return Classification(build, error=f"unknown build {build.key}: no indexed documents")
        window = build_days(info, self.window) if info is not None else self.window
        failed_tests: set[str] | None = None
        if any(fp.test_ids for fp in self.fingerprints) and build.uuid:
            failed_tests = self.test_results.failed_tests(build.uuid)

        candidates: list[Fingerprint] = []
        for fp in self.fingerprints:
            if build.voting is False and not fp.allow_nonvoting:
                continue  # the original added voting:1 to such queries
            if fp.test_ids:
                if not failed_tests or not set(fp.test_ids) & failed_tests:
                    LOG.debug("%s: none of its test_ids failed in %s", fp.bug, build.key)
                    continue
            candidates.append(fp)
        # The voting rule was applied above from what we know of the build, so
        # no voting filter is needed (documents without a voting field, as in
        # old logstash data, are then treated as voting).
        filters = build.filters(voting_only=False)
        specs = [
            QuerySpec(
                queries=(fp.query,),
                filters=filters,
                window=window,
                label=fp.bug,
            )
            for fp in candidates
        ]
        results = self.backend.msearch(specs, size=1) if specs else []
        matches: list[Match] = []
        errors: dict[str, str] = {}
        for fp, res in zip(candidates, results, strict=True):
            if res.error:
                errors[fp.bug] = res.error
                LOG.warning("fingerprint %s failed on build %s: %s", fp.bug, build.key, res.error)
                continue
            if res.total > 0 and res.hits:
                matches.append(_evidence(fp, res.hits[0]))
        matches.sort(key=lambda m: bug_sort_key(m.bug))
        signature = None
        if not matches and not errors and self.signatures is not None:
            signature = self._signature(build, info, failed)
        elif matches and self.signatures is not None and build.uuid:
            try:
                self.signatures.mark_explained(build.uuid)
            except ElasticRecheckError as exc:
                LOG.warning("could not record %s as explained: %s", build.key, exc)
        return Classification(build, tuple(matches), query_errors=errors, signature=signature)

    def _signature(self, build: BuildRef, info: BuildSummary | None, failed: bool | None) -> SignatureResult | None:
        """The failure signature of an unexplained build (None: it did not fail, or signing failed)."""
        assert self.signatures is not None
        try:
            if info is None or info.uuid != build.uuid:
                found = self.backend.builds(QuerySpec(filters=Filters(build_uuid=build.uuid)), limit=1) if build.uuid else []
                if not found:
                    return None
                info = found[0]
            status = info.status
            if not (failed if failed is not None else status == "FAILURE"):
                return None
            return self.signatures.describe(info)
        except ElasticRecheckError as exc:
            LOG.warning("no failure signature for %s: %s", build.key, exc)
            return None

    def classify_many(self, builds: Iterable[BuildRef]) -> Iterable[Classification]:
        for build in builds:
            yield self.classify(build)

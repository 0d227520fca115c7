"""Failure signatures: what an unexplained failed build says went wrong, and who else saw it.

A build that failed and that no fingerprint explains gets a
:class:`FailureSignature` when it is classified:

* ``lines``: its first :data:`MAX_LINES` distinct error lines (oldest
  first), found and normalized by :mod:`elastic_recheck.core.error_lines` (the same
  prefilter, :func:`~elastic_recheck.core.error_lines.extract_lines` and
  :func:`~elastic_recheck.core.error_lines.normalize`: timestamps, ids, numbers,
  addresses, temp paths replaced by placeholders);
* ``tests``: the failed test ids, when subunit results exist.

Two builds *share* a signature when both parts are equal (its ``key``, a
hash of them). Signatures are kept in a :class:`SignatureStore` (the SQLite
:class:`~elastic_recheck.adapters.sqlite.signatures.SignatureIndex`: the
embedded store's own file, in their own table; with a cluster backend a
local cache file, see docs/architecture.md), indexed on ``(key, time)``, so
"which other builds share this signature in the last 24 hours" is one
indexed lookup. Failed builds of that window that were never classified here
are signed on the way (:meth:`SignatureService.backfill`), so the answer
does not depend on which builds this process happened to see.

:class:`Recurring` is the evidence: builds and distinct *other* changes
with the same signature, and how many of those changes later passed the same
job on the same patchset (a recheck that passed: flaky evidence).
:meth:`Recurring.claim` decides whether "probably not caused by this change"
may be said: only with enough distinct other changes (precision over recall:
a wrong claim is worse than silence).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from elastic_recheck.core.search_types import BuildSummary, Filters, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend

if TYPE_CHECKING:
    from elastic_recheck.core.error_lines import ErrorLine

LOG = logging.getLogger(__name__)

#: Error lines kept per signature (the first ones, in log time order).
MAX_LINES = 3
#: Failed test ids kept per signature.
MAX_TESTS = 10
#: Example builds returned with the evidence.
MAX_EXAMPLES = 5
#: The look-back window of the evidence.
DEFAULT_HOURS = 24.0
#: Distinct other changes needed before "probably not caused by this change" is said.
DEFAULT_MIN_CHANGES = 2
#: A backfill skips uncovered stretches shorter than this (each search for a
#: window's failed builds costs tens of milliseconds; builds classified here
#: are recorded anyway).
BACKFILL_STEP = timedelta(minutes=30)
#: A backfill leaves out builds with lines in the last minutes before the
#: lookup: they may still be running (and be classified, maybe explained,
#: when they end); the next backfill takes them.
BACKFILL_LAG = timedelta(minutes=10)

#: A test runner's result line (``test_id [1.2s] ... FAILED``).
_TEST_RESULT = re.compile(r"\.\.\. (?:FAILED|FAIL|ERROR)$")



@dataclass(frozen=True)
class FailureSignature:
    """Normalized top error lines and failed test ids of one build."""

    lines: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.lines and not self.tests

    @property
    def key(self) -> str:
        """Stable id of the signature ("" when empty: an empty signature is shared by nothing)."""
        if self.empty:
            return ""
        text = json.dumps([list(self.lines), list(self.tests)], separators=(",", ":"))
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    @property
    def headline(self) -> str:
        """The line that stands for the signature: its first error line that is not a
        test runner's ``... FAILED`` result line (the exception says more), else its
        first line, else its first failed test."""
        for line in self.lines:
            if not _TEST_RESULT.search(line):
                return line
        if self.lines:
            return self.lines[0]
        return self.tests[0] if self.tests else ""


def signature_from_lines(bodies: Iterable[str], failed_tests: Iterable[str] | None = None) -> FailureSignature:
    """The signature of a build from its error-line bodies (oldest first) and failed tests.

    Lines are normalized by :func:`elastic_recheck.core.error_lines.normalize`; the
    first :data:`MAX_LINES` distinct ones are kept.
    """
    from elastic_recheck.core.error_lines import normalize

    lines: list[str] = []
    for body in bodies:
        norm = normalize(body)
        if norm and norm not in lines:
            lines.append(norm)
            if len(lines) >= MAX_LINES:
                break
    tests = tuple(sorted(set(failed_tests or ()))[:MAX_TESTS])
    return FailureSignature(tuple(lines), tests)


def signatures_of_lines(
    lines: Iterable[ErrorLine], uuids: Sequence[str], failed_tests: Mapping[str, set[str]] | None = None
) -> dict[str, FailureSignature]:
    """uuid -> signature of each of ``uuids`` from their error lines (any order) and failed tests.

    Lines are taken in log-time order; lines of one document keep their
    order, and equal times are ordered by file and text (not by the
    backend's hit order, which differs between the store and a cluster).
    """
    by_build: dict[str, list[tuple[str, str, str, int, str]]] = {}
    position: dict[int, int] = {}
    for line in lines:
        doc = line.doc or {}
        n = position[id(doc)] = position.get(id(doc), -1) + 1
        stamp = str(doc.get("@timestamp") or "")
        by_build.setdefault(line.build_uuid, []).append((stamp, line.filename, str(doc.get("message")), n, line.body))
    tests = failed_tests or {}
    return {
        uuid: signature_from_lines([item[-1] for item in sorted(by_build.get(uuid, []))], tests.get(uuid))
        for uuid in uuids
    }


@dataclass(frozen=True)
class Peer:
    """Another build with the same signature."""

    uuid: str
    change: str
    patchset: str
    job: str
    project: str
    queue: str
    log_url: str
    at: datetime


@dataclass(frozen=True)
class Recurring:
    """Builds of *other* changes that failed with the same signature in the window."""

    builds: int = 0
    changes: int = 0
    #: Peer builds of other changes, newest first (at most :data:`MAX_EXAMPLES`).
    examples: tuple[Peer, ...] = ()
    #: Other changes whose failed patchset later passed the same job (a recheck that passed);
    #: None: not checked (it could not change the claim).
    flaky_changes: int | None = None
    #: Builds with this signature in the window, this build and its own change's included.
    seen: int = 0
    hours: float = DEFAULT_HOURS

    def claim(self, min_changes: int = DEFAULT_MIN_CHANGES) -> bool:
        """Whether the evidence is strong enough to say "probably not caused by this change".

        At least ``min_changes`` other changes failed the same way; one change
        fewer is enough when one of them passed on a recheck of the same
        patchset (the failure came and went without a code change). Never
        with fewer than one other change.
        """
        if self.changes >= max(1, min_changes):
            return True
        return bool(self.flaky_changes) and self.changes >= max(1, min_changes - 1)

    def as_json(self) -> dict[str, Any]:
        return {
            "builds": self.builds,
            "changes": self.changes,
            "examples": [p.uuid for p in self.examples],
            "flaky_changes": self.flaky_changes,
        }


@dataclass(frozen=True)
class SignatureResult:
    """A build's signature and the evidence that it recurs."""

    signature: FailureSignature
    recurring: Recurring = field(default_factory=Recurring)

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": list(self.signature.lines),
            "tests": list(self.signature.tests),
            "recurring": self.recurring.as_json(),
        }


class SignatureStore(Protocol):
    """Where signatures are kept (:class:`~elastic_recheck.adapters.sqlite.signatures.SignatureIndex`).

    Lookups raise :class:`~elastic_recheck.core.errors.StoreError` when the
    file cannot be read or written.
    """

    def known(self, uuids: Sequence[str]) -> set[str]:
        """Which of ``uuids`` already have a signature."""
        ...

    def get(self, uuid: str) -> FailureSignature | None: ...

    def put_many(self, items: Iterable[tuple[BuildSummary, FailureSignature]]) -> None: ...

    def covered(self) -> tuple[float, float] | None:
        """The time span (epoch seconds) whose failed builds a backfill already signed."""
        ...

    def set_covered(self, lo: float, hi: float) -> None: ...

    def peers(self, key: str, start: datetime, end: datetime) -> list[Peer]:
        """Builds with signature ``key`` in ``[start, end]``, newest first."""
        ...


class SignatureService:
    """Signs failed builds and measures how often a signature recurs (backend + index)."""

    def __init__(
        self,
        backend: SearchBackend,
        index: SignatureStore,
        test_results: Any = None,
        hours: float = DEFAULT_HOURS,
        min_changes: int = DEFAULT_MIN_CHANGES,
    ) -> None:
        self.backend = backend
        self.index = index
        self.test_results = test_results if test_results is not None else backend
        self.hours = hours
        self.min_changes = min_changes

    # -- signing
    def _sign(self, builds: Sequence[BuildSummary], window: TimeWindow) -> dict[str, FailureSignature]:
        """Signatures of ``builds`` from their documents in ``window``."""
        from elastic_recheck.core.error_line_search import fetch_error_lines

        if not builds:
            return {}
        # One build at a time: the embedded store answers a single build from
        # its own documents (milliseconds), where a search over many builds
        # expands the prefilter's regexp over the whole term dictionary.
        lines = [line for info in builds for line in fetch_error_lines(self.backend, [info], window)[0]]
        tests: dict[str, set[str]] = {}
        for info in builds:
            try:
                found = self.test_results.failed_tests(info.uuid)
            except Exception as exc:  # test results are optional evidence
                LOG.debug("no test results for %s: %s", info.uuid, exc)
                found = None
            if found is not None:
                tests[info.uuid] = found
        return signatures_of_lines(lines, [b.uuid for b in builds], tests)

    def signature_for(self, info: BuildSummary) -> FailureSignature:
        """The build's signature (computed once, then read from the index)."""
        known = self.index.get(info.uuid)
        if known is not None:
            return known
        sig = self._sign([info], TimeWindow())[info.uuid]
        self.index.put_many([(info, sig)])
        return sig

    def backfill(self, window: TimeWindow) -> int:
        """Sign the failed builds of ``window`` that have no signature yet; returns how many.

        The span already backfilled is remembered: only the uncovered parts of
        ``window`` are searched, and an uncovered part shorter than
        :data:`BACKFILL_STEP` waits for the next call (builds classified
        meanwhile are recorded by the classifier itself). The last
        :data:`BACKFILL_LAG` of the window is left for later: builds still
        logging there may be running.
        """
        assert window.start is not None and window.end is not None
        start, end = window.start.timestamp(), (window.end - BACKFILL_LAG).timestamp()
        real_end = window.end.timestamp()
        if end <= start:
            return 0
        covered = self.index.covered()
        step = BACKFILL_STEP.total_seconds()
        parts: list[tuple[float, float]] = []
        if covered is None or end < covered[0] or start > covered[1]:
            parts = [(start, end)]
            lo, hi = start, end
        else:
            lo, hi = covered
            if start < lo - step:
                parts.append((start, lo))
                lo = start
            if end > hi + step:
                parts.append((hi, end))
                hi = end
        signed_count = 0
        for a, b in parts:
            # Searched up to the lookup's own time: a build that still logs
            # after ``b`` (maybe running) waits for the next backfill.
            part = TimeWindow(
                start=datetime.fromtimestamp(a, UTC), end=datetime.fromtimestamp(real_end if b == end else b, UTC)
            )
            spec = QuerySpec(filters=Filters(build_status="FAILURE"), window=part, label="signature-backfill")
            builds = [x for x in self.backend.builds(spec) if x.last_seen is None or x.last_seen.timestamp() < b]
            todo_uuids = {x.uuid for x in builds} - self.index.known([x.uuid for x in builds])
            todo = [x for x in builds if x.uuid in todo_uuids]
            if todo:
                signed = self._sign(todo, TimeWindow())
                self.index.put_many((x, signed[x.uuid]) for x in todo)
                LOG.debug("signed %d failed build(s) of %s..%s", len(todo), part.start, part.end)
                signed_count += len(todo)
        if parts:
            self.index.set_covered(lo, hi)
        return signed_count

    # -- evidence
    def recurring(self, info: BuildSummary, sig: FailureSignature, backfill: bool = True) -> Recurring:
        """Other changes' failed builds with ``sig`` in the :attr:`hours` before the build."""
        if sig.empty:
            return Recurring(hours=self.hours)
        end = info.last_seen or info.first_seen or datetime.now(UTC)
        start = end - timedelta(hours=self.hours)
        if backfill:
            self.backfill(TimeWindow(start=start, end=end + timedelta(seconds=1)))
        peers = self.index.peers(sig.key, start, end)
        change = info.change or ""
        others = [p for p in peers if p.uuid != info.uuid and (not change or p.change != change)]
        changes = {p.change for p in others}
        # Whether a peer's patchset later passed only matters when the other
        # changes alone are one short of the claim (each check is a search).
        flaky: set[str] | None = None
        if others and len(changes) < self.min_changes and len(changes) >= max(1, self.min_changes - 1):
            flaky = self._flaky_changes(others, end)
        return Recurring(
            builds=len(others),
            changes=len(changes),
            examples=tuple(others[:MAX_EXAMPLES]),
            flaky_changes=None if flaky is None else len(flaky),
            seen=len({p.uuid for p in peers} | {info.uuid}),
            hours=self.hours,
        )

    def _flaky_changes(self, peers: Sequence[Peer], end: datetime) -> set[str]:
        """Changes among ``peers`` whose failed patchset later passed the same job (before ``end``)."""
        start = min(p.at for p in peers)
        changes = tuple(sorted({p.change for p in peers if p.change}))
        if not changes:
            return set()
        spec = QuerySpec(
            filters=Filters(build_status="SUCCESS", extra={"build_change": changes}),
            window=TimeWindow(start=start, end=end + timedelta(seconds=1)),
            label="signature-flaky",
        )
        passed: dict[tuple[str, str, str], datetime] = {}
        for b in self.backend.builds(spec):
            k = (b.change or "", b.patchset or "", b.job_name or "")
            when = b.last_seen or b.first_seen
            if when is not None and (k not in passed or when > passed[k]):
                passed[k] = when
        out: set[str] = set()
        for p in peers:
            when = passed.get((p.change, p.patchset, p.job))
            if when is not None and when > p.at:
                out.add(p.change)
        return out

    def mark_explained(self, uuid: str) -> None:
        """Remember that a fingerprint explains ``uuid``: never a peer (even if a backfill signed it), not signed again."""
        self.index.put_many([(BuildSummary(uuid=uuid, fields={}), FailureSignature())])

    def describe(self, info: BuildSummary) -> SignatureResult:
        """Sign one failed build and gather the evidence that its failure recurs."""
        sig = self.signature_for(info)
        return SignatureResult(sig, self.recurring(info, sig))

"""Retention of the embedded store: drop old builds, give the space back.

The original cluster kept 10 days of logs; the site shows windows of at most
that. ``elastic-recheck prune --older-than 10d`` (from cron) keeps the store
to what is shown.

What goes: **whole builds whose newest line is older than the cutoff**. A
build that straddles the cutoff stays whole, so a classification or a report
never sees half a build; its lines go with the next prune after its last line
ages out. With a build go its shapes (per-file metadata) and its test
results; the failure signatures of builds older than the cutoff go from the
signature index (when the caller passes it). Documents of no build (no ``build_uuid``) go line by line by their
own time; lines without a time, and builds none of whose lines has one, are
never pruned.

Builds are deleted oldest first, about :data:`CHUNK_LINES` lines per
transaction, so the bot or an ingest running at the same time waits for a
short transaction only; a build that got a new line since it was listed
stays. Then the space is reclaimed
(:meth:`~elastic_recheck.adapters.sqlite.store.EmbeddedStore.reclaim_space`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from elastic_recheck.adapters.sqlite.signatures import SignatureIndex
from elastic_recheck.adapters.sqlite.store import EmbeddedStore

LOG = logging.getLogger(__name__)

#: Lines deleted per transaction (at least one build). Each transaction also
#: scans the per-line keyword table once (it has no index by document).
CHUNK_LINES = 25_000


@dataclass(frozen=True)
class PrunePlan:
    """What a prune at ``cutoff`` would delete."""

    cutoff: datetime
    #: ``(build_uuid, lines, newest line's time)``, oldest first.
    builds: list[tuple[str, int, datetime]]
    #: Lines of no build older than the cutoff.
    loose_lines: int
    #: Bytes of the store (file and write-ahead log) now.
    size: int

    @property
    def lines(self) -> int:
        return sum(n for _, n, _ in self.builds)


@dataclass(frozen=True)
class PruneResult:
    plan: PrunePlan
    builds: int
    lines: int
    loose_lines: int
    size_after: int
    #: How the space was reclaimed: ``incremental``, ``vacuum``, or None (nothing deleted).
    reclaimed: str | None
    #: Failure signatures of builds older than the cutoff that went too.
    signatures: int = 0


#: ``progress(builds done, builds to do, lines deleted)``.
Progress = Callable[[int, int, int], None]


def _chunks(builds: list[tuple[str, int, datetime]]) -> list[list[str]]:
    """Consecutive builds in groups of about :data:`CHUNK_LINES` lines (a bigger build alone)."""
    out: list[list[str]] = []
    size = 0
    for uuid, n, _ in builds:
        if not out or size + n > CHUNK_LINES:
            out.append([])
            size = 0
        out[-1].append(uuid)
        size += n
    return out


def plan_prune(store: EmbeddedStore, cutoff: datetime) -> PrunePlan:
    """List what :func:`prune` at ``cutoff`` would delete (a dry run: nothing changes)."""
    return PrunePlan(
        cutoff=cutoff,
        builds=store.builds_older_than(cutoff),
        loose_lines=store.loose_documents_older_than(cutoff),
        size=store.file_size(),
    )


def prune(
    store: EmbeddedStore,
    plan: PrunePlan,
    progress: Progress | None = None,
    reclaim: bool = True,
    signatures: SignatureIndex | None = None,
) -> PruneResult:
    """Delete what ``plan`` lists (builds still older than its cutoff) and, with ``signatures``,
    the failure signatures older than the cutoff; then reclaim the space."""
    builds = lines = listed = 0
    for chunk in _chunks(plan.builds):
        done, deleted = store.delete_old_builds(chunk, plan.cutoff)
        builds += done
        lines += deleted
        listed += len(chunk)
        if progress is not None:
            progress(listed, len(plan.builds), lines)
    loose = store.delete_loose_documents(plan.cutoff) if plan.loose_lines else 0
    forgotten = 0
    if signatures is not None:
        forgotten = signatures.forget_before(plan.cutoff)
        signatures.close()  # reclaiming may VACUUM the file the index lives in
    how = None
    if reclaim and (lines or loose or builds or forgotten):
        how = store.reclaim_space()
    LOG.info(
        "pruned %d builds (%d lines), %d lines of no build and %d failure signatures before %s",
        builds, lines, loose, forgotten, plan.cutoff.isoformat(),
    )
    return PruneResult(
        plan=plan, builds=builds, lines=lines, loose_lines=loose, size_after=store.file_size(), reclaimed=how,
        signatures=forgotten,
    )

"""Which approved fixes of the worst bugs to move to the front of the gate (pure).

A bug qualifies when its share of the failed gate builds of the last 24
hours is at least ``[zuul] promote_threshold`` percent. Each of its open
fixes (:mod:`elastic_recheck.core.fixes`) is then

* skipped when not approved (``Workflow`` +1), or not in the gate pipeline
  (Zuul cannot promote what it has not enqueued), or already at the front
  of its queue (only other approved fixes ahead of it: promoting it again
  would only swap fixes, every run);
* promoted otherwise, worst bug first (then by queue position).

The ``promote`` command prints the plan, and with ``--apply`` sends the
promoted ones to Zuul in one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from elastic_recheck.core.fixes import Fix
from elastic_recheck.core.gate_status import GateStatus
from elastic_recheck.core.stats import Share

PROMOTE = "promote"
SKIP = "skip"


@dataclass(frozen=True)
class Candidate:
    bug: str
    share: Share
    fix: Fix
    position: int | None
    action: str
    reason: str

    def line(self) -> str:
        pct = "n/a" if self.share.percent is None else f"{self.share.percent:.1f}%"
        return (f"{self.action} {self.fix.change_id} {self.fix.project} (bug {self.bug}, {pct} of the failed gate "
                f"builds in 24 h, {self.share.hits} of {self.share.total}): {self.reason}")


def plan(
    shares: Mapping[str, Share],
    fixes: Mapping[str, Sequence[Fix]],
    status: GateStatus,
    pipeline: str,
    threshold: float,
) -> list[Candidate]:
    """Every open fix of the qualifying bugs, with what to do about it (promotions first, in order)."""
    worst = sorted((b for b, s in shares.items() if s.hits and s.percent is not None and s.percent >= threshold),
                   key=lambda b: (-(shares[b].percent or 0.0), b))
    todo = [(bug, fix) for bug in worst for fix in fixes.get(bug, ()) if not fix.merged]
    # Approved fixes Zuul has queued: one of them ahead of another does not keep it from the front.
    queued = {f.change_id for _, f in todo if f.approved and status.position(pipeline, f.change_id) is not None}
    out: list[Candidate] = []
    seen: set[str] = set()
    for bug, fix in todo:
        if fix.change_id in seen:
            continue
        seen.add(fix.change_id)
        ahead = status.ahead(pipeline, fix.change_id) if fix.patchset is not None else None
        position = None if ahead is None else len(ahead)
        if not fix.approved:
            action, reason = SKIP, "not approved"
        elif ahead is None:
            action, reason = SKIP, f"approved, but not in the {pipeline} pipeline"
        elif all(set(item) <= queued for item in ahead):
            action, reason = SKIP, "already at the front of its queue" + (" (behind other fixes)" if ahead else "")
        else:
            action, reason = PROMOTE, f"approved, number {len(ahead) + 1} in its {pipeline} queue"
        out.append(Candidate(bug, shares[bug], fix, position, action, reason))
    promoted = [c for c in out if c.action == PROMOTE]
    promoted.sort(key=lambda c: (-(c.share.percent or 0.0), c.bug, c.position or 0))
    return promoted + [c for c in out if c.action != PROMOTE]


def notice(promoted: Sequence[Candidate], pipeline: str) -> str:
    """The IRC notice after a promotion."""
    parts = [f"{c.fix.change_id} (bug {c.bug}, {c.share.percent or 0.0:.0f}% of gate failures in 24 h)" for c in promoted]
    return f"Promoted to the front of the {pipeline} pipeline, fixes of the worst gate bugs: " + ", ".join(parts)

"""Fixes named in commit messages, their state, the verdict after a merge, and Zuul's queue reading."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elastic_recheck.core.fixes import (
    FIXED,
    STILL_HITTING,
    Fix,
    fix_from_ssh,
    reference_kind,
    verdict,
    with_gate,
)
from elastic_recheck.core.gate_status import GateStatus
from elastic_recheck.core.promote import PROMOTE, SKIP, plan
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.core.stats import Share

SSH_QUERY = "gerrit-events/gerrit-query/simple_query_pagination_new_1"


def test_reference_kinds() -> None:
    assert reference_kind("Fix\n\nCloses-Bug: #1893618\nChange-Id: I1", "1893618") == "closes"
    assert reference_kind("Fix\n\npartial-bug: 1893618", "1893618") == "partial"
    assert reference_kind("Fix\n\nRelated-Bug: #111, #1893618", "1893618") == "related"
    assert reference_kind("See https://bugs.launchpad.net/nova/+bug/1893618 for it", "1893618") == "url"
    assert reference_kind("See https://launchpad.net/bugs/1893618", "1893618") == "url"
    assert reference_kind("Closes-Bug: #18936180", "1893618") is None
    assert reference_kind("Closes-Bug: #1189361", "1893618") is None
    assert reference_kind("mentions 1893618 in passing", "1893618") is None


def test_real_gerrit_query_records(shared_data: Path) -> None:
    """Approvals and merge time read from recorded ``gerrit query --current-patch-set --commit-message`` output."""
    lines = (shared_data / SSH_QUERY).read_text().splitlines()[1:]
    records = [r for r in map(json.loads, lines) if r.get("type") != "stats"]
    assert records
    for r in records:
        assert fix_from_ssh(r, "1893618") is None  # their messages name no bug
        r["commitMessage"] += "Closes-Bug: #1893618\n"
        fix = fix_from_ssh(r, "1893618")
        assert fix is not None and fix.merged and fix.state == "merged"
        assert fix.merged_at == datetime.fromtimestamp(r["lastUpdated"], tz=UTC)
        assert fix.patchset == int(r["currentPatchSet"]["number"])
        r["status"] = "NEW"
        assert fix_from_ssh(r, "1893618").state == "approved"  # type: ignore[union-attr]
        for a in r["currentPatchSet"]["approvals"]:
            if a["type"] == "Workflow":
                a["value"] = "-1"
        assert fix_from_ssh(r, "1893618").state == "open"  # type: ignore[union-attr]


def fix(number: int, *, merged_at: datetime | None = None, approved: bool = True, ps: int = 1) -> Fix:
    return Fix(number=number, patchset=ps, project="p", subject="s", kind="closes", merged=merged_at is not None,
               approved=approved, merged_at=merged_at)


def test_verdict_before_and_after_the_merge() -> None:
    start = datetime(2026, 11, 10, tzinfo=UTC)
    now = start + timedelta(days=10)
    builds = [BuildSummary(uuid=str(i), fields={}, last_seen=start + timedelta(days=d)) for i, d in enumerate((1, 2, 3, 8))]
    v = verdict(fix(1, merged_at=start + timedelta(days=5)), builds, start, now)
    assert v is not None and (v.before, v.after, v.before_days, v.after_days) == (3, 1, 5.0, 5.0)
    assert v.text == STILL_HITTING
    v = verdict(fix(1, merged_at=start + timedelta(days=9)), builds, start, now)
    assert v is not None and v.text == FIXED and v.rate_before == 4 / 9
    assert verdict(fix(2), builds, start, now) is None  # open: no verdict


def test_gate_status_both_item_shapes_and_promote_plan() -> None:
    status = GateStatus.from_api({"pipelines": [{"name": "gate", "change_queues": [{"heads": [[
        {"id": "11,1"},
        {"id": "0b8e-uuid", "changes": [{"id": "12,2"}, {"id": "13,1"}]},  # Zuul >= 10: one item, several changes
        {"id": "14,3", "live": False},  # a non-live item (a dependency's placeholder) is not in the queue
        {"id": "15,1"},
    ]]}]}]})
    assert status.position("gate", "11,1") == 0 and status.position("gate", "13,1") == 1
    assert status.position("gate", "15,1") == 2 and status.position("gate", "14,3") is None
    assert status.position("check", "11,1") is None
    assert [f.state for f in with_gate([fix(13), fix(99)], status.change_ids("gate"))] == ["in the gate", "approved"]
    shares = {"A": Share(3, 10, 30.0), "B": Share(1, 10, 10.0), "C": Share(0, 10, 0.0)}
    fixes = {"A": [fix(15), fix(11), fix(16, approved=False)], "B": [fix(13)], "C": [fix(12, ps=2)]}
    got = [(c.fix.change_id, c.action) for c in plan(shares, fixes, status, "gate", 20.0)]
    assert got == [("15,1", PROMOTE), ("11,1", SKIP), ("16,1", SKIP)]  # B is under the threshold, C has no hit
    # With B too: 13,1 has only the approved fix 11,1 ahead of it, so it counts as at the front.
    got = [(c.fix.change_id, c.action, c.reason) for c in plan(shares, fixes, status, "gate", 5.0)]
    assert [g[:2] for g in got] == [("15,1", PROMOTE), ("11,1", SKIP), ("16,1", SKIP), ("13,1", SKIP)]
    assert got[3][2] == "already at the front of its queue (behind other fixes)"

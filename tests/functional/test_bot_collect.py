"""End to end: a replayed Gerrit event -> the bot asks the collector -> logs
fetched from a local Zuul log server -> classified -> comment text, all on the
embedded store."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fixtures.zuul_server import FakeZuul, build_record, devstack_log_tree, manifest_for

REPO = Path(__file__).resolve().parents[2]
UUID = "5f1c2d3e4a5b46c7b8d9e0f1a2b3c4d5"
BUG_LINE = (
    "2024-05-06 10:30:00.123 4242 ERROR nova.virt.libvirt.driver [req-1] "
    "Failed to start libvirt guest: libvirt.libvirtError: End of file while reading data: Input/output error\n"
)


def _report_event(zuul: FakeZuul, record: dict[str, object]) -> dict[str, object]:
    sys.path.insert(0, str(REPO / "sample"))
    try:
        from make_events import report_event
    finally:
        sys.path.pop(0)
    build = {
        **record,
        "uuid": UUID,
        "ref_url": "https://review.example.org/900001",
        "ref": "refs/changes/01/900001/3",
        "change": 900001,
        "patchset": "3",
        "end_time": "2024-05-06T11:30:00",
        "duration": 5400,
    }
    event = report_event([build])
    # Zuul's report links the build page of this Zuul.
    event["comment"] = str(event["comment"]).replace("https://zuul.ci.example.org/t/openstack/build/", f"{zuul.url}/t/openstack/build/")
    return event


def add_failed_gate_build(zuul: FakeZuul) -> tuple[dict[str, Any], str]:
    """A failed gate build of tempest-full-py3 whose n-cpu log holds BUG_LINE, served by ``zuul``;
    returns its build record and the log host to allow."""
    start = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)
    files = devstack_log_tree(start, "tempest-full-py3", "FAILURE", with_manifest=False)
    files["controller/logs/screen-n-cpu.txt"] += BUG_LINE.encode()
    files["zuul-manifest.json"] = manifest_for(files)
    record = build_record(UUID, job_name="tempest-full-py3", result="FAILURE", pipeline="gate",
                          log_url=zuul.log_url(UUID, pipeline="gate"), start=start)
    zuul.add_build(record, files)
    return record, zuul.url.split("//")[1].split(":")[0]


def test_replayed_event_fetches_logs_from_zuul_and_comments(tmp_path: Path) -> None:
    with FakeZuul() as zuul:
        record, host = add_failed_gate_build(zuul)
        cfg = tmp_path / "er.conf"
        cfg.write_text(f"[zuul]\nurl = {zuul.url}\ntenant = openstack\nlog_hosts = {host}\n")
        events = tmp_path / "events.jsonl"
        events.write_text(json.dumps(_report_event(zuul, record)) + "\n")
        actions = tmp_path / "actions.jsonl"
        proc = subprocess.run(
            [sys.executable, "-m", "elastic_recheck", "-c", str(cfg), "--store", str(tmp_path / "store.db"),
             "bot", "--queries", str(REPO / "queries"), "--replay", str(events), "--dry-run", "--no-irc",
             "--readiness-timeout", "30", "--actions-out", str(actions)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        fetched = zuul.log_requests(UUID)
    assert any(p.endswith("controller/logs/screen-n-cpu.txt") for p in fetched)
    line = json.loads(actions.read_text())
    assert line["jobs"] == {"tempest-full-py3": ["1893618"]}
    assert line["pipeline"] == "gate"
    assert "End of file while reading data" in line["comment"]
    assert "would comment on 900001,3" in proc.stdout

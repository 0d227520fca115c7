"""Replay of the sample with IRC on, against a real ngircd.

The QA channel (subscribed to ``negative``) gets the unrecognized gate
failures, project channels get only failures explained by bugs of their
projects, and check-pipeline failures go nowhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"



def _bug_projects() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in (REPO / "queries").glob("*.yaml"):
        data = yaml.safe_load(f.read_text())
        out[f.stem] = {p.split("/")[-1] for p in data.get("projects", [])}
    return out


def test_sample_replay_posts_to_the_right_channels(sample_store: Path, ngircd: Any, irc_client: Any, tmp_path: Path) -> None:
    qa = irc_client(ngircd, "qa-watch", "#openstack-qa")
    nova = irc_client(ngircd, "nova-watch", "#openstack-nova")
    neutron = irc_client(ngircd, "neutron-watch", "#openstack-neutron")
    cfg = tmp_path / "er.conf"
    cfg.write_text(
        f"[ircbot]\nserver = {ngircd.host}\nport = {ngircd.port}\nnick = recheckbot\n"
        f"channel_config = {SAMPLE / 'recheckwatchbot.yaml'}\n"
    )
    actions = tmp_path / "actions.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "-c", str(cfg), "--store", str(sample_store), "bot",
         "--queries", str(REPO / "queries"), "--replay", str(SAMPLE / "events.jsonl"), "--no-comment",
         "--state", str(tmp_path / "state.db"), "--actions-out", str(actions)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in actions.read_text().splitlines()]
    gate = [a for a in lines if a["pipeline"] == "gate"]
    check = [a for a in lines if a["pipeline"] == "check"]
    assert gate and check
    assert all(a["irc"] == [] for a in check), "check-pipeline failures must not reach IRC"

    negative = [a for a in gate if any(not bugs for bugs in a["jobs"].values())]
    want_qa = sorted(m["message"] for a in negative for m in a["irc"] if m["channel"] == "#openstack-qa")
    assert len(want_qa) == len(negative) > 0
    projects = _bug_projects()
    want: dict[str, list[str]] = {"#openstack-nova": [], "#openstack-neutron": []}
    for a in gate:
        if a in negative:
            continue
        affected = {p for bugs in a["jobs"].values() for b in bugs for p in projects.get(b, set())}
        for chan, proj in (("#openstack-nova", "nova"), ("#openstack-neutron", "neutron")):
            posted = [m["message"] for m in a["irc"] if m["channel"] == chan]
            assert bool(posted) == (proj in affected), (chan, a)
            want[chan].extend(posted)

    def collect(client: Any, n: int) -> list[str]:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            got = [ln.text for ln in client.privmsgs() if ln.source == "recheckbot"]
            if len(got) >= n:
                return sorted(got)
            time.sleep(0.1)
        return sorted(ln.text for ln in client.privmsgs() if ln.source == "recheckbot")

    assert collect(qa, len(want_qa)) == want_qa
    assert all("unrecognized error" in m for m in want_qa)
    assert collect(nova, len(want["#openstack-nova"])) == sorted(want["#openstack-nova"])
    assert collect(neutron, len(want["#openstack-neutron"])) == sorted(want["#openstack-neutron"])
    assert all("failed because of" in m for m in want["#openstack-nova"] + want["#openstack-neutron"])

"""Write ``sample/events.jsonl``: the Gerrit events Zuul would have sent for the sample builds.

Deterministic (no randomness beyond a fixed seed). One ``comment-added``
event per buildset in the current Zuul v3 report format, plus events the bot
must ignore or survive: a few reports in the old Jenkins/Zuul v2 format, a
human comment quoting "Build failed", ``patchset-created`` events, a
"Build succeeded" report, a duplicate of a failure report and one malformed
line. Run: ``python sample/make_events.py``.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZUUL = "https://zuul.ci.example.org/t/openstack/build/"


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _change(build: dict) -> dict:
    return {
        "project": build["project"],
        "branch": build["branch"],
        "id": "I%040x" % (build["change"] * 7919),
        "number": build["change"],
        "subject": f"Sample change {build['change']}",
        "owner": {"name": "Ada Developer", "username": "ada"},
        "url": build["ref_url"],
        "status": "NEW",
    }


def _patchset(build: dict) -> dict:
    return {
        "number": int(build["patchset"]),
        "revision": "%040x" % (build["change"] * 31 + int(build["patchset"])),
        "ref": build["ref"],
        "uploader": {"name": "Ada Developer", "username": "ada"},
    }


def report_event(builds: list[dict], old_format: bool = False) -> dict:
    first = builds[0]
    failed = any(b["result"] != "SUCCESS" and b["voting"] for b in builds)
    pipeline = first["pipeline"]
    lines = []
    for b in sorted(builds, key=lambda x: x["job_name"]):
        nv = " (non-voting)" if not b["voting"] else ""
        url = b["log_url"] if old_format else ZUUL + b["uuid"]
        lines.append(f"- {b['job_name']} {url} : {b['result']} in {_duration(b['duration'])}{nv}")
    if old_format:
        head = "Build failed.  For information on how to proceed, see http://docs.example.org/infra/manual/developers.html#automated-testing" if failed else "Build succeeded."
        vote = "Verified-1" if failed else "Verified+1"
    else:
        head = (f"Build failed ({pipeline} pipeline).  For information on how to proceed, see "
                "https://docs.example.org/infra-manual/latest/developers.html#automated-testing") if failed else f"Build succeeded ({pipeline} pipeline)."
        vote = ("Verified-2" if pipeline == "gate" else "Verified-1") if failed else ("Verified+2" if pipeline == "gate" else "Verified+1")
    comment = f"Patch Set {first['patchset']}: {vote}\n\n{head}\n\n" + "\n".join(lines)
    end = max(_epoch(b["end_time"]) for b in builds)
    return {
        "type": "comment-added",
        "change": _change(first),
        "patchSet": _patchset(first),
        "author": {"name": "Zuul", "username": "jenkins" if old_format else "zuul"},
        "approvals": [{"type": "Verified", "description": "Verified", "value": vote.split("Verified")[1]}],
        "comment": comment,
        "eventCreatedOn": end + 60,
    }


def main() -> None:
    rng = random.Random(20261120)
    data = json.loads((HERE / "builds.json").read_text())
    sets: dict[str, list[dict]] = defaultdict(list)
    for b in data["builds"]:
        sets[b["buildset"]["uuid"]].append(b)
    events: list[tuple[int, str]] = []
    ordered = sorted(sets.values(), key=lambda bs: max(b["end_time"] for b in bs))
    for i, builds in enumerate(ordered):
        first = builds[0]
        created = _epoch(min(b["start_time"] for b in builds)) - 120
        events.append((created, json.dumps({
            "type": "patchset-created", "change": _change(first), "patchSet": _patchset(first),
            "uploader": {"name": "Ada Developer", "username": "ada"}, "eventCreatedOn": created,
        })))
        old = i % 17 == 5  # a few reports in the old Jenkins/Zuul v2 format
        ev = report_event(builds, old_format=old)
        events.append((ev["eventCreatedOn"], json.dumps(ev)))
        failed = any(b["result"] != "SUCCESS" and b["voting"] for b in builds)
        if failed and rng.random() < 0.08:
            dup = dict(ev)
            dup["eventCreatedOn"] = ev["eventCreatedOn"] + 5
            events.append((dup["eventCreatedOn"], json.dumps(dup)))  # Gerrit may deliver twice
        if failed and rng.random() < 0.1:
            human = {
                "type": "comment-added", "change": _change(first), "patchSet": _patchset(first),
                "author": {"name": "Ada Developer", "username": "ada"},
                "comment": f"Patch Set {first['patchset']}:\n\n> Build failed ({first['pipeline']} pipeline).\n\nrecheck",
                "eventCreatedOn": ev["eventCreatedOn"] + 600,
            }
            events.append((human["eventCreatedOn"], json.dumps(human)))
    events.sort(key=lambda e: e[0])
    lines = [line for _, line in events]
    lines.insert(len(lines) // 2, '{"type": "comment-added", "change": ')  # a truncated line
    (HERE / "events.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

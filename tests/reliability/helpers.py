"""Shared pieces of the reliability suite.

* :func:`failure_event`: a Zuul v3 "Build failed" ``comment-added`` event, as
  Gerrit's ``stream-events`` sends it, for builds the test chooses;
* :class:`LogCluster`: the fake Elasticsearch cluster (``tests/fixtures/es_server.py``)
  answering from a small model of indexed builds: which files of a build are
  indexed, which fingerprint query text hits which build (canned: the fake
  does not evaluate Lucene), plus fault knobs: ``outage`` (every request gets
  HTTP 503), ``fail_next`` (the next N requests get 503), ``partial`` (the
  endpoints, ``_search`` and/or ``_msearch``, whose answers report a failed
  shard that held the build's documents), and the cluster's own ``delay``;
* :class:`RecordingReviewer`, :func:`wait_for`, :func:`bot_env`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elastic_recheck.core.fingerprints import Fingerprint
from tests.fixtures.es_server import (
    FakeCluster,
    Reply,
    Request,
    hit,
    msearch_response,
    search_response,
    shard_failure,
    unavailable_error,
)

REPO = Path(__file__).resolve().parents[2]

#: Two fingerprints for the in-process bot tests (no Lucene parsing needed: the
#: fake cluster answers by query text).
FPS = [
    Fingerprint(bug="1893618", query='message:"End of file while reading data"', bug_title="libvirt EOF"),
    Fingerprint(bug="1927411", query='message:"Failed to fetch" AND message:"Connection timed out"'),
]
ZUUL_BUILD = "https://zuul.ci.example.org/t/openstack/build/"
LOG_HOST = "https://logs.ci.example.org"


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    name: str
    uuid: str
    result: str = "FAILURE"
    voting: bool = True


def failure_event(
    change: int,
    patchset: int,
    jobs: Sequence[Job],
    *,
    pipeline: str = "gate",
    project: str = "openstack/nova",
    created: float | None = None,
    author: str = "zuul",
) -> dict[str, Any]:
    """One ``comment-added`` event with a Zuul v3 report of ``jobs``."""
    lines = []
    for j in jobs:
        line = f"- {j.name} {ZUUL_BUILD}{j.uuid} : {j.result} in 12m 03s"
        if not j.voting:
            line += " (non-voting)"
        lines.append(line)
    verdict = "Build failed" if any(j.result != "SUCCESS" and j.voting for j in jobs) else "Build succeeded"
    comment = (
        f"Patch Set {patchset}: Verified-2\n\n{verdict} ({pipeline} pipeline).  For information on how to proceed, "
        "see https://docs.opendev.org/opendev/infra-manual/latest/developers.html#automated-testing\n\n"
        + "\n".join(lines)
    )
    return {
        "type": "comment-added",
        "change": {
            "project": project,
            "branch": "master",
            "id": f"I{change:040x}",
            "number": change,
            "subject": f"Change {change}",
            "owner": {"name": "Ada Developer", "username": "ada"},
            "url": f"https://review.example.org/c/{project}/+/{change}",
            "status": "NEW",
        },
        "patchSet": {"number": patchset, "revision": f"{change * 31 + patchset:040x}", "ref": f"refs/changes/{change % 100:02d}/{change}/{patchset}"},
        "author": {"name": "Zuul", "username": author},
        "approvals": [{"type": "Verified", "description": "Verified", "value": "-2"}],
        "comment": comment,
        "eventCreatedOn": int(created if created is not None else time.time()),
    }


def query_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """What ``gerrit query --comments --patch-sets`` returns for the change of ``event``
    once its comment is stored (the fake Gerrit's ``query_results`` entry)."""
    change = dict(event["change"])
    ps = dict(event["patchSet"])
    return {
        **change,
        "patchSets": [ps],
        "currentPatchSet": ps,
        "comments": [{"timestamp": event["eventCreatedOn"], "reviewer": dict(event["author"]), "message": event["comment"]}],
    }


def gerrit_store(server: Any, ci_events: list[dict[str, Any]]) -> Callable[[Any], list[dict[str, Any]]]:
    """A ``query_results`` callable for the fake Gerrit: the changes of
    ``ci_events`` (Zuul's reports, as stored) plus every review comment the
    fake received, answering ``change:N`` queries with that change only."""

    def answer(call: Any) -> list[dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for event in list(ci_events):
            rec = query_record(event)
            old = records.get(str(rec["number"]))
            if old is None:
                records[str(rec["number"])] = rec
            else:
                old["comments"].extend(rec["comments"])
        for r in list(server.reviews):
            rec = records.setdefault(r.change, {"number": int(r.change), "project": "openstack/nova", "comments": []})
            rec["comments"].append({"timestamp": int(time.time()), "reviewer": {"name": r.user, "username": r.user},
                                    "message": f"Patch Set {r.patchset}:\n\n{r.message}"})
        wanted = [t.split(":", 1)[1] for t in call.query.split() if t.startswith("change:")]
        return [rec for num, rec in records.items() if not wanted or num in wanted]

    return answer


# -- the fake cluster with a model of indexed builds ------------------------------------


@dataclass
class IndexedBuild:
    uuid: str
    files: list[str] = field(default_factory=lambda: ["job-output.txt"])
    #: fingerprint query text -> the log line it matches in this build
    hits: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


class LogCluster:
    """A :class:`FakeCluster` answering the bot's requests from :attr:`builds`."""

    def __init__(self, flavor: str = "elasticsearch") -> None:
        self.cluster = FakeCluster(flavor)
        self.builds: dict[str, IndexedBuild] = {}
        self.outage = False
        self.fail_next = 0
        self.partial: set[str] = set()
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int]] = []

    # lifecycle
    def __enter__(self) -> LogCluster:
        self.cluster.start()
        for method in ("GET", "POST", "HEAD", "PUT", "DELETE"):
            self.cluster.always_respond(method, "*", self._answer)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def requests(self) -> list[Request]:
        return self.cluster.requests

    def index(self, build: IndexedBuild) -> None:
        with self.lock:
            self.builds[build.uuid] = build

    # answers
    def _answer(self, req: Request) -> Reply:
        with self.lock:
            if self.outage or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                self.answered.append((req.endpoint, 503))
                return Reply(503, unavailable_error())
        if req.endpoint == "/":
            from tests.fixtures.es_server import info_payload

            return Reply(200, info_payload(self.cluster.flavor, self.cluster.version))
        if req.endpoint == "_msearch":
            lines = req.ndjson()
            answers = [self._search_answer(body, "_msearch" in self.partial) for body in lines[1::2]]
            reply = Reply(200, msearch_response(*answers))
        elif req.endpoint == "_search":
            reply = Reply(200, self._search_answer(req.json(), "_search" in self.partial))
        else:
            reply = Reply(400, {"error": f"no handler for {req.method} {req.path}", "status": 400})
        with self.lock:
            self.answered.append((req.endpoint, reply.status))
        return reply

    @staticmethod
    def _failures(partial: bool) -> list[dict[str, Any]]:
        if not partial:
            return []
        return [shard_failure("logstash-2026.11.20", 1, "node_not_connected_exception", "[es-node-2] Node not connected")]

    def _search_answer(self, body: Mapping[str, Any], partial: bool) -> dict[str, Any]:
        query = body.get("query", {}).get("bool", {})
        terms: dict[str, Any] = {}
        for clause in query.get("filter", []):
            for key, value in clause.get("term", {}).items():
                terms[key] = value
        texts = [c["query_string"]["query"] for c in query.get("must", []) if "query_string" in c]
        with self.lock:
            builds = [b for b in self.builds.values() if all(_matches(b, k, v) for k, v in terms.items())]
        if partial:
            # The shard holding these documents failed: nothing comes back from it.
            builds = []
        aggs = body.get("aggs") or {}
        if aggs:
            name, spec = next(iter(aggs.items()))
            return search_response(total=0, aggregations={name: self._agg(spec, builds, texts)}, failures=self._failures(partial))
        found = []
        for b in builds:
            if all(t in b.hits for t in texts):
                line = b.hits[texts[0]] if texts else "line"
                source = {"@timestamp": "2026-11-20T10:00:00Z", "message": line, "filename": "job-output.txt",
                          "build_uuid": b.uuid, "log_url": f"{LOG_HOST}/{b.uuid[:2]}/{b.uuid}/", **b.fields}
                found.append(hit("logstash-2026.11.20", f"{b.uuid}-1", source, flavor=self.cluster.flavor))
        size = int(body.get("size", 10))
        return search_response(found[:size], total=len(found), failures=self._failures(partial))

    def _agg(self, spec: Mapping[str, Any], builds: list[IndexedBuild], texts: list[str]) -> dict[str, Any]:
        if "cardinality" in spec:
            return {"value": sum(1 for b in builds if all(t in b.hits for t in texts))}
        if "composite" in spec:
            source_name = next(iter(spec["composite"]["sources"][0]))
            field_name = next(iter(spec["composite"]["sources"][0].values()))["terms"]["field"]
            values = sorted({f for b in builds for f in b.files} if field_name == "filename" else {b.uuid for b in builds})
            after = spec["composite"].get("after")
            if after is not None:
                values = [v for v in values if v > after[source_name]]
            buckets = [{"key": {source_name: v}, "doc_count": 1} for v in values]
            out: dict[str, Any] = {"buckets": buckets}
            if buckets:
                out["after_key"] = {source_name: values[-1]}
            return out
        if "terms" in spec:  # builds(limit=...)
            return {"buckets": [{"key": b.uuid, "doc_count": 1, "doc": {"hits": {"hits": [{"_source": {"build_uuid": b.uuid, **b.fields}}]}}}
                                for b in builds]}
        if "max" in spec:
            return {"value": None}
        return {}


def _matches(build: IndexedBuild, name: str, value: Any) -> bool:
    if name == "build_uuid":
        return build.uuid == str(value)
    if name == "build_short_uuid":
        return build.uuid.startswith(str(value))
    return str(build.fields.get(name)) == str(value)


# -- small helpers -----------------------------------------------------------------


def recording_sender(into: list[tuple[str, str]]) -> Callable[..., None]:
    """An IRC sender (``IrcNotifier.send``'s shape) that records and reports each message sent at once."""

    def send(channel: str, message: str, done: Callable[[], None] | None = None) -> None:
        into.append((channel, message))
        if done is not None:
            done()

    return send


class RecordingReviewer:
    """A reviewer that records every comment (thread-safe)."""

    def __init__(self) -> None:
        self.reviews: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def review(self, change: str, patchset: str, message: str) -> None:
        with self.lock:
            self.reviews.append((change, patchset, message))

    def posted(self, change: str, patchset: str, message: str) -> bool | None:
        return None  # cannot tell (what a reviewer without a query answers)


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def bot_config(tmp: Path, server: Any, keys: Any, extra: str = "") -> Path:
    cfg = tmp / "er.conf"
    cfg.write_text(
        "[gerrit]\n"
        f"host = 127.0.0.1\nport = {server.port}\nuser = {server.user}\nkey = {keys.client_key}\n"
        "[recheckwatch]\nci_username = zuul\nreadiness_poll = 0.2\n" + extra
    )
    cfg.chmod(0o600)
    return cfg


class BotProcess:
    """One ``elastic-recheck bot`` subprocess; output goes to a log file."""

    def __init__(
        self, cfg: Path, store: Path, state: Path, log: Path, fault: str | None = None,
        extra: Sequence[str] = ("--no-irc",), verbose: str = "-v",
    ) -> None:
        env = bot_env(**({"ELASTIC_RECHECK_FAULT": fault} if fault else {}))
        self.log = log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "elastic_recheck", verbose, "-c", str(cfg), "--store", str(store), "bot",
             "--queries", str(REPO / "queries"), "--state", str(state), *extra],
            stdout=self._fh, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )

    def wait_exit(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._fh.close()
        return rc

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def bot_env(**extra: str) -> dict[str, str]:
    """The environment of a bot subprocess: no inherited ELASTIC_RECHECK_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_RECHECK_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def state_rows(path: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of the bot's state tables (empty when the tables do not exist yet)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, tuple(params)))
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def actions(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

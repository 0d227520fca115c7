"""Hostile values in events, logs and files: never a query, a command, markup or a path.

* Event fields (job name, build URL, project, branch, pipeline) carrying Lucene
  syntax or HTML never alter a query: the cluster only ever receives the
  fingerprint texts as ``query_string``, and event-derived values only as
  ``bool.filter`` ``term`` values; the embedded store treats filter values as
  exact values (and SQL parameters).
* They reach Gerrit as one ``--message`` argument (no option injection, the
  text byte for byte), IRC as one line, and the site as escaped text.
* YAML is only ever loaded with ``safe_load``/``SafeLoader``; ingest refuses
  paths leaving the build directory and log URLs outside the allowed hosts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.notify import IrcReporter
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.channels import parse_channel_config
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.fixtures.gerrit_server import FakeGerritServer, gerrit_config_for
from tests.reliability.helpers import (
    FPS,
    REPO,
    IndexedBuild,
    LogCluster,
    RecordingReviewer,
    bot_env,
    failure_event,
    recording_sender,
)

UUID = "0123456789abcdef0123456789abcdef"
EVIL_JOB = 'x"OR(*:*)<script>alert(1)</script>'
EVIL_PROJECT = 'openstack/nova" OR *:* <b>bold</b>'
EVIL_BRANCH = "master<img src=x onerror=alert(2)>"
EVIL_PIPELINE = 'gate" OR build_status:* <i'
MARKERS = ("*:*", "<script>", "<b>", "onerror", "OR build_status", 'nova"')


def _hostile_event() -> dict[str, Any]:
    event = failure_event(6001, 2, [], pipeline="gate", project=EVIL_PROJECT)
    event["change"]["branch"] = EVIL_BRANCH
    event["comment"] = (
        f"Patch Set 2: Verified-2\n\nBuild failed ({EVIL_PIPELINE} pipeline).  For information, see https://docs.example.org\n\n"
        f"- {EVIL_JOB} https://zuul.example.org/t/openstack/build/{UUID}?q=message:*%20OR%20*:* : FAILURE in 3m 01s\n"
        f"- --label=Verified=-2 http://logs.example.org/01/6001/2/gate/x/abc1234/ : FAILURE in 1m 00s\n"
    )
    return event


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def test_event_values_reach_the_cluster_only_as_filter_terms(tmp_path: Path) -> None:
    with LogCluster() as cluster:
        cluster.index(IndexedBuild(UUID, hits={FPS[0].query: "End of file while reading data"}))
        cluster.index(IndexedBuild("abc1234" + "0" * 25, fields={"build_change": "6001", "build_patchset": "2"}))
        backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        state = BotState(tmp_path / "state.db")
        reviewer = RecordingReviewer()
        bot = Bot(backend, FPS, state, BotSettings(deadline_s=30, first_poll_s=0.05, workers=1), reviewer=reviewer)
        bot.start()
        try:
            assert bot.submit(_hostile_event()) is not None
            assert bot.wait_idle(30)
        finally:
            bot.stop()
            state.close()
            backend.close()
        bodies: list[Any] = []
        for req in cluster.requests:
            if req.endpoint == "_msearch":
                bodies.extend(req.ndjson()[1::2])
            elif req.body:
                bodies.append(req.json())
    assert len(reviewer.reviews) == 1  # the whole path ran
    queries = {text for b in bodies for path, text in _walk(b) if path.endswith("query_string.query")}
    assert queries and queries <= {fp.query for fp in FPS}
    event_values = {UUID, "abc1234", "6001", "2"}
    seen: set[str] = set()
    for body in bodies:
        for path, text in _walk(body):
            assert not any(m in text for m in MARKERS) or path.endswith("query_string.query"), (path, text)
            if text in event_values:
                assert re.fullmatch(r"\.query\.bool\.filter\[\d+\]\.term\.[a-z_]+", path), (path, text)
                seen.add(text)
    assert seen == event_values  # every event-derived value was used, each only as an exact filter


EXACT = [
    'tempest" OR *:*',
    "a OR b",
    "*",
    "x'); DROP TABLE docs; --",
    "<script>alert(1)</script>",
    "build_name:tempest",
    "\\",
    "%",
    "_",
]


@pytest.fixture(scope="module")
def exact_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    path = tmp_path_factory.mktemp("exact") / "store.db"
    store = EmbeddedStore(path)
    docs = [{"@timestamp": "2026-11-20T10:00:00Z", "message": f"line {i}", "filename": "job-output.txt",
             "build_uuid": f"{i:032x}", "build_name": name, "project": name, "build_change": str(7000 + i)}
            for i, name in enumerate(EXACT)]
    docs.append({"@timestamp": "2026-11-20T10:00:00Z", "message": "plain", "filename": "job-output.txt",
                 "build_uuid": "f" * 32, "build_name": "tempest", "project": "openstack/nova", "build_change": "7999"})
    store.add_documents(docs)
    yield store
    store.close()


@pytest.mark.parametrize("value", EXACT)
def test_embedded_filters_are_exact_values(exact_store: EmbeddedStore, value: str) -> None:
    for name, filters in (("build_name", Filters(build_name=value)), ("project", Filters(project=value))):
        got = exact_store.search(QuerySpec(filters=filters), size=5)
        assert got.total == 1 and got.hits[0].get(name) == value
    assert exact_store.search(QuerySpec(filters=Filters(build_change=f"{7000 + EXACT.index(value)} OR *")), size=1).total == 0
    assert exact_store.search(QuerySpec(filters=Filters(extra={"build_name": (value, "tempest")})), size=5).total == 2
    assert exact_store.integrity_check() == []
    assert exact_store.count_documents() == len(EXACT) + 1


def test_hostile_job_names_reach_gerrit_as_one_message_argument(gerrit_server: FakeGerritServer, tmp_path: Path) -> None:
    from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer

    with LogCluster() as cluster:
        cluster.index(IndexedBuild(UUID, hits={FPS[0].query: "End of file; $(touch /tmp/pwned) `id` 'q' \"dq\" \\n \x00\ud800"}))
        cluster.index(IndexedBuild("abc1234" + "0" * 25, fields={"build_change": "6001", "build_patchset": "2"},
                                   hits={FPS[1].query: "--code-review=-2 --abandon"}))
        backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        state = BotState(tmp_path / "state.db")
        captured = RecordingReviewer()
        channels = parse_channel_config({"channels": {"#qa": {"projects": ["all"], "events": ["positive", "negative"]}}},
                                        irc_pipelines=[EVIL_PIPELINE])
        irc: list[tuple[str, str]] = []
        fps = [Fingerprint(bug=FPS[0].bug, query=FPS[0].query, bug_title="evil\r\nQUIT :bye\x00 <b>"), FPS[1]]

        class Both:
            def __init__(self) -> None:
                self.real = GerritReviewer.from_config(gerrit_config_for(gerrit_server), timeout=10)

            def review(self, change: str, patchset: str, message: str) -> None:
                captured.review(change, patchset, message)
                self.real.review(change, patchset, message)

            def posted(self, change: str, patchset: str, message: str) -> bool | None:
                return self.real.posted(change, patchset, message)

        both = Both()
        bot = Bot(backend, fps, state, BotSettings(deadline_s=30, first_poll_s=0.05, workers=1, count_recent=False),
                  reviewer=both, notifier=IrcReporter(channels, recording_sender(irc)))
        bot.start()
        try:
            assert bot.submit(_hostile_event()) is not None
            assert bot.wait_idle(30)
        finally:
            bot.stop()
            both.real.close()
            state.close()
            backend.close()
    assert len(gerrit_server.reviews) == 1
    review = gerrit_server.reviews[0]
    sent = captured.reviews[0][2]
    assert review.message == sent  # byte for byte, through Gerrit's own command-line splitting
    assert EVIL_JOB in sent and "- --label=Verified=-2:" in sent and "$(touch /tmp/pwned)" in sent
    assert review.labels == []  # nothing became a vote
    assert review.argv[:3] == ["gerrit", "review", "6001,2"] and review.argv[3] == "--message" and len(review.argv) == 5
    assert not Path("/tmp/pwned").exists()
    assert "\x00" not in sent and "evil QUIT :bye" in sent  # a NUL from a bug title would make Gerrit refuse the comment
    assert irc and all(not set(m) & {"\r", "\n", "\x00"} for _, m in irc)


# -- the site ------------------------------------------------------------------------------------------

XSS = {
    "line": '<script>window.__pwned=1</script> "><img src=x onerror=alert(1)> marker',
    "job": 'tempest"><svg/onload=alert(2)>',
    "project": "openstack/<iframe src=javascript:alert(3)>",
    "title": "<script>alert(4)</script> & friends",
}


def _site_docs() -> list[dict[str, Any]]:
    docs = []
    for i, (uuid, line) in enumerate((("a" * 32, XSS["line"]), ("b" * 32, "generic failure </textarea><script>alert(5)</script>"))):
        base = {"build_uuid": uuid, "build_short_uuid": uuid[:7], "build_name": XSS["job"], "project": XSS["project"],
                "build_status": "FAILURE", "build_queue": "gate", "build_change": str(8000 + i), "build_patchset": "1",
                "voting": "1", "node_provider": "<b>rax</b>", "filename": "job-output.txt",
                "log_url": "javascript:alert(6)" if i else f"https://logs.example.org/{uuid}/", "tags": ["console"]}
        docs.append({**base, "@timestamp": f"2026-11-19T1{i}:00:00Z", "message": line})
        docs.append({**base, "@timestamp": f"2026-11-19T1{i}:00:05Z", "message": "Job complete, result: FAILURE"})
    return docs


def test_site_renders_hostile_values_as_text(tmp_path: Path) -> None:
    from bs4 import BeautifulSoup

    store = tmp_path / "store.db"
    with EmbeddedStore(store) as s:
        s.add_documents(_site_docs())
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "999001.yaml").write_text(
        f"query: message:marker\nbug_title: {json.dumps(XSS['title'])}\nbug_url: 'javascript:alert(7)'\n"
    )
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "--store", str(store), "render", "-o", str(site),
         "--now", "2026-11-20T00:00:00Z", "--queries", str(queries)],
        capture_output=True, text=True, timeout=300, env=bot_env(), cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 4
    shown = ""
    for page in pages:
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag in soup.find_all(True):
            for attr, value in tag.attrs.items():
                assert not attr.lower().startswith("on"), (page.name, tag.name, attr)
                if attr in ("href", "src", "action", "formaction"):
                    assert not str(value).strip().lower().startswith("javascript:"), (page.name, tag.name, value)
        for script in soup.find_all("script"):
            assert "alert(" not in script.get_text() and "__pwned" not in script.get_text(), page.name
            assert not script.get("src") or "static/" in script["src"], page.name
        assert not soup.find_all(["img", "svg", "iframe"], attrs={"onerror": True}) and not soup.find_all("iframe")
        shown += soup.get_text()
    # The hostile values were rendered, as text.
    assert XSS["line"].split(" marker")[0] in shown
    assert XSS["title"] in shown and XSS["job"] in shown


# -- YAML, paths and URLs ----------------------------------------------------------------------------------


def test_yaml_is_only_loaded_safely() -> None:
    unsafe = re.compile(r"yaml\.(load|load_all|unsafe_load|unsafe_load_all|full_load|full_load_all)\(|"
                        r"Loader\s*=\s*yaml\.(Loader|UnsafeLoader|FullLoader)|yaml\.add_constructor|yaml\.Unsafe")
    files = sorted((REPO / "elastic_recheck").rglob("*.py"))
    assert len(files) > 20
    offenders = [f"{f.relative_to(REPO)}:{n}: {line.strip()}" for f in files
                 for n, line in enumerate(f.read_text().splitlines(), 1) if unsafe.search(line)]
    assert offenders == []
    uses = sum(f.read_text().count("safe_load") + f.read_text().count("SafeLoader") for f in files)
    assert uses >= 3  # the pattern above would have seen the unsafe forms of these


def test_ingest_refuses_links_leaving_the_build_directory(tmp_path: Path) -> None:
    from elastic_recheck.ingest.build_dir import list_build_files
    from elastic_recheck.ports.loading import IngestStats

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    build = tmp_path / "build"
    (build / "logs").mkdir(parents=True)
    (build / "job-output.txt").write_text("ok\n")
    os.symlink(secret, build / "logs" / "passwd.txt")
    os.symlink(tmp_path, build / "logs" / "up")
    os.symlink("../../secret.txt", build / "logs" / "rel.txt")
    os.symlink(build / "job-output.txt", build / "logs" / "inside.txt")
    stats = IngestStats()
    files = dict(list_build_files(build, stats))
    assert sorted(files) == ["job-output.txt", "logs/inside.txt"]
    assert all(build.resolve() in p.parents for p in files.values())
    assert {"logs/passwd.txt", "logs/rel.txt"} <= set(stats.files_skipped)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a\\..\\b", "a\x00b", "..", ".", "", "a/./../../b"])
def test_collect_refuses_manifest_paths_leaving_the_download_directory(path: str) -> None:
    from elastic_recheck.collect.files import safe_relpath

    assert safe_relpath(path) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/logs/job-output.txt",
        "https://logs.example.org.evil.com/x",
        "https://logs.example.org@evil.com/x",
        "file:///etc/passwd",
        "ftp://logs.example.org/x",
        "javascript:alert(1)",
        "https:///x",
        "//logs.example.org/x",
    ],
)
def test_collect_refuses_log_urls_outside_the_allowed_hosts(url: str) -> None:
    from elastic_recheck.collect.fetch import LogFetcher, LogHostRefused

    fetcher = LogFetcher(allowed_hosts=["logs.example.org", "*.rackcdn.com"])
    with pytest.raises(LogHostRefused):
        fetcher.check_url(url)
    fetcher.check_url("https://logs.example.org/01/1/2/gate/x/abc1234/job-output.txt")
    fetcher.check_url("https://a1b2.ssl.cf5.rackcdn.com/x/job-output.txt")

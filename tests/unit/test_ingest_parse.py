"""Pure parsing of CI logs into logstash documents (no store)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from elastic_recheck.core.documents import normalize_document
from elastic_recheck.core.timestamps import parse_line_timestamp, parse_timestamp
from elastic_recheck.ingest.build_dir import list_build_files
from elastic_recheck.ingest.build_info import BuildInfo, build_info_from_zuul, load_zuul_build
from elastic_recheck.ingest.jsonl import iter_jsonl
from elastic_recheck.ingest.log_lines import (
    MAX_RECORD_LINES,
    documents_for_lines,
    iter_records,
    open_maybe_gz,
    parse_loglevel,
    read_lines,
    tags_for,
)
from elastic_recheck.ingest.subunit import read_subunit
from elastic_recheck.ports.loading import IngestStats

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BUILD_TIME = datetime(2014, 1, 27, 18, 0, tzinfo=UTC)
BUILD = BuildInfo(
    uuid="0123456789abcdef0123456789abcdef",
    name="tempest-full",
    status="FAILURE",
    change="12345",
    patchset="2",
    queue="gate",
    project="openstack/nova",
    voting=True,
    node_provider="rax-dfw",
    log_url="https://logs.example.org/45/12345/2/gate/tempest-full/0123456/",
    start_time=BUILD_TIME,
)


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/data not present: {path} is missing")
    return path


# ---------------------------------------------------------------------------
# tags and levels


@pytest.mark.parametrize(
    ("path", "tags"),
    [
        ("logs/screen-n-cpu.txt", ["screen-n-cpu.txt", "screen", "oslofmt"]),
        ("controller/logs/screen-q-svc.txt.gz", ["screen-q-svc.txt", "screen", "oslofmt"]),
        ("job-output.txt", ["job-output.txt", "console"]),
        ("job-output.txt.gz", ["job-output.txt", "console"]),
        ("console.html", ["console.html", "console"]),
        ("logs/syslog.txt.gz", ["syslog.txt", "syslog"]),
        ("controller/logs/devstack@c-api.service.log.txt", ["devstack@c-api.service.log.txt", "screen-c-api.txt", "screen", "oslofmt"]),
        ("logs/devstacklog.txt.gz", ["devstacklog.txt", "devstack"]),
        ("logs/nova/nova-conductor.log", ["nova-conductor.log", "oslofmt"]),
        ("logs/etc/nova/nova.conf.txt", ["nova.conf.txt"]),
    ],
)
def test_tags_follow_opendev_conventions(path: str, tags: list[str]) -> None:
    assert tags_for(path) == tags


@pytest.mark.parametrize(
    ("line", "level", "module"),
    [
        ("2014-01-27 18:08:49.123 2625 ERROR nova.compute.manager [req-1] boom", "ERROR", "nova.compute.manager"),
        ("2014-01-27 18:08:49.123 2625 TRACE nova.compute.manager Traceback", "TRACE", "nova.compute.manager"),
        ("2014-01-27 18:08:49.123 WARN oslo.x y", "WARNING", "oslo.x"),
        ("Mar 28 12:20:43.570064 host cinder-api[8526]: WARNING oslo_reports.gmr [-] x", "WARNING", "oslo_reports.gmr"),
        ("2024-01-02 03:04:05.123456 | ERROR: not a level after a pipe", None, None),
        ("Jan 27 18:08:49 host kernel: [12.3] Out of memory", None, None),
    ],
)
def test_loglevels(line: str, level: str | None, module: str | None) -> None:
    _, end = parse_line_timestamp(line, BUILD_TIME)
    assert parse_loglevel(line, end) == (level, module)


# ---------------------------------------------------------------------------
# records


def test_trace_and_untimestamped_lines_continue_the_record() -> None:
    lines = [
        "2014-01-27 18:08:49.100 1 INFO nova.x starting",
        "2014-01-27 18:08:49.123 1 ERROR nova.x failed",
        "2014-01-27 18:08:49.123 1 TRACE nova.x Traceback (most recent call last):",
        '2014-01-27 18:08:49.123 1 TRACE nova.x   File "a.py", line 1, in f',
        "  raw continuation without prefix",
        "",
        "2014-01-27 18:08:50.000 1 INFO nova.x next",
    ]
    recs = list(iter_records(lines, BUILD_TIME))
    assert [r.lineno for r in recs] == [1, 2, 7]
    assert [r.lines for r in recs] == [1, 4, 1]
    assert recs[1].text.splitlines()[0].endswith("ERROR nova.x failed")
    assert recs[1].text.splitlines()[-1] == "  raw continuation without prefix"
    assert recs[1].loglevel == "ERROR"


def test_leading_lines_without_timestamp_stand_alone() -> None:
    recs = list(iter_records(["+ ln -sf a b", "+ exec x", "2014-01-27 18:08:49.100 1 INFO m up"], BUILD_TIME))
    assert [r.text for r in recs] == ["+ ln -sf a b", "+ exec x", "2014-01-27 18:08:49.100 1 INFO m up"]


def test_runaway_continuations_are_cut() -> None:
    lines = ["2014-01-27 18:08:49.100 1 INFO m start"] + ["no timestamp here"] * (MAX_RECORD_LINES * 2)
    recs = list(iter_records(lines, BUILD_TIME))
    assert recs[0].lines == MAX_RECORD_LINES
    assert sum(r.lines for r in recs) == len(lines)


def test_console_prefix_is_removed() -> None:
    recs = list(iter_records(["2024-01-02 03:04:05.123456 | TASK [x : y]", "2024-01-02 03:04:06.000000 |"], console=True))
    assert recs[0].text == "TASK [x : y]"
    assert recs[0].timestamp == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert recs[1].text == ""


def test_documents_carry_build_file_and_line_fields() -> None:
    lines = [
        "2014-01-27 18:08:49.100 7 DEBUG nova.x noisy",
        '2014-01-27 18:08:49.101 7 DEBUG nova.x   still noisy\n',
        "2014-01-27 18:08:49.123 7 ERROR nova.x failed\n",
        "  continuation\r\n",
        "no timestamp at all after an untimestamped start? no: continues the ERROR",
    ]
    stats = IngestStats()
    docs = list(documents_for_lines("controller/logs/screen-n-cpu.txt.gz", lines, BUILD, stats=stats))
    assert len(docs) == 1
    doc = docs[0]
    assert doc["message"] == "2014-01-27 18:08:49.123 7 ERROR nova.x failed\n  continuation\nno timestamp at all after an untimestamped start? no: continues the ERROR"
    assert doc["@timestamp"] == "2014-01-27T18:08:49.123Z"
    assert doc["loglevel"] == "ERROR" and doc["module"] == "nova.x"
    assert doc["filename"] == "controller/logs/screen-n-cpu.txt"
    assert doc["log_url"] == BUILD.log_url + "controller/logs/screen-n-cpu.txt.gz"
    assert doc["tags"] == ["screen-n-cpu.txt", "screen", "oslofmt", "multiline"]
    assert doc["build_uuid"] == BUILD.uuid and doc["build_short_uuid"] == BUILD.uuid[:7]
    assert doc["voting"] == 1 and doc["build_change"] == "12345" and doc["node_provider"] == "rax-dfw"
    assert (stats.lines_read, stats.lines_dropped) == (5, 2)

    kept = list(documents_for_lines("controller/logs/screen-n-cpu.txt", lines, BUILD, keep_debug=True))
    assert [d["loglevel"] for d in kept] == ["DEBUG", "DEBUG", "ERROR"]


def test_lines_without_timestamp_get_the_build_time_then_the_previous_time() -> None:
    docs = list(documents_for_lines("job-output.txt", ["first", "2014-01-27 19:00:00.000000 | second"], BUILD))
    assert [d["@timestamp"] for d in docs] == ["2014-01-27T18:00:00.000Z", "2014-01-27T19:00:00.000Z"]
    assert docs[1]["message"] == "second"
    no_time = BuildInfo(uuid="x" * 32)
    assert "@timestamp" not in next(documents_for_lines("a.txt", ["plain"], no_time))


def test_non_utf8_bytes_are_replaced() -> None:
    raw = io.BytesIO(b"2014-01-27 18:08:49.123 1 ERROR m caf\xe9 \xff\xfe broken\n")
    (doc,) = documents_for_lines("logs/screen-x.txt", read_lines(raw), BUILD)
    assert "caf\ufffd" in doc["message"]


def test_real_oslo_log_keeps_tracebacks_together() -> None:
    path = shared("logs", "os-loganalyze", "screen-q-svc.txt.gz")
    stats = IngestStats()
    with open_maybe_gz(path) as fh:
        docs = list(documents_for_lines("logs/screen-q-svc.txt.gz", read_lines(fh), BUILD, stats=stats))
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        raw = [line for line in fh if line.strip()]
    assert stats.lines_read == len(raw)
    debug = sum(1 for line in raw if " DEBUG " in line[:40])
    assert stats.lines_dropped >= debug
    traced = [d for d in docs if "multiline" in d["tags"]]
    assert traced, "the file has TRACE blocks"
    for doc in traced:
        first, *rest = doc["message"].split("\n")
        assert " TRACE " not in first[:40]
        assert all(" TRACE " in line[:40] or not parse_line_timestamp(line, BUILD_TIME)[0] for line in rest)
    assert not any(" TRACE " in d["message"].split("\n")[0][:40] for d in docs)


def test_real_journal_file_levels_and_year() -> None:
    path = shared("logs", "os-loganalyze", "devstack@c-api.service.log.txt")
    with open_maybe_gz(path) as fh:
        docs = list(documents_for_lines(path.name, read_lines(fh), BUILD, keep_debug=True))
    levels = {d.get("loglevel") for d in docs}
    assert {"WARNING", "DEBUG"} <= levels
    assert all(d["@timestamp"].startswith(("2013-03-28", "2014-01-27")) for d in docs)
    assert docs[0]["tags"][1] == "screen-c-api.txt"


# ---------------------------------------------------------------------------
# JSON lines


def test_old_logstash_layout_is_flattened() -> None:
    doc = normalize_document(
        {
            "@timestamp": "2013-10-18T17:39:43.966Z",
            "@message": "boom",
            "@tags": ["console.html", "console"],
            "@source_host": "jenkins",
            "@fields": {"build_uuid": ["abc"], "build_queue": ["check"], "filename": "console.html", "multi": ["a", "b"]},
        }
    )
    assert doc == {
        "@timestamp": "2013-10-18T17:39:43.966Z",
        "message": "boom",
        "tags": ["console.html", "console"],
        "source_host": "jenkins",
        "build_uuid": "abc",
        "build_queue": "check",
        "filename": "console.html",
        "multi": ["a", "b"],
    }


def test_es_hits_are_unwrapped_and_keep_their_id() -> None:
    assert normalize_document({"_index": "i", "_id": "x1", "_source": {"message": "m"}}) == {"message": "m", "id": "x1"}
    assert normalize_document({"_id": "x1", "_source": {"message": "m", "id": "own"}})["id"] == "own"
    flat = {"message": "m", "build_change": 829161, "hosts_id": ["h"], "voting": 1}
    assert normalize_document(flat) == flat


def test_bad_json_lines_are_counted_with_line_numbers() -> None:
    data = b'{"message": "ok"}\n\nnot json\n"a string"\n{"message": "ok2"}\n{"@fields": 3, "@message": "x"}\n'
    stats = IngestStats()
    docs = list(iter_jsonl(io.BytesIO(data), stats))
    assert [d["message"] for d in docs] == ["ok", "ok2"]
    assert stats.bad_lines == 3
    assert [n for n, _ in stats.bad_line_samples] == [3, 4, 6]
    assert stats.lines_read == 5


def test_real_logstash_documents_parse() -> None:
    stats = IngestStats()
    with open(shared("logstash", "elastic-recheck-docs.jsonl"), "rb") as fh:
        docs = list(iter_jsonl(fh, stats))
    assert stats.bad_lines == 0 and len(docs) == stats.lines_read > 1000
    assert all("message" in d and "@timestamp" in d for d in docs)
    assert all(parse_timestamp(d["@timestamp"]) is not None for d in docs)
    with open(shared("logstash", "ci-log-processing-opensearch-docs.jsonl"), "rb") as fh:
        modern = list(iter_jsonl(fh, IngestStats()))
    assert modern and all(d["build_uuid"] == "38bf2cdc947643c9bb04f11f40a0f211" for d in modern)


# ---------------------------------------------------------------------------
# Zuul build records


def test_zuul_records_flat_and_nested() -> None:
    data = json.loads(shared("zuul", "ci-log-processing-buildinfo-2022.json").read_text())
    flat = build_info_from_zuul(data["buildinfo_old_api_flat_ref"])
    nested = build_info_from_zuul(data["buildinfo_new_api_nested_ref"])
    for info in (flat, nested):
        assert info.uuid == "38bf2cdc947643c9bb04f11f40a0f211"
        assert info.project == "openstack/neutron" and info.change == "829161" and info.branch == "master"
        assert info.name == "openstack-tox-py39" and info.status == "SUCCESS" and info.queue == "check"
        assert info.voting is True and info.build_set == "52b29e0e716a4436bd20eed47fa396ce"
        assert info.start_time == datetime(2022, 2, 28, 9, 39, 9, tzinfo=UTC)
        assert info.ref == "refs/changes/61/829161/3"
    assert (flat.patchset, nested.patchset) == ("3", "1")  # as recorded upstream
    fields = flat.fields()
    assert fields["build_short_uuid"] == "38bf2cd" and fields["voting"] == 1 and "node_provider" not in fields


def test_zuul_api_list_records() -> None:
    builds = json.loads(shared("zuul", "opendev-api-builds-2020.json").read_text())
    ran = [b for b in builds if b.get("uuid")]
    infos = [build_info_from_zuul(b) for b in ran]
    assert all(i.log_url and i.name for i in infos)
    skipped = [b for b in builds if not b.get("uuid")]
    for record in skipped:
        with pytest.raises(ValueError, match="uuid"):
            build_info_from_zuul(record)


def test_load_zuul_build_file(tmp_path: Path) -> None:
    path = tmp_path / "build.json"
    path.write_text(json.dumps([{"uuid": "u" * 32, "job_name": "j", "result": "FAILURE", "voting": False}]))
    info = load_zuul_build(path)
    assert (info.uuid, info.name, info.voting) == ("u" * 32, "j", False)
    path.write_text("{broken")
    with pytest.raises(ValueError, match="build.json"):
        load_zuul_build(path)


# ---------------------------------------------------------------------------
# build directories


def test_symlinks_escaping_the_build_dir_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("password\n")
    build = tmp_path / "build"
    (build / "logs").mkdir(parents=True)
    (build / "logs" / "ok.txt").write_text("line\n")
    (build / "logs" / "inside-link.txt").symlink_to(build / "logs" / "ok.txt")
    (build / "logs" / "escape.txt").symlink_to(outside)
    (build / "logs" / "dir-escape").symlink_to(tmp_path, target_is_directory=True)
    stats = IngestStats()
    files = list_build_files(build, stats)
    assert [rel for rel, _ in files] == ["logs/inside-link.txt", "logs/ok.txt"]
    assert "logs/escape.txt" in stats.files_skipped


def test_subunit_stream() -> None:
    with open(shared("logs", "ci-log-processing", "testrepository.subunit"), "rb") as fh:
        results = read_subunit(fh)
    statuses = {r.status for r in results}
    assert statuses <= {"success", "fail", "skip", "xfail", "uxsuccess", "exists"}
    assert any(r.test_id.startswith("neutron_tempest_plugin.") for r in results)
    assert any(r.status == "skip" and r.test_id.startswith("setUpClass") for r in results)
    assert all(r.duration is None or r.duration >= 0 for r in results if r.status == "success")

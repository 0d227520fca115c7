"""``elastic-recheck ingest`` end to end: files on disk -> CLI -> real SQLite store."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.search_types import Filters, QuerySpec

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
UUID = "38bf2cdc947643c9bb04f11f40a0f211"


def run(store: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", str(store), "ingest", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def summary_numbers(line: str) -> dict[str, int]:
    out = {}
    for key in ("documents stored", "lines read", "dropped", "bad"):
        m = re.search(rf"(\d+) {key}", line)
        assert m, (key, line)
        out[key] = int(m.group(1))
    return out


def make_subunit(path: Path, results: dict[str, str]) -> None:
    import subunit

    buf = io.BytesIO()
    out = subunit.StreamResultToBytes(buf)
    t = datetime(2026, 11, 10, tzinfo=UTC)
    for test_id, status in results.items():
        out.status(test_id=test_id, test_status="inprogress", timestamp=t)
        out.status(test_id=test_id, test_status=status, timestamp=t)
    path.write_bytes(buf.getvalue())


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    logs = root / "controller" / "logs"
    logs.mkdir(parents=True)
    (root / "job-output.txt").write_text(
        "2026-11-10 10:00:00.000001 | Job console starting...\n"
        "2026-11-10 10:05:00.000001 | tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.5.9 via SSH timed out.\n"
        "2026-11-10 10:09:00.000001 | Job complete, result: FAILURE\n"
    )
    with gzip.open(logs / "screen-n-cpu.txt.gz", "wt") as fh:
        fh.write(
            "2026-11-10 10:01:00.000 42 DEBUG nova.compute.manager [-] periodic task\n"
            "2026-11-10 10:02:00.000 42 ERROR nova.virt.libvirt.driver [req-1] Failed: libvirt.libvirtError: End of file while reading data: Input/output error\n"
            '  File "/opt/stack/nova/nova/virt/libvirt/guest.py", line 165, in launch\n'
            "2026-11-10 10:03:00.000 42 INFO nova.compute.manager [-] Took 3.2 seconds\n"
        )
    (logs / "syslog.txt").write_bytes(b"Nov 10 10:04:00 np1 kernel: Out of memory: Killed process 4242 (mysqld) \xff\xfe\n")
    make_subunit(root / "testrepository.subunit", {"tempest.a.test_ok": "success", "tempest.b.test_ssh": "fail", "tempest.c": "skip"})
    return root


@pytest.fixture
def zuul_record(tmp_path: Path) -> Path:
    path = tmp_path / "zuul-build.json"
    path.write_text(
        json.dumps(
            {
                "uuid": UUID,
                "job_name": "tempest-full-py3",
                "result": "FAILURE",
                "voting": True,
                "pipeline": "gate",
                "log_url": "https://logs.example.org/61/829161/3/gate/tempest-full-py3/38bf2cd/",
                "start_time": "2026-11-10T09:59:00",
                "end_time": "2026-11-10T10:10:00",
                "buildset": {"uuid": "52b29e0e716a4436bd20eed47fa396ce"},
                "ref": {"project": "openstack/nova", "branch": "master", "change": 829161, "patchset": "3", "ref": "refs/changes/61/829161/3"},
            }
        )
    )
    return path


def test_build_dir_with_zuul_record(tmp_path: Path, build_dir: Path, zuul_record: Path) -> None:
    store_path = tmp_path / "store.db"
    code, out, err = run(store_path, "--build-dir", str(build_dir), "--zuul-build", str(zuul_record), "--node-provider", "rax-dfw")
    assert code == 0, err
    numbers = summary_numbers(out.strip().splitlines()[-1])
    # 3 job-output lines + 3 n-cpu records (one with a continuation line) + 1 syslog line; DEBUG dropped
    assert numbers == {"documents stored": 6, "lines read": 8, "dropped": 1, "bad": 0}
    assert "3 test results" in out
    with EmbeddedStore(store_path) as store:
        docs = store.get_build_docs(UUID)
        assert len(docs) == 6
        assert {d["build_change"] for d in docs} == {"829161"}
        assert {d["project"] for d in docs} == {"openstack/nova"}
        assert {d["node_provider"] for d in docs} == {"rax-dfw"}  # the option adds to the record
        assert {d["voting"] for d in docs} == {1}
        assert store.indexed_files(UUID) == {"job-output.txt", "controller/logs/screen-n-cpu.txt", "controller/logs/syslog.txt"}
        assert store.failed_tests(UUID) == {"tempest.b.test_ssh"}
        cpu = [d for d in docs if d["filename"] == "controller/logs/screen-n-cpu.txt"]
        assert [d["loglevel"] for d in cpu] == ["ERROR", "INFO"]
        assert cpu[0]["tags"] == ["screen-n-cpu.txt", "screen", "oslofmt", "multiline"]
        assert cpu[0]["log_url"].endswith("/38bf2cd/controller/logs/screen-n-cpu.txt.gz")
        syslog = next(d for d in docs if d["filename"] == "controller/logs/syslog.txt")
        assert "\ufffd" in syslog["message"] and syslog["@timestamp"] == "2026-11-10T10:04:00.000Z"
        console = [d for d in docs if d["filename"] == "job-output.txt"]
        assert console[-1]["message"] == "Job complete, result: FAILURE"
        toks = ("via", "ssh", "timed", "out")
        found = store.search(QuerySpec(filters=Filters(build_uuid=UUID)), query=qa.Phrase("message", toks, (0, 1, 2, 3)))
        assert found.total == 1 and found.hits[0].source["tags"] == ["job-output.txt", "console"]

    # Ingesting the same directory again replaces its documents.
    code, out, err = run(store_path, "--build-dir", str(build_dir), "--zuul-build", str(zuul_record))
    assert code == 0, err
    with EmbeddedStore(store_path) as store:
        assert store.count_documents() == 6


def test_build_dir_with_options_only(tmp_path: Path, build_dir: Path) -> None:
    store_path = tmp_path / "store.db"
    code, out, err = run(
        store_path, "--build-dir", str(build_dir), "--build-uuid", "a" * 32, "--build-name", "grenade",
        "--build-status", "SUCCESS", "--build-change", "5", "--build-patchset", "1", "--build-queue", "check",
        "--project", "openstack/neutron", "--voting", "0", "--log-url", "https://l/x/", "--branch", "stable/x", "--keep-debug",
    )  # fmt: skip
    assert code == 0, err
    assert summary_numbers(out)["documents stored"] == 7  # DEBUG kept
    with EmbeddedStore(store_path) as store:
        doc = store.get_build_docs("a" * 32)[0]
        assert {k: doc[k] for k in ("build_name", "build_status", "build_change", "build_queue", "project", "voting", "build_branch")} == {
            "build_name": "grenade",
            "build_status": "SUCCESS",
            "build_change": "5",
            "build_queue": "check",
            "project": "openstack/neutron",
            "voting": 0,
            "build_branch": "stable/x",
        }


def test_usage_errors(tmp_path: Path, build_dir: Path) -> None:
    code, _, err = run(tmp_path / "s.db")
    assert code == 2 and "--jsonl" in err
    code, _, err = run(tmp_path / "s.db", "--build-dir", str(build_dir))
    assert code == 2 and "--build-uuid" in err
    code, _, err = run(tmp_path / "s.db", "--build-dir", str(build_dir), "--build-uuid", "u", "--voting", "maybe")
    assert code == 2 and "--voting" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = run(tmp_path / "s.db", "--build-dir", str(build_dir), "--zuul-build", str(bad))
    assert code == 2 and "bad.json" in err


def test_escaping_symlinks_are_refused(tmp_path: Path, build_dir: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("2026-11-10 10:00:00.000 1 ERROR x the secret line\n")
    (build_dir / "controller" / "logs" / "passwd.txt").symlink_to(secret)
    code, _out, err = run(tmp_path / "s.db", "--build-dir", str(build_dir), "--build-uuid", "b" * 32)
    assert code == 0
    assert "skipped controller/logs/passwd.txt" in err
    with EmbeddedStore(tmp_path / "s.db") as store:
        assert store.search(QuerySpec(), query=qa.Term("message", "secret")).total == 0


def test_jsonl_sample_and_bad_lines(tmp_path: Path) -> None:
    store_path = tmp_path / "store.db"
    sample = REPO / "sample" / "logs.jsonl.gz"
    bad = tmp_path / "mixed.jsonl"
    bad.write_text(
        '{"message": "fine", "build_uuid": "z"}\n'
        "{oops\n"
        '["a list"]\n'
        '{"@message": "old layout", "@tags": ["console.html", "console"], "@fields": {"build_uuid": ["old1"], "filename": ["console.html"]}}\n'
        + "garbage\n" * 7
    )
    code, out, err = run(store_path, "--jsonl", str(sample), "--jsonl", str(bad), "--progress")
    assert code == 0, err
    lines = out.strip().splitlines()
    with gzip.open(sample) as fh:
        n = sum(1 for line in fh if line.strip())
    assert summary_numbers(lines[0]) == {"documents stored": n, "lines read": n, "dropped": 0, "bad": 0}
    assert summary_numbers(lines[1]) == {"documents stored": 2, "lines read": 11, "dropped": 0, "bad": 9}
    assert lines[2].startswith("total: ")
    assert f"{bad}:2: invalid JSON" in err and f"{bad}:3: expected a JSON object" in err
    assert "and 4 more bad lines" in err
    with EmbeddedStore(store_path) as store:
        assert store.count_documents() == n + 2
        old = store.get_build_docs("old1")
        assert old == [{"message": "old layout", "tags": ["console.html", "console"], "build_uuid": "old1", "filename": "console.html"}]


def test_real_shared_documents(tmp_path: Path) -> None:
    src = SHARED / "logstash" / "elastic-recheck-docs.jsonl"
    if not src.exists():
        pytest.skip(f"../shared/data not present: {src} is missing")
    gz = tmp_path / "docs.jsonl.gz"
    with open(src, "rb") as fin, gzip.open(gz, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    code, out, err = run(tmp_path / "s.db", "--jsonl", str(gz))
    assert code == 0, err
    docs = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    assert summary_numbers(out)["documents stored"] == len(docs)
    with EmbeddedStore(tmp_path / "s.db") as store:
        # Every labelled document is found by its own build filter, as given.
        for doc in docs[:50]:
            res = store.search(QuerySpec(filters=Filters(build_uuid=doc["build_uuid"])), size=1000)
            assert doc in [dict(h.source) for h in res.hits]
        bugs = {d["_er"]["bug"] for d in docs}
        for bug in bugs:
            want = sum(1 for d in docs if d["_er"]["bug"] == bug)
            assert store.search(QuerySpec(), query=qa.Term("_er.bug", str(bug)), size=0).total == want


def test_worker_processes_store_the_same(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    lines = [json.dumps({"id": f"d{i}", "message": f"line {i} timed out", "build_uuid": f"b{i % 7}", "tags": ["console"]}) for i in range(5000)]
    lines[1234] = "{not json"
    lines[4321] = "[]"
    src.write_text("\n".join(lines) + "\n")
    from elastic_recheck.ingest.jsonl import ingest_jsonl

    results = []
    for workers in (0, 2):
        with EmbeddedStore(tmp_path / f"w{workers}.db") as store:
            stats = ingest_jsonl(store, src, batch_size=700, workers=workers)
            hits = store.search(QuerySpec(filters=Filters(build_uuid="b3")), size=10_000)
            results.append((stats.docs, stats.lines_read, stats.bad_lines, [n for n, _ in stats.bad_line_samples], [h.source for h in hits.hits]))
    assert results[0] == results[1]
    assert results[0][:4] == (4998, 5000, 2, [1235, 4322])


@pytest.mark.parametrize("workers", ["0", "2"])
def test_ingesting_the_same_file_twice_replaces_its_documents(tmp_path: Path, workers: str) -> None:
    """Documents without an id get collect's stable ids, so a second load replaces the first."""
    from elastic_recheck.core.documents import document_id

    src = tmp_path / "docs.jsonl"
    docs = [
        {"message": f"line {i}", "build_uuid": "a" * 32, "filename": "job-output.txt", "@timestamp": "2026-11-10T10:00:00Z"}
        for i in range(5)
    ] + [
        {"message": "no build", "@timestamp": "2026-11-10T10:00:00Z"},
        {"message": "no build", "@timestamp": "2026-11-10T10:00:00Z"},  # an identical line is still a line
        {"id": "own-1", "message": "own id", "build_uuid": "b" * 32, "@timestamp": "2026-11-10T10:00:00Z"},
    ]
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    store = tmp_path / "store.db"
    for _ in range(2):
        code, _out, err = run(store, "--workers", workers, "--jsonl", str(src))
        assert code == 0, err
    with EmbeddedStore(store) as s:
        assert s.search(QuerySpec(), size=0).total == len(docs)
        ids = {h.id for h in s.search(QuerySpec(), size=100).hits}
    assert {document_id("a" * 32, "job-output.txt", n) for n in range(1, 6)} <= ids
    assert "own-1" in ids and len(ids) == len(docs)

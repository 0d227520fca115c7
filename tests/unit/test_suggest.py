"""Pure core of ``elastic-recheck suggest``: line extraction, normalization, clustering, phrases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.contrib.suggest import renumber
from elastic_recheck.core.error_clusters import (
    Cluster,
    ClusterQuery,
    build_query,
    candidates_for,
    cluster_lines,
    common_runs,
    contains_phrase,
    lucene_escape_phrase,
    lucene_phrase,
)
from elastic_recheck.core.error_lines import (
    ErrorLine,
    extract_lines,
    is_generic,
    normalize,
    phrase_text,
    signature,
    strip_prefix,
)
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.ingest import build_info as ingest_build
from elastic_recheck.ingest import log_lines
from elastic_recheck.report.drafts import Draft, rank_drafts

SHARED_LOGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "logs"


def _line(body: str, build: str, **kw: Any) -> ErrorLine:
    return ErrorLine(body=body, line=body, build_uuid=build, **kw)


def _doc(message: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"message": message, "build_uuid": fields.pop("build_uuid", "b1")}
    doc.update(fields)
    return doc


def _phrase_matches(phrase: str, body: str) -> bool:
    return contains_phrase(tokenize(body), tokenize(phrase))


# ---------------------------------------------------------------------------
# Log prefixes


@pytest.mark.parametrize(
    ("line", "body"),
    [
        (
            "2026-11-10 12:06:00.513 55866 ERROR nova.virt.libvirt.driver [req-e88020c2ac6f98c6 demo demo] "
            "[instance: 15ee91b81afcd604] Failed to start libvirt guest",
            "Failed to start libvirt guest",
        ),
        ("2013-09-27 18:23:42.923 2820 ERROR neutron.api.v2.resource [-] delete failed", "delete failed"),
        (
            "2013-09-27 18:23:42.923 2820 TRACE neutron.api.v2.resource   File \"/opt/x.py\", line 3, in f",
            "  File \"/opt/x.py\", line 3, in f",
        ),
        ("2013-09-27 18:24:37.719 ERROR nova.compute.api [req-8d9 user tenant] boom", "boom"),
        (
            "Nov 10 01:33:10 np34316837 kernel: [6401.131459] Out of memory: Killed process 26765 (mysqld)",
            "[6401.131459] Out of memory: Killed process 26765 (mysqld)",
        ),
        (
            "May 26 20:44:32.283596 ubuntu-xenial-rax-dfw-9013276 cinder-volume[27348]: ERROR cinder.volume.manager "
            "[req-1 admin admin] Volume failed",
            "Volume failed",
        ),
        ("np32453926 | E: Failed to fetch https://mirror/x  Connection timed out", "E: Failed to fetch https://mirror/x  Connection timed out"),
        ("controller | fatal: [controller]: FAILED! => {}", "fatal: [controller]: FAILED! => {}"),
        ("2013-09-27 18:47:11.728 | FAILED (failures=3, skipped=10)", "FAILED (failures=3, skipped=10)"),
        ("2013-09-27 18:27:30.131 | 2013-09-27 18:23:09 ERROR: Invalid OpenStack Nova credentials.", "ERROR: Invalid OpenStack Nova credentials."),
        ("libvirt.libvirtError: End of file while reading data", "libvirt.libvirtError: End of file while reading data"),
        ("Job complete, result: FAILURE", "Job complete, result: FAILURE"),
    ],
)
def test_strip_prefix(line: str, body: str) -> None:
    assert strip_prefix(line) == body


# ---------------------------------------------------------------------------
# Which lines are error lines


def test_oslo_error_record_with_traceback_yields_header_and_exception() -> None:
    doc = _doc(
        "2026-11-10 12:06:00.513 55866 ERROR nova.compute.manager [req-8952c157f6fafd77 demo demo] "
        "Instance failed to spawn\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/stack/nova/nova/virt/libvirt/guest.py", line 165, in launch\n'
        "    return self._domain.createWithFlags(flags)\n"
        "libvirt.libvirtError: End of file while reading data: Input/output error",
        loglevel="ERROR",
        filename="controller/logs/screen-n-cpu.txt",
        tags=["screen-n-cpu.txt", "screen", "oslofmt"],
        build_name="tempest-full-py3",
    )
    lines = extract_lines(doc, doc_id="d1")
    assert [x.body for x in lines] == [
        "Instance failed to spawn",
        "libvirt.libvirtError: End of file while reading data: Input/output error",
    ]
    assert all(x.doc_id == "d1" and x.build_uuid == "b1" and x.build_name == "tempest-full-py3" for x in lines)
    assert lines[0].tags == ("screen-n-cpu.txt", "screen", "oslofmt")
    assert lines[0].line.startswith("2026-11-10 12:06:00.513")


def test_header_that_is_only_traceback_yields_the_exception() -> None:
    doc = _doc(
        "2026-11-10 12:06:00.513 55866 ERROR nova.compute.manager [req-1 demo demo] Traceback (most recent call last):\n"
        '  File "/x.py", line 1, in f\n'
        "    g()\n"
        "oslo_db.exception.DBDeadlock: (pymysql.err.OperationalError) (1213, 'Deadlock found')",
        loglevel="ERROR",
    )
    assert [x.body for x in extract_lines(doc)] == [
        "oslo_db.exception.DBDeadlock: (pymysql.err.OperationalError) (1213, 'Deadlock found')"
    ]


def test_warning_records_only_give_exception_lines() -> None:
    plain = _doc("2026-11-10 12:00:00.000 1 WARNING nova.x [-] Timed out waiting for a reply, will retry", loglevel="WARNING")
    assert extract_lines(plain) == []
    with_tb = _doc(
        "2026-11-10 12:00:00.000 1 WARNING nova.x [-] Retrying\nTraceback (most recent call last):\n"
        '  File "/x.py", line 1, in f\nMessagingTimeout: Timed out waiting for a reply',
        loglevel="WARNING",
    )
    assert [x.body for x in extract_lines(with_tb)] == ["MessagingTimeout: Timed out waiting for a reply"]
    info = _doc("2026-11-10 12:00:00.000 1 INFO nova.x [-] Connection to the 10.0.0.1 via SSH succeeded", loglevel="INFO")
    assert extract_lines(info) == []


def test_one_record_per_traceback_line_skips_file_and_code_lines() -> None:
    docs = [
        _doc("2017-03-01 21:30:55.624 1948 ERROR neutron.agent.l3.agent Traceback (most recent call last):", loglevel="ERROR"),
        _doc('2017-03-01 21:30:55.624 1948 ERROR neutron.agent.l3.agent   File "/opt/a.py", line 479, in f', loglevel="ERROR"),
        _doc("2017-03-01 21:30:55.624 1948 ERROR neutron.agent.l3.agent     [update.id])", loglevel="ERROR"),
        _doc("2017-03-01 21:30:55.624 1948 ERROR neutron.agent.l3.agent RemoteError: Remote error: gone", loglevel="ERROR"),
    ]
    assert [x.body for d in docs for x in extract_lines(d)] == ["RemoteError: Remote error: gone"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("np1 | tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.5.175 via SSH timed out.", True),
        ("np1 | E: Failed to fetch https://mirror.example.org/ubuntu/Packages  Connection timed out [IP: 10.1.2.3 443]", True),
        ("np1 | AssertionError: Expected 'get_mac_address' to be called once. Called 2 times.", True),
        ("np1 | {2} tempest.api.compute.test_x.T.test_y [3.2s] ... FAILED", True),
        ("controller | fatal: [controller]: FAILED! => {\"msg\": \"boom\"}", True),
        ("ERROR: Invalid OpenStack Nova credentials.", True),
        ("kernel: [6401.1] Out of memory: Killed process 26765 (mysqld)", True),
        ("np1 | Hit:1 https://mirror.example.org/ubuntu noble InRelease", False),
        ("np1 |  - Failed: 0", False),
        ("RUN END RESULT_NORMAL: [untrusted] (failed tasks)", False),
        ("Job complete, result: FAILURE", False),
        ("np1 | Traceback (most recent call last):", False),
        ("FAILED (failures=3, skipped=10)", False),
        ("ERROR: InvocationError: '/bin/sh tools/pretty_tox.sh smoke'", False),
        ("process-returncode ... FAIL", False),
    ],
)
def test_console_lines(message: str, expected: bool) -> None:
    doc = _doc(message, filename="job-output.txt", tags=["job-output.txt", "console"])
    assert bool(extract_lines(doc)) is expected


def test_no_message_no_lines() -> None:
    assert extract_lines({"build_uuid": "b"}) == []
    assert extract_lines(_doc("   ")) == []


def test_generic_lines() -> None:
    assert is_generic("Job complete, result: FAILURE")
    assert is_generic("Traceback (most recent call last):")
    assert is_generic("Ran 223 tests in 1234.5s")
    assert not is_generic("libvirt.libvirtError: End of file while reading data")


# ---------------------------------------------------------------------------
# Normalization


def test_volatile_parts_normalize_alike() -> None:
    a = (
        "Failed to create volume 5b130483-85f2-4bf4-b641-e55ba5f1d30f on 10.0.0.12:5672 (req-7c419a8bb7408004) "
        "after 30.5s at 2026-11-10T12:00:01Z, reply c7498c206e2805ff3790584b426aafef, file /tmp/tmpab12cd_x/disk, "
        "0x7f3a2b, 1024 kB, 12 seconds, instance e5eb06b9f38569de, pid 26765, [Errno 111]"
    )
    b = (
        "Failed to create volume 0f0e4a6c-1111-2222-3333-444455556666 on 192.168.1.1:443 (req-0123456789abcdef) "
        "after 2s at 2026-11-19T23:59:59Z, reply 02885cc54d7a53b121c861cde398d2ba, file /tmp/tmpzz99yy/disk, "
        "0xdeadbeef, 7 MiB, 1 second, instance 0123abcd4567ef89, pid 3, [Errno 111]"
    )
    assert normalize(a) == normalize(b)
    n = normalize(a)
    for placeholder in ("<UUID>", "<IP>", "<REQ>", "<DUR>", "<TS>", "<PATH>", "<HEX>", "<SIZE>", "<NUM>"):
        assert placeholder in n, placeholder
    assert "[Errno 111]" in n
    assert n.startswith("Failed to create volume <UUID> on <IP>")


def test_stable_words_keep_their_digits() -> None:
    sig = signature("binary-amd64 for py311 ipv4 v2 x86_64 test_01 HTTP 500 in 3 tries")
    stable = {w for w, v in zip(sig.words, sig.volatile, strict=True) if not v}
    assert {"binary-amd64", "py311", "ipv4", "v2", "x86_64", "test_01", "HTTP", "500"} <= stable
    assert "3" not in stable
    assert normalize("retry 12 of 30") == "retry <NUM> of <NUM>"
    assert normalize("node np34316837") == "node np<NUM>"


def test_different_messages_normalize_differently() -> None:
    assert normalize("Timed out waiting for a reply to message ID 1a2b3c4d5e6f7a8b") != normalize(
        "Timed out waiting for a reply, will retry in 1 second"
    )


def test_signature_runs_are_stable_word_runs() -> None:
    sig = signature("tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.5.175 via SSH timed out.")
    assert sig.normalized == "tempest.lib.exceptions.SSHTimeout: Connection to the <IP> via SSH timed out."
    runs = sig.runs()
    assert [r.text for r in runs] == ["tempest.lib.exceptions.SSHTimeout: Connection to the", "via SSH timed out"]
    assert runs[0].tokens == ("tempest.lib.exceptions.sshtimeout", "connection", "to", "the")


def test_long_lines_are_cut_at_a_word_boundary() -> None:
    body = "Boom " + " ".join(f"word{chr(97 + i % 26)}xyz" for i in range(200))
    sig = signature(body)
    assert all(w in body.split() for w in sig.words)
    for run in sig.runs():
        assert _phrase_matches(run.text, body)


def test_phrase_text_trims_punctuation_without_tokens() -> None:
    words = ("'Deadlock", "found", "when", "trying", "to", "get", "lock;", "try", "restarting", "transaction')")
    toks = tuple(tuple(tokenize(w)) for w in words)
    assert phrase_text(words, toks) == "Deadlock found when trying to get lock; try restarting transaction"


# ---------------------------------------------------------------------------
# Phrases and queries


def test_lucene_phrase_escaping() -> None:
    assert lucene_escape_phrase('say "hi" C:\\dir') == 'say \\"hi\\" C:\\\\dir'
    assert lucene_phrase("message", 'a "b" \\c') == 'message:"a \\"b\\" \\\\c"'


def test_build_query() -> None:
    assert build_query(["End of file"]) == 'message:"End of file"'
    assert (
        build_query(["a b", "c d"], tag="screen-n-cpu.txt", jobs=["j1", "j2"])
        == 'message:"a b" AND message:"c d" AND tags:"screen-n-cpu.txt" AND (build_name:"j1" OR build_name:"j2")'
    )
    assert build_query(["a b"], jobs=["j1"]) == 'message:"a b" AND build_name:"j1"'


def test_common_runs_occur_in_every_target() -> None:
    a = signature("E: Failed to fetch https://mirror.a.example.org/ubuntu/Packages  Connection timed out [IP: 10.0.0.1 443]")
    b = signature("E: Failed to fetch https://mirror.b.example.org/ubuntu/Packages  Connection timed out [IP: 10.0.0.2 443]")
    runs = common_runs(a.runs(), [a.tokens, b.tokens])
    texts = [r.text for r in runs]
    assert "E: Failed to fetch" in texts
    assert any(t.startswith("Connection timed out") for t in texts)
    for r in runs:
        assert contains_phrase(a.tokens, r.tokens) and contains_phrase(b.tokens, r.tokens)
    assert not any("mirror.a" in t for t in texts)


def test_contains_phrase_is_token_exact() -> None:
    assert contains_phrase(["a", "bc", "d"], ["bc", "d"])
    assert not contains_phrase(["a", "bcd"], ["bc"])
    assert not contains_phrase(["a"], [])


# ---------------------------------------------------------------------------
# Clustering


def test_same_normalized_line_same_cluster() -> None:
    lines = [
        _line("Failed to create volume: MessagingTimeout: Timed out waiting for a reply to message ID 1a2b3c4d5e6f7a8b", "b1"),
        _line("Failed to create volume: MessagingTimeout: Timed out waiting for a reply to message ID 9f8e7d6c5b4a3f2e", "b2"),
        _line("Failed to create volume: MessagingTimeout: Timed out waiting for a reply to message ID 0a0b0c0d0e0f0a0b", "b2"),
        _line("Device detach failed for vdb: Unable to detach the device from the live config.", "b3"),
    ]
    clusters = cluster_lines(lines, merge_threshold=None)
    assert [len(c.builds) for c in clusters] == [2, 1]
    assert clusters[0].builds == {"b1", "b2"}
    assert len(clusters[0].lines) == 3
    assert clusters[0].phrases()[0].text == "Failed to create volume: MessagingTimeout: Timed out waiting for a reply to message ID"


def test_near_duplicates_merge_by_jaccard() -> None:
    lines = [
        _line(f"E: Failed to fetch https://mirror.{host}.opendev.org/ubuntu/dists/noble/main/binary-amd64/Packages  "
              f"Connection timed out [IP: 10.1.2.{i} 443]", f"b{i}")
        for i, host in enumerate(["rax.dfw", "ovh.gra1", "rax.ord", "inmotion.iad3"])
    ]
    lines.append(_line("libvirt.libvirtError: End of file while reading data: Input/output error", "b9"))
    separate = cluster_lines(lines, merge_threshold=None)
    assert len(separate) == 5
    merged = cluster_lines(lines, merge_threshold=0.75)
    assert len(merged) == 2
    mirror = merged[0]
    assert mirror.builds == {"b0", "b1", "b2", "b3"}
    assert len(mirror.groups) == 4
    phrases = [r.text for r in mirror.phrases()]
    assert phrases and all("opendev" not in p for p in phrases)
    for p in phrases:
        assert all(_phrase_matches(p, x.body) for x in mirror.lines)


def test_dissimilar_lines_do_not_merge() -> None:
    lines = [
        _line("Connection to the 10.0.0.1 via SSH timed out", "b1"),
        _line("Unable to detach the device from the live config", "b2"),
        _line("Deadlock found when trying to get lock; try restarting transaction", "b3"),
    ]
    assert len(cluster_lines(lines, merge_threshold=0.5)) == 3


def test_cluster_common_tag_prefers_the_file_tag() -> None:
    lines = [
        _line("boom went the thing", "b1", filename="controller/logs/screen-n-cpu.txt", tags=("screen-n-cpu.txt", "screen", "oslofmt")),
        _line("boom went the thing", "b2", filename="compute1/logs/screen-n-cpu.txt", tags=("screen-n-cpu.txt", "screen", "oslofmt")),
    ]
    (cluster,) = cluster_lines(lines)
    assert cluster.common_tag() == "screen-n-cpu.txt"
    mixed = [*lines, _line("boom went the thing", "b3", filename="syslog.txt", tags=("syslog.txt", "syslog"))]
    (cluster,) = cluster_lines(mixed)
    assert cluster.common_tag() is None


def test_candidates_simplest_first() -> None:
    lines = [
        _line("Device detach failed for vdb: Unable to detach the device from the live config.", f"b{i}",
              build_name="nova-live-migration", filename="screen-n-cpu.txt", tags=("screen-n-cpu.txt", "screen"))
        for i in range(3)
    ]
    (cluster,) = cluster_lines(lines)
    cands = candidates_for(cluster)
    assert cands[0] == ClusterQuery(("Device detach failed for vdb: Unable to detach the device from the live config",),)
    assert cands[1].tag == "screen-n-cpu.txt"
    assert cands[-1].jobs == ("nova-live-migration",)
    assert [c.clauses for c in cands] == sorted(c.clauses for c in cands)


def _draft(cluster: Cluster, failed: list[str], ok: list[str]) -> Draft:
    hits = [BuildSummary(uuid=u, fields={"build_status": "FAILURE"}) for u in failed]
    hits += [BuildSummary(uuid=u, fields={"build_status": "SUCCESS"}) for u in ok]
    return Draft(name="x", candidate=ClusterQuery((cluster.runs[0].text,)), cluster=cluster, hits=hits)


def test_rank_and_alternatives() -> None:
    big = cluster_lines([_line("Failed to start libvirt guest: libvirtError: End of file", f"b{i}") for i in range(3)])[0]
    same = cluster_lines([_line("libvirtError: End of file while reading data", f"b{i}") for i in range(2)])[0]
    other = cluster_lines([_line("Unable to detach the device from the live config", f"c{i}") for i in range(2)])[0]
    d_big = _draft(big, ["b0", "b1", "b2"], [])
    d_same = _draft(same, ["b0", "b1"], [])
    d_other = _draft(other, ["c0", "c1"], ["s1"])
    assert d_other.precision == pytest.approx(2 / 3)
    ranked = rank_drafts([d_other, d_same, d_big])
    assert [d.cluster for d in ranked] == [big, other]
    assert [d.name for d in ranked] == ["new-1", "new-2"]
    assert ranked[0].alternatives == [d_same.query]
    renumber(ranked, taken={"new-1", "new-3"})
    assert [d.name for d in ranked] == ["new-2", "new-4"]


# ---------------------------------------------------------------------------
# Real log lines (../shared/data/logs)


def _real_docs(relpath: str) -> Iterator[dict[str, Any]]:
    path = SHARED_LOGS / relpath
    if not path.exists():
        pytest.skip(f"../shared/data not present: {path} is missing")
    build = ingest_build.BuildInfo(uuid="real-" + path.name, name="real-job", status="FAILURE")
    with log_lines.open_maybe_gz(path) as fh:
        yield from log_lines.documents_for_lines(path.name, log_lines.read_lines(fh), build)


def _real_lines(relpath: str, builds: int = 1) -> list[ErrorLine]:
    """Error lines of a real file, the records spread round-robin over ``builds`` fake builds."""
    out: list[ErrorLine] = []
    for i, doc in enumerate(_real_docs(relpath)):
        doc["build_uuid"] = f"real-{i % builds}"
        out.extend(extract_lines(doc))
    return out


CONDUCTOR = "os-log-merger/debug-live-migration/logs/hp-ms-01-c29/var/log/nova/nova-conductor.log.gz"


def test_real_amqp_retries_cluster_together() -> None:
    lines = _real_lines(CONDUCTOR, builds=3)
    amqp = [x for x in lines if x.body.startswith("AMQP server on")]
    assert len({x.body for x in amqp}) > 1, "the file has differing AMQP retry lines"
    assert len({normalize(x.body) for x in amqp}) == 1
    clusters = cluster_lines(lines)
    (cluster,) = [c for c in clusters if c.key.startswith("AMQP server on")]
    phrase = cluster.phrases()[0].text
    assert "[Errno 111] ECONNREFUSED" in phrase
    assert all(_phrase_matches(phrase, x.body) for x in cluster.lines)


def test_real_tracebacks_give_exception_lines_not_frames() -> None:
    lines = _real_lines("os-loganalyze/screen-q-svc.txt.gz")
    bodies = [x.body for x in lines]
    assert bodies, "the file has ERROR records"
    assert not any(b.startswith(("File ", "Traceback")) for b in bodies)
    assert any(b.startswith("PortNotFound: Port ") for b in bodies)
    assert "delete failed" in bodies
    clusters = cluster_lines(lines)
    port = next(c for c in clusters if c.key == "PortNotFound: Port <UUID> could not be found")
    assert len({x.body for x in port.lines}) > 1
    for cluster in clusters:
        for run in cluster.phrases():
            assert all(_phrase_matches(run.text, x.body) for x in cluster.lines), (cluster.key, run.text)


def test_real_one_line_per_record_traceback() -> None:
    lines = _real_lines("os-loganalyze/screen-neutron-l3.txt.gz")
    bodies = [x.body for x in lines]
    assert any(b.startswith("Failed to fetch router information for") for b in bodies)
    assert any(b.startswith("RemoteError: Remote error:") for b in bodies)
    assert not any(b.startswith("File ") for b in bodies)


def test_real_console_failures() -> None:
    lines = _real_lines("os-loganalyze/console.html.gz")
    bodies = [x.body for x in lines]
    assert "ERROR: Invalid OpenStack Nova credentials." in bodies
    assert any(b.startswith("AssertionError: State change timeout exceeded!") for b in bodies)
    assert not any(b.startswith(("FAILED (failures=", "Ran ", "ERROR: InvocationError")) for b in bodies)
    assert not any(is_generic(b) for b in bodies)


# ---------------------------------------------------------------------------
# Draft files and text


def test_draft_yaml_is_a_commented_query_file() -> None:
    import yaml

    from elastic_recheck.contrib.suggest import format_text
    from elastic_recheck.report.drafts import draft_yaml

    nasty = 'Boom: "quoted" \\ back\x1b[31m red\u2028sep # not a comment: {x}'
    lines = [_line(nasty, f"b{i}", build_name="job-a", filename="job-output.txt", tags=("job-output.txt",)) for i in range(2)]
    (cluster,) = cluster_lines(lines)
    d = _draft(cluster, ["b0", "b1", "b2"], ["s1"])
    text = draft_yaml(d)
    assert yaml.safe_load(text) == {"query": d.query}
    comments = [line for line in text.splitlines() if not line.startswith("query:")]
    assert all(line.startswith("#") for line in comments)
    assert "# Backtest: 3 failed and 1 successful voting builds hit; precision 75.0%" in comments
    assert "# Uncategorized failed builds with this error: 2" in comments
    assert any(line.startswith("#   b0") for line in comments) and any(line.startswith("#   b1") for line in comments)
    assert "\x1b" not in text and "\u2028" not in text
    out = format_text([d])
    assert f"  query: {d.query}" in out and "precision 75.0%" in out
    assert format_text([]).startswith("No draft")


# ---------------------------------------------------------------------------
# Drafts re-match their lines (lucene.parse + matcher.MemoryIndex)


def test_rematches_parses_and_evaluates_in_memory() -> None:
    from elastic_recheck.report.drafts import rematches

    body = 'cannot open "C:\\temp\\disk.img" for writing (policy "strict")'
    docs = [
        _doc(f"np1 | ERROR: {body}", build_uuid=f"b{i}", filename="job-output.txt", tags=["job-output.txt", "console"])
        for i in range(2)
    ]
    lines = [x for d in docs for x in extract_lines(d)]
    assert len(lines) == 2 and all(x.doc is not None for x in lines)
    (cluster,) = cluster_lines(lines)
    cands = candidates_for(cluster)
    assert cands and any('\\"' in c.query and "\\\\" in c.query for c in cands)
    assert all(rematches(c.query, cluster.lines) for c in cands)
    assert not rematches('message:"for reading"', cluster.lines)
    assert not rematches('tags:"syslog"', cluster.lines)
    assert not rematches('message:"unterminated', cluster.lines)
    # Without documents only the syntax is checked.
    assert rematches('message:"anything"', [_line("x y", "b1")])


def test_real_clusters_rematch_their_documents() -> None:
    from elastic_recheck.report.drafts import rematches

    lines = _real_lines(CONDUCTOR, builds=3) + _real_lines("os-loganalyze/screen-q-svc.txt.gz", builds=2)
    clusters = cluster_lines(lines)
    checked = 0
    for cluster in clusters:
        for cand in candidates_for(cluster):
            assert rematches(cand.query, cluster.lines), (cluster.key, cand.query)
            checked += 1
    assert checked >= 20

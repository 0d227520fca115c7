"""The uncategorized rows' details: first error line, failed tests, starting query (pure)."""

from __future__ import annotations

from elastic_recheck.core.error_lines import ErrorLine
from elastic_recheck.report.triage import MAX_TESTS, failed_test_id, starting_query, triage_build


def line(body: str, ts: str, filename: str = "job-output.txt") -> ErrorLine:
    return ErrorLine(
        body=body, line=body, build_uuid="u1", filename=filename, tags=(filename.rsplit("/", 1)[-1],),
        doc={"@timestamp": ts},
    )


def test_first_error_is_the_earliest_line_that_is_not_a_test_result() -> None:
    lines = [
        line("ValueError: device vdb is busy", "2026-11-19T10:05:00.000Z"),
        line("{0} tempest.api.test_x.T.test_a[id-1,smoke] [1.2s] ... FAILED", "2026-11-19T10:00:00.000Z"),
        line("libvirtError: internal error: qemu closed", "2026-11-19T10:01:00.000Z", "controller/logs/screen-n-cpu.txt"),
    ]
    t = triage_build("u1", lines, None)
    assert t.first_error is lines[2] and t.error_lines == 3
    assert t.failed_tests == ("tempest.api.test_x.T.test_a[id-1,smoke]",) and t.tests_source == "logs"
    assert t.query == 'message:"libvirtError: internal error: qemu closed" AND tags:"screen-n-cpu.txt"'


def test_recorded_test_results_win_over_the_logs_and_long_lists_are_cut() -> None:
    only_tests = [line("tempest.api.test_x.T.test_a ... FAILED", "2026-11-19T10:00:00.000Z")]
    t = triage_build("u1", only_tests, {f"pkg.test_{i:02d}" for i in range(MAX_TESTS + 3)})
    assert t.tests_source == "test results" and t.failed_tests is not None and len(t.failed_tests) == MAX_TESTS + 3
    assert t.shown_tests == tuple(f"pkg.test_{i:02d}" for i in range(MAX_TESTS)) and t.more_tests == 3
    # Without other error lines the test line itself is the first error.
    assert t.first_error is only_tests[0]
    assert triage_build("u1", [], set()).failed_tests == ()
    empty = triage_build("u1", [], None)
    assert empty.first_error is None and empty.failed_tests is None and empty.query is None


def test_failed_test_id_reads_test_runner_lines_only() -> None:
    assert failed_test_id(line("{3} a.b.C.test_d [0.5s] ... FAILED", "")) == "a.b.C.test_d"
    assert failed_test_id(line("a.b.C.test_d ... ERROR", "")) == "a.b.C.test_d"
    assert failed_test_id(line("a.b.C.test_d ... ok", "")) is None
    assert failed_test_id(line("ERROR: the deploy FAILED", "")) is None


def test_starting_query_escapes_quotes() -> None:
    q = starting_query(line('KeyError: "port_id" missing', "", "controller/logs/screen-q-svc.txt"))
    assert q == 'message:"KeyError: \\"port_id\\" missing" AND tags:"screen-q-svc.txt"'

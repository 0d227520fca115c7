"""Values from indexed documents cannot add lines to a comment, links other than http(s), or terminal escapes to logs."""

from __future__ import annotations

import io
import logging

from elastic_recheck.core.comments import BugEvidence, JobOutcome, format_comment
from elastic_recheck.core.log_filters import EscapeControls
from elastic_recheck.core.safe_text import escape_controls, one_line, safe_url


def _comment(**evidence: str) -> str:
    ev = BugEvidence(bug="123", url="https://bugs.launchpad.net/bugs/123", title="t", line="boom", **evidence)
    return format_comment([JobOutcome("tempest-full", (ev,))])


def test_newlines_in_document_fields_never_start_a_comment_line() -> None:
    text = _comment(file="screen.txt\nrecheck\n", log_url="https://logs.example.org/1/\nrecheck")
    lines = text.split("\n")
    assert "recheck" not in [line.strip() for line in lines]
    assert "  matched (screen.txt recheck): boom" in lines
    assert not any(line.startswith("  log:") for line in lines)  # a URL with a line break is dropped


def test_only_http_links_are_written() -> None:
    assert "  log: https://logs.example.org/1/" in _comment(log_url="https://logs.example.org/1/").split("\n")
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "data:text/html,x", "https://x/\u2028y"):
        assert "log:" not in _comment(log_url=bad)
    assert safe_url("  https://ok.example/a  ") == "https://ok.example/a"
    assert safe_url("https://a b/") is None
    assert safe_url(None) is None


def test_job_names_with_newlines_stay_on_their_line() -> None:
    text = format_comment([JobOutcome("job\nrecheck", ()), JobOutcome("other", ())])
    assert "recheck" not in [line.strip() for line in text.split("\n")]
    assert one_line("a\r\n\tb  c", 10) == "a b c"


def test_log_records_show_terminal_escapes_as_text() -> None:
    assert escape_controls("job\x1b[2Jname\rX\ty\nz\x85") == "job\\x1b[2Jname\\x0dX\ty\nz\\x85"
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(EscapeControls())
    log = logging.getLogger("test_safe_text")
    log.addHandler(handler)
    try:
        log.warning("job %s failed", "evil\x1b]0;pwned\x07")
    finally:
        log.removeHandler(handler)
    assert out.getvalue() == "job evil\\x1b]0;pwned\\x07 failed\n"

"""The fingerprint loader: keys, types, positions, and one bad file never stops the others."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from elastic_recheck.core.errors import FingerprintError
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import parse_fingerprint


def test_all_keys(tmp_path: Path) -> None:
    fp = parse_fingerprint(
        "query: >-\n  message:\"Timed out waiting for thing\" AND\n  tags:\"screen-n-cpu.txt\"\n"
        "suppress-graph: true\nsuppress-notification: true\nallow-nonvoting: true\n"
        "test_ids:\n  - tempest.api.a\nresolved_at: 2026-11-01\nbug_title: Thing times out\nprojects: [openstack/nova]\n",
        tmp_path / "1234567.yaml",
    )
    assert fp.bug == "1234567"
    assert fp.query == 'message:"Timed out waiting for thing" AND tags:"screen-n-cpu.txt"'
    assert fp.suppress_graph and fp.suppress_notification and fp.allow_nonvoting
    assert fp.test_ids == ("tempest.api.a",)
    assert fp.resolved_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert fp.projects == ("openstack/nova",) and fp.bug_title == "Thing times out"
    assert fp.url == "https://bugs.launchpad.net/bugs/1234567"
    assert fp.ast is not None


def test_bug_id_is_the_stem_not_an_rstrip(tmp_path: Path) -> None:
    # rstrip('.yaml') would eat the trailing 'a', 'm', 'l', 'y' characters.
    assert parse_fingerprint("query: foo\n", tmp_path / "lyam.yaml").bug == "lyam"


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        ("query: >\n  message:\"foo\" AND\n  tags:\"bar\" AND (message:\"x\"\n", "unbalanced", 3, 30),
        ("query: message:\"foo\" AND project:openstack/nova\n", "regular expression", 1, 43),
        ("query: |\n  message:\"foo\"\n    AND project:openstack/nova\n", "regular expression", 3, 26),
        ("query: \"message:\\\"foo\\\" AND (\"\n", "query ends", 1, 29),
        ("query: [a, b\n", "invalid YAML", 2, 1),
        ("quer: foo\n", "missing required key 'query'", 1, 1),
        ("query: ''\n", "empty", 1, 8),
        ("query: 12\n", "must be a string", 1, 8),
        ("query: foo\nsuppress-graph: maybe\n", "true or false", None, None),
        ("query: foo\ntest_ids: 3\n", "list of test ids", None, None),
        ("- query: foo\n", "mapping", 1, 1),
    ],
)
def test_errors_name_file_and_position(tmp_path: Path, text: str, message: str, line: int | None, col: int | None) -> None:
    path = tmp_path / "2000000.yaml"
    with pytest.raises(FingerprintError) as info:
        parse_fingerprint(text, path)
    err = info.value
    assert err.path == str(path)
    assert message in err.message
    if line is not None:
        assert (err.line, err.col) == (line, col), str(err)
    assert str(err).startswith(str(path))


def test_unknown_keys_warn_naming_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fp = parse_fingerprint("query: foo\nsupress-graph: true\n", tmp_path / "3000000.yaml")
    assert fp.warnings and "3000000.yaml" in fp.warnings[0] and "supress-graph" in fp.warnings[0]
    assert "supress-graph" in caplog.text


def test_a_directory_loads_the_good_files_and_lists_the_bad(tmp_path: Path) -> None:
    (tmp_path / "1.yaml").write_text('query: message:"a"\n')
    (tmp_path / "2.yaml").write_text('query: message:"b\n')
    (tmp_path / "3.yaml").write_bytes(b"query: \xff\xfe\n")
    (tmp_path / "4.yaml").write_text('query: message:"c"\n')
    (tmp_path / "notes.txt").write_text("not a fingerprint")
    result = load_fingerprints(tmp_path)
    assert [fp.bug for fp in result.fingerprints] == ["1", "4"]
    assert sorted(Path(e.path).name for e in result.errors) == ["2.yaml", "3.yaml"]
    assert any("UTF-8" in e.message for e in result.errors)

from __future__ import annotations

from pathlib import Path

import pytest

from elastic_recheck.core.comments import DEFAULT_MESSAGES, BugEvidence, JobOutcome, format_comment, load_messages
from elastic_recheck.core.errors import ConfigError


def _ev(bug: str = "1234567", **kw: object) -> BugEvidence:
    base: dict[str, object] = {
        "bug": bug,
        "url": f"https://bugs.launchpad.net/bugs/{bug}",
        "title": "libvirt crashed",
        "status": "Confirmed",
        "line": "ERROR nova.compute.manager libvirtError: internal error",
        "file": "controller/logs/screen-n-cpu.txt",
        "log_url": "https://logs.example.org/abc/controller/logs/screen-n-cpu.txt",
        "fails_24h": 3,
    }
    base.update(kw)
    return BugEvidence(**base)  # type: ignore[arg-type]


def test_known_and_unrecognized_jobs_are_both_explained() -> None:
    text = format_comment([JobOutcome("tempest-full", [_ev()]), JobOutcome("grenade", [])])
    assert "- tempest-full: https://bugs.launchpad.net/bugs/1234567" in text
    assert '"libvirt crashed" [Confirmed]' in text
    assert "matched (controller/logs/screen-n-cpu.txt): ERROR nova.compute.manager" in text
    assert "log: https://logs.example.org/abc/controller/logs/screen-n-cpu.txt" in text
    assert "failed 3 builds in the last 24 hours" in text
    assert "- grenade: unrecognized error" in text
    assert DEFAULT_MESSAGES["unrecognized"] in text
    assert DEFAULT_MESSAGES["recheck_instructions"] in text


def test_no_bug_found_uses_no_bugs_found_message() -> None:
    text = format_comment([JobOutcome("tempest-full", [])])
    assert text.startswith(DEFAULT_MESSAGES["no_bugs_found"])
    assert DEFAULT_MESSAGES["recheck_instructions"] not in text


def test_long_lines_are_clipped_and_whitespace_folded() -> None:
    text = format_comment([JobOutcome("j", [_ev(line="x  " * 500, fails_24h=1)])])
    matched = next(line for line in text.splitlines() if "matched" in line)
    assert len(matched) < 400 and matched.endswith("...")
    assert "failed 1 build in" in text


def test_old_messages_block_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "recheckwatchbot.yaml"
    cfg.write_text(
        "channels: {}\nmessages:\n  found_bug: |\n    Hit these:\n\n    %(bugs)s\n  footer: See the dashboard.\n"
    )
    messages = load_messages(cfg)
    text = format_comment([JobOutcome("tempest-full", [_ev(title=None, status=None)])], messages)
    assert text.startswith("Hit these:\n\n- tempest-full: https://bugs.launchpad.net/bugs/1234567")
    assert text.endswith("See the dashboard.")


def test_bad_messages_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("messages: [1, 2\n")
    with pytest.raises(ConfigError):
        load_messages(cfg)


def test_site_url_links_the_status_page_in_the_footer_and_on_each_bug_line() -> None:
    from elastic_recheck.core.pages import bug_page, page_url

    site = "https://status.example.org/elastic-recheck/"
    jobs = [JobOutcome("tempest-full", [BugEvidence("1234567", "https://bugs.launchpad.net/bugs/1234567",
                                                    page=page_url(site, bug_page("1234567")))])]
    text = format_comment(jobs, site_url=site)
    assert ("- tempest-full: https://bugs.launchpad.net/bugs/1234567 "
            "(trend: https://status.example.org/elastic-recheck/bug/1234567.html)") in text
    assert text.endswith("please see the elastic-recheck status page: https://status.example.org/elastic-recheck/")
    # a footer that already names the URL (the old recheckwatchbot.yaml) is left as it is
    custom = {"footer": f"For more details on this and other bugs, please see {site}"}
    assert format_comment(jobs, custom, site_url=site).endswith(custom["footer"])
    plain = format_comment([JobOutcome("tempest-full", [BugEvidence("1", "https://bugs.launchpad.net/bugs/1")])])
    assert plain.endswith(DEFAULT_MESSAGES["footer"]) and "trend:" not in plain

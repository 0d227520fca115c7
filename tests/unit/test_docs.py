"""Every command has working help and is named in the README; every setting has help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import COMMANDS, cli
from elastic_recheck.core.config import SETTINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert f"`{name}" in README or f" {name} " in README, f"README does not mention {name}"


def test_every_setting_has_help() -> None:
    for s in SETTINGS:
        assert s.help.strip(), (s.section, s.key)
    keys = [(s.section, s.key) for s in SETTINGS]
    assert len(keys) == len(set(keys)), "a setting is declared twice"


def _indented_commands(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.startswith("    ") and not ln.startswith("     ")]


def test_quick_start_uses_a_virtualenv_and_ci_runs_the_readme_test_command() -> None:
    quick = README[README.index("## Quick start"):README.index("### Live variant")]
    demo_cmd, test_cmd = [c for c in _indented_commands(quick) if "venv" in c or "tox" in c][:2]
    # Debian 12's system Python refuses `pip install` outside a virtualenv (PEP 668).
    assert demo_cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert demo_cmd.endswith("pip install -e . && elastic-recheck demo")
    assert test_cmd.endswith("tox") and "python3 -m pip" not in test_cmd
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    lines = ci.splitlines()
    assert lines[lines.index("# The README's test command:") + 1] == test_cmd
    assert "python3 -m venv .venv" in ci


def test_gitignore_covers_what_the_demo_writes() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "/er-demo/" in ignored


def test_every_environment_variable_the_package_reads_is_known() -> None:
    """So that ``unknown_env`` never warns about a variable we do read."""
    import re

    from elastic_recheck.core.config import OTHER_ENV, env_name, unknown_env

    package = Path(__file__).resolve().parents[2] / "elastic_recheck"
    found = {m for p in package.rglob("*.py") for m in re.findall(r"ELASTIC_RECHECK_[A-Z0-9_]+", p.read_text())}
    names = {n for n in found if not n.endswith("_")}  # ELASTIC_RECHECK_SITE_... is a prefix in prose
    assert names, "the scan found nothing"
    assert unknown_env(dict.fromkeys(names, "x")) == []
    assert OTHER_ENV <= names | {env_name(s) for s in SETTINGS}


def test_queries_doc_describes_every_key_field_and_tag() -> None:
    from elastic_recheck.core.fingerprints import KNOWN_KEYS
    from elastic_recheck.core.schema import KNOWN_FIELDS
    from elastic_recheck.ingest.log_lines import tags_for

    doc = (Path(__file__).resolve().parents[2] / "docs" / "queries.md").read_text()
    keys = doc[doc.index("## The fingerprint file"):doc.index("## Fields and tags")]
    for key in KNOWN_KEYS:
        assert f"| `{key}` |" in keys, key
    fields = doc[doc.index("## Fields and tags"):doc.index("## `check-queries`")]
    for name in KNOWN_FIELDS:
        assert f"`{name}`" in fields, name
    kinds = {t for f in ("job-output.txt", "logs/screen-n-cpu.txt", "logs/syslog.txt", "devstacklog.txt", "x.log",
                         "devstack@n-cpu.service.log.txt") for t in tags_for(f)[1:] if not t.endswith(".txt")}
    assert kinds == {"console", "screen", "oslofmt", "syslog", "devstack"}
    for tag in kinds:
        assert f"| `{tag}`" in fields, tag


def test_license_and_bindep() -> None:
    import configparser
    import re

    root = Path(__file__).resolve().parents[2]
    setup = configparser.ConfigParser()
    setup.read(root / "setup.cfg")
    assert setup["metadata"]["license"] == "Apache-2.0" and setup["metadata"]["license_files"].strip() == "LICENSE"
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and text.count("\n") > 180  # the full text, not a stub
    bindep = {ln.split()[0]: ln for ln in (root / "bindep.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    # every package .ci/run or a fixture installs is listed (for the tests: with the test profile)
    ci = set(re.findall(r"missing\+=\(([\w.-]+)\)", (root / ".ci" / "run").read_text()))
    assert ci and ci <= set(bindep)
    for pkg in ("ngircd", "chromium", "chromium-driver", "default-jdk-headless", "maven"):
        assert "test" in bindep[pkg], pkg
    assert "version" not in setup["metadata"]  # from git tags (setuptools-scm), see pyproject.toml


def test_docs_point_only_at_files_in_the_repo_and_reports_has_the_crontab() -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text()
        # ../shared/data (recorded CI data) is optional test input, named as such in testing docs only
        for ref in re.findall(r"(\.\./shared/[^`\s)]*)", text):
            assert ref.startswith("../shared/data") or ref.startswith("../shared/tools"), (doc.name, ref)
    reports = (root / "docs" / "reports.md").read_text()
    assert re.search(r"^\s+\*/15 \* \* \* \*\s+elastic-recheck .*render -o ", reports, re.M)

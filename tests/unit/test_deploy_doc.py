"""docs/deploy.md: its sample config is the settings table (and loads), its units and crontab
lines are commands the CLI accepts."""

from __future__ import annotations

import configparser
import logging
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import SETTINGS, format_value, load_config, sample_config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()


def _sample_block() -> str:
    block = DOC[DOC.index("<!-- sample-config"):DOC.index("<!-- /sample-config -->")]
    return block[block.index("```ini\n") + len("```ini\n"):block.rindex("```")]


def _entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every commented-out setting line, in order."""
    out, section = [], ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        m = re.match(r"#([a-z_]+) =(?: (.*))?$", line)
        if m:
            out.append((section, m.group(1), m.group(2) or ""))
    return out


def test_sample_config_is_the_settings_table() -> None:
    """Every setting, in the table's order, at its default (the help texts may be reworded)."""
    table = [(s.section, s.key, format_value(s.default)) for s in SETTINGS]
    assert _entries(_sample_block()) == table, "regenerate the block with: elastic-recheck config --defaults"
    assert _entries(sample_config()) == table
    result = CliRunner().invoke(cli, ["config", "--defaults"])
    assert result.exit_code == 0 and result.output == sample_config()


def test_sample_config_loads_with_every_key_at_its_default(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ELASTIC_RECHECK_"):
            monkeypatch.delenv(name)
    text = _sample_block()
    keys = re.findall(r"^#([a-z_]+) =", text, re.M)
    assert sorted(keys) == sorted(s.key for s in SETTINGS)
    conf = tmp_path / "elasticRecheck.conf"
    conf.write_text(re.sub(r"^#([a-z_]+ =)", r"\1", text, flags=re.M))  # every key set, at its default
    with caplog.at_level(logging.WARNING):
        cfg = load_config(conf)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    for s in SETTINGS:
        assert (s.section, s.key) in cfg.values
        assert format_value(cfg.value(s)) == format_value(s.default), (s.section, s.key)
    assert load_config(tmp_path / "elasticRecheck.conf").backend == "embedded"
    commented = tmp_path / "as-shipped.conf"
    commented.write_text(text)
    assert load_config(commented).values == {}  # as shipped, nothing is set


def _units() -> dict[str, configparser.ConfigParser]:
    out = {}
    for m in re.finditer(r"`/etc/systemd/system/([\w.-]+\.service)`.*?```ini\n(.*?)```", DOC, re.S):
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string(m.group(2))
        out[m.group(1)] = unit
    return out


def _cron_lines() -> list[str]:
    return [ln.strip() for ln in DOC.splitlines() if re.match(r"\s+[\d*/,]+\s+[\d*/,]+\s+\*\s+\*\s+\*\s+/", ln)]


def _accepted(command: str, tmp_path: Path) -> None:
    """The CLI parses the command line (with --help at the end, so nothing runs)."""
    argv = shlex.split(command.split(">")[0])
    assert argv[0].endswith("/elastic-recheck")
    conf = tmp_path / "c.conf"
    conf.write_text("")
    args = [str(conf) if a.endswith("elasticRecheck.conf") else a for a in argv[1:]]
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, (command, result.output)


def test_systemd_units_and_crontab(tmp_path: Path) -> None:
    units = _units()
    assert set(units) == {"elastic-recheck-bot.service", "elastic-recheck-collect.service"}
    commands = {name: u["Service"]["ExecStart"] for name, u in units.items()}
    assert " bot" in commands["elastic-recheck-bot.service"]
    assert " collect --follow" in commands["elastic-recheck-collect.service"]
    for unit in units.values():
        assert unit["Service"]["User"] == "recheck" and unit["Install"]["WantedBy"] == "multi-user.target"
    cron = _cron_lines()
    assert any(" render -o " in ln for ln in cron) and any(" stale --irc" in ln for ln in cron)
    for command in [*commands.values(), *(" ".join(ln.split()[5:]) for ln in cron)]:
        _accepted(command, tmp_path)


def test_deploy_doc_covers_the_first_run() -> None:
    for heading in ("## The Gerrit account", "## Launchpad", "## Services: systemd units", "## Cron",
                    "## A cluster instead of the embedded store", "## First live run: a dry-run checklist"):
        assert heading in DOC, heading
    assert "Stream Events" in DOC and "(cluster.md)" in DOC
    assert re.search(r"^\d\. ", DOC[DOC.index("## First live run"):], re.M)

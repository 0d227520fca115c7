"""Every command has working help and is named in the README; every setting has help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli import COMMANDS, cli
from elastic_recheck.config import SETTINGS

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

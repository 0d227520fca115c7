"""A malformed ``es_url`` gives one line of configuration error, never the password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elastic_recheck.core.config import split_credentials
from elastic_recheck.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SECRET = "Zq7/xK2pW9"


def test_a_password_with_a_slash_is_read_not_mistaken_for_a_port() -> None:
    assert split_credentials(f"https://bob:{SECRET}@es.example.org:9200/pre") == ("https://es.example.org:9200/pre", "bob", SECRET)


@pytest.mark.parametrize("url", [f"http://bob:{SECRET}@es.example.org:92x0", f"http://bob:{SECRET}@:9200", "http://es.example.org:99999999"])
def test_an_unreadable_url_is_a_config_error_without_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        split_credentials(url)
    text = str(info.value)
    assert "\n" not in text
    assert "Zq7" not in text and "pW9" not in text
    assert text.startswith("[data_source] es_url: ")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("url", [f"http://elastic:{SECRET}@127.0.0.1:9", f"http://elastic:{SECRET}@127.0.0.1:9x"])
def test_every_command_reports_one_line_without_the_password(tmp_path: Path, url: str) -> None:
    """Before: ``parts.port`` raised out of ``split_credentials`` with part of the password, for every command."""
    conf = tmp_path / "er.conf"
    conf.write_text(f"[data_source]\nbackend = elasticsearch\nes_url = {url}\ntimeout = 1\nretries = 0\n")
    conf.chmod(0o600)
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "-c", str(conf), "search", "message:x"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=100,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in out
    assert "Zq7" not in out and "pW9" not in out and "xK2" not in out
    errors = [line for line in out.splitlines() if "rror" in line]
    assert len(errors) == 1, out

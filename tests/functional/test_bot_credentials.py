"""``bot`` without working Gerrit credentials ends with one line, before connecting (or at the first
refusal), instead of retrying for ever with a traceback per attempt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import REPO
from tests.fixtures.gerrit_server import FakeGerritServer

pytestmark = pytest.mark.timeout(120)


def _bot(tmp: Path, conf: str, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "home").mkdir(exist_ok=True)
    path = tmp / "er.conf"
    path.write_text(conf)
    path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTIC_RECHECK_", "SSH_AUTH_SOCK"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp / "home"), ELASTIC_RECHECK_SITE_URL="https://status.example.org/")
    return subprocess.run([sys.executable, "-m", "elastic_recheck", "-c", str(path), "--store", str(store), "bot",
                           "--queries", str(REPO / "queries"), "--state", str(tmp / "state.db"), *args],
                          env=env, capture_output=True, text=True, timeout=100)


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and errors[0] == res.stderr.strip().splitlines()[-1], res.stderr
    assert errors[0].startswith("Error: cannot log in to Gerrit: ") and "docs/deploy.md" in errors[0]
    return errors[0]


def test_no_credentials_at_all(tmp_path: Path, sample_store: Path) -> None:
    line = _one_error_line(_bot(tmp_path, "[gerrit]\nhost = review.example.org\n", sample_store))
    assert "[gerrit] user is not set (the account the bot logs in to review.example.org:29418 as)" in line
    assert "[gerrit] key is not set, and there is no SSH agent nor ~/.ssh/id_* key" in line


@pytest.mark.parametrize("kind", ["missing", "not-a-key"])
def test_key_file_that_cannot_work(tmp_path: Path, sample_store: Path, kind: str) -> None:
    key = tmp_path / "id_ed25519"
    if kind == "not-a-key":
        key.write_text("# elastic-recheck\nnot a key\n")
    line = _one_error_line(_bot(tmp_path, f"[gerrit]\nuser = recheck\nkey = {key}\n", sample_store))
    want = f"[gerrit] key {key}: no such file" if kind == "missing" else f"[gerrit] key {key} is not an SSH private key"
    assert want in line


def test_rest_needs_the_http_password(tmp_path: Path, sample_store: Path) -> None:
    conf = "[gerrit]\ncomment_via = rest\nhttp_user = recheck\n"
    line = _one_error_line(_bot(tmp_path, conf, sample_store, "--replay", str(REPO / "sample" / "events.jsonl")))
    assert "[gerrit] http_password must be set for comment_via = rest" in line


def test_dry_run_replay_needs_no_credentials(tmp_path: Path, sample_store: Path) -> None:
    res = _bot(tmp_path, "[gerrit]\n", sample_store, "--replay", str(REPO / "sample" / "events.jsonl"), "--dry-run")
    assert res.returncode == 0, res.stderr


def test_a_key_gerrit_refuses_stops_at_the_first_connection(
    tmp_path: Path, sample_store: Path, gerrit_server: FakeGerritServer
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    key = tmp_path / "other_key"
    key.write_bytes(other.export_private_key("openssh"))
    key.chmod(0o600)
    conf = f"[gerrit]\nhost = {gerrit_server.host}\nport = {gerrit_server.port}\nuser = {gerrit_server.user}\nkey = {key}\n"
    line = _one_error_line(_bot(tmp_path, conf, sample_store, "--dry-run"))
    assert f"SSH authentication to {gerrit_server.user}@{gerrit_server.host}:{gerrit_server.port} failed" in line

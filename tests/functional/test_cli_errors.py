"""Common mistakes end in one line saying what is wrong (tracebacks only with -v/--debug);
``--log-file`` takes the log records off stderr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)


def _er(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_RECHECK_")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp))
    return subprocess.run([sys.executable, "-m", "elastic_recheck", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=100)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the with ends: nothing listens there


def _cluster_conf(tmp: Path, retries: int) -> Path:
    conf = tmp / "er.conf"
    conf.write_text(f"[data_source]\nbackend = elasticsearch\nes_url = http://127.0.0.1:{_closed_port()}\n"
                    f"retries = {retries}\ntimeout = 5\n")
    conf.chmod(0o600)
    return conf


def test_a_file_that_is_not_a_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a database\n" * 100)
    res = _er(tmp_path, "--store", "README.md", "search", "message:x")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        "Error: README.md: not an elastic-recheck store (not an SQLite file, nor a corrupt one): check --store, "
        "[data_source] store or $ELASTIC_RECHECK_STORE"
    ]
    assert (tmp_path / "README.md").read_text() == "# not a database\n" * 100  # nothing lost


def test_traceback_only_with_verbose(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a database\n")
    for flag in ("-v", "--debug"):
        res = _er(tmp_path, flag, "--store", "README.md", "search", "message:x")
        assert res.returncode == 1
        assert "Traceback (most recent call last)" in res.stderr and "StoreError" in res.stderr


def test_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    conf = _cluster_conf(tmp_path, retries=2)
    res = _er(tmp_path, "-c", str(conf), "search", "message:x")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "connection failed" in errors[0] and "es_url" in errors[0], res.stderr
    # the retries are logged, one line each, without the client's tracebacks
    assert len(res.stderr.splitlines()) <= 3, res.stderr
    assert all("retry" in ln for ln in res.stderr.splitlines() if ln not in errors)


def test_log_file_takes_the_log_records(tmp_path: Path) -> None:
    conf = _cluster_conf(tmp_path, retries=1)
    log = tmp_path / "er.log"
    res = _er(tmp_path, "-c", str(conf), "--log-file", str(log), "search", "message:x")
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("Error:")
    text = log.read_text()
    assert "WARNING elastic_recheck.adapters.elastic.backend: " in text and "connection failed" in text and "retry 1 of 1" in text


def test_log_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    res = _er(tmp_path, "--log-file", str(tmp_path / "no" / "such" / "dir.log"), "config")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--log-file" in res.stderr and "cannot open" in res.stderr

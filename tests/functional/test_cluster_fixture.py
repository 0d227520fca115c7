"""The real-cluster fixture run by hand, as benchmarks and checks use it.

``python -m tests.fixtures.cluster ENGINE --port P --data DIR`` prints the URL
once the node answers, stays in the foreground and takes the node down on
Ctrl-C; without Java or Maven it says so in one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.cluster import ENGINES, missing_tools
from tests.fixtures.ircd import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_runs_in_the_foreground_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    if missing_tools():
        pytest.skip(f"not on PATH: {', '.join(missing_tools())}")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.cluster", "opensearch", "--port", str(port), "--data", str(tmp_path / "node")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == f"http://127.0.0.1:{port}\n", proc.stderr.read() if proc.poll() is not None else line
        with urllib.request.urlopen(line.strip() + "/", timeout=10) as resp:
            info = json.loads(resp.read())
        assert info["version"]["distribution"] == "opensearch"
        assert info["version"]["number"] == ENGINES["opensearch"].version
        assert (tmp_path / "node" / "data").is_dir()  # the data lives where it was told
        assert proc.poll() is None  # still in the foreground
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        with pytest.raises(OSError):  # the node went with it
            urllib.request.urlopen(line.strip() + "/", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_java_one_clear_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.cluster", "elasticsearch", "--port", str(free_port()), "--data", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path / "empty"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "not on PATH: java, javac, mvn" in lines[0] and "default-jdk-headless maven" in lines[0]

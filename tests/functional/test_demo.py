"""``demo`` on a fresh machine: its own store, short output, ``serve`` shows what it rendered,
and it runs from a non-editable install (the sample and fingerprints shipped as data files)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fixtures.packaging import cannot_build, copy_checkout

pytestmark = pytest.mark.timeout(300)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_RECHECK_")}
    env.update(HOME=str(tmp / "home"), PYTHONPATH=str(REPO), ELASTIC_RECHECK_STORE=str(tmp / "production.db"))
    env.update(extra)
    return env


def _er(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "elastic_recheck", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("demo")
    res = _er(tmp, _env(tmp), "demo")
    assert res.returncode == 0, res.stderr
    return tmp, res


def test_demo_keeps_its_builds_in_its_own_store(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, res = demo_run
    assert (tmp / "er-demo" / "store.db").is_file()
    assert not (tmp / "production.db").exists()  # $ELASTIC_RECHECK_STORE is the production store
    assert not (tmp / "home" / ".local" / "share" / "elastic-recheck").exists()
    assert "--store er-demo/store.db" in res.stderr


def test_demo_output_is_short_and_explains_its_warning(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, res = demo_run
    lines = (res.stdout + res.stderr).splitlines()
    assert len(lines) < 60, "\n".join(lines)
    warnings = [i for i, ln in enumerate(lines) if "WARNING" in ln]
    assert len(warnings) == 1 and "malformed event" in lines[warnings[0]]
    assert any("deliberately malformed" in ln for ln in lines[: warnings[0]])  # explained before it appears
    assert not any(re.match(r"(fingerprints|pages): \d+/\d+", ln) for ln in lines)  # no progress off a terminal
    comments = (tmp / "er-demo" / "comments.txt").read_text()
    count = comments.count("=== would comment on ")
    assert f"{count} comments written to er-demo/comments.txt" in res.stderr
    assert count > 10 and "you hit bug" in res.stderr  # one matched comment is shown, not all of them


def test_quiet_demo_steps_print_only_results(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, _ = demo_run
    store = str(tmp / "er-demo" / "store.db")
    res = _er(tmp, _env(tmp), "-q", "--store", store, "render", "--queries", str(REPO / "queries"),
              "--now", "2026-11-20T00:00:00Z", "-o", str(tmp / "quiet-site"))
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stderr
    res = _er(tmp, _env(tmp), "-q", "--store", store, "search", "-n", "1", "message:libvirt")
    assert res.returncode == 0 and res.stderr == "" and len(res.stdout.splitlines()) == 1


@pytest.fixture
def served(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Iterator[str]:
    tmp, _ = demo_run
    proc = subprocess.Popen([sys.executable, "-m", "elastic_recheck", "serve", "-o", "er-demo/site", "--port", "0"],
                            cwd=tmp, env=_env(tmp), stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        yield f"http://127.0.0.1:{m.group(1)}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_shows_what_the_demo_rendered(demo_run: tuple[Path, subprocess.CompletedProcess[str]], served: str) -> None:
    tmp, _ = demo_run
    with urllib.request.urlopen(served + "index.html", timeout=30) as resp:
        body = resp.read()
    assert body == (tmp / "er-demo" / "site" / "index.html").read_bytes()  # not re-rendered at "now"
    assert b"2026-11-20" in body


def test_serve_on_a_busy_port_is_one_line(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, _ = demo_run
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = _er(tmp, _env(tmp), "serve", "-o", "er-demo/site", "--port", str(port))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use (another server uses it? "
        "pick another --port, or --port 0)"
    ]


def test_serve_no_render_without_a_site_says_what_to_do(tmp_path: Path) -> None:
    res = _er(tmp_path, _env(tmp_path), "serve", "--no-render", "-o", "nothing")
    assert res.returncode == 1
    assert "holds no rendered site (run 'elastic-recheck render -o nothing'" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_demo_runs_from_a_non_editable_install(tmp_path: Path) -> None:
    why = cannot_build()
    if why:
        pytest.skip(why)
    src, prefix, run = copy_checkout(tmp_path / "src"), tmp_path / "prefix", tmp_path / "run"
    env = _env(tmp_path, SETUPTOOLS_SCM_PRETEND_VERSION="1.2.3")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--prefix", str(prefix), str(src)], check=True, env=env, timeout=240)
    site_packages = next(prefix.glob("lib/python*/site-packages"))
    shutil.rmtree(src)  # nothing may come from the source tree
    run.mkdir()
    env["PYTHONPATH"] = str(site_packages)
    where = subprocess.run([sys.executable, "-c", "import elastic_recheck as e; print(e.__file__, e.__version__)"],
                           cwd=run, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site_packages)) and where[1] == "1.2.3"
    res = _er(run, env, "demo")
    assert res.returncode == 0, res.stderr
    assert str(prefix / "share" / "elastic-recheck" / "sample" / "logs.jsonl.gz") in res.stderr
    assert (run / "er-demo" / "site" / "index.html").is_file()
    assert "would comment on" in (run / "er-demo" / "comments.txt").read_text()


def test_bot_dry_run_prints_the_irc_messages_it_would_send(
        demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, _ = demo_run
    conf = tmp / "irc.conf"
    conf.write_text(f"[ircbot]\nchannel_config = {REPO / 'sample' / 'recheckwatchbot.yaml'}\n")  # no server
    args = ["-c", str(conf), "--store", "er-demo/store.db", "bot", "--queries", str(REPO / "queries"),
            "--replay", str(REPO / "sample" / "events.jsonl"), "--dry-run"]
    actions = tmp / "irc-actions.jsonl"
    res = _er(tmp, _env(tmp), *args, "--actions-out", str(actions))
    assert res.returncode == 0, res.stderr
    printed = re.findall(r"^=== would send to IRC (#\S+): (.+)$", res.stdout, re.M)
    listed = [(m["channel"], m["message"]) for line in actions.read_text().splitlines()
              for m in json.loads(line).get("irc", [])]
    assert printed and sorted(printed) == sorted(listed)  # exactly what the actions file lists
    assert "=== would comment on" in res.stdout
    res = _er(tmp, _env(tmp), *args, "--no-irc")
    assert res.returncode == 0 and "would send to IRC" not in res.stdout


def test_bot_warns_without_site_url_and_links_the_site_with_it(
        demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp, _ = demo_run
    args = ["--store", "er-demo/store.db", "bot", "--queries", str(REPO / "queries"),
            "--replay", str(REPO / "sample" / "events.jsonl"), "--dry-run", "--no-irc"]
    res = _er(tmp, _env(tmp), *args)
    assert res.returncode == 0, res.stderr
    assert "WARNING elastic_recheck.cli.bot: [site] url is not set" in res.stderr
    assert "trend:" not in res.stdout
    res = _er(tmp, _env(tmp, ELASTIC_RECHECK_SITE_URL="https://status.example.org/er"), *args)
    assert res.returncode == 0 and "[site] url" not in res.stderr
    assert "(trend: https://status.example.org/er/bug/2011374.html)" in res.stdout
    assert "please see the elastic-recheck status page: https://status.example.org/er\n" in res.stdout

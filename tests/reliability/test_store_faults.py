"""The embedded store and the bot's state on a full or read-only disk.

A full disk is a real 2 MiB tmpfs when the tests run as root (``mount -t
tmpfs``), else a file-size limit (``RLIMIT_FSIZE``, with SIGXFSZ ignored so
writes fail with EFBIG) on the ingest subprocess. Read-only is the same tmpfs
remounted ``ro`` (root ignores file modes), else ``chmod``. After every
failure: a clear one-line error (no traceback), ``PRAGMA integrity_check``
and FTS5's integrity check pass, and the store works again once space is back.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.errors import StoreError
from tests.reliability.helpers import (
    FPS,
    REPO,
    BotProcess,
    IndexedBuild,
    Job,
    LogCluster,
    RecordingReviewer,
    bot_config,
    bot_env,
    failure_event,
    wait_for,
)

SAMPLE_LOGS = REPO / "sample" / "logs.jsonl.gz"
SAMPLE_DOCS = 42991


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[bool]:
    """Mount a tmpfs of ``size`` on ``directory``; yields False when that is not possible."""
    directory.mkdir(parents=True, exist_ok=True)
    if not _can_mount():
        yield False
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], capture_output=True)
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def _remount(directory: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(directory)], check=True, capture_output=True)


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _ingest(store: Path, preexec: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "--store", str(store), "ingest", "--jsonl", str(SAMPLE_LOGS), "--no-progress"],
        capture_output=True, text=True, timeout=300, env=bot_env(), preexec_fn=preexec, cwd=REPO,
    )


def _sound(store_path: Path) -> int:
    """Integrity checks pass; returns the number of documents."""
    with EmbeddedStore(store_path) as store:
        assert store.integrity_check() == []
        return store.count_documents()


def _clear_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert any(w in proc.stderr.lower() for w in words), proc.stderr


def test_ingest_on_a_full_disk_fails_clearly_and_the_store_survives(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    with tmpfs(fs, "2m") as mounted:
        store = fs / "store.db"
        proc = _ingest(store, None if mounted else _limit_file_size(2 * 1024 * 1024))
        _clear_error(proc, "disk full", "disk i/o error", "file too large", "no space")
        partial = _sound(store)
        assert 0 <= partial < SAMPLE_DOCS
        # Space comes back: the same command completes the store.
        if mounted:
            _remount(fs, "size=256m")
        again = _ingest(store)
        assert again.returncode == 0, again.stderr
        assert _sound(store) >= SAMPLE_DOCS


def test_ingest_into_a_read_only_store_fails_clearly(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    with tmpfs(fs, "64m") as mounted:
        if not mounted and os.geteuid() == 0:
            pytest.skip("read-only cannot be simulated: running as root (modes are ignored) and mount is not permitted")
        store = fs / "store.db"
        with EmbeddedStore(store) as s:
            s.add_documents([{"@timestamp": "2026-11-20T00:00:00Z", "message": "one line", "build_uuid": "u1", "filename": "job-output.txt"}])
        before = store.read_bytes()
        if mounted:
            _remount(fs, "ro")
        else:
            for p in fs.iterdir():
                p.chmod(0o444)
            fs.chmod(0o555)
        try:
            proc = _ingest(store)
            _clear_error(proc, "read-only", "readonly", "cannot open", "unable to open")
            assert store.read_bytes() == before
        finally:
            if mounted:
                _remount(fs, "rw")
            else:
                fs.chmod(0o755)
                for p in fs.iterdir():
                    p.chmod(0o644)
        assert _sound(store) == 1


def _retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if "reporting failed" in r.getMessage() and "full" in r.getMessage())


def test_bot_state_on_a_full_disk_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The disk fills up while the bot runs: accepting an event fails with a
    StoreError (the caller does not acknowledge it), an event already accepted
    stays pending and is retried (it is not commented while its claim cannot
    be recorded), and once space is back both complete without a restart."""
    caplog.set_level(logging.WARNING, logger="elastic_recheck")
    fs = tmp_path / "fs"
    with tmpfs(fs, "4m") as mounted:
        if not mounted:
            pytest.skip("needs a small tmpfs (root and mount); the file-size-limit variant is covered by the ingest test")
        with LogCluster() as cluster:
            cluster.index(IndexedBuild("a" * 32, hits={FPS[0].query: "End of file while reading data"}))
            cluster.index(IndexedBuild("b" * 32, hits={FPS[0].query: "End of file while reading data"}))
            from elastic_recheck.adapters.elastic.backend import ElasticBackend
            from elastic_recheck.adapters.elastic.settings import ClusterSettings

            backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
            state = BotState(fs / "state.db")
            reviewer = RecordingReviewer()
            bot = Bot(backend, FPS, state, BotSettings(deadline_s=60, first_poll_s=0.05, workers=2, count_recent=False),
                      reviewer=reviewer)
            cluster.outage = True  # the first event waits (retrying) while the disk fills
            bot.start()
            try:
                key1 = bot.submit(failure_event(3001, 1, [Job("tempest-full", "a" * 32)]))
                assert key1 is not None
                filler = fs / "filler"
                with filler.open("wb") as fh:
                    try:
                        while True:
                            fh.write(b"\0" * 65536)
                            fh.flush()
                    except OSError:
                        pass
                with pytest.raises(StoreError) as info:
                    bot.submit(failure_event(3002, 1, [Job("tempest-full", "b" * 32)]))
                assert "disk" in str(info.value).lower() or "full" in str(info.value).lower()
                cluster.outage = False
                # Classified, but the claim cannot be recorded: no comment (it could not be kept at most once).
                assert wait_for(lambda: bot.stats["events"] >= 2 and _retries_logged(caplog) >= 2, 15)
                assert reviewer.reviews == []
                filler.unlink()
                assert bot.submit(failure_event(3002, 1, [Job("tempest-full", "b" * 32)])) is not None
                assert bot.wait_idle(30)
                assert wait_for(lambda: state.counts() == {"done": 2}, 30), state.counts()
                assert sorted(r[0] for r in reviewer.reviews) == ["3001", "3002"]
                assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
            finally:
                bot.stop()
                state.close()
                backend.close()
            import sqlite3

            conn = sqlite3.connect(fs / "state.db")
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.close()


def test_bot_process_waits_while_its_state_disk_is_full(
    tmp_path: Path, gerrit_server: Any, gerrit_ssh_keys: Any
) -> None:
    """``elastic-recheck bot`` with its state on a full tmpfs: the event cannot
    be persisted, so it is held (not acknowledged, not dropped) and retried;
    once space is back it is commented exactly once."""
    import json

    from sample.make_events import report_event

    fs = tmp_path / "fs"
    with tmpfs(fs, "2m") as mounted:
        if not mounted:
            pytest.skip("needs a small tmpfs (root and mount)")
        store = tmp_path / "store.db"
        with EmbeddedStore(store) as s:
            from elastic_recheck.ingest.jsonl import ingest_jsonl

            ingest_jsonl(s, SAMPLE_LOGS)
        truth = json.loads((REPO / "sample" / "builds.json").read_text())["builds"]
        build = next(b for b in truth if "1893618" in b["injected_bugs"] and b["voting"] and b["result"] == "FAILURE")
        event = report_event([build])
        cfg = bot_config(tmp_path, gerrit_server, gerrit_ssh_keys)
        bot = BotProcess(cfg, store, fs / "state.db", tmp_path / "bot.log")
        try:
            assert gerrit_server.wait_for_streams(1, 30), bot.output()
            filler = fs / "filler"
            with filler.open("wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            gerrit_server.emit(event)
            assert wait_for(lambda: "cannot persist an event" in bot.output(), 20), bot.output()
            assert bot.proc.poll() is None  # still running
            assert gerrit_server.reviews == []
            filler.unlink()
            assert wait_for(lambda: len(gerrit_server.reviews) == 1, 30), bot.output()
            gerrit_server.emit(event)
            time.sleep(1.0)
        finally:
            assert bot.stop() == 0, bot.output()
        assert len(gerrit_server.reviews) == 1
        assert "Traceback" not in bot.output()
        import sqlite3

        conn = sqlite3.connect(fs / "state.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()

"""A store used from many short-lived threads (the bot runs each attempt in a thread of its own)
keeps a connection only for the threads that are still alive."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.search_types import QuerySpec


def _open_files(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path`` (Linux)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                n += 1
        except OSError:
            pass
    return n


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux) to count open files")
def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = EmbeddedStore(path)
    store.add_documents([{"message": f"line {i}", "build_uuid": "u"} for i in range(20)])
    base = _open_files(path)
    counts: list[int] = []

    def search() -> None:
        counts.append(store.search(QuerySpec(), size=0, query=qa.Term("message", "line")).total)

    for _ in range(30):
        t = threading.Thread(target=search)
        t.start()
        t.join()
    assert counts == [20] * 30  # each thread had a working connection of its own
    # at most the last ended thread's connection is still open (closed when the next one opens);
    # SQLite keeps a closed connection's descriptor for the next open while others hold locks
    # on the file (POSIX locks are per process): a few, not one per thread that ever ran
    assert _open_files(path) <= base + 3

    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            search()
            holding.set()
            release.wait(30)
            search()  # its connection was left open while other threads came and went
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    live = threading.Thread(target=hold)
    live.start()
    assert holding.wait(30)
    for _ in range(3):  # new connections: each closes those of ended threads, not the live one's
        t = threading.Thread(target=search)
        t.start()
        t.join()
    release.set()
    live.join()
    assert errors == []
    assert counts[-5:] == [20] * 5
    store.close()
    assert _open_files(path) == 0

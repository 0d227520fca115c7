"""A log server that trickles one byte at a time cannot hold ``collect`` or the bot's fetch.

requests' ``timeout`` counts silence only; the server here is never silent
for long (one byte every 0.3 s), so only the total per-download deadline
(``[zuul] download_deadline``) can stop it. Asserted: the outcome (a
retryable error naming the deadline, the build marked failed, the next
build still collected), not the time it took; the pytest timeout only
guards against a hang.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from elastic_recheck.adapters.sqlite.collector_state import FAILED, CollectorState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.adapters.zuul.api import ZuulClient
from elastic_recheck.collect.fetch import LogFetcher
from elastic_recheck.collect.runner import Collector
from elastic_recheck.collect.sinks import EmbeddedSink
from elastic_recheck.core.errors import LogFetchError
from elastic_recheck.core.zuul_build import ZuulBuild
from tests.fixtures.zuul_server import FakeZuul, build_record

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)


class TrickleServer:
    """Answers every request with a 1 MB body sent one byte every ``interval`` seconds."""

    def __init__(self, interval: float = 0.3) -> None:
        self.interval = interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.bytes_sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
                while not self.stopped.is_set():
                    conn.sendall(b"x")
                    self.bytes_sent += 1
                    time.sleep(self.interval)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer()
    yield server
    server.close()


def test_trickled_download_stops_at_the_deadline(trickle: TrickleServer, tmp_path: Path) -> None:
    log_url = f"http://127.0.0.1:{trickle.port}/logs/"
    build = ZuulBuild.from_api(build_record("ab" * 16, start=T0, log_url=log_url))
    fetcher = LogFetcher(zuul_host="127.0.0.1", timeout=5.0, retries=0, deadline=1.5)
    with pytest.raises(LogFetchError) as info:
        fetcher.fetch(build, tmp_path / "b")
    assert info.value.retryable
    assert "took longer than 1.5 s ([zuul] download_deadline)" in str(info.value)
    assert 0 < trickle.bytes_sent < 1_000_000


def test_on_demand_fetch_of_a_trickled_build_fails_and_the_next_build_is_collected(
    trickle: TrickleServer, tmp_path: Path
) -> None:
    """The bot's entry point (``collect_build``): the slow build ends ``failed``, the worker is free for the next."""
    with FakeZuul() as zuul:
        slow = build_record("cd" * 16, start=T0, log_url=f"http://127.0.0.1:{trickle.port}/logs/")
        zuul.add_build(slow, {})
        good = build_record("ef" * 16, start=T0, log_url=zuul.log_url("ef" * 16))
        zuul.add_build(good, {"job-output.txt": b"2024-05-06 10:00:00.000000 | controller | all good\n"})
        store = EmbeddedStore(tmp_path / "store.db")
        fetcher = LogFetcher(zuul_host="127.0.0.1", timeout=5.0, retries=0, backoff=0.01, deadline=1.5)
        collector = Collector(ZuulClient(zuul.url, zuul.tenant, backoff=0.01), fetcher, CollectorState(tmp_path / "store.db"), EmbeddedSink(store))
        first = collector.collect_build("cd" * 16)
        assert first.status == FAILED
        assert "download_deadline" in (first.error or "")
        second = collector.collect_build("ef" * 16)
        assert second.status == "collected", second.error
        assert second.documents >= 1

"""Gzipped JSON lines inflated by a thread of their own (``ingest/gunzip.py``), and broken gzip files."""

from __future__ import annotations

import gzip
import io
import json
import random
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.search_types import QuerySpec
from elastic_recheck.ingest import gunzip
from elastic_recheck.ingest.gunzip import GzipDataError, ThreadedGunzip
from elastic_recheck.ingest.log_lines import bounded_lines

pytestmark = pytest.mark.timeout(300)


def _text(n: int, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        size = rng.choice([0, 5, 80, 700, 5000, 300_000]) if i % 97 == 0 else rng.randrange(20, 900)
        lines.append(bytes(rng.choice(b"abcdef \t{}\"\\:0123456789") for _ in range(size)))
    return b"\n".join(lines) + b"\n"


def _read_all(fh: io.BufferedReader, limit: int) -> list[tuple[bytes, bool]]:
    return list(bounded_lines(fh, limit))


@pytest.mark.parametrize("members", [1, 3])
def test_reads_what_gzipfile_reads(members: int) -> None:
    text = _text(3000)
    parts = [text[i * len(text) // members : (i + 1) * len(text) // members] for i in range(members)]
    data = b"".join(gzip.compress(p, compresslevel=1) for p in parts) + b"\0" * 64  # padding, as tar writes
    for limit in (100, 10_000, 8 * 1024 * 1024):
        with ThreadedGunzip(io.BytesIO(data)) as threaded, gzip.GzipFile(fileobj=io.BytesIO(data)) as plain:
            assert _read_all(threaded, limit) == _read_all(plain, limit)  # type: ignore[arg-type]
            assert threaded.compressed_tell() == len(data)


def test_a_highly_compressed_stream_is_inflated_in_bounded_chunks() -> None:
    """A gzip bomb (a few hundred KB inflating to 200 MB) never sits in memory whole."""
    data = gzip.compress(b"a" * (200 * 1024 * 1024), compresslevel=9)
    tracemalloc.start()
    try:
        with ThreadedGunzip(io.BytesIO(data)) as fh:
            total = 0
            while chunk := fh.read(1 << 20):
                total += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 200 * 1024 * 1024
    # the queue, the chunk being read and the one being made, the reads of 1 MB: a few MB, not 200
    assert peak < (gunzip.DEPTH + 8) * gunzip.CHUNK_BYTES


def test_truncated_and_corrupt_data_raise_a_one_line_error_naming_the_file() -> None:
    data = gzip.compress(_text(2000))
    with ThreadedGunzip(io.BytesIO(data[: len(data) // 2]), "c.jsonl.gz") as fh, pytest.raises(GzipDataError) as err:
        fh.read()
    assert str(err.value).startswith("c.jsonl.gz: the gzip data ends before its end-of-stream marker")
    broken = data[:20] + bytes(b ^ 0x55 for b in data[20:400]) + data[400:]
    with ThreadedGunzip(io.BytesIO(broken), "d.gz") as fh, pytest.raises(GzipDataError, match=r"^d.gz: corrupt gzip data"):
        fh.read()
    with pytest.raises(zlib.error):  # what GzipFile gives for the same bytes: an internal error before
        gzip.decompress(broken)


def test_closing_early_stops_the_thread() -> None:
    data = gzip.compress(_text(20_000), compresslevel=1)
    before = {t.ident for t in threading.enumerate()}
    fh = ThreadedGunzip(io.BytesIO(data))
    fh.readline()
    fh.close()
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "gunzip"]


def _docs(n: int) -> list[dict[str, object]]:
    return [
        {"@timestamp": f"2026-11-10T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "build_uuid": f"b{i // 500}",
         "filename": "job-output.txt", "message": f"line {i} of the log"}
        for i in range(n)
    ]


def test_ingesting_a_truncated_file_stores_the_lines_before_the_cut_and_fails(tmp_path: Path) -> None:
    text = "".join(json.dumps(d) + "\n" for d in _docs(12_000)).encode()
    data = gzip.compress(text)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    whole = zlib.decompressobj(wbits=31).decompress(cut.read_bytes())
    complete = whole.count(b"\n")
    assert 5000 < complete < 12_000
    store = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["--store", str(store), "ingest", "--jsonl", str(cut)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cut.jsonl.gz: the gzip data ends before its end-of-stream marker (a truncated file?); "
        f"the {complete:,} documents before it were stored"
    ]
    with EmbeddedStore(store) as s:
        assert s.search(QuerySpec(), size=0).total == complete

"""A JSON-lines file (optionally gzipped) of logstash-shaped documents -> the store.

Documents may be flat, in the old ``@fields``/``@message``/``@tags`` layout,
or ES hits with ``_source`` (:func:`~elastic_recheck.core.documents.normalize_document`).
Bad lines are counted with their line numbers, never fatal.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from elastic_recheck.core.documents import StableIds, id_key, normalize_document, stable_ids
from elastic_recheck.ingest.gunzip import GzipDataError, ThreadedGunzip
from elastic_recheck.ingest.log_lines import bounded_lines
from elastic_recheck.ports.loading import DocumentStore, IngestStats

LOG = logging.getLogger(__name__)

_json_loads: Callable[[bytes], Any]
try:  # optional: several times faster than json for big ingests
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

#: A JSON-lines document longer than this (bytes) is refused as a bad line.
MAX_JSONL_LINE_BYTES = 8 * 1024 * 1024


def iter_jsonl(fh: IO[bytes], stats: IngestStats | None = None) -> Iterator[dict[str, Any]]:
    """Documents of a JSON-lines stream; bad lines are counted (with line numbers), never fatal."""
    stats = stats if stats is not None else IngestStats()
    for lineno, (raw, cut) in enumerate(bounded_lines(fh, MAX_JSONL_LINE_BYTES), 1):
        if not raw.strip():
            continue
        stats.lines_read += 1
        if cut:
            stats.add_bad_line(lineno, f"longer than {MAX_JSONL_LINE_BYTES} bytes")
            continue
        problem, obj = _json_document(raw)
        if problem:
            stats.add_bad_line(lineno, problem)
            continue
        try:
            yield normalize_document(obj)
        except ValueError as exc:
            stats.add_bad_line(lineno, str(exc))


def _json_document(raw: bytes) -> tuple[str, Any]:
    """``("", object)`` for a JSON object line, else ``(why, None)``.

    Invalid UTF-8 inside the line is replaced (U+FFFD), as ``--build-dir``
    does with log lines, rather than losing the whole document.
    """
    try:
        obj = _json_loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        try:
            obj = _json_loads(raw.decode("utf-8", errors="replace").encode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"invalid JSON: {exc}", None
    if not isinstance(obj, Mapping):
        return f"expected a JSON object, got {type(obj).__name__}", None
    return "", obj

#: JSON lines handed to a worker process at a time.
CHUNK_LINES = 2000


def _prepare_chunk(task: tuple[Any, int, list[bytes]]) -> tuple[list[Any], list[tuple[int, str]], int]:
    """Worker: parse, normalize and prepare one chunk of JSON lines (runs in a child process).

    Each prepared document comes with its :func:`id_key`: the writing process
    numbers them in file order (:class:`StableIds`), as the serial path does.
    """
    preparer, first, lines = task
    prepared = []
    bad: list[tuple[int, str]] = []
    read = 0
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        read += 1
        if len(raw) > MAX_JSONL_LINE_BYTES:
            bad.append((first + offset, f"longer than {MAX_JSONL_LINE_BYTES} bytes"))
            continue
        problem, obj = _json_document(raw)
        if problem:
            bad.append((first + offset, problem))
            continue
        try:
            doc = normalize_document(obj)
            prepared.append((id_key(doc), preparer.prepare(doc)))
        except ValueError as exc:
            bad.append((first + offset, str(exc)))
    return prepared, bad, read


def _chunks(fh: IO[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    lineno = 1
    while True:
        # a cut line keeps one byte more than the limit, so the worker refuses it
        lines = [raw + b"+" if cut else raw for raw, cut in itertools.islice(bounded_lines(fh, MAX_JSONL_LINE_BYTES), CHUNK_LINES)]
        if not lines:
            return
        yield lineno, lines
        lineno += len(lines)


def ingest_jsonl(
    store: DocumentStore,
    path: Path,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> IngestStats:
    """Load a JSON-lines file (``.gz`` ok) of documents into the store (or a cluster).

    ``progress(nbytes)`` is called with (compressed) bytes consumed so far.
    ``workers``: processes that parse and analyze lines while this one
    writes (0: all in this process; None, the default: 0 too, since on a
    busy 2-core machine the workers did not pay for their overhead).
    """
    stats = IngestStats()
    started = time.perf_counter()
    workers = workers or 0
    with open(path, "rb") as raw, contextlib.ExitStack() as stack:
        magic = raw.read(2)
        raw.seek(0)
        fh: IO[bytes] = raw
        tell = raw.tell
        cut: _EndAtBadData | None = None
        if magic == b"\x1f\x8b":  # inflated by a thread of its own (zlib runs without the GIL)
            gunzip = stack.enter_context(ThreadedGunzip(raw, path.name))
            cut = _EndAtBadData(gunzip)
            fh, tell = cut, gunzip.compressed_tell  # type: ignore[assignment]
        if workers > 0 and hasattr(store, "add_prepared"):  # the embedded store's worker pipeline
            _ingest_parallel(store, fh, tell, stats, workers, batch_size, progress)
        else:
            docs: Iterable[dict[str, Any]] = iter_jsonl(fh, stats)
            if progress is not None:
                docs = _report_progress(docs, tell, progress)
            if hasattr(store, "add_prepared"):  # the embedded store: ids kept out of the bodies
                ids = StableIds()
                stored = store.add_documents(docs, batch_size=batch_size, id_of=ids.of)  # type: ignore[call-arg]
            else:  # a cluster's bulk writer gives them as _id
                stored = store.add_documents(stable_ids(docs), batch_size=batch_size)
            stats.take_stored(stored)
        if cut is not None and cut.error is not None:
            # What came before the bad data is stored; the file's failure is still an error.
            raise GzipDataError(f"{cut.error}; the {stats.docs:,} documents before it were stored")
    stats.seconds = time.perf_counter() - started
    return stats


class _EndAtBadData:
    """``readline`` of a gzip stream that ends, instead of raising, where its data is corrupt or cut
    (``error`` says why): the lines before it are stored before the error is raised."""

    def __init__(self, fh: ThreadedGunzip) -> None:
        self.fh = fh
        self.error: GzipDataError | None = None

    def readline(self, limit: int = -1) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self.fh.readline(limit)
        except GzipDataError as exc:
            self.error = exc
            return b""


def _ingest_parallel(
    store: Any,
    fh: IO[bytes],
    tell: Callable[[], int],
    stats: IngestStats,
    workers: int,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Workers prepare chunks of lines (in order); this process writes them."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    preparer = store.preparer()
    ids = StableIds()
    pending: deque[Future[tuple[list[Any], list[tuple[int, str]], int]]] = deque()
    chunks = _chunks(fh)
    batch: list[Any] = []
    last = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        exhausted = False
        while True:
            while not exhausted and len(pending) < 3 * workers:
                try:
                    first, lines = next(chunks)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(pool.submit(_prepare_chunk, (preparer, first, lines)))
            if not pending:
                break
            prepared, bad, read = pending.popleft().result()
            stats.lines_read += read
            for lineno, why in bad:
                stats.add_bad_line(lineno, why)
            batch.extend(doc if key is None else (ids.next(key), *doc[1:]) for key, doc in prepared)
            if len(batch) >= batch_size:
                store.add_prepared(batch, stats)
                batch = []
            if progress is not None:
                last = _advance(tell, last, progress)
        if batch:
            store.add_prepared(batch, stats)


def _advance(tell: Callable[[], int], last: int, progress: Callable[[int], None]) -> int:
    """Report the file's bytes consumed since position ``last`` (``tell()``: where it is now); returns the new position."""
    try:
        pos = tell()
    except (OSError, ValueError):
        return last
    if pos > last:
        progress(pos - last)
        return pos
    return last


def _report_progress(docs: Iterable[dict[str, Any]], tell: Callable[[], int], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    last = 0
    for n, doc in enumerate(docs):
        if n % 2000 == 0:
            last = _advance(tell, last, progress)
        yield doc

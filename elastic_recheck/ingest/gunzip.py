"""A gzip stream decompressed by a thread of its own.

``ingest --jsonl`` is CPU-bound in Python on the thread that parses and
analyzes the lines. zlib's inflate runs without the GIL, so inflating in a
second thread takes ~1.5 µs per line off that thread (a 786-byte JSON
line; ``gzip.GzipFile`` inflates in the reading thread). The decompressed
bytes arrive in bounded chunks through a short queue, so memory stays
bounded whatever the compression ratio (a gzip bomb is inflated one
chunk at a time, as fast as the reader consumes it).
"""

from __future__ import annotations

import io
import queue
import threading
import zlib
from typing import IO

#: Compressed bytes read at a time, and the most decompressed bytes one chunk holds.
READ_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
#: Decompressed chunks waiting for the reader at most.
DEPTH = 4


class GzipDataError(ValueError):
    """The gzip data is corrupt or ends before its end-of-stream marker (one line, naming the file)."""


class _Inflater(io.RawIOBase):
    """The decompressed bytes of ``fh`` (one or more gzip members) as a raw stream fed by a thread."""

    def __init__(self, fh: IO[bytes], name: str) -> None:
        super().__init__()
        self._fh = fh
        self._name = name
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=DEPTH)
        self._chunk = memoryview(b"")
        self._done = False
        self._stop = threading.Event()
        #: compressed bytes the thread has read so far
        self.consumed = 0
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def _put(self, item: bytes | BaseException | None) -> bool:
        """Hand ``item`` on; False once the reader has closed the stream."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            inflate = zlib.decompressobj(wbits=31)
            in_member = False
            while True:
                data = self._fh.read(READ_BYTES)
                if not data:
                    break
                self.consumed += len(data)
                while data:
                    if not in_member:
                        if not data.strip(b"\0"):  # trailing zero padding, as gzip.GzipFile allows
                            data = b""
                            break
                        inflate = zlib.decompressobj(wbits=31)
                        in_member = True
                    out = inflate.decompress(data, CHUNK_BYTES)
                    if out and not self._put(out):
                        return
                    if inflate.eof:
                        in_member = False
                        data = inflate.unused_data
                    else:
                        data = inflate.unconsumed_tail
            if in_member:
                raise GzipDataError(f"{self._name}: the gzip data ends before its end-of-stream marker (a truncated file?)")
            self._put(None)
        except zlib.error as exc:
            self._put(GzipDataError(f"{self._name}: corrupt gzip data ({exc})"))
        except BaseException as exc:  # noqa: BLE001 - raised in the reading thread
            self._put(exc)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._chunk:
            if self._done:
                return 0
            item = self._queue.get()
            if item is None:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._chunk = memoryview(item)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        super().close()


class ThreadedGunzip(io.BufferedReader):
    """``gzip.GzipFile(fileobj=fh)`` for reading, with the inflating done in a thread of its own.

    Close it (or use it as a context manager) to stop that thread; ``fh`` stays open.
    Corrupt or truncated data raises :class:`GzipDataError` where the reader reaches it.
    """

    def __init__(self, fh: IO[bytes], name: str = "gzip data") -> None:
        self._inflater = _Inflater(fh, name)
        super().__init__(self._inflater, buffer_size=64 * 1024)

    def compressed_tell(self) -> int:
        """Compressed bytes read from ``fh`` so far (ahead of what was returned by at most the queue)."""
        return self._inflater.consumed

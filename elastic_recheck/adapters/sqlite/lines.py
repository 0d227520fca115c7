"""Stored lines, compressed: a document's per-line JSON and its tokens in one zstd frame.

A log line's stored part (``docs.body``, the per-line fields as JSON, and
``docs.tokens``, their analyzed tokens) is ~350 bytes of text that looks
like every other line of the store. Compressed alone, a line would barely
shrink (~220 bytes with zlib); compressed with a dictionary trained on the
store's own lines (zstd's dictionary builder), it takes ~70 bytes and
decompresses in ~2 µs.

Each store has at most one dictionary (table ``codec``, row ``id`` 1),
trained on the first batch of at least :data:`MIN_SAMPLES` lines (or on
existing lines when a store migrates); lines written before it exists stay
plain text. A compressed line is a BLOB in ``docs.body`` (``docs.tokens``
NULL); a plain one is TEXT, as before: readers tell them apart by type.
The frame is zstd's magic-less format without checksum nor dictionary id
(the store's dictionary is the only one): 6 bytes of header.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import zstandard

#: Lines a dictionary is trained on (at least / at most).
MIN_SAMPLES = 1000
MAX_SAMPLES = 5000
#: Dictionary size in bytes.
DICT_SIZE = 64 * 1024
LEVEL = 3

#: Digits of each frame's start in :meth:`LineCodec.pack_batch` (a batch's frames stay below 10 GB).
OFFSET_WIDTH = 10

#: Separates the body JSON from the tokens JSON in a frame (compact JSON has no raw newline).
_SEP = b"\n"


def _params() -> zstandard.ZstdCompressionParameters:
    return zstandard.ZstdCompressionParameters.from_level(
        LEVEL, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_checksum=0, write_dict_id=0, write_content_size=1
    )


def payload(body: str, tokens: str | None) -> bytes:
    """The uncompressed frame content of a line."""
    raw = body.encode("utf-8")
    return raw if tokens is None else raw + _SEP + tokens.encode("utf-8")


def train(samples: Sequence[bytes]) -> bytes | None:
    """A dictionary trained on ``samples`` (payloads), or None when there are too few to train on."""
    if len(samples) < MIN_SAMPLES:
        return None
    picked = samples if len(samples) <= MAX_SAMPLES else samples[:: len(samples) // MAX_SAMPLES + 1]
    try:
        return bytes(zstandard.train_dictionary(DICT_SIZE, list(picked), dict_id=1, level=LEVEL).as_bytes())
    except zstandard.ZstdError:  # e.g. samples too alike or too small to learn from
        return None


class LineCodec:
    """Packs and unpacks lines with one dictionary (thread-safe: a context per thread and call)."""

    def __init__(self, dictionary: bytes) -> None:
        self.dictionary = dictionary
        self._dict = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)
        self._dict.precompute_compress(compression_params=_params())
        self._params = _params()

    def compressor(self) -> zstandard.ZstdCompressor:
        """A compressor (not thread-safe: one per batch or thread)."""
        return zstandard.ZstdCompressor(dict_data=self._dict, compression_params=self._params)

    def decompressor(self) -> zstandard.ZstdDecompressor:
        return zstandard.ZstdDecompressor(dict_data=self._dict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)

    def pack_batch(self, payloads: Sequence[bytes]) -> tuple[bytes, bytes]:
        """The frames of ``payloads`` end to end, and where each starts (1-based, as SQL's ``substr``).

        The starts are :data:`OFFSET_WIDTH`-digit decimals end to end, one more
        than the frames (the last is where a frame after them would start):
        frame ``k`` is ``substr(blob, start[k], start[k + 1] - start[k])``.
        Compression runs in one call without the GIL (``multi_compress_to_buffer``),
        so the thread calling this leaves the other one running.
        """
        # (the collection is a sequence of buffer segments; its stubs omit __iter__)
        frames = list(self.compressor().multi_compress_to_buffer(list(payloads), threads=0)) if payloads else []  # type: ignore[call-overload]
        starts = list(itertools.accumulate(map(len, frames), initial=1))
        # bytes, not str: SQL's substr() finds a TEXT position by walking its characters (quadratic
        # over a batch), a BLOB position directly
        return b"".join(frames), ((f"%0{OFFSET_WIDTH}d" * len(starts)) % tuple(starts)).encode("ascii")

    @staticmethod
    def split(raw: bytes) -> tuple[str, str | None]:
        """``(body, tokens)`` of an unpacked frame."""
        body, sep, tokens = raw.partition(_SEP)
        return body.decode("utf-8"), tokens.decode("utf-8") if sep else None


def load(conn: sqlite3.Connection) -> LineCodec | None:
    """The store's codec (None: no dictionary yet, or a store from before schema 3)."""
    try:
        row = conn.execute("SELECT dict FROM codec WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # no codec table (not migrated yet)
        return None
    return None if row is None else LineCodec(bytes(row[0]))


#: Lines compressed per statement when a store's plain lines are compacted.
_CHUNK = 5000


def compact(conn: sqlite3.Connection, codec: LineCodec | None, since_id: int = 0) -> LineCodec | None:
    """Compress the plain lines with ids from ``since_id`` on, in the caller's write transaction.

    Without a dictionary yet, one is trained on the newest plain lines first
    (and stored); with too few lines to train on, nothing changes (None).
    """
    if codec is None:
        codec = load(conn)
    if codec is None:
        samples = [
            payload(body, tokens)
            for body, tokens in conn.execute(
                "SELECT body, tokens FROM docs WHERE typeof(body) = 'text' ORDER BY id DESC LIMIT ?", (MAX_SAMPLES,)
            )
        ]
        dictionary = train(samples)
        if dictionary is None:
            return None
        conn.execute("INSERT INTO codec (id, dict) VALUES (1, ?)", (dictionary,))
        codec = LineCodec(dictionary)
    compress = codec.compressor().compress
    last = since_id - 1
    while True:
        rows = conn.execute(
            "SELECT id, body, tokens FROM docs WHERE id > ? AND typeof(body) = 'text' ORDER BY id LIMIT ?", (last, _CHUNK)
        ).fetchall()
        if not rows:
            return codec
        conn.executemany(
            "UPDATE docs SET body = ?, tokens = NULL WHERE id = ?",
            [(compress(payload(body, tokens)), rid) for rid, body, tokens in rows],
        )
        last = rows[-1][0]


class StoredLines:
    """A store's compressed lines: its codec (loaded when first needed) and the compaction of plain lines.

    Thread-safe: each thread decompresses with its own context; writes run
    in the store's write transactions (serialized by its write lock).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self.codec = load(conn)
        self._local = threading.local()
        #: first id of the plain lines written since the last compaction (None: none), and how many
        self._plain_since: int | None = None
        self._plain_written = 0

    def _codec(self) -> LineCodec:
        """The codec, loaded when a process that opened the store before it existed meets a compressed line."""
        codec = self.codec
        if codec is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout)
            try:
                codec = load(conn)
            finally:
                conn.close()
            if codec is None:
                raise sqlite3.DatabaseError("a compressed line but no dictionary: the store file is corrupt")
            self.codec = codec
        return codec

    def unpacker(self) -> Callable[[bytes], tuple[str, str | None]]:
        """``frame -> (body JSON, tokens JSON or None)`` for the calling thread (the codec is
        looked up at the first frame: a store without compressed lines needs none)."""
        found: list[Callable[[bytes], tuple[str, str | None]]] = []

        def unpack(blob: bytes) -> tuple[str, str | None]:
            if not found:
                found.append(self._thread_unpacker())
            return found[0](blob)

        return unpack

    def raw_unpacker(self) -> Callable[[bytes], tuple[bytes, bytes | None]]:
        """:meth:`unpacker` giving the JSON as UTF-8 bytes (what a JSON parser reads as well)."""
        found: list[Callable[[bytes], bytes]] = []

        def unpack(blob: bytes) -> tuple[bytes, bytes | None]:
            if not found:
                self._thread_unpacker()
                found.append(self._local.decompress)
            body, sep, tokens = found[0](blob).partition(_SEP)
            return body, tokens if sep else None

        return unpack

    def _thread_unpacker(self) -> Callable[[bytes], tuple[str, str | None]]:
        local = self._local
        codec = self._codec()
        if getattr(local, "codec", None) is not codec:
            decompress = codec.decompressor().decompress
            split = codec.split
            local.unpack = lambda blob: split(decompress(blob))
            local.decompress = decompress
            local.codec = codec
        unpack: Callable[[bytes], tuple[str, str | None]] = local.unpack
        return unpack

    def text(self, body: str | bytes) -> str:
        """A stored body as JSON text (the SQL function ``er_body``)."""
        return self._thread_unpacker()(body)[0] if isinstance(body, bytes) else body

    def before_write(self, conn: sqlite3.Connection, plain: bool) -> None:
        """Called in a write transaction before lines are inserted (``plain``: not compressed)."""
        if plain and self._plain_since is None:
            self._plain_since = (conn.execute("SELECT MAX(id) FROM docs").fetchone()[0] or 0) + 1

    def after_write(self, conn: sqlite3.Connection, count: int) -> None:
        """Called in the same transaction after ``count`` lines: compacts the plain ones once
        there is a dictionary, or enough of them to train one on."""
        if self._plain_since is None:
            return
        self._plain_written += count
        if self.codec is not None or self._plain_written >= MIN_SAMPLES:
            self.codec = compact(conn, self.codec, self._plain_since)
            self._plain_written = 0
            if self.codec is not None:
                self._plain_since = None

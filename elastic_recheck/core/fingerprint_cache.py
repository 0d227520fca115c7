"""An on-disk cache of parsed fingerprints, keyed by file content.

Parsing a fingerprint file (YAML, then the Lucene query with its analysis)
costs about a millisecond; a command that loads 1,000 of them, such as a
``classify`` run from cron or a pre-merge check, would spend most of its time
on it. :func:`elastic_recheck.core.fingerprint_loading.load_fingerprints` keeps what it
parsed in one cache file per set of query paths, and the next process reuses
each entry whose file still has the same path and text.

A cached entry can never be stale:

* it is keyed by a SHA-256 of the file's path and its whole text, so an
  edited file (even with the same size and mtime) misses;
* the cache file as a whole is keyed by the *parser version*: a SHA-256 of the
  source code of the whole ``elastic_recheck`` package (~1 MB, ~2 ms: a parse
  runs a dozen of its modules, and listing them by hand would go stale), the
  ``regex`` and PyYAML versions, the Python version, the field mapping and
  the query mode. Any change to the code, an upgrade included, starts a new
  cache file.

Only good files are cached: a bad file is parsed (and its error reported)
every time. With each fingerprint goes the parse of its stripped query text
(what the classifier hands the store, which parses it again): on a hit it is
given to :func:`elastic_recheck.core.lucene.parser.remember`, so that parse is not redone
either.

The cache lives in ``$ELASTIC_RECHECK_CACHE_DIR``, else
``$XDG_CACHE_HOME/elastic-recheck``, else ``~/.cache/elastic-recheck``
(directories created with mode 0700, files 0600); setting
``ELASTIC_RECHECK_CACHE_DIR=off`` turns it off. It is rewritten only when
something changed, to a temporary file renamed over the old one, so
concurrent writers never leave a torn file (the last one wins). A cache file
that cannot be read, is truncated or holds anything but fingerprints is
ignored (and replaced); the entries are unpickled with a loader that only
builds fingerprints, query nodes, paths and dates, so a planted file cannot
run code. A cache that cannot be written (read-only home...) only costs the
parse.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene.ast import Query
from elastic_recheck.core.schema import Mapping

LOG = logging.getLogger(__name__)

ENV_CACHE_DIR = "ELASTIC_RECHECK_CACHE_DIR"
#: Bump when the cache file's layout changes.
CACHE_FORMAT = 1

#: What a cache file may build when unpickled: (module, name) pairs.
_ALLOWED = {
    ("elastic_recheck.core.fingerprints", "Fingerprint"),
    ("pathlib", "Path"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PureWindowsPath"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}


def cache_dir() -> Path | None:
    """Where the cache lives (None: turned off)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env is not None:
        if env.strip().lower() in ("", "off", "0", "no", "false"):
            return None
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory (a service account without one)
            return None
    return Path(base) / "elastic-recheck"


def parser_sources() -> list[Path]:
    """The source files a parse may run: every module of the ``elastic_recheck`` package."""
    root = Path(__file__).resolve().parent.parent
    return sorted(root.rglob("*.py"))


@cache
def parser_version() -> str | None:
    """A digest of everything a parse depends on (None when the sources cannot be read)."""
    import regex
    import yaml

    digest = hashlib.sha256(f"{CACHE_FORMAT}\0{sys.version}\0{regex.__version__}\0{yaml.__version__}\0".encode())
    root = Path(__file__).resolve().parent.parent
    sources = parser_sources()
    if not sources:
        return None
    for path in sources:
        try:
            digest.update(f"{path.relative_to(root)}\0".encode("utf-8", "surrogatepass") + path.read_bytes() + b"\0")
        except OSError:
            return None
    return digest.hexdigest()


def _mapping_key(mapping: Mapping) -> str:
    return repr(
        (
            sorted(mapping.text_fields),
            mapping.default_field,
            sorted(mapping.known_fields),
            mapping.position_increment_gap,
        )
    )


#: A cached file: its fingerprint, and the parse of its stripped query (None: a syntax error).
_Entry = tuple[Fingerprint, Query | None]


def _is_entry(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], Fingerprint)
        and (value[1] is None or isinstance(value[1], Query))
    )


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module == "elastic_recheck.core.lucene.ast":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a fingerprint cache")


def entry_key(path: Path, text: str) -> str:
    """The key of one file's entry: its path as given and its whole text."""
    return hashlib.sha256(f"{path}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


class FingerprintCache:
    """Parsed fingerprints of one set of query paths, in one cache file.

    Use :meth:`get` / :meth:`put` per file, then :meth:`save`: it keeps only
    the entries used since the cache was opened, so the file does not grow
    with old versions of the fingerprints.
    """

    def __init__(self, file: Path | None, mapping: Mapping, es_mode: bool) -> None:
        self.file = file
        self.mapping = mapping
        self.es_mode = es_mode
        self._old: dict[str, _Entry] = {}
        self._new: dict[str, _Entry] = {}
        self._changed = False
        self.hits = 0
        self.misses = 0
        if file is not None:
            self._old = self._read(file)

    @classmethod
    def open(cls, paths: Sequence[Path | str], mapping: Mapping, es_mode: bool) -> FingerprintCache:
        """The cache for loading ``paths`` with this mapping and query mode (a no-op one when off)."""
        base = cache_dir()
        version = parser_version()
        if base is None or version is None:
            return cls(None, mapping, es_mode)
        sources = "\0".join(sorted(str(Path(p).absolute()) for p in paths))
        key = hashlib.sha256(f"{version}\0{es_mode}\0{_mapping_key(mapping)}\0{sources}".encode("utf-8", "surrogatepass"))
        return cls(base / "fingerprints" / f"{key.hexdigest()[:40]}.pickle", mapping, es_mode)

    @staticmethod
    def _read(file: Path) -> dict[str, _Entry]:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            LOG.debug("fingerprint cache %s unreadable: %s", file, exc)
            return {}
        try:
            entries = _SafeUnpickler(io.BytesIO(data)).load()
        except Exception as exc:  # any damage: a truncated or foreign file
            LOG.debug("fingerprint cache %s ignored: %s", file, exc)
            return {}
        if not isinstance(entries, dict) or not all(isinstance(k, str) and _is_entry(v) for k, v in entries.items()):
            LOG.debug("fingerprint cache %s ignored: not a fingerprint table", file)
            return {}
        return entries

    def get(self, path: Path, text: str) -> Fingerprint | None:
        """The cached parse of ``path`` holding ``text`` (None: parse it, then :meth:`put`)."""
        if self.file is None:
            return None
        key = entry_key(path, text)
        entry = self._old.get(key)
        if entry is None or entry[0].path != path:
            self.misses += 1
            return None
        self.hits += 1
        self._new[key] = entry
        fp, stripped = entry
        if stripped is not None:
            from elastic_recheck.core.lucene import parser as lucene

            lucene.remember(fp.query, self.mapping, self.es_mode, stripped)
        return fp

    def put(self, path: Path, text: str, fp: Fingerprint) -> None:
        """Keep the parse of ``path`` holding ``text``."""
        if self.file is None:
            return
        from elastic_recheck.core.lucene import parser as lucene

        try:  # usually the parse just made (lucene's own cache), unless stripping changed the text
            stripped: Query | None = lucene.parse(fp.query, mapping=self.mapping, es_mode=self.es_mode)
        except QuerySyntaxError:
            stripped = None
        self._new[entry_key(path, text)] = (fp, stripped)
        self._changed = True

    def save(self) -> None:
        """Write the entries used in this load, if they differ from the file's."""
        if self.file is None or (not self._changed and self._new.keys() == self._old.keys()):
            return
        try:
            self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.file.name + ".", suffix=".tmp", dir=self.file.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(self._new, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.file)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            LOG.debug("fingerprint cache %s not written: %s", self.file, exc)
            return
        self._old = dict(self._new)
        self._changed = False

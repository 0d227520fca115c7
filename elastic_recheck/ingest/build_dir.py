"""A directory holding one build's log files -> documents and test results, and its load into the store.

:func:`iter_build_dir` reads every log file (gzipped or not) of the
directory into documents (:func:`~elastic_recheck.ingest.log_lines.documents_for_lines`)
and its subunit streams into test results; :func:`ingest_build_dir` loads
them into a :class:`~elastic_recheck.ports.loading.DocumentStore`, replacing
what an earlier load of the same build stored.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from elastic_recheck.ingest.build_info import BuildInfo
from elastic_recheck.ingest.log_lines import documents_for_lines, open_maybe_gz, read_lines, strip_gz
from elastic_recheck.ingest.subunit import is_subunit, read_subunit
from elastic_recheck.ports.loading import DocumentStore, IngestStats, TestResult

LOG = logging.getLogger(__name__)


def list_build_files(
    root: Path, stats: IngestStats | None = None, exclude: Iterable[Path] = ()
) -> list[tuple[str, Path]]:
    """The regular files under ``root`` as ``(relative posix path, path)``, sorted.

    Symlinks whose target lies outside ``root`` are refused (logged and listed
    in ``stats.files_skipped``); directories are not followed through symlinks.
    Files in ``exclude`` (e.g. the Zuul build record itself) are left out.
    """
    stats = stats if stats is not None else IngestStats()
    base = root.resolve()
    excluded = {p.resolve() for p in exclude}
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(base).as_posix()
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                LOG.warning("%s: broken link or unreadable, skipped", rel)
                stats.files_skipped.append(rel)
                continue
            if real != base and base not in real.parents:
                LOG.warning("%s: points outside the build directory (%s), refused", rel, real)
                stats.files_skipped.append(rel)
                continue
            if not real.is_file():
                stats.files_skipped.append(rel)
                continue
            if real in excluded:
                continue
            out.append((rel, real))
    return out


def iter_build_dir(
    root: Path,
    build: BuildInfo,
    keep_debug: bool = False,
    stats: IngestStats | None = None,
    on_tests: Callable[[list[TestResult]], None] | None = None,
    on_file: Callable[[str, int], None] | None = None,
    exclude: Iterable[Path] = (),
) -> Iterator[dict[str, Any]]:
    """Documents of every log file in one build's directory.

    Subunit streams are passed to ``on_tests`` instead. ``on_file(relpath, size)``
    is called before each file (progress reporting).
    """
    stats = stats if stats is not None else IngestStats()
    for rel, path in list_build_files(root, stats, exclude):
        name = rel.rsplit("/", 1)[-1]
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if on_file is not None:
            on_file(rel, size)
        if is_subunit(name):
            try:
                with open_maybe_gz(path) as fh:
                    results = read_subunit(fh)
            except Exception as exc:  # noqa: BLE001 - subunit raises many types; never abort
                LOG.warning("%s: unreadable subunit stream: %s", rel, exc)
                stats.files_skipped.append(rel)
                continue
            stats.files += 1
            stats.test_results += len(results)
            if on_tests is not None:
                on_tests(results)
            continue
        try:
            with open_maybe_gz(path) as fh:
                stats.files += 1
                yield from documents_for_lines(rel, read_lines(fh), build, keep_debug=keep_debug, stats=stats)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            LOG.warning("%s: read error: %s", rel, exc)
            stats.files_skipped.append(rel)


def ingest_build_dir(
    store: DocumentStore,
    root: Path,
    build: BuildInfo,
    keep_debug: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    exclude: Iterable[Path] = (),
) -> IngestStats:
    """Load one build's log directory (and its subunit results) into the store.

    Files already stored for this build are replaced, so ingesting a
    directory twice stores each line once.
    """
    exclude = list(exclude)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    stats = IngestStats()
    started = time.perf_counter()
    tests: list[TestResult] = []

    def on_file(rel: str, size: int) -> None:
        if progress is not None:
            progress(size)

    # Ingesting a build again replaces the documents of the files it holds.
    names = {strip_gz(rel) for rel, _ in list_build_files(root, exclude=exclude)}
    replaced = store.delete_build(build.uuid, names)
    if replaced:
        LOG.info("%s: replacing %d documents of build %s", root, replaced, build.uuid)
    docs = iter_build_dir(
        root, build, keep_debug=keep_debug, stats=stats, on_tests=tests.extend, on_file=on_file, exclude=exclude
    )
    stats.take_stored(store.add_documents(docs, batch_size=batch_size))
    if tests:
        store.record_test_results(build.uuid, tests)
    stats.seconds = time.perf_counter() - started
    return stats

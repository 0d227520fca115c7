"""The error lines of builds, read through the search port.

One broad prefilter (:data:`ERROR_PREFILTER`) is evaluated by the backend;
:func:`~elastic_recheck.core.error_lines.extract_lines` decides which lines of
the documents it returns are error lines. Used by ``suggest``, the site's
uncategorized rows and failure clusters, and failure signatures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from elastic_recheck.core.error_lines import ErrorLine, extract_lines
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.search_types import BuildSummary, Filters, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)

#: Candidate documents read per build (more are reported as truncated).
MAX_DOCS_PER_BUILD = 2000
#: At most this many builds are asked for in one search.
FETCH_BATCH = 1000
#: The most documents one search returns (Elasticsearch's default ``index.max_result_window``).
MAX_RESULT_WINDOW = 10_000

#: A broad first cut, evaluated by the backend, of documents that may hold an
#: error line; :func:`extract_lines` decides. The regexp finds dotted exception
#: names (``libvirt.libvirterror``, ``tempest.lib.exceptions.sshtimeout``) with
#: one scan of the term dictionary (seven leading wildcards cost seven).
ERROR_PREFILTER = (
    "loglevel:(ERROR OR CRITICAL OR FATAL OR TRACE) OR "
    "message:(fail OR failed OR fatal OR traceback OR timed OR killed OR memory OR segfault OR panic) OR "
    "message:/.*(error|errors|exception|exceptions|timeout|failure|fault)/"
)

#: ``progress(phase, done, total)``.
Progress = Callable[[str, int, int], None]


def fetch_error_lines(
    backend: SearchBackend,
    builds: Sequence[BuildSummary],
    window: TimeWindow,
    max_docs: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
    errors: list[str] | None = None,
) -> tuple[list[ErrorLine], list[str]]:
    """Error lines of ``builds`` (documents in the window), and the builds that had too many candidates.

    Builds are asked for together (one search for all of them when their
    candidate documents fit in :data:`MAX_RESULT_WINDOW`; a group that does
    not fit is split in halves), so the prefilter's wildcards are expanded a
    few times, not once per build. One build reads at most ``max_docs``
    documents; builds with more are returned as truncated.

    :raises BackendError: retryable errors (backend down) propagate; a
        rejected query is logged and listed in ``errors``.
    """
    # The job-result line ("Job complete, result: FAILURE") is dropped as a
    # generic line after fetching (is_generic), not by editing query text.
    texts: tuple[str, ...] = (ERROR_PREFILTER,)
    out: list[ErrorLine] = []
    truncated: list[str] = []
    done = 0

    def fetch(group: Sequence[BuildSummary]) -> None:
        nonlocal done
        single = len(group) == 1
        size = max_docs if single else min(MAX_RESULT_WINDOW, max_docs * len(group))
        filters = Filters(build_uuid=group[0].uuid) if single else Filters(extra={"build_uuid": tuple(b.uuid for b in group)})
        spec = QuerySpec(queries=texts, filters=filters, window=window, label="suggest-lines")
        try:
            if single:
                # One build: through msearch, which the embedded store answers
                # from the build's own documents (no term-dictionary scan).
                res = backend.msearch([spec], size=size)[0]
                if res.error:
                    raise BackendError(res.error, retryable=False)
            else:
                res = backend.search(spec, size=size)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("candidate lines query failed: %s", exc)
            if errors is not None:
                errors.append(f"candidate lines of {len(group)} build(s): {exc}")
            done += len(group)
            return
        if res.total > len(res.hits) and not single:
            half = len(group) // 2
            fetch(group[:half])
            fetch(group[half:])
            return
        if res.total > len(res.hits):
            LOG.warning("build %s: %d candidate lines, only %d read", group[0].uuid, res.total, len(res.hits))
            truncated.append(group[0].uuid)
        for hit in res.hits:
            out.extend(extract_lines(hit.source, doc_id=hit.id))
        done += len(group)
        if progress is not None:
            progress("builds", done, len(builds))

    for start in range(0, len(builds), FETCH_BATCH):
        fetch(builds[start : start + FETCH_BATCH])
    return out, truncated

"""What the uncategorized pages show of each build, so a contributor can start a fingerprint.

For every uncategorized failed build:

* its **uuid** (what ``classify``, ``search --build-uuid`` and ``backtest`` take);
* its **first error line**: the earliest line :func:`elastic_recheck.core.error_lines.extract_lines`
  keeps (ERROR/CRITICAL records, the exception that ends a traceback,
  ``FAIL``/``E:`` lines of the console...), test-result lines left to the
  failed tests when the build has other error lines; with how many error lines
  it has in all;
* its **failed tests**: the store's test results (or the subunit2sql
  database of ``[data_source] db_uri``), else the ``test.id ... FAILED`` lines
  of its logs;
* a **starting query** for that line: the phrase and file tag
  ``elastic-recheck suggest`` would draft from it (:func:`candidates_for`).

The error lines are the ones the "possible fingerprints" section already
reads (one batched search for all builds); they are fetched here only when
that section is off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from elastic_recheck.adapters.subunit2sql.results import test_results_from_config
from elastic_recheck.core.config import Config
from elastic_recheck.core.error_clusters import candidates_for, cluster_lines
from elastic_recheck.core.error_line_search import fetch_error_lines
from elastic_recheck.core.error_lines import ErrorLine
from elastic_recheck.core.errors import BackendError, ConfigError
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: Failed tests listed per build (the rest are counted).
MAX_TESTS = 8

#: A test runner's result line: ``{0} tempest.api...test_x[id-1,smoke] [3.1s] ... FAILED``.
TEST_RESULT = re.compile(
    r"^(?:\{\d+\}\s+)?(?P<test>[A-Za-z_][\w.]*(?:\[[^\]\s]*\])?)\s+(?:\[[^\]]*\]\s+)?\.\.\.\s+(?:FAILED|FAIL|ERROR)\s*$"
)


@dataclass(frozen=True)
class BuildTriage:
    uuid: str
    first_error: ErrorLine | None = None
    #: Error lines found in the build (the first one included).
    error_lines: int = 0
    #: Failed test ids, sorted; None when nothing is known about the build's tests.
    failed_tests: tuple[str, ...] | None = None
    #: Where ``failed_tests`` come from: "test results" or "logs".
    tests_source: str = ""
    #: A starting fingerprint query for ``first_error``.
    query: str | None = None

    @property
    def shown_tests(self) -> tuple[str, ...]:
        return (self.failed_tests or ())[:MAX_TESTS]

    @property
    def more_tests(self) -> int:
        return max(0, len(self.failed_tests or ()) - MAX_TESTS)


def _timestamp(line: ErrorLine) -> str:
    doc = line.doc or {}
    return str(doc.get("@timestamp") or "")


def failed_test_id(line: ErrorLine) -> str | None:
    """The test id of a test runner's FAILED line, else None."""
    m = TEST_RESULT.match(line.body)
    return m.group("test") if m else None


def starting_query(line: ErrorLine) -> str | None:
    """The draft ``suggest`` would make of this one line: its phrase, with the file's tag when it has one."""
    clusters = cluster_lines([line], merge_threshold=None)
    if not clusters:
        return None
    candidates = candidates_for(clusters[0])
    if not candidates:
        return None
    tagged = [c for c in candidates if c.tag and not c.jobs and len(c.phrases) == 1]
    return (tagged or candidates)[0].query


def triage_build(uuid: str, lines: Sequence[ErrorLine], failed_tests: set[str] | None) -> BuildTriage:
    """One build's row details from its error lines (any order) and recorded failed tests (pure)."""
    ordered = sorted(lines, key=_timestamp)
    tests_in_logs = {t for t in (failed_test_id(x) for x in ordered) if t}
    errors = [x for x in ordered if failed_test_id(x) is None] or ordered
    first = errors[0] if errors else None
    source = ""
    if failed_tests is not None:
        tests: tuple[str, ...] | None = tuple(sorted(failed_tests))
        source = "test results"
    elif tests_in_logs:
        tests = tuple(sorted(tests_in_logs))
        source = "logs"
    else:
        tests = None
    return BuildTriage(
        uuid=uuid,
        first_error=first,
        error_lines=len(ordered),
        failed_tests=tests,
        tests_source=source,
        query=starting_query(first) if first is not None else None,
    )


def collect_triage(
    backend: SearchBackend,
    builds: Sequence[BuildSummary],
    window: ReportWindow,
    config: Config,
    lines: Sequence[ErrorLine] | None = None,
) -> dict[str, BuildTriage]:
    """uuid -> :class:`BuildTriage` for ``builds``; ``lines`` are their error lines when already read.

    :raises BackendError: when the backend is unavailable (retryable); an unusable
        test-results database (``[data_source] db_uri``) leaves the failed tests out.
    """
    if not builds:
        return {}
    if lines is None:
        lines, _ = fetch_error_lines(backend, builds, window.time_window)
    by_build: dict[str, list[ErrorLine]] = {}
    for line in lines:
        by_build.setdefault(line.build_uuid, []).append(line)
    db_uri = config.data_source.db_uri
    out: dict[str, BuildTriage] = {}
    tests_ok = True
    try:
        results = test_results_from_config(backend, db_uri)
    except ConfigError as exc:
        LOG.warning("failed tests left out of the uncategorized pages: %s", exc)
        tests_ok = False
    for b in builds:
        failed: set[str] | None = None
        if tests_ok:
            try:
                failed = results.failed_tests(b.uuid)
            except (BackendError, ConfigError) as exc:
                # The store going away stops the render like every other query;
                # an unusable test-results database only leaves the tests out.
                if isinstance(exc, BackendError) and exc.retryable and not db_uri:
                    raise
                LOG.warning("failed tests left out of the uncategorized pages: %s", exc)
                tests_ok = False
        out[b.uuid] = triage_build(b.uuid, by_build.get(b.uuid, []), failed)
    return out


def triage_rows(triage: Mapping[str, BuildTriage], uuid: str) -> BuildTriage:
    """The details of one build (an empty record when none were collected)."""
    return triage.get(uuid) or BuildTriage(uuid=uuid)

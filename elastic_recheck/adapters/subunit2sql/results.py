"""Failed test ids from a subunit2sql database (``[data_source] db_uri``).

A second source of per-build test results, next to the subunit streams the
embedded store ingests: the database OpenStack's CI filled with
``subunit2sql`` (tables ``tests``, ``test_runs``, ``run_metadata``; a run is
tied to a build by the metadata key ``build_uuid``).

Supported URIs: ``sqlite:///path/to/db`` (standard library) and
``mysql+pymysql://user:pass@host/db`` (needs the ``pymysql`` package; a clear
error says so when it is missing). The password never appears in errors.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from elastic_recheck.core.errors import BackendError, ConfigError
from elastic_recheck.ports.search import TestResultSource

LOG = logging.getLogger(__name__)

FAILED_STATUSES = ("fail", "uxsuccess")

_QUERY = (
    "SELECT DISTINCT tests.test_id FROM test_runs "
    "JOIN tests ON tests.id = test_runs.test_id "
    "JOIN run_metadata ON run_metadata.run_id = test_runs.run_id "
    "WHERE run_metadata.{key} = 'build_uuid' AND run_metadata.value = {ph} "
    "AND test_runs.status IN ({statuses})"
)


def _redacted(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


class Subunit2SqlSource:
    """``failed_tests(build_uuid) -> set[str] | None`` over a subunit2sql database."""

    def __init__(self, uri: str, timeout: float = 10.0) -> None:
        self.uri = uri
        self.timeout = timeout
        parts = urlsplit(uri)
        self.scheme = parts.scheme
        if self.scheme == "sqlite":
            self.path = unquote(parts.path[1:] if parts.path.startswith("//") else parts.path)
        elif self.scheme.startswith("mysql"):
            self.host = parts.hostname or "localhost"
            self.port = parts.port or 3306
            self.user = unquote(parts.username or "")
            self.password = unquote(parts.password or "")
            self.database = parts.path.lstrip("/")
        else:
            raise ConfigError(f"[data_source] db_uri: unsupported database {_redacted(uri)!r} (sqlite:/// or mysql+pymysql://)")

    def _connect(self) -> Any:
        if self.scheme == "sqlite":
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout)
        try:
            import pymysql
        except ImportError:
            raise ConfigError("[data_source] db_uri is a MySQL URI but the pymysql package is not installed") from None
        return pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            database=self.database, connect_timeout=self.timeout, read_timeout=self.timeout,
        )

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        """Failed test ids of the build; None when the database has no run for it."""
        ph = "?" if self.scheme == "sqlite" else "%s"
        key = '"key"' if self.scheme == "sqlite" else "`key`"
        sql = _QUERY.format(key=key, ph=ph, statuses=",".join([ph] * len(FAILED_STATUSES)))
        try:
            conn = self._connect()
        except ConfigError:
            raise
        except Exception as exc:
            raise BackendError(f"subunit2sql database {_redacted(self.uri)}: {type(exc).__name__}: {exc}".replace(
                getattr(self, "password", "") or "\0", "***")) from None
        try:
            cur = conn.cursor()
            cur.execute(sql, (build_uuid, *FAILED_STATUSES))
            failed = {str(row[0]) for row in cur.fetchall()}
            if failed:
                return failed
            cur.execute(
                f"SELECT COUNT(*) FROM run_metadata WHERE run_metadata.{key} = 'build_uuid' AND value = {ph}",
                (build_uuid,),
            )
            known = cur.fetchone()[0] > 0
            return set() if known else None
        except Exception as exc:
            raise BackendError(f"subunit2sql query failed: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()


class CombinedTestResults:
    """The backend's own test results first, then the subunit2sql database."""

    def __init__(self, backend: TestResultSource, database: Subunit2SqlSource | None) -> None:
        self.backend = backend
        self.database = database

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        found = self.backend.failed_tests(build_uuid)
        if found is None and self.database is not None:
            found = self.database.failed_tests(build_uuid)
        return found


def test_results_from_config(backend: TestResultSource, db_uri: str) -> TestResultSource:
    """The backend's subunit results, plus a subunit2sql database when ``db_uri`` is set."""
    if not db_uri:
        return backend
    return CombinedTestResults(backend, Subunit2SqlSource(db_uri))


if TYPE_CHECKING:
    # mypy checks the adapters against the port.
    _ports: tuple[type[TestResultSource], ...] = (Subunit2SqlSource, CombinedTestResults)

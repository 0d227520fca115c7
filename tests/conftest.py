"""Shared pytest configuration.

Fixtures that start real servers (ngircd, the SSH Gerrit fake, single-node
OpenSearch and Elasticsearch, local HTTP fakes of Launchpad/Zuul) live in ``tests/fixtures/`` and are
registered here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

pytest_plugins: list[str] = []
pytest_plugins += ["tests.fixtures.ircd", "tests.fixtures.launchpad_server"]
pytest_plugins += ["tests.fixtures.gerrit_server"]
pytest_plugins += ["tests.fixtures.cluster"]


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real public CI data); skips with a reason when absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail("../shared/data is missing in CI")
        pytest.skip("../shared/data not present: tests on real recorded CI data need it beside the checkout")
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    # The fingerprint cache of every process the tests start goes to a
    # directory of this session, never to the user's ~/.cache.
    if "ELASTIC_RECHECK_CACHE_DIR" not in os.environ:
        os.environ["ELASTIC_RECHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="er-test-cache-")
    config.addinivalue_line(
        "markers",
        "slow: a heavy check (~10 s of CPU or more); still part of CI (the fast tier while working: -m 'not slow')",
    )
    config.addinivalue_line(
        "markers",
        "oracle: compares with the real Lucene oracle (../shared/tools/lucene-oracle, Java 17); "
        "part of CI, skipped with the reason where Java or the oracle is missing",
    )


@pytest.fixture(autouse=True)
def _no_redaction_left_behind() -> object:
    """A CLI run in-process (CliRunner) installs secret redaction on the root
    logger's handlers, pytest's session-long ones included; take it off after
    each test so one test's secrets do not mask another test's log text."""
    yield
    import logging

    from elastic_recheck.core.log_filters import RedactSecrets

    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(f)

"""Fixtures shared by the functional tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from elastic_recheck.ingest import ingest_jsonl
from elastic_recheck.search.embedded import EmbeddedStore

SAMPLE = Path(__file__).resolve().parents[2] / "sample"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the bundled sample history (read-only for tests: copy it to write)."""
    path = tmp_path_factory.mktemp("sample-store") / "store.db"
    store = EmbeddedStore(path)
    ingest_jsonl(store, SAMPLE / "logs.jsonl.gz")
    store.close()
    return path

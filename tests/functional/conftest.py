"""Fixtures shared by the functional tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.ingest.jsonl import ingest_jsonl

SAMPLE = Path(__file__).resolve().parents[2] / "sample"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the bundled sample history (read-only for tests: copy it to write)."""
    path = tmp_path_factory.mktemp("sample-store") / "store.db"
    store = EmbeddedStore(path)
    ingest_jsonl(store, SAMPLE / "logs.jsonl.gz")
    store.close()
    return path

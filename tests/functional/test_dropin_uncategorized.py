"""The uncategorized page's job and project filters, on the original's recorded 2013-2014 gate failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli

DOCS = "logstash/elastic-recheck-docs.jsonl"
QUERIES = "logstash/originals/test-queries/queries"
WINDOW = ["--now", "2015-01-01", "--days", "500"]
#: The original's integrated gate projects (its uncategorized page's list), and devstack/grenade's current names.
ORIGINAL_INTEGRATED = {
    "openstack/cinder", "openstack/glance", "openstack/keystone", "openstack/neutron", "openstack/nova",
    "openstack/requirements", "openstack/tempest", "openstack-dev/devstack", "openstack-dev/grenade",
    "openstack-infra/devstack-gate", "openstack/devstack", "openstack/grenade",
}


@pytest.fixture
def gate_failures(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    """Store the recorded hits; returns the failed gate builds: uuid -> (job, project)."""
    docs = []
    failed: dict[str, tuple[str, str]] = {}
    for line in (shared_data / DOCS).read_text().splitlines():
        doc = json.loads(line)
        doc.pop("_er")
        doc["voting"] = "1"  # 2013 documents predate the voting field
        docs.append(doc)
        if doc.get("build_queue") == "gate" and doc.get("build_status") == "FAILURE":
            failed[doc["build_uuid"]] = (doc["build_name"], doc["project"])
    store = EmbeddedStore(tmp_path / "store.db")
    store.add_documents(docs)
    store.close()
    monkeypatch.setenv("ELASTIC_RECHECK_STORE", str(tmp_path / "store.db"))
    return failed


def _failed_counted(shared_data: Path, tmp_path: Path, **site: str) -> int:
    conf = tmp_path / "er.conf"
    conf.write_text("[site]\n" + "".join(f"{k} = {v}\n" for k, v in site.items()))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    result = CliRunner().invoke(cli, ["-c", str(conf), "uncategorized", "--queries", str(shared_data / QUERIES),
                                      "-o", str(out), *WINDOW])
    assert result.exit_code in (0, 4), result.output
    return int(json.loads((out / "uncategorized.json").read_text())["failed"])


def test_default_filters_are_the_originals(shared_data: Path, tmp_path: Path, gate_failures: dict[str, tuple[str, str]]) -> None:
    expected = [u for u, (job, project) in gate_failures.items()
                if not re.search("(api-site|operations-guide|openstack-manuals|ansible|puppet)", job)
                and (project in ORIGINAL_INTEGRATED or re.search("(^openstack/|devstack|grenade)", project))]
    assert _failed_counted(shared_data, tmp_path) == len(expected) == len(gate_failures)


def test_excluded_jobs_regex(shared_data: Path, tmp_path: Path, gate_failures: dict[str, tuple[str, str]]) -> None:
    kept = [u for u, (job, _project) in gate_failures.items() if "postgres" not in job]
    assert 0 < len(kept) < len(gate_failures)
    assert _failed_counted(shared_data, tmp_path, excluded_jobs_re="postgres") == len(kept)


def test_included_projects_regex(shared_data: Path, tmp_path: Path, gate_failures: dict[str, tuple[str, str]]) -> None:
    kept = [u for u, (_job, project) in gate_failures.items() if project in ORIGINAL_INTEGRATED or project == "openstack/heat"]
    assert 0 < len(kept) < len(gate_failures)
    assert _failed_counted(shared_data, tmp_path, included_projects_re="^openstack/heat$") == len(kept)
    assert _failed_counted(shared_data, tmp_path, included_projects_re="", excluded_jobs_re="") == len(gate_failures)

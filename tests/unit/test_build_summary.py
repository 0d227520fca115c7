"""The search port's build record: typed fields over the documents' raw values."""

from __future__ import annotations

import pytest

from elastic_recheck.core.schema import parse_voting
from elastic_recheck.core.search_types import BuildSummary


def test_typed_fields_read_the_build_level_fields() -> None:
    b = BuildSummary(uuid="u" * 32, fields={
        "build_name": "tempest-full", "build_status": "FAILURE", "build_queue": "gate", "project": "openstack/nova",
        "build_branch": "master", "build_change": 829161, "build_patchset": "3", "build_set": "bs1",
        "node_provider": "ovh-bhs1", "log_url": "https://logs.example.org/61/829161/3/gate/tempest-full/abc/",
        "voting": "1",
    })
    assert (b.job_name, b.status, b.queue, b.project, b.branch) == ("tempest-full", "FAILURE", "gate", "openstack/nova", "master")
    assert (b.change, b.patchset, b.build_set, b.node_provider) == ("829161", "3", "bs1", "ovh-bhs1")  # numbers as text
    assert b.log_url == "https://logs.example.org/61/829161/3/gate/tempest-full/abc/"
    assert b.voting is True


def test_absent_empty_and_list_values() -> None:
    b = BuildSummary(uuid="u", fields={"build_status": ["FAILURE", "SUCCESS"], "build_name": [], "project": ""})
    assert b.status == "FAILURE"  # the first of a list, as the classifier always read it
    assert b.job_name is None  # an empty list is absent
    assert b.project == ""  # empty stays empty (callers' `or` defaults apply)
    assert b.queue is None and b.change is None and b.voting is None
    assert b.text("build_status") == "FAILURE" and b.text("tenant") is None


@pytest.mark.parametrize(("raw", "voting"), [
    (1, True), ("1", True), (True, True), ("true", True), (["0"], False), (0, False), ("false", False),
    (False, False), (None, None), ("", None), ("maybe", None),
])
def test_voting_spellings(raw: object, voting: bool | None) -> None:
    assert BuildSummary(uuid="u", fields={"voting": raw}).voting is voting is parse_voting(raw)

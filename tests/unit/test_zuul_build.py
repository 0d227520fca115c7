"""The one Zuul build record reader (core/zuul_build.py), and the document fields made from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from elastic_recheck.core.zuul_build import ZuulBuild
from elastic_recheck.ingest.build_info import BuildInfo, build_info_from_zuul

FLAT: dict[str, Any] = {
    "uuid": "38bf2cdc947643c9bb04f11f40a0f211",
    "job_name": "openstack-tox-py39",
    "result": "FAILURE",
    "pipeline": "gate",
    "project": "openstack/neutron",
    "branch": "master",
    "change": 829161,
    "patchset": "3",
    "ref": "refs/changes/61/829161/3",
    "newrev": None,
    "voting": True,
    "log_url": "https://logs.example.org/61/829161/3/gate/x/38bf2cd/",
    "start_time": "2022-02-28T09:39:09",
    "end_time": "2022-02-28T09:49:09",
    "buildset": {"uuid": "52b29e0e716a4436bd20eed47fa396ce"},
}
NESTED: dict[str, Any] = {
    **{k: v for k, v in FLAT.items() if k not in ("project", "branch", "change", "patchset", "ref")},
    "ref": {"project": "openstack/neutron", "branch": "master", "change": 829161, "patchset": "3",
            "ref": "refs/changes/61/829161/3", "newrev": None},
}


@pytest.mark.parametrize("record", [FLAT, NESTED], ids=["flat", "nested"])
def test_both_shapes_read_the_same(record: dict[str, Any]) -> None:
    b = ZuulBuild.from_api(record)
    assert (b.project, b.branch, b.change, b.patchset, b.ref) == (
        "openstack/neutron", "master", 829161, "3", "refs/changes/61/829161/3")
    assert b.start_time == datetime(2022, 2, 28, 9, 39, 9, tzinfo=UTC)
    assert b.buildset_uuid == "52b29e0e716a4436bd20eed47fa396ce" and b.voting is True


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"voting": "false"}, "voting", False),  # a string flag (was True: bool("false"))
        ({"voting": "on"}, "voting", True),
        ({"voting": 0}, "voting", False),
        ({"voting": None}, "voting", None),  # the record does not say
        ({"node_provider": "rax-dfw"}, "node_provider", "rax-dfw"),  # logscraper's buildinfo
        ({"project": None, "ref": {"project": ""}}, "project", None),  # empty nested, nothing at the top level
        ({"project": "openstack/nova", "ref": {"project": ""}}, "project", "openstack/nova"),  # empty nested: top level
        ({"change": "829161"}, "change", 829161),
        ({"change": "I0abc"}, "change", None),
        ({"tenant": "openstack"}, "tenant", "openstack"),
    ],
)
def test_fields(changes: dict[str, Any], field: str, expected: object) -> None:
    assert getattr(ZuulBuild.from_api({**FLAT, **changes}), field) == expected


def test_refusals() -> None:
    with pytest.raises(ValueError, match="no 'uuid'"):
        ZuulBuild.from_api({**FLAT, "uuid": None})
    with pytest.raises(ValueError, match="job_name"):
        ZuulBuild.from_api({k: v for k, v in FLAT.items() if k != "job_name"})
    with pytest.raises(ValueError, match="not a boolean"):
        ZuulBuild.from_api({**FLAT, "voting": "maybe"})
    # ingest --zuul-build reads a record without a job name: its documents have no build_name
    info = build_info_from_zuul({k: v for k, v in FLAT.items() if k != "job_name"})
    assert info.name is None and "build_name" not in info.fields()


def test_document_fields_of_a_zuul_build() -> None:
    fields = BuildInfo.from_zuul(ZuulBuild.from_api(NESTED)).fields()
    assert fields == {
        "build_uuid": "38bf2cdc947643c9bb04f11f40a0f211",
        "build_short_uuid": "38bf2cd",
        "build_name": "openstack-tox-py39",
        "build_status": "FAILURE",
        "build_change": "829161",
        "build_patchset": "3",
        "build_queue": "gate",
        "build_branch": "master",
        "build_ref": "refs/changes/61/829161/3",
        "build_set": "52b29e0e716a4436bd20eed47fa396ce",
        "project": "openstack/neutron",
        "voting": 1,
    }
    assert "voting" not in BuildInfo.from_zuul(ZuulBuild.from_api({**FLAT, "voting": None})).fields()

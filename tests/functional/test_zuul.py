"""The Zuul REST client against a local fake Zuul (and real recorded records)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elastic_recheck.adapters.zuul.api import ZuulClient, parse_inventory
from elastic_recheck.core.errors import ZuulError
from elastic_recheck.core.zuul_build import ZuulBuild
from elastic_recheck.ingest.build_info import BuildInfo
from tests.fixtures.zuul_server import FakeZuul, build_record, inventory_yaml

T0 = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)


def uuid_n(n: int) -> str:
    return f"{n:04x}" + "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"[:28]


@pytest.fixture
def zuul() -> Iterator[FakeZuul]:
    with FakeZuul() as fake:
        yield fake


def client(fake: FakeZuul, **kw: object) -> ZuulClient:
    kw.setdefault("backoff", 0.01)
    return ZuulClient(fake.url, fake.tenant, **kw)  # type: ignore[arg-type]


# -- record shapes -----------------------------------------------------------


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_both_record_shapes_parse_to_the_same_build(shape: str) -> None:
    rec = build_record(
        uuid_n(1),
        job_name="nova-live-migration",
        result="FAILURE",
        pipeline="gate",
        project="openstack/nova",
        branch="stable/2024.1",
        change=912345,
        patchset="7",
        start=T0,
        duration=3600,
        voting=False,
        log_url="https://logs.example.org/45/912345/7/gate/nova-live-migration/0001a1b/",
        shape=shape,
    )
    b = ZuulBuild.from_api(rec, tenant="openstack")
    assert (b.uuid, b.job_name, b.result, b.pipeline) == (uuid_n(1), "nova-live-migration", "FAILURE", "gate")
    assert (b.project, b.branch, b.change, b.patchset) == ("openstack/nova", "stable/2024.1", 912345, "7")
    assert b.ref == "refs/changes/45/912345/7"
    assert b.ref_url == "https://review.opendev.org/912345"
    assert b.voting is False
    assert b.start_time == T0 and b.end_time == T0 + timedelta(hours=1)
    assert b.manifest_url == rec["log_url"] + "zuul-manifest.json"
    assert b.buildset_uuid == rec["buildset"]["uuid"]
    assert b.tenant == "openstack"
    meta = BuildInfo.from_zuul(b).fields()  # the fields every document of the build carries
    assert meta["voting"] == 0 and meta["build_change"] == "912345" and meta["build_short_uuid"] == uuid_n(1)[:7]
    assert meta["build_queue"] == "gate" and meta["build_ref"] == "refs/changes/45/912345/7"


def test_record_without_uuid_or_job_is_rejected() -> None:
    rec = build_record(uuid_n(2), result="SKIPPED")
    rec["uuid"] = None
    with pytest.raises(ValueError, match="uuid"):
        ZuulBuild.from_api(rec)
    rec = build_record(uuid_n(2))
    del rec["job_name"]
    with pytest.raises(ValueError, match="job_name"):
        ZuulBuild.from_api(rec)


def test_periodic_build_without_change() -> None:
    rec = build_record(uuid_n(3), pipeline="periodic", change=None, patchset=None, shape="nested")
    b = ZuulBuild.from_api(rec)
    assert b.change is None and b.patchset is None
    assert b.ref == "refs/heads/master"
    assert "build_change" not in BuildInfo.from_zuul(b).fields()


def test_real_recorded_records(shared_data: Path) -> None:
    zdir = shared_data / "zuul"
    records = json.loads((zdir / "opendev-api-builds-2020.json").read_text())
    records += json.loads((zdir / "ci-log-processing-builds-api-2021.json").read_text())
    parsed = 0
    for rec in records:
        if rec.get("uuid") is None:
            with pytest.raises(ValueError):
                ZuulBuild.from_api(rec)
            continue
        b = ZuulBuild.from_api(rec)
        parsed += 1
        assert b.uuid == rec["uuid"] and b.job_name == rec["job_name"] and b.result == rec["result"]
        # empty strings (tag/release builds have branch "") become None
        assert b.project == rec["project"] and b.branch == (rec["branch"] or None) and b.pipeline == rec["pipeline"]
        assert b.change == (int(rec["change"]) if rec.get("change") is not None else None)
        assert b.patchset == (str(rec["patchset"]) if rec.get("patchset") is not None else None)
        assert b.log_url == rec["log_url"]
        assert b.start_time is not None and b.start_time.isoformat().startswith(rec["start_time"])
        kinds = {(a.get("metadata") or {}).get("type") for a in rec.get("artifacts") or []}
        assert (b.manifest_url is not None) == ("zuul_manifest" in kinds)
    assert parsed >= 10
    info = json.loads((zdir / "ci-log-processing-buildinfo-2022.json").read_text())
    old = ZuulBuild.from_api(info["buildinfo_old_api_flat_ref"])
    new = ZuulBuild.from_api(info["buildinfo_new_api_nested_ref"])
    nested = info["buildinfo_new_api_nested_ref"]["ref"]
    assert (new.project, new.change, new.patchset, new.ref, new.ref_url) == (
        nested["project"], nested["change"], nested["patchset"], nested["ref"], nested["ref_url"]
    )
    assert (old.project, old.change, old.ref) == (new.project, new.change, new.ref)
    assert old.tenant == new.tenant == "openstack"


def test_parse_inventory() -> None:
    info = parse_inventory(inventory_yaml("ovh-bhs1", hosts=("controller", "compute1"), executor="ze03.opendev.org").decode())
    assert info.node_provider == "ovh-bhs1"
    assert info.nodes == ("controller", "compute1")
    assert len(info.hosts_id) == 2 and info.hosts_region == ("rax-DFW",)
    assert info.zuul_executor == "ze03.opendev.org"
    assert parse_inventory("{not: [yaml").node_provider is None
    assert parse_inventory("- a list").nodes == ()


# -- URLs ----------------------------------------------------------------------


def test_api_url_forms() -> None:
    assert ZuulClient("https://zuul.opendev.org", "openstack").api_url("builds") == "https://zuul.opendev.org/api/tenant/openstack/builds"
    c = ZuulClient("https://zuul.opendev.org/api/tenant/zuul/", "ignored")
    assert c.tenant == "zuul" and c.api_url("build/x") == "https://zuul.opendev.org/api/tenant/zuul/build/x"
    assert ZuulClient("https://zuul.example.com/api", "").api_url("builds") == "https://zuul.example.com/api/builds"
    with pytest.raises(ZuulError):
        ZuulClient("zuul.opendev.org", "openstack")
    with pytest.raises(ZuulError):
        ZuulClient("", "openstack")


# -- listing -------------------------------------------------------------------


def test_paging_until_exhausted(zuul: FakeZuul) -> None:
    for n in range(230):
        zuul.add_build(build_record(uuid_n(n), start=T0 + timedelta(minutes=n), shape="nested" if n % 2 else "flat"))
    got = list(client(zuul, page_size=100).builds())
    assert [b.uuid for b in got] == [uuid_n(n) for n in reversed(range(230))]
    pages = zuul.hits("/api/tenant/openstack/builds")
    # the last, empty page proves the end (a short page may be a server-side cap)
    assert [p.query["skip"] for p in pages] == [["0"], ["100"], ["200"], ["230"]]
    assert all(p.query["limit"] == ["100"] for p in pages)


def test_paging_stops_at_since_and_limit(zuul: FakeZuul) -> None:
    for n in range(300):
        zuul.add_build(build_record(uuid_n(n), start=T0 + timedelta(minutes=n)))
    since = T0 + timedelta(minutes=250)
    got = list(client(zuul, page_size=20).builds(since=since))
    assert len(got) == 50 and all(b.start_time and b.start_time >= since for b in got)
    assert len(zuul.hits("/api/tenant/openstack/builds")) == 3  # not all 15 pages
    zuul.clear()
    got = list(client(zuul, page_size=20).builds(limit=7))
    assert len(got) == 7
    assert [p.query["limit"] for p in zuul.hits("/api/")] == [["7"]]


def test_server_side_limit_cap_does_not_end_paging_early(zuul: FakeZuul) -> None:
    zuul.max_limit = 20  # zuul-web caps limit; a short page is then not the end
    for n in range(45):
        zuul.add_build(build_record(uuid_n(n), start=T0 + timedelta(minutes=n)))
    got = list(client(zuul, page_size=50).builds())
    assert len(got) == 45 and len({b.uuid for b in got}) == 45


def test_filters_are_sent_and_applied(zuul: FakeZuul) -> None:
    combos = [
        ("check", "FAILURE", True, "openstack/nova"),
        ("gate", "SUCCESS", True, "openstack/nova"),
        ("gate", "FAILURE", False, "openstack/nova"),
        ("post", "FAILURE", True, "openstack/nova"),
        ("check", "POST_FAILURE", True, "openstack/neutron"),
        ("gate", "FAILURE", True, "openstack/neutron"),
    ]
    for n, (pipeline, result, voting, project) in enumerate(combos):
        zuul.add_build(build_record(uuid_n(n), pipeline=pipeline, result=result, voting=voting, project=project, shape="nested" if n % 2 else "flat"))
    c = client(zuul)
    got = list(c.builds(pipeline=["gate", "check"], result=["FAILURE", "SUCCESS"], voting=True))
    assert sorted(b.uuid for b in got) == sorted(uuid_n(n) for n in (0, 1, 5))
    q = zuul.hits("/api/tenant/openstack/builds")[-1].query
    assert q["pipeline"] == ["gate", "check"] and q["result"] == ["FAILURE", "SUCCESS"] and q["voting"] == ["1"]
    got = list(c.builds(project="openstack/neutron"))
    assert sorted(b.uuid for b in got) == sorted(uuid_n(n) for n in (4, 5))
    got = list(c.builds(change=900001, patchset="3", job_name="tempest-full-py3"))
    assert len(got) == 6


def test_skipped_and_running_builds_are_passed_over(zuul: FakeZuul) -> None:
    skipped = build_record(uuid_n(1), result="SKIPPED")
    skipped["uuid"] = None
    skipped["log_url"] = None
    zuul.add_build(skipped)
    zuul.add_build(build_record(uuid_n(2), result=None))  # still running
    zuul.add_build(build_record(uuid_n(3), result="FAILURE"))
    assert [b.uuid for b in client(zuul).builds()] == [uuid_n(3)]


def test_duplicates_across_shifting_pages_are_yielded_once(zuul: FakeZuul) -> None:
    for n in range(30):
        zuul.add_build(build_record(uuid_n(n), start=T0 + timedelta(minutes=n)))
    c = client(zuul, page_size=10)
    it = c.builds()
    first = [next(it) for _ in range(10)]
    # Two new builds arrive while we read: the next page repeats two old ones.
    zuul.add_build(build_record(uuid_n(100), start=T0 + timedelta(hours=5)))
    zuul.add_build(build_record(uuid_n(101), start=T0 + timedelta(hours=5)))
    rest = list(it)
    uuids = [b.uuid for b in first + rest]
    assert len(uuids) == len(set(uuids)) == 30


# -- one build and errors ------------------------------------------------------------


def test_build_by_uuid_and_404_is_not_retried(zuul: FakeZuul) -> None:
    zuul.add_build(build_record(uuid_n(1), shape="nested", project="openstack/cinder"))
    c = client(zuul)
    assert c.build(uuid_n(1)).project == "openstack/cinder"
    with pytest.raises(ZuulError) as err:
        c.build("0" * 32)
    assert err.value.status == 404 and not err.value.retryable
    assert "404" in str(err.value)
    assert len(zuul.hits("/api/tenant/openstack/build/" + "0" * 32)) == 1
    with pytest.raises(ZuulError):
        c.build("../builds")


def test_unknown_tenant_is_a_clear_4xx_error(zuul: FakeZuul) -> None:
    c = ZuulClient(zuul.url, "nosuchtenant", backoff=0.01)
    with pytest.raises(ZuulError, match="refused.*404"):
        list(c.builds())
    assert len(zuul.hits("/api/")) == 1


def test_5xx_is_retried_with_backoff(zuul: FakeZuul) -> None:
    zuul.add_build(build_record(uuid_n(1)))
    zuul.fail("/api/", 500, 503)
    sleeps: list[float] = []
    c = ZuulClient(zuul.url, "openstack", retries=3, backoff=0.25, sleep=sleeps.append)
    assert [b.uuid for b in c.builds()] == [uuid_n(1)]
    assert sleeps == [0.25, 0.5]
    zuul.fail("/api/", 502, 502, 502, 502)
    with pytest.raises(ZuulError) as err:
        c.build(uuid_n(1))
    assert err.value.retryable and err.value.status == 502
    assert sleeps[2:] == [0.25, 0.5, 1.0]


@pytest.mark.timeout(60)
def test_timeout_is_retried_then_reported(zuul: FakeZuul) -> None:
    zuul.add_build(build_record(uuid_n(1)))
    zuul.delay = 1.0
    c = ZuulClient(zuul.url, "openstack", timeout=0.2, retries=1, backoff=0.01)
    with pytest.raises(ZuulError, match="timed out after 2 attempts") as err:
        c.build(uuid_n(1))
    assert err.value.retryable
    assert len(zuul.hits("/api/")) == 2


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = ZuulClient(f"http://127.0.0.1:{port}", "openstack", retries=1, backoff=0.01)
    with pytest.raises(ZuulError, match="connection failed") as err:
        list(c.builds())
    assert err.value.retryable


def test_invalid_json_and_wrong_shapes_are_errors(zuul: FakeZuul) -> None:
    c = client(zuul)
    zuul.override("/api/tenant/openstack/builds", 200, b"<html><body>Bad gateway</body></html>", "text/html")
    with pytest.raises(ZuulError, match="invalid JSON"):
        list(c.builds())
    zuul.override("/api/tenant/openstack/builds", 200, b'{"builds": []}')
    with pytest.raises(ZuulError, match="expected a list"):
        list(c.builds())
    zuul.override(f"/api/tenant/openstack/build/{uuid_n(1)}", 200, b"[]")
    with pytest.raises(ZuulError, match="unexpected answer"):
        c.build(uuid_n(1))

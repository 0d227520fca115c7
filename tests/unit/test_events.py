"""elastic_recheck.core.events: every CI report format -> FailureReport (pure)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elastic_recheck.core.errors import EventParseError
from elastic_recheck.core.events import (
    FAILED_RESULTS,
    FailedJob,
    FailureReport,
    parse_event,
    parse_line,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "events"
ZB = "https://zuul.opendev.org/t/openstack/build/"


@dataclass(frozen=True)
class J:
    """Expected job line."""

    name: str
    result: str
    short: str | None
    uuid: str | None = None
    voting: bool = True
    duration: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class R:
    """Expected report."""

    change: str
    patchset: str
    project: str
    branch: str
    pipeline: str | None
    author: str
    event_time: int | None
    jobs: tuple[J, ...]
    buildset: str | None = None


IGNORED = None
ERROR = "error"

# Every line of every handwritten fixture file, by (file, 1-based line).
EXPECTED: dict[tuple[str, int], R | str | None] = {
    # --- Jenkins / Zuul v2 --------------------------------------------------
    ("zuul-v2-jenkins.jsonl", 1): R(
        "12345", "3", "openstack/nova", "master", "gate", "jenkins", 1389371115,
        (
            J("gate-nova-pep8", "SUCCESS", "8c1f2a0", duration="3m 02s"),
            J("gate-nova-python27", "FAILURE", "04102a5", duration="13m 57s"),
            J("gate-tempest-dsvm-full", "FAILURE", "d4e5f6a", duration="1h 02m 03s"),
            J("gate-nova-docs", "SUCCESS", "1a2b3c4", duration="4m 10s"),
        ),
    ),
    ("zuul-v2-jenkins.jsonl", 2): R(
        "98778", "2", "openstack/neutron", "stable/icehouse", "check", "Jenkins", None,
        (
            J("gate-neutron-python27", "FAILURE", "5f1e2d3", duration="8m 12s"),
            J("check-tempest-dsvm-neutron-full", "FAILURE", "aa01b2c", voting=False, duration="52m 40s"),
            J("gate-neutron-pep8", "SUCCESS", "3c4d5e6", duration="2m 55s"),
        ),
    ),
    ("zuul-v2-jenkins.jsonl", 3): R(
        "487612", "4", "openstack-infra/project-config", "master", "check", "jenkins", 1500003600,
        (
            J("gate-project-config-layout", "UNSTABLE", "0e1f2a3", duration="45s"),
            J("gate-project-config-jenkins-project", "LOST", "7d8e9f0", duration="1m 05s"),
            J("gate-project-config-irc-access", "POST_FAILURE", "5a6b7c8", duration="2m 30s"),
            J("gate-project-config-dib", "NOT_REGISTERED", None),
            J("gate-project-config-pep8-ubuntu-xenial", "SUCCESS", "9f8e7d6", duration="58s"),
        ),
    ),
    ("zuul-v2-jenkins.jsonl", 4): IGNORED,  # Build succeeded (with non-voting failures)
    ("zuul-v2-jenkins.jsonl", 5): IGNORED,  # Starting gate jobs.
    ("zuul-v2-jenkins.jsonl", 6): IGNORED,  # Merge Failed.
    ("zuul-v2-jenkins.jsonl", 7): IGNORED,  # a human pasting a report
    ("zuul-v2-jenkins.jsonl", 8): IGNORED,  # depends on a change that failed to merge
    ("zuul-v2-jenkins.jsonl", 9): IGNORED,  # patchset-created
    ("zuul-v2-jenkins.jsonl", 10): IGNORED,  # change-merged
    ("zuul-v2-jenkins.jsonl", 11): IGNORED,  # ref-updated
    ("zuul-v2-jenkins.jsonl", 12): R(
        "487612", "4", "openstack-infra/project-config", "master", "experimental", "jenkins", 1500007200,
        (J("check-tempest-dsvm-ironic-pxe_ssh", "FAILURE", "c0ffee1", voting=False, duration="1h 10m 20s"),),
    ),
    # --- Zuul v3+ -----------------------------------------------------------
    ("zuul-v3.jsonl", 1): R(
        "912345", "3", "openstack/nova", "master", "check", "zuul", 1712003725,
        (
            J("openstack-tox-pep8", "SUCCESS", "f4a021f", "f4a021ffcdf44f6284ff6331ad28b3c4", duration="4m 02s"),
            J("tempest-full-py3", "FAILURE", "0dbfe52", "0dbfe52fc162484298c35afec28f5ecb", duration="1h 02m 03s"),
            J("nova-tox-py311", "POST_FAILURE", "b93f7ad", "b93f7ad26c0345cea304dd0adcf00ad7", duration="12m 40s"),
            J("nova-grenade-multinode", "TIMED_OUT", "7838047", "78380478dc754bb4afd7579674ea65e4", False, "3h 00m 00s"),
            J("nova-next", "FAILURE", "54fdc0c", "54fdc0cf01e645e891cb12a39bc83f08", False, "1h 31m 15s"),
        ),
        buildset="https://zuul.opendev.org/t/openstack/buildset/3f30a9f62cf141acaf24ab68acaffff9",
    ),
    ("zuul-v3.jsonl", 2): R(
        "912345", "7", "openstack/nova", "master", "gate", "zuul", 1712608800,
        (
            J("tempest-integrated-compute", "FAILURE", "b2c4e35", "b2c4e35b9ed541779d41fd175f4f091c", duration="2h 01m 33s"),
            J("nova-ceph-multistore", "RETRY_LIMIT", "1c55492", "1c55492deb0a4c999249ef7e809b17bb", duration="4m 20s"),
            J("nova-live-migration", "NODE_FAILURE", "9ca1c37", "9ca1c378adaa4e4f94dedca9d2a5a534", duration="0s",
              detail="Node request 300-0023456789 failed"),
            J("nova-multi-cell", "SKIPPED", None),
            J("openstack-tox-docs", "SUCCESS", "d0755c4", "d0755c423f644169af4d85555c1b6190", duration="6m 14s"),
        ),
        buildset="https://zuul.opendev.org/t/openstack/buildset/241a02adf8b740218d521daa92bfed6b",
    ),
    ("zuul-v3.jsonl", 3): R(
        "712345", "2", "openstack/neutron", "stable/2023.1", "check", "zuul", 1590001234,
        (
            J("openstack-tox-py37", "FAILURE", "3b5d6e9", duration="7m 48s"),
            J("neutron-tempest-plugin-scenario-openvswitch", "ERROR", "4c1d2e3", voting=False, duration="55s"),
            J("openstack-tox-lower-constraints", "SUCCESS", "9e8d7c6", duration="3m 31s"),
        ),
    ),
    ("zuul-v3.jsonl", 4): R(
        "591234", "4", "openstack/oslo.messaging", "master", "check", "zuul", 1534001000,
        (
            J("openstack-tox-pep8", "FAILURE", "b7c8d9e", duration="3m 12s"),
            J("openstack-tox-py35", "SUCCESS", "a1b2c3d", duration="6m 40s"),
        ),
    ),
    ("zuul-v3.jsonl", 5): R(
        "923456", "1", "openstack/kolla", "master", "check-arm64", "zuul", 1715004321,
        (
            J("kolla-build-debian-arm64", "DISK_FULL", "e56f448", "e56f4480c3024a008c7c356a927732c6", False, "1h 12m 00s"),
            J("kolla-ansible-debian-arm64", "LOST", "f2c4015", "f2c4015990484c49aedc9cac02690e03", False, "20m 05s"),
            J("kolla-build-centos-arm64", "CANCELED", "766b360", "766b360a4b104966b6fa28c811858cf7", False),
            J("kolla-tox-py310", "MERGER_FAILURE", None),
            J("kolla-ansible-upgrade", "ABORTED", "d7982cc", "d7982cc7db8143bfa2592fa9ea0c7e4e", duration="1m 02s"),
            J("kolla-config-check", "CONFIG_ERROR", None, detail="Unknown projects: openstack/kolla-foo"),
            J("kolla-ansible-ubuntu", "ERROR", "eccec3b", "eccec3bf5bd7422c8819e7fd30e69622", duration="25s",
              detail="Project openstack/kolla-ansible does not have the default branch master"),
            J("kolla-publish-dry-run", "Image push failed, see logs", "d2ebe25", "d2ebe2593f6f4cf3aa0bf8a68c63e2ff",
              duration="9m 09s"),
        ),
        buildset="https://zuul.opendev.org/t/openstack/buildset/1ec768fdbe134c1fb788fd809f280775",
    ),
    ("zuul-v3.jsonl", 6): IGNORED,  # Build succeeded (gate pipeline)
    ("zuul-v3.jsonl", 7): IGNORED,  # Starting check jobs.
    ("zuul-v3.jsonl", 8): IGNORED,  # Merge Failed.
    ("zuul-v3.jsonl", 9): IGNORED,  # third-party CI that is not configured
    ("zuul-v3.jsonl", 10): IGNORED,  # human quoting with ">"
    ("zuul-v3.jsonl", 11): IGNORED,  # vote without a message
    ("zuul-v3.jsonl", 12): IGNORED,  # patchset-created
    ("zuul-v3.jsonl", 13): IGNORED,  # ref-updated (tag)
    ("zuul-v3.jsonl", 14): IGNORED,  # change-merged
    ("zuul-v3.jsonl", 15): R(
        "912345", "3", "openstack/nova", "master", "check", "zuul", 1712100000,
        (J("nova-tox-functional-py311", "FAILURE", "54fdc0c", "54fdc0cf01e645e891cb12a39bc83f08", duration="25m 50s"),),
    ),
    # --- malformed: each line must raise EventParseError -----------------------
    **{("malformed.jsonl", n): ERROR for n in range(1, 14)},
}


def _fixture_lines() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            out.append((path.name, n, line))
    return out


def test_every_fixture_line_has_an_expectation() -> None:
    keys = {(name, n) for name, n, _ in _fixture_lines()}
    assert keys == set(EXPECTED), "fixture files and EXPECTED table disagree"
    assert len(keys) >= 35


@pytest.mark.parametrize(("name", "lineno", "line"), _fixture_lines(), ids=lambda v: str(v)[:30])
def test_fixture_event(name: str, lineno: int, line: str) -> None:
    expected = EXPECTED[(name, lineno)]
    if expected == ERROR:
        with pytest.raises(EventParseError):
            parse_event(parse_line(line))
        return
    report = parse_event(parse_line(line))
    if expected is None:
        assert report is None
        return
    assert isinstance(expected, R)
    assert report is not None
    assert (report.change, report.patchset, report.project, report.branch) == (
        expected.change, expected.patchset, expected.project, expected.branch,
    )
    assert report.pipeline == expected.pipeline
    assert report.author == expected.author
    assert report.url.endswith(expected.change)
    if expected.event_time is None:
        assert report.event_time is None
    else:
        assert report.event_time == datetime.fromtimestamp(expected.event_time, tz=UTC)
    assert report.buildset_url == expected.buildset
    got = [
        J(j.name, j.result, j.build_short_uuid, j.build_uuid, j.voting, j.duration, j.detail) for j in report.jobs
    ]
    assert got == list(expected.jobs)
    raw_comment = json.loads(line)["comment"]
    for job in report.jobs:
        assert job.url == "" or job.url in raw_comment
    assert report.comment_id.startswith(f"{expected.change},{expected.patchset},")


# -- specific behaviours -------------------------------------------------------


def _load(name: str, lineno: int) -> dict[str, Any]:
    return parse_line((FIXTURES / name).read_text(encoding="utf-8").splitlines()[lineno - 1])


def test_failed_and_voting_failed_jobs() -> None:
    report = parse_event(_load("zuul-v3.jsonl", 1))
    assert report is not None
    assert [j.name for j in report.failed_jobs()] == ["tempest-full-py3", "nova-next"]
    assert [j.name for j in report.voting_failed_jobs()] == ["tempest-full-py3"]
    assert [j.name for j in report.voting_failed_jobs(("FAILURE", "POST_FAILURE"))] == [
        "tempest-full-py3",
        "nova-tox-py311",
    ]
    assert {j.name for j in report.failed_jobs(FAILED_RESULTS)} == {
        "tempest-full-py3",
        "nova-tox-py311",
        "nova-grenade-multinode",
        "nova-next",
    }


def test_ci_users_are_configurable_and_case_insensitive() -> None:
    third_party = _load("zuul-v3.jsonl", 9)
    assert parse_event(third_party) is None
    report = parse_event(third_party, ci_users=("IBM-ZVM-CI",))
    assert report is not None and [j.build_short_uuid for j in report.jobs] == ["abcdef0"]
    # the default accounts are no longer CI accounts once the list is replaced
    assert parse_event(_load("zuul-v3.jsonl", 1), ci_users=("ibm-zvm-ci",)) is None


def test_old_event_author_display_name_is_used_without_username() -> None:
    event = _load("zuul-v2-jenkins.jsonl", 2)
    assert "username" not in event["author"]
    assert parse_event(event, ci_users=("jenkins",)) is not None
    assert parse_event(event, ci_users=("zuul",)) is None


def test_numbers_as_int_or_string_give_the_same_report() -> None:
    event = _load("zuul-v3.jsonl", 1)
    as_strings = json.loads(json.dumps(event))
    as_strings["change"]["number"] = str(event["change"]["number"])
    as_strings["patchSet"]["number"] = str(event["patchSet"]["number"])
    assert parse_event(event) == parse_event(as_strings)


def test_comment_id_is_stable_and_distinguishes_builds() -> None:
    event = _load("zuul-v3.jsonl", 1)
    a = parse_event(event)
    reordered = dict(reversed(list(event.items())))
    b = parse_event(reordered)
    assert a is not None and b is not None and a.comment_id == b.comment_id
    # a recheck of the same patch set (new build uuids) is a different report
    rechecked = json.loads(json.dumps(event))
    rechecked["comment"] = rechecked["comment"].replace("0dbfe52fc162484298c35afec28f5ecb", "1" * 32)
    c = parse_event(rechecked)
    assert c is not None and c.comment_id != a.comment_id
    assert c.comment_id.split(",")[:2] == a.comment_id.split(",")[:2]


def test_pipeline_from_log_url_layout_even_when_name_unknown() -> None:
    event = _load("zuul-v2-jenkins.jsonl", 1)
    event["comment"] = event["comment"].replace("/3/gate/", "/3/gate-tripleo/")
    report = parse_event(event)
    assert report is not None and report.pipeline == "gate-tripleo"


def test_pipeline_from_known_name_when_layout_differs() -> None:
    event = _load("zuul-v3.jsonl", 9)
    report = parse_event(event, ci_users=("ibm-zvm-ci",))
    assert report is not None and report.pipeline is None  # .../logs/912345/3/abcdef0: no pipeline anywhere
    event["comment"] = event["comment"].replace("/logs/912345/3/", "/logs/gate/912345/")
    report = parse_event(event, ci_users=("ibm-zvm-ci",))
    assert report is not None and report.pipeline == "gate"


def test_header_pipeline_wins_over_url() -> None:
    event = _load("zuul-v3.jsonl", 4)  # header says check; URLs say check
    event["comment"] = event["comment"].replace("(check pipeline)", "(gate pipeline)")
    report = parse_event(event)
    assert report is not None and report.pipeline == "gate"


def test_short_uuid_is_not_the_change_number() -> None:
    # a 7-digit change number is valid hex; the build id is the element after the job name
    event = _load("zuul-v2-jenkins.jsonl", 1)
    event["change"]["number"] = "1234567"
    event["comment"] = event["comment"].replace("/45/12345/", "/67/1234567/")
    report = parse_event(event)
    assert report is not None
    assert [j.build_short_uuid for j in report.jobs] == ["8c1f2a0", "04102a5", "d4e5f6a", "1a2b3c4"]
    assert report.pipeline == "gate"


def test_duration_seconds() -> None:
    job = FailedJob("j", "", "FAILURE", None, None, True, "1h 02m 03s")
    assert job.duration_seconds == 3723
    assert FailedJob("j", "", "FAILURE", None, None, True, "45s").duration_seconds == 45
    assert FailedJob("j", "", "FAILURE", None, None, True, None).duration_seconds is None


def test_build_failed_without_job_lines_is_not_a_report(caplog: pytest.LogCaptureFixture) -> None:
    event = _load("zuul-v3.jsonl", 1)
    event["comment"] = "Patch Set 3: Verified-1\n\nBuild failed (check pipeline).\n\nUnknown configuration error"
    with caplog.at_level("WARNING", logger="elastic_recheck.core.events"):
        assert parse_event(event) is None
    assert "no job line" in caplog.text


def test_nameless_jenkins_job_lines() -> None:
    event = _load("zuul-v3.jsonl", 9)
    event["comment"] = (
        "Build failed (check pipeline).\n\n- https://ci.example.com/job/tn-review/22579/ : FAILURE in 2m 07s\n"
        "- https://ci.example.com/job/tn-lint/3424/ : UNSTABLE\n"
    )
    report = parse_event(event, ci_users=("ibm-zvm-ci",))
    assert report is not None
    assert [(j.name, j.result, j.url) for j in report.jobs] == [
        ("tn-review", "FAILURE", "https://ci.example.com/job/tn-review/22579/"),
        ("tn-lint", "UNSTABLE", "https://ci.example.com/job/tn-lint/3424/"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "not an object"),
        ("42", "not an object"),
        (")]}'", "invalid JSON"),
        ("[" * 100000, "invalid JSON"),
    ],
)
def test_parse_line_errors(line: str, reason: str) -> None:
    with pytest.raises(EventParseError, match=reason):
        parse_line(line)


def test_parse_line_accepts_bytes_and_unicode() -> None:
    assert parse_line(b'{"type":"x","comment":"caf\xc3\xa9"}\n') == {"type": "x", "comment": "café"}
    with pytest.raises(EventParseError):
        parse_line(b'{"type":"\xff"}')


def test_parse_event_rejects_non_objects() -> None:
    for value in ([], "comment-added", 3, None):
        with pytest.raises(EventParseError):
            parse_event(value)  # type: ignore[arg-type]


# -- real recorded events (../shared/data) -------------------------------------

_PATCHSET_PREFIX = re.compile(r"^Patch Set \d+:[^\n]*\n+")


def _shared_events(shared_data: Path) -> list[tuple[str, int, str]]:
    events_dir = shared_data / "gerrit-events"
    if not events_dir.is_dir():
        pytest.skip(f"../shared/data not present: {events_dir} holds the recorded Gerrit events")
    out = []
    for path in sorted(events_dir.iterdir()):
        if path.is_file() and path.suffix in (".jsonl", ".txt"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                out.append((path.name, n, line))
    return out


def _oracle(event: Any) -> str:
    """An independent, simpler reading of what the parser must decide."""
    if not isinstance(event, dict) or event.get("type") != "comment-added":
        return "ignored"
    author = event.get("author") or {}
    if (author.get("username") or author.get("name") or "").lower() not in ("zuul", "jenkins"):
        return "ignored"
    text = _PATCHSET_PREFIX.sub("", event.get("comment") or "", count=1)
    if not text.startswith("Build failed"):
        return "ignored"
    if "change" not in event or "patchSet" not in event:
        return "error"
    return "report"


def test_shared_recorded_events(shared_data: Path) -> None:
    """``shared_data`` (tests/conftest.py) skips with a reason when ../shared/data is absent."""
    lines = _shared_events(shared_data)
    counts = {"ignored": 0, "error": 0, "report": 0}
    for name, n, line in lines:
        where = f"{name}:{n}"
        try:
            event = parse_line(line)
        except EventParseError:
            assert name.endswith(".txt"), f"{where}: recorded JSON line rejected"
            counts["error"] += 1
            continue
        expected = _oracle(event)
        if expected == "error":
            with pytest.raises(EventParseError):
                parse_event(event)
            counts["error"] += 1
            continue
        report = parse_event(event)
        if expected == "ignored":
            assert report is None, where
            counts["ignored"] += 1
            continue
        assert isinstance(report, FailureReport), where
        counts["report"] += 1
        job_lines = [ln for ln in event["comment"].splitlines() if ln.startswith("- ")]
        assert len(report.jobs) == len(job_lines), where
        for job, raw in zip(report.jobs, job_lines, strict=True):
            name_in_line, url, _, result = raw[2:].split(" ")[:4]
            assert (job.name, job.url, job.result) == (name_in_line, url, result), where
            assert job.voting == (not raw.endswith("(non-voting)")), where
            # old log URLs: .../<pipeline>/<job>/<uuid7>[/...]
            segments = url.split("/")
            assert job.build_short_uuid == segments[segments.index(job.name) + 1], where
            assert report.pipeline == segments[segments.index(job.name) - 1], where
        assert report.change == str(event["change"]["number"])
        assert report.patchset == str(event["patchSet"]["number"])
        assert report.failed_jobs(), f"{where}: a failed build without a failed job"
    # README: 4 "Build failed" reports with a change, 1 without, 4 invalid JSON lines
    assert counts["report"] == 4
    assert counts["error"] == 5
    assert counts["ignored"] == len(lines) - 9


# -- fuzzing -----------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

_job_line = st.builds(
    lambda name, url, result, tail: f"- {name} {url} : {result}{tail}",
    st.text(alphabet="abcdefgh-_.0123456789 ", min_size=0, max_size=20),
    st.one_of(
        st.just(ZB + "0dbfe52fc162484298c35afec28f5ecb"),
        st.text(max_size=40).map(lambda t: "http://h/" + t),
        st.text(max_size=20),
    ),
    st.sampled_from(["FAILURE", "SUCCESS", "POST_FAILURE", "", "weird result", " : "]),
    st.sampled_from(["", " in 1h 02m 03s", " in 5s (non-voting)", " (non-voting)", " in", " in 99999999999h 1s"]),
)

_comment = st.builds(
    lambda prefix, header, lines: prefix + header + "\n\n" + "\n".join(lines),
    st.sampled_from(["", "Patch Set 3: Verified-1\n\n", "Patch Set x:\n", "(2 comments)\n\n"]),
    st.sampled_from(["Build failed.", "Build failed (check pipeline).", "Build failed (", "build FAILED ()", "x"]),
    st.lists(_job_line, max_size=5),
)

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.floats(), _json)

_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["comment-added", "patchset-created"]) | st.text(max_size=5)},
    optional={
        "author": st.one_of(st.fixed_dictionaries({"username": st.sampled_from(["zuul", "jenkins", "x"])}), _json),
        "comment": st.one_of(_comment, _json),
        "change": st.one_of(
            st.fixed_dictionaries({"number": _scalar}, optional={"project": _scalar, "branch": _scalar, "url": _scalar}),
            _json,
        ),
        "patchSet": st.one_of(st.fixed_dictionaries({"number": _scalar}), _json),
        "eventCreatedOn": _scalar,
        "project": _scalar,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _event))
def test_fuzz_parse_event_only_raises_event_parse_error(event: Any) -> None:
    try:
        result = parse_event(event)
    except EventParseError:
        return
    assert result is None or isinstance(result, FailureReport)
    if result is not None:
        assert result.jobs and result.change.isdigit() and result.patchset.isdigit()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_fuzz_parse_line_only_raises_event_parse_error(line: str | bytes) -> None:
    try:
        assert isinstance(parse_line(line), dict)
    except EventParseError:
        pass


def test_short_uuid_follows_the_job_name_in_deep_log_urls() -> None:
    # a docs build whose published path ends in a hex-looking directory
    event = _load("zuul-v2-jenkins.jsonl", 1)
    event["comment"] = event["comment"].replace("/1a2b3c4/doc/build/html/", "/1a2b3c4/doc/build/html/facade1/")
    report = parse_event(event)
    assert report is not None and report.jobs[3].build_short_uuid == "1a2b3c4"

"""elastic_recheck.adapters.gerrit (stream, reviewer, SSH plumbing) against the SSH Gerrit fake, driving the real gerritlib/paramiko client."""

from __future__ import annotations

import gzip
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import gerritlib.gerrit  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer, strip_xssi
from elastic_recheck.adapters.gerrit.ssh import quote_command
from elastic_recheck.adapters.gerrit.stream import GerritEventStream, backoff_delays
from elastic_recheck.bot.replay import replay_events
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.errors import EventParseError, GerritError
from elastic_recheck.core.events import parse_event, parse_line
from elastic_recheck.core.gerrit_query import SYNTHESIZED_KEY, events_from_query
from tests.fixtures.gerrit_server import (
    FakeGerritRest,
    FakeGerritServer,
    gerrit_config_for,
    gerrit_split,
    make_keys,
)

# gerritlib uses paramiko's WarningPolicy: every connection to the fake's fresh host key warns.
pytestmark = pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key:UserWarning")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
TRICKY_MESSAGE = (
    "elastic-recheck: I noticed Zuul failed, I think you hit bug(s):\n\n"
    "- tempest-full-py3: https://bugs.launchpad.net/bugs/1253896 \"SSH timeout\" & 'volume' <detach>\n"
    "  $(rm -rf /) `id` ${HOME} \\n \\\\ \" ' ;|& > /tmp/x\n"
    "\tTab, trailing spaces   \n"
    "Non-ASCII: café — 日本語 — 🚑\n"
    "--message -m --label Verified=+2\n"
    "\n"
    "recheck"
)


def _fixture_event(name: str, lineno: int) -> dict[str, Any]:
    return parse_line((FIXTURES / name).read_text(encoding="utf-8").splitlines()[lineno - 1])


def _stream(server: FakeGerritServer, **kwargs: Any) -> GerritEventStream:
    kwargs.setdefault("backoff_initial", 0.02)
    kwargs.setdefault("backoff_max", 0.1)
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("query_timeout", 5.0)
    kwargs.setdefault("catch_up_margin", 0.0)
    return GerritEventStream(server.host, server.user, server.port, str(server.keys.client_key), **kwargs)


def _wait(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def stream(gerrit_server: FakeGerritServer) -> Any:
    s = _stream(gerrit_server).start()
    assert s.wait_connected(5) and gerrit_server.wait_for_streams(1)
    yield s
    s.stop()


# -- quoting ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1), min_size=1, max_size=4))
def test_quote_command_round_trips_through_gerrits_splitter(argv: list[str]) -> None:
    assert gerrit_split(quote_command(argv)) == argv


def test_quote_command_refuses_words_gerrit_would_drop() -> None:
    with pytest.raises(ValueError):
        quote_command(["gerrit", "review", "1,1", "--message", ""])


# -- the gerritlib quirk, and the stream that avoids it --------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_gerritlib_watcher_leaves_second_event_of_one_read_stuck(gerrit_server: FakeGerritServer) -> None:
    """Documents why GerritEventStream reads the channel itself (gerritlib 0.11 behaviour)."""
    g = gerritlib.gerrit.Gerrit(
        gerrit_server.host, gerrit_server.user, gerrit_server.port, str(gerrit_server.keys.client_key)
    )
    g.startWatching(connection_attempts=1, retry_delay=0)
    assert gerrit_server.wait_for_streams(1)
    gerrit_server.emit_raw(b'{"type":"first"}\n{"type":"second"}\n')
    assert g.event_queue.get(timeout=5)["type"] == "first"
    with pytest.raises(queue.Empty):
        g.event_queue.get(timeout=0.5)  # "second" is buffered in paramiko, poll() does not fire again
    gerrit_server.emit({"type": "third"})
    assert g.event_queue.get(timeout=5)["type"] == "second"  # only now
    # The watcher thread has no stop(); with connection_attempts=1 it dies (raising) once it cannot reconnect.
    gerrit_server.refuse_connections(True)
    gerrit_server.drop_connections()
    g.watcher_thread.join(5)
    assert not g.watcher_thread.is_alive()


def test_two_events_in_one_read_arrive_at_once(gerrit_server: FakeGerritServer, stream: GerritEventStream) -> None:
    gerrit_server.emit_raw(b'{"type":"first"}\n{"type":"second"}\n')
    first = stream.get(timeout=5)
    second = stream.get(timeout=1)
    assert first == {"type": "first"}
    assert second == {"type": "second"}


def test_lines_split_across_writes_and_malformed_lines(
    gerrit_server: FakeGerritServer, stream: GerritEventStream
) -> None:
    event = _fixture_event("zuul-v3.jsonl", 1)
    data = (json.dumps(event) + "\n").encode()
    gerrit_server.emit_raw(data[:100])
    assert stream.get(timeout=0.3) is None  # incomplete line: nothing yet
    gerrit_server.emit_raw(data[100:] + b"{not json\n\n[1,2]\n")
    assert stream.get(timeout=5) == event
    gerrit_server.emit({"type": "after-garbage"})
    assert stream.get(timeout=5) == {"type": "after-garbage"}
    assert stream.stats.malformed == 2


def test_stream_event_becomes_a_failure_report(gerrit_server: FakeGerritServer, stream: GerritEventStream) -> None:
    for name, lineno in (("zuul-v3.jsonl", 12), ("zuul-v3.jsonl", 6), ("zuul-v3.jsonl", 2)):
        gerrit_server.emit(_fixture_event(name, lineno))
    reports = []
    for _ in range(3):
        event = stream.get(timeout=5)
        assert event is not None
        reports.append(parse_event(event, ("zuul",)))
    assert reports[:2] == [None, None]
    report = reports[2]
    assert report is not None
    assert (report.change, report.patchset, report.pipeline) == ("912345", "7", "gate")
    assert [j.name for j in report.voting_failed_jobs()] == ["tempest-integrated-compute"]
    assert stream.last_event_time == 1712700000.0  # the newest eventCreatedOn seen (line 6)


@pytest.mark.timeout(60)
def test_iteration_ends_after_stop(gerrit_server: FakeGerritServer) -> None:
    s = _stream(gerrit_server).start()
    assert s.wait_connected(5) and gerrit_server.wait_for_streams(1)
    got: list[dict[str, Any]] = []
    consumer = threading.Thread(target=lambda: got.extend(s))
    consumer.start()
    gerrit_server.emit({"type": "one"})
    assert _wait(lambda: got == [{"type": "one"}])
    s.stop()
    consumer.join(30)
    assert not consumer.is_alive()
    assert not s.connected
    assert _wait(lambda: gerrit_server.active_streams == 0)


# -- reconnects -------------------------------------------------------------------------


def test_reconnects_after_the_server_drops_the_connection(
    gerrit_server: FakeGerritServer, stream: GerritEventStream
) -> None:
    gerrit_server.emit({"type": "before", "eventCreatedOn": 1712000000})
    assert stream.get(timeout=5) == {"type": "before", "eventCreatedOn": 1712000000}
    gerrit_server.drop_connections()
    assert gerrit_server.wait_for_streams_total(2)
    assert stream.wait_connected(5)
    gerrit_server.emit({"type": "after"})
    assert stream.get(timeout=5) == {"type": "after"}
    assert stream.stats.disconnects == 1
    assert stream.stats.connects == 2
    assert len(stream.stats.gaps) == 1
    # the gap was queried for missed comments
    assert len(gerrit_server.queries) == 1
    call = gerrit_server.queries[0]
    assert {"--comments", "--patch-sets"} <= set(call.options)
    assert "status:open" in call.query and "-age:" in call.query


def test_refused_then_accepted_with_capped_exponential_backoff(gerrit_server: FakeGerritServer) -> None:
    gerrit_server.refuse_connections(True)
    s = _stream(gerrit_server, backoff_initial=0.02, backoff_max=0.08).start()
    try:
        assert _wait(lambda: s.stats.connect_failures >= 5)
        assert not s.connected
        assert s.stats.backoffs[:5] == [0.02, 0.04, 0.08, 0.08, 0.08]
        gerrit_server.refuse_connections(False)
        assert s.wait_connected(5)
        assert gerrit_server.wait_for_streams(1)
        gerrit_server.emit({"type": "hello"})
        assert s.get(timeout=5) == {"type": "hello"}
    finally:
        s.stop()


def test_backoff_resets_after_a_session_that_delivered_data(gerrit_server: FakeGerritServer) -> None:
    s = _stream(gerrit_server, backoff_initial=0.02, backoff_max=0.5, stable_after=60).start()
    try:
        for i in range(3):
            assert gerrit_server.wait_for_streams_total(i + 1)
            gerrit_server.emit({"type": f"e{i}"})
            assert s.get(timeout=5) == {"type": f"e{i}"}
            gerrit_server.drop_connections()
        assert gerrit_server.wait_for_streams_total(4)
        assert s.stats.backoffs[:3] == [0.02, 0.02, 0.02]
    finally:
        s.stop()


def test_idle_timeout_reconnects_a_silent_stream(gerrit_server: FakeGerritServer) -> None:
    s = _stream(gerrit_server, idle_timeout=0.2).start()
    try:
        assert gerrit_server.wait_for_streams_total(2)  # reconnected without the server dropping anything
        assert s.stats.disconnects >= 1
    finally:
        s.stop()


def test_stream_refused_by_gerrit_backs_off_and_logs_the_reason(
    gerrit_server: FakeGerritServer, caplog: pytest.LogCaptureFixture
) -> None:
    gerrit_server.stream_error = "fatal: elastic-recheck does not have \"Stream Events\" capability.\n"
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.adapters.gerrit.stream"):
        s = _stream(gerrit_server, backoff_initial=0.02, backoff_max=0.08).start()
        try:
            assert _wait(lambda: len(s.stats.backoffs) >= 4)
            assert s.stats.backoffs[:4] == [0.02, 0.04, 0.08, 0.08]
            assert s.stats.events == 0
        finally:
            s.stop()
    assert "Stream Events" in caplog.text


# -- catch-up after a gap ---------------------------------------------------------------


def _change_record(comments: list[dict[str, Any]]) -> dict[str, Any]:
    live = _fixture_event("zuul-v3.jsonl", 1)
    change = dict(live["change"])
    change.update(open=True, lastUpdated=int(time.time()))
    change["patchSets"] = [
        {**live["patchSet"], "number": 2, "revision": "0" * 40, "ref": "refs/changes/45/912345/2"},
        {**live["patchSet"], "approvals": [{"type": "Verified", "value": "-1"}]},
    ]
    change["comments"] = comments
    return change


def test_catch_up_recovers_missed_ci_comments(gerrit_server: FakeGerritServer, stream: GerritEventStream) -> None:
    live = _fixture_event("zuul-v3.jsonl", 1)
    gerrit_server.emit(live)
    assert stream.get(timeout=5) == live
    t0 = time.time()
    missed_text = live["comment"].replace("0dbfe52fc162484298c35afec28f5ecb", "c" * 32)
    zuul = live["author"]
    human = {"name": "Sean", "username": "sean-k-mooney"}
    gerrit_server.query_results = [
        _change_record(
            [
                {"timestamp": int(t0) - 7200, "reviewer": zuul, "message": "Patch Set 2: Verified-1\n\nBuild failed (check pipeline).\n\n- x https://h/x/abcdef1/ : FAILURE in 1s"},
                {"timestamp": int(t0) - 1, "reviewer": zuul, "message": live["comment"]},  # delivered live already
                {"timestamp": int(t0) + 2, "reviewer": human, "message": "Patch Set 3:\n\nrecheck"},
                {"timestamp": int(t0) + 3, "reviewer": zuul, "message": missed_text},
            ]
        )
    ]
    gerrit_server.drop_connections()
    recovered = stream.get(timeout=5)
    assert recovered is not None and recovered[SYNTHESIZED_KEY] == "gerrit-query"
    report = parse_event(recovered)
    assert report is not None
    assert (report.change, report.patchset, report.project) == ("912345", "3", "openstack/nova")
    assert next(j.build_uuid for j in report.failed_jobs()) == "c" * 32
    assert stream.get(timeout=0.3) is None  # nothing else: old, human and already-seen comments skipped
    assert stream.stats.caught_up == 1
    # the same comment arriving late on the new live stream is not delivered twice
    gerrit_server.emit({**live, "comment": missed_text})
    gerrit_server.emit({"type": "ref-updated"})
    assert stream.get(timeout=5) == {"type": "ref-updated"}
    assert stream.stats.duplicates == 1


def test_catch_up_follows_query_pagination(gerrit_server: FakeGerritServer, stream: GerritEventStream) -> None:
    live = _fixture_event("zuul-v3.jsonl", 1)
    gerrit_server.emit({"type": "tick"})
    assert stream.get(timeout=5) is not None
    t0 = int(time.time())
    records = []
    for n in range(3):
        rec = _change_record([{"timestamp": t0 + 5 + n, "reviewer": live["author"], "message": f"{live['comment']}\n#{n}"}])
        rec["number"] = 912345 + n
        records.append(rec)
    gerrit_server.query_results = records
    gerrit_server.query_page_size = 2
    gerrit_server.drop_connections()
    got = [stream.get(timeout=5) for _ in range(3)]
    assert [e["change"]["number"] for e in got if e] == [912345, 912346, 912347]
    assert [q.start for q in gerrit_server.queries] == [0, 2]


def test_catch_up_failure_is_logged_and_streaming_continues(
    gerrit_server: FakeGerritServer, stream: GerritEventStream, caplog: pytest.LogCaptureFixture
) -> None:
    gerrit_server.query_error = (1, "fatal: query disabled\n")
    gerrit_server.emit({"type": "tick"})
    assert stream.get(timeout=5) is not None
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.adapters.gerrit.stream"):
        gerrit_server.drop_connections()
        assert gerrit_server.wait_for_streams_total(2)
        gerrit_server.emit({"type": "live"})
        assert stream.get(timeout=5) == {"type": "live"}
    assert stream.stats.catch_up_failures == 1
    assert "missed events are lost" in caplog.text and "query disabled" in caplog.text


def test_catch_up_off_only_logs_the_gap(
    gerrit_server: FakeGerritServer, caplog: pytest.LogCaptureFixture
) -> None:
    s = _stream(gerrit_server, catch_up=False).start()
    try:
        assert gerrit_server.wait_for_streams(1)
        with caplog.at_level(logging.WARNING, logger="elastic_recheck.adapters.gerrit.stream"):
            gerrit_server.drop_connections()
            assert gerrit_server.wait_for_streams_total(2) and s.wait_connected(5)
            assert _wait(lambda: len(s.stats.gaps) == 1)
        assert gerrit_server.queries == []
        assert "not recovered" in caplog.text
    finally:
        s.stop()


def test_since_catches_up_on_first_connection(gerrit_server: FakeGerritServer) -> None:
    live = _fixture_event("zuul-v3.jsonl", 1)
    now = int(time.time())
    gerrit_server.query_results = [_change_record([{"timestamp": now - 30, "reviewer": live["author"], "message": live["comment"]}])]
    s = _stream(gerrit_server, since=now - 600.0).start()
    try:
        event = s.get(timeout=5)
        assert event is not None and event[SYNTHESIZED_KEY] == "gerrit-query"
        age = int(gerrit_server.queries[0].query.split("-age:")[1].rstrip("s"))
        assert 600 <= age <= 700
    finally:
        s.stop()


def test_events_from_query_is_pure_and_filters() -> None:
    zuul = {"name": "Zuul", "username": "zuul"}
    record = {
        "number": "5", "project": "p", "branch": "master", "url": "https://r/5",
        "patchSets": [{"number": "1", "approvals": [1]}, {"number": "2", "comments": [1]}],
        "comments": [
            {"timestamp": 100, "reviewer": zuul, "message": "Patch Set 1:\n\nBuild failed."},
            {"timestamp": 300, "reviewer": zuul, "message": "no prefix: latest patch set"},
            {"timestamp": 200, "reviewer": {"name": "Jenkins"}, "message": "Patch Set 1:\n\nold author"},
            {"timestamp": 250, "reviewer": {"username": "human"}, "message": "Patch Set 2:\n\nrecheck"},
            {"timestamp": "bad", "reviewer": zuul, "message": "x"},
        ],
    }
    events = events_from_query([record, {"type": "stats", "rowCount": 1}], since=150, ci_users=("zuul", "jenkins"))
    assert [(e["comment"], e["patchSet"]) for e in events] == [
        ("Patch Set 1:\n\nold author", {"number": "1"}),
        ("no prefix: latest patch set", {"number": "2"}),
    ]
    assert all(e["type"] == "comment-added" and e["change"]["number"] == "5" for e in events)
    assert len(events_from_query([record], since=0, ci_users=None)) == 4


# -- review comments over SSH -------------------------------------------------------------


def test_review_message_arrives_byte_exact_over_ssh(gerrit_server: FakeGerritServer) -> None:
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer:
        assert reviewer.via == "ssh"
        assert reviewer.review("912345", 3, TRICKY_MESSAGE) == {}
        reviewer.review(912345, "4", "-starts with a dash", project="openstack/nova")
    first, second = gerrit_server.reviews
    assert (first.change, first.patchset, first.message) == ("912345", "3", TRICKY_MESSAGE)
    assert first.labels == [] and second.labels == []  # never votes
    assert (second.message, second.project) == ("-starts with a dash", "openstack/nova")


@pytest.fixture
def ssh_reviewer(gerrit_server: FakeGerritServer) -> Any:
    reviewer = GerritReviewer.from_config(gerrit_config_for(gerrit_server))
    yield reviewer
    reviewer.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(str.strip))
def test_review_round_trips_arbitrary_text(
    gerrit_server: FakeGerritServer, ssh_reviewer: GerritReviewer, message: str
) -> None:
    gerrit_server.reviews.clear()
    ssh_reviewer.review(1, 1, message)
    assert [rv.message for rv in gerrit_server.reviews] == [message]


def test_gerritlib_review_does_not_quote_messages(gerrit_server: FakeGerritServer) -> None:
    """Why GerritReviewer builds the command itself: gerritlib 0.11 wraps the message in bare quotes."""
    g = gerritlib.gerrit.Gerrit(gerrit_server.host, gerrit_server.user, gerrit_server.port,
                                str(gerrit_server.keys.client_key), connection_attempts=1, retry_delay=0)
    g.review("openstack/nova", "912345,3", 'the "quoted" word')
    assert gerrit_server.reviews[0].message != 'the "quoted" word'


def test_review_reconnects_after_the_connection_dropped(gerrit_server: FakeGerritServer) -> None:
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer:
        reviewer.review(1, 1, "first")
        gerrit_server.drop_connections()
        time.sleep(0.1)
        reviewer.review(1, 1, "second")
    assert [r.message for r in gerrit_server.reviews] == ["first", "second"]
    assert gerrit_server.connections_total == 2


def test_review_rejected_by_gerrit_is_not_retryable(gerrit_server: FakeGerritServer) -> None:
    gerrit_server.review_error = (1, 'fatal: "912345,9" no such patch set\n')
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer, pytest.raises(GerritError) as err:
        reviewer.review(912345, 9, "hello")
    assert not err.value.retryable
    assert "no such patch set" in str(err.value)


@pytest.mark.timeout(60)
def test_review_timeout_is_retryable_and_the_reviewer_recovers(gerrit_server: FakeGerritServer) -> None:
    gerrit_server.review_delay = 2.0
    reviewer = GerritReviewer.from_config(gerrit_config_for(gerrit_server), timeout=0.3)
    try:
        with pytest.raises(GerritError) as err:
            reviewer.review(1, 1, "slow")
        assert err.value.retryable
        assert "no answer within 0.3 s" in str(err.value)
        gerrit_server.review_delay = 0.0
        reviewer.review(1, 1, "fast")
        assert _wait(lambda: [r.message for r in gerrit_server.reviews][-1:] == ["fast"])
    finally:
        reviewer.close()


def test_review_with_an_unknown_key_fails_without_retry(gerrit_server: FakeGerritServer, tmp_path: Path) -> None:
    stranger = make_keys(tmp_path / "stranger")
    cfg = gerrit_config_for(gerrit_server, key=str(stranger.client_key))
    with GerritReviewer.from_config(cfg) as reviewer, pytest.raises(GerritError) as err:
        reviewer.review(1, 1, "hello")
    assert not err.value.retryable
    assert gerrit_server.reviews == []


def test_review_connection_refused_is_retryable(gerrit_server: FakeGerritServer) -> None:
    gerrit_server.refuse_connections(True)
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer, pytest.raises(GerritError) as err:
        reviewer.review(1, 1, "hello")
    assert err.value.retryable


@pytest.mark.parametrize("change", ["abc", "0", "-1", "1,2", "", True])
def test_review_rejects_bad_change_numbers(gerrit_server: FakeGerritServer, change: Any) -> None:
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer, pytest.raises(ValueError):
        reviewer.review(change, 1, "hello")
    assert gerrit_server.commands == []


@pytest.mark.parametrize("message", [" \n", "", "nul \x00 byte", "lone \ud800 surrogate"])
def test_review_rejects_unsendable_messages(gerrit_server: FakeGerritServer, message: str) -> None:
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server)) as reviewer, pytest.raises(ValueError):
        reviewer.review(1, 1, message)
    assert gerrit_server.commands == []


# -- review comments over REST ------------------------------------------------------------


def test_review_over_rest(gerrit_server: FakeGerritServer, gerrit_rest: FakeGerritRest) -> None:
    cfg = gerrit_config_for(gerrit_server, gerrit_rest)
    with GerritReviewer.from_config(cfg) as reviewer:
        assert reviewer.via == "rest"
        result = reviewer.review(912345, 3, TRICKY_MESSAGE)
    assert result == {}  # the ")]}'" prefix was stripped before decoding
    (posted,) = gerrit_rest.reviews
    assert (posted.change, posted.revision, posted.message) == ("912345", "3", TRICKY_MESSAGE)
    assert set(posted.body) == {"message"}  # never votes
    assert gerrit_server.commands == []  # nothing went over SSH


def test_review_over_rest_with_tag(gerrit_rest: FakeGerritRest) -> None:
    reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user,
                              http_password=gerrit_rest.password, tag="autogenerated:elastic-recheck")
    reviewer.review(7, 1, "tagged")
    assert gerrit_rest.reviews[0].body == {"message": "tagged", "tag": "autogenerated:elastic-recheck"}


@pytest.mark.parametrize(
    ("status", "retryable", "rejected"),
    [(401, False, True), (403, False, True), (404, False, True), (409, False, True), (429, True, True),
     (500, True, True), (503, True, True), (502, True, False), (504, True, False)],
)
def test_rest_errors_map_to_gerrit_error(gerrit_rest: FakeGerritRest, status: int, retryable: bool,
                                         rejected: bool) -> None:
    """``rejected``: Gerrit answered, so nothing was stored and the bot may post
    again without asking; a proxy's 502/504 leaves that open."""
    if status == 401:
        reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user, http_password="wrong")
    else:
        gerrit_rest.fail_status = status
        reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user,
                                  http_password=gerrit_rest.password)
    with pytest.raises(GerritError) as err:
        reviewer.review(1, 1, "hello")
    assert err.value.retryable is retryable
    assert err.value.rejected is rejected
    assert str(status) in str(err.value)
    assert "wrong" not in str(err.value) and gerrit_rest.password not in str(err.value)


def test_rest_timeout_and_unreachable_are_retryable(gerrit_rest: FakeGerritRest) -> None:
    gerrit_rest.delay = 1.0
    reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user,
                              http_password=gerrit_rest.password, timeout=0.2)
    with pytest.raises(GerritError, match="no answer") as err:
        reviewer.review(1, 1, "hello")
    assert err.value.retryable
    dead = GerritReviewer("rest", url="http://127.0.0.1:9", http_password="x", timeout=1)
    with pytest.raises(GerritError) as err2:
        dead.review(1, 1, "hello")
    assert err2.value.retryable


def test_strip_xssi() -> None:
    assert strip_xssi(")]}'\n{\"a\": 1}") == '{"a": 1}'
    assert strip_xssi('{"a": 1}') == '{"a": 1}'


# -- config, backoff, replay ------------------------------------------------------------


def test_from_config(gerrit_server: FakeGerritServer) -> None:
    cfg = from_mapping({
        "gerrit": {"host": "review.example.org", "port": "29419", "user": "bot", "key": "/k", "comment_via": "rest"},
        "recheckwatch": {"ci_username": "zuul, third-party-ci"},
    })
    s = GerritEventStream.from_config(cfg)
    assert (s.host, s.port, s.user, s.keyfile, s.ci_users) == ("review.example.org", 29419, "bot", "/k",
                                                               ("zuul", "third-party-ci"))
    r = GerritReviewer.from_config(cfg)
    assert (r.via, r.url, r.http_user) == ("rest", "https://review.example.org", "bot")


def test_backoff_delays() -> None:
    gen = backoff_delays(0.5, 3.0)
    assert [next(gen) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        next(backoff_delays(0, 1))


def _write_replay(path: Path, compress: bool) -> None:
    good = _fixture_event("zuul-v3.jsonl", 2)
    lines = [
        json.dumps(good).encode(),
        b"",
        b"{truncated",
        b'{"type":"ref-updated"}',
        b"[1, 2]",
        b'{"type":"x","comment":"\xff\xfe"}',
        b'{"type":"last"}',
    ]
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_replay_events_yields_errors_for_malformed_lines(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("events.jsonl.gz" if compress else "events.jsonl")
    _write_replay(path, compress)
    items = list(replay_events(path))
    kinds = ["error" if isinstance(i, EventParseError) else i["type"] for i in items]
    assert kinds == ["comment-added", "error", "ref-updated", "error", "error", "last"]
    assert [str(i).split(": ")[0].rsplit(":", 1)[1] for i in items if isinstance(i, EventParseError)] == ["3", "5", "6"]
    report = parse_event(items[0])  # type: ignore[arg-type]
    assert report is not None and report.pipeline == "gate"


def test_replay_events_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    _write_replay(path, True)
    path.write_bytes(path.read_bytes()[:-12])
    items = list(replay_events(path))
    assert isinstance(items[-1], EventParseError) and "unreadable" in str(items[-1])
    assert items[0]["type"] == "comment-added"  # type: ignore[index]


def test_replay_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(replay_events(tmp_path / "absent.jsonl"))


def test_posted_over_rest_checks_our_account_patch_set_and_text(gerrit_rest: FakeGerritRest) -> None:
    """Settling an ambiguous REST post: the change's messages are read back and
    only ours, on that patch set, with that exact text, count."""
    reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user,
                              http_password=gerrit_rest.password)
    gerrit_rest.messages["4401"] = [{
        "id": "other", "author": {"_account_id": 1000001, "name": "Zuul"}, "date": "2026-11-24 04:00:00.000000000",
        "message": "Patch Set 2:\n\nsame words, another account", "_revision_number": 2,
    }]
    assert reviewer.posted(4401, 2, "same words, another account") is False
    assert reviewer.posted(4401, 2, TRICKY_MESSAGE) is False
    reviewer.review(4401, 2, TRICKY_MESSAGE)
    assert reviewer.posted(4401, 2, TRICKY_MESSAGE) is True
    assert reviewer.posted(4401, 3, TRICKY_MESSAGE) is False  # another patch set
    assert reviewer.posted(4401, 2, TRICKY_MESSAGE + " (edited)") is False
    gets = [path for method, path in gerrit_rest.requests if method == "GET"]
    assert gets.count("/a/accounts/self") == 1  # our account id is asked once and cached


def test_posted_over_rest_errors(gerrit_rest: FakeGerritRest) -> None:
    reviewer = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user,
                              http_password=gerrit_rest.password)
    assert reviewer.posted(4402, 1, "hello") is False  # a change with nothing of ours on it
    gerrit_rest.missing_changes.add("4403")
    with pytest.raises(GerritError, match="404") as missing:
        reviewer.posted(4403, 1, "hello")  # no such change
    assert missing.value.retryable is False
    gerrit_rest.fail_status = 503
    with pytest.raises(GerritError, match="503") as down:
        reviewer.posted(4402, 1, "hello")
    assert down.value.retryable is True
    wrong = GerritReviewer("rest", url=gerrit_rest.url, http_user=gerrit_rest.user, http_password="wrong")
    with pytest.raises(GerritError) as refused:
        wrong.posted(4402, 1, "hello")
    assert refused.value.retryable is False and "wrong" not in str(refused.value)

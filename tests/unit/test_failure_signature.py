"""Pure parts of failure signatures: normalization, keys, the claim rule, comment and IRC texts."""

from __future__ import annotations

from elastic_recheck.core.channels import IrcEvent, SignatureRef, format_negative, ordinal
from elastic_recheck.core.comments import JobOutcome, RecurringNote, format_comment
from elastic_recheck.core.error_lines import normalize
from elastic_recheck.core.signatures import FailureSignature, Recurring, signature_from_lines


def test_signature_normalizes_like_suggest_and_keeps_the_first_distinct_lines() -> None:
    bodies = [
        "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID 0123456789abcdef0123456789abcdef",
        "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID fedcba9876543210fedcba9876543210",
        "ERROR: volume 42 stuck in /tmp/tmpab12cd34/vol",
        "third distinct line 7",
        "fourth distinct line 8",
    ]
    sig = signature_from_lines(bodies, {"b.test", "a.test"})
    assert sig.lines == (normalize(bodies[0]), normalize(bodies[2]), normalize(bodies[3]))
    assert sig.tests == ("a.test", "b.test")
    # the same failure with other volatile parts has the same key; another test changes it
    again = signature_from_lines([b.replace("42", "43").replace("0123", "9999") for b in bodies], {"a.test", "b.test"})
    assert again.key == sig.key and len(sig.key) == 16
    assert signature_from_lines(bodies, {"a.test"}).key != sig.key
    assert FailureSignature().key == "" and FailureSignature().empty


def test_headline_prefers_the_exception_to_the_test_result_line() -> None:
    sig = FailureSignature(("{<NUM>} tempest.api.test_x [<DUR>] ... FAILED", "tempest.lib.exceptions.Conflict: boom"))
    assert sig.headline == "tempest.lib.exceptions.Conflict: boom"
    assert FailureSignature(("x ... FAILED",)).headline == "x ... FAILED"
    assert FailureSignature((), ("t.one",)).headline == "t.one"


def test_claim_needs_enough_other_changes_or_one_fewer_with_a_recheck_that_passed() -> None:
    assert not Recurring(builds=5, changes=1).claim(2)
    assert Recurring(builds=2, changes=2).claim(2)
    assert Recurring(builds=1, changes=1, flaky_changes=1).claim(2)
    assert not Recurring(builds=2, changes=2, flaky_changes=1).claim(4)
    assert not Recurring().claim(0) and not Recurring(flaky_changes=1).claim(1)


def test_comment_note_and_no_note() -> None:
    note = RecurringNote(builds=4, changes=3, line="Boom: <NUM> widgets", links=("https://l/1/", "https://l/2/", "https://l/3/"))
    text = format_comment([JobOutcome("job-a", recurring=note), JobOutcome("job-b")])
    assert "- job-a: unrecognized error\n  the same error was seen in 4 builds of 3 other changes in the last 24 hours: Boom: <NUM> widgets" in text
    assert "  e.g. https://l/1/\n  e.g. https://l/2/\n  this failure is probably not caused by this change\n- job-b: unrecognized error\n" in text
    assert "https://l/3/" not in text and "recheck" not in text.split("caused by this change")[1].split("\n\n")[0]
    plain = format_comment([JobOutcome("job-b")])
    assert "probably not" not in plain and "- job-b: unrecognized error" in plain


def test_negative_notice_carries_signature_and_cluster_size() -> None:
    event = IrcEvent(
        "negative", "openstack/nova", "https://review/1", "gate", {"job-a": [], "job-b": []},
        signatures={"job-a": SignatureRef("0123456789abcdef", "Boom: <NUM> widgets", 3)},
    )
    assert format_negative(event) == (
        "openstack/nova change: https://review/1 failed job-a, job-b in the gate queue with an unrecognized error "
        '(job-a signature 01234567 "Boom: <NUM> widgets", 3rd time in 24 h)'
    )
    plain = IrcEvent("negative", "p", "u", "gate", {"job-a": []})
    assert format_negative(plain) == "p change: u failed job-a in the gate queue with an unrecognized error"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]

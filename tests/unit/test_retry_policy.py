"""The cluster adapter's one retry policy (requests, msearch items and bulk documents alike)."""

from __future__ import annotations

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import MAX_BACKOFF, ClusterSettings, RetryPolicy


@pytest.mark.parametrize(
    ("status", "retried"),
    [(429, True), (500, True), (502, True), (503, True), (504, True), (507, True), (599, True),
     (400, False), (401, False), (403, False), (404, False), (409, False), (200, False), (None, False), (True, False)],
)
def test_statuses_tried_again(status: object, retried: bool) -> None:
    assert RetryPolicy.retryable_status(status) is retried


def test_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=8, backoff=1.0)
    assert policy.attempts == 9
    assert [policy.delay(a) for a in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF]


def test_the_backend_policy_follows_its_settings() -> None:
    backend = ElasticBackend(ClusterSettings(url="http://127.0.0.1:9", retries=2, backoff=0.25))
    assert backend.retry == RetryPolicy(retries=2, backoff=0.25)
    assert backend.retry.delay(1) == 0.5

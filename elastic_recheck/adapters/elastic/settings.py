"""How to reach a cluster: its settings, the retry policy and URL redaction."""

from __future__ import annotations

import re
from dataclasses import dataclass

from elastic_recheck.core.schema import (
    DEFAULT_MAPPING,
)

FLAVORS = ("elasticsearch", "opensearch", "cluster")

#: More days than this and the wildcard pattern is searched instead of a list
#: of daily indices (a long list would exceed the cluster's 4 KiB request-line
#: limit, ``http.max_initial_line_length``). The ``@timestamp`` range still
#: restricts the window.
MAX_DAILY_INDICES = 62

#: ES/OpenSearch cardinality is exact below this many distinct values and an
#: approximation (HyperLogLog++, typically within a few percent) above; 40000
#: is the largest threshold the clusters accept.
CARDINALITY_PRECISION = 40000

#: Page size of composite aggregations (``builds()``, ``indexed_files()``).
COMPOSITE_PAGE = 1000

#: Distinct ``build_status`` values asked for in each histogram bucket (there
#: are about ten: SUCCESS, FAILURE, POST_FAILURE, TIMED_OUT, ...).
MAX_STATUSES = 100

#: Upper bound of one backoff sleep, in seconds.
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """The cluster adapter's one retry policy, for every request it sends.

    A request that fails with a connection error, a timeout, 429 or any 5xx
    is sent again; so are the items of an answer the cluster refused with
    429 or 5xx (``_msearch`` queries, ``_bulk`` documents: only those items).
    ``retries`` times at most (``[data_source] retries``), sleeping
    ``backoff`` seconds (1 s) before the first retry, doubling each time,
    never more than :data:`MAX_BACKOFF`. Anything else (400, 401, a mapping
    error...) is not retried.
    """

    retries: int = 3
    backoff: float = 1.0

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (0-based)."""
        return float(min(MAX_BACKOFF, self.backoff * (2**attempt)))

    @staticmethod
    def retryable_status(status: object) -> bool:
        """429 (too many requests) and every 5xx: the cluster's trouble, not the request's."""
        return isinstance(status, int) and not isinstance(status, bool) and (status == 429 or status >= 500)


TIMESTAMP = "@timestamp"


# ---------------------------------------------------------------------------
# Settings and credentials


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach one cluster (built from ``[data_source]`` by :func:`backend_from_config`)."""

    url: str
    flavor: str = "elasticsearch"
    index_format: str = "logstash-%Y.%m.%d"
    username: str = ""
    password: str = ""
    verify_certs: bool = True
    ca_certs: str = ""
    timeout: float = 30.0
    retries: int = 3
    keyword_suffix: str = ""
    #: The terms the ``voting`` filter sends for (voting, non-voting): ``1``/``0``
    #: for OpenDev's numeric field, ``true``/``false`` for a boolean mapping.
    voting_values: tuple[str, str] = ("1", "0")
    #: First backoff sleep in seconds (doubles on each retry, up to MAX_BACKOFF).
    backoff: float = 1.0
    default_field: str = DEFAULT_MAPPING.default_field


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact_url(text: str) -> str:
    """``https://user:pass@host/`` -> ``https://***@host/`` anywhere in ``text``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


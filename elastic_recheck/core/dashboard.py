"""Links that run a fingerprint in the cluster's dashboard (pure).

graph.json's ``logstash_url`` and the bug page's "Search in the dashboard"
link, from ``[data_source] ls_url`` and ``ls_url_format``:

* ``kibana3`` (the default, the original's): ``<ls_url>/#/dashboard/file/logstash.json?<state>``,
  the state being the URL-safe base64 of ``{"search", "fields", "offset",
  "timeframe" (seconds), "graphmode"}`` as the original encoded it;
* ``discover``: Kibana 7+ / OpenSearch Dashboards Discover,
  ``<ls_url>/app/discover#/?_g=(time:(from:now-<days>d,to:now))&_a=(query:(language:lucene,query:'<query>'))``,
  rison-quoted then percent-encoded;
* anything else is a template with the placeholders ``{ls_url}``, ``{query}``
  (percent-encoded), ``{rison_query}`` (rison-quoted, percent-encoded),
  ``{days}``, ``{seconds}`` and ``{kibana3_state}``.
"""

from __future__ import annotations

import base64
import json
import string
from urllib.parse import quote

KIBANA3 = "kibana3"
DISCOVER = "discover"
PLACEHOLDERS: frozenset[str] = frozenset({"ls_url", "query", "rison_query", "days", "seconds", "kibana3_state"})

_DISCOVER_TEMPLATE = (
    "{ls_url}/app/discover#/?_g=(time:(from:now-{days}d,to:now))"
    "&_a=(query:(language:lucene,query:{rison_query}))"
)
_KIBANA3_TEMPLATE = "{ls_url}/#/dashboard/file/logstash.json?{kibana3_state}"
#: Characters rison and URLs both leave alone (kept readable in the link).
_RISON_SAFE = "(),:!'*-._~"


def kibana3_state(query: str, seconds: int) -> str:
    """The original's encoded Kibana 3 dashboard state of one search."""
    state = {"search": query, "fields": [], "offset": 0, "timeframe": str(seconds), "graphmode": "count"}
    return base64.urlsafe_b64encode(json.dumps(state).encode("utf-8")).decode("ascii")


def rison_string(text: str) -> str:
    """A rison string literal: ``'...'`` with ``!`` and ``'`` escaped by ``!``."""
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"


def template_of(url_format: str) -> str:
    """The URL template of an ``ls_url_format`` value.

    :raises ValueError: a custom template with an unknown placeholder or bad braces.
    """
    name = url_format.strip()
    if name in ("", KIBANA3):
        return _KIBANA3_TEMPLATE
    if name == DISCOVER:
        return _DISCOVER_TEMPLATE
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(name) if f is not None}
    except ValueError as exc:
        raise ValueError(f"not a URL template: {exc}") from None
    unknown = sorted(fields - PLACEHOLDERS)
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} "
                         f"(kibana3, discover, or a template with {', '.join(sorted(PLACEHOLDERS))})")
    return name


def dashboard_url(ls_url: str, url_format: str, query: str, days: float) -> str | None:
    """The link running ``query`` over the last ``days`` in the dashboard at ``ls_url`` (None without one)."""
    base = ls_url.strip().rstrip("/")
    if not base:
        # Departure from the original (docs/compatibility.md): no ls_url, no
        # link (the original fell back to the gone http://logstash.openstack.org).
        return None
    seconds = int(round(days * 86400))
    values = {
        "ls_url": base,
        "query": quote(query, safe=""),
        "rison_query": quote(rison_string(query), safe=_RISON_SAFE),
        "days": f"{days:g}",
        "seconds": str(seconds),
        "kibana3_state": kibana3_state(query, seconds),
    }
    return template_of(url_format).format_map(values)

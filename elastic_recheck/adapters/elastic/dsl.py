"""Request bodies and answers of the cluster, as data: no I/O.

Time formats and daily index names, the ``bool`` filters and ``query_string``
clauses of a :class:`QuerySpec`, and reading hits, totals and errors back.
Unit-tested byte for byte (``tests/functional/test_elastic.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from elastic_recheck.adapters.elastic.settings import CARDINALITY_PRECISION, MAX_DAILY_INDICES, TIMESTAMP
from elastic_recheck.core.documents import flatten_old_layout
from elastic_recheck.core.schema import (
    DEFAULT_MAPPING,
)
from elastic_recheck.core.search_types import Filters, Hit, QuerySpec, TimeWindow
from elastic_recheck.core.timestamps import parse_timestamp

# ---------------------------------------------------------------------------
# Pure request builders (no I/O; unit-tested byte for byte)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    """UTC ISO 8601 with microseconds, as ``strict_date_optional_time`` parses it."""
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wildcard_index(index_format: str) -> str:
    """The pattern matching every index of ``index_format`` (``logstash-*``)."""
    if "%" not in index_format:
        return index_format
    return index_format.split("%", 1)[0] + "*"


def index_names(index_format: str, window: TimeWindow, max_indices: int = MAX_DAILY_INDICES) -> list[str]:
    """The indices that can hold documents of ``window`` (UTC days, end exclusive).

    A format without ``%`` names one index (or alias) used as is. An open
    window, or one longer than ``max_indices`` days, gives the wildcard pattern.
    """
    if "%" not in index_format:
        return [index_format]
    if window.start is None or window.end is None:
        return [wildcard_index(index_format)]
    start = _utc(window.start)
    end = _utc(window.end)
    first: date = start.date()
    last: date = (end - timedelta(microseconds=1)).date() if end > start else first
    days = (last - first).days + 1
    if days > max_indices:
        return [wildcard_index(index_format)]
    names: list[str] = []
    for offset in range(days):
        name = (first + timedelta(days=offset)).strftime(index_format)
        if name not in names:  # e.g. monthly indices
            names.append(name)
    return names


def filter_clauses(
    filters: Filters, window: TimeWindow, keyword_suffix: str = "", voting_values: tuple[str, str] = ("1", "0")
) -> list[dict[str, Any]]:
    """``bool.filter`` clauses for the structured restrictions and the window."""
    clauses: list[dict[str, Any]] = []
    terms = filters.as_terms()
    if filters.voting is not None:
        terms["voting"] = (voting_values[0] if filters.voting else voting_values[1],)
    for name, values in terms.items():
        fname = name + keyword_suffix
        if len(values) == 1:
            clauses.append({"term": {fname: values[0]}})
        else:
            clauses.append({"terms": {fname: list(values)}})
    bounds: dict[str, Any] = {}
    if window.start is not None:
        bounds["gte"] = format_time(window.start)
    if window.end is not None:
        bounds["lt"] = format_time(window.end)
    if bounds:
        bounds["format"] = "strict_date_optional_time"
        clauses.append({"range": {TIMESTAMP: bounds}})
    return clauses


def query_clause(text: str, default_field: str = DEFAULT_MAPPING.default_field) -> dict[str, Any]:
    """One fingerprint text, unchanged, as a ``query_string`` query."""
    return {"query_string": {"query": text, "default_field": default_field, "default_operator": "OR"}}


def build_query(
    spec: QuerySpec, keyword_suffix: str = "", default_field: str = DEFAULT_MAPPING.default_field,
    voting_values: tuple[str, str] = ("1", "0"),
) -> dict[str, Any]:
    """The ``query`` of a request: ``bool`` with one ``must`` per text and the filters."""
    body: dict[str, Any] = {}
    must = [query_clause(text, default_field) for text in spec.queries]
    if must:
        body["must"] = must
    flt = filter_clauses(spec.filters, spec.window, keyword_suffix, voting_values)
    if flt:
        body["filter"] = flt
    return {"bool": body}


def sort_clause(newest_first: bool) -> list[dict[str, Any]]:
    return [{TIMESTAMP: {"order": "desc" if newest_first else "asc", "unmapped_type": "date"}}]


def cardinality_agg(field: str) -> dict[str, Any]:
    return {"cardinality": {"field": field, "precision_threshold": CARDINALITY_PRECISION}}


def interval_string(interval: timedelta) -> str:
    """A ``fixed_interval`` value (``1d``, ``6h``, ``90s``, ``1500ms``)."""
    ms = round(interval.total_seconds() * 1000)
    if ms <= 0:
        raise ValueError(f"histogram interval must be positive, not {interval}")
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def total_hits(hits: Mapping[str, Any]) -> int:
    total = hits.get("total", 0)
    if isinstance(total, Mapping):
        return int(total.get("value", 0))
    return int(total or 0)


def key_string(bucket: Mapping[str, Any]) -> str:
    if "key_as_string" in bucket:
        return str(bucket["key_as_string"])
    key = bucket.get("key")
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def error_reason(error: Any) -> str:
    """A readable reason out of an ES/OpenSearch ``error`` object (or string)."""
    if error is None:
        return "unknown error"
    if not isinstance(error, Mapping):
        return str(error)
    roots = error.get("root_cause") or []
    first = roots[0] if roots and isinstance(roots[0], Mapping) else error
    text = f"{first.get('type', 'error')}: {first.get('reason', '')}".rstrip(": ")
    # The useful detail ("Cannot parse '...': Encountered ...") is in the
    # caused_by chain of the first failed shard: add its first new reason.
    node: Any = error
    shards = error.get("failed_shards")
    if shards and isinstance(shards[0], Mapping):
        node = shards[0].get("reason", node)
    while isinstance(node, Mapping):
        reason = str(node.get("reason") or "")
        if node is not first and reason and reason not in text:
            text += f" (caused by {node.get('type', 'error')}: {reason})"
            break
        node = node.get("caused_by")
    return text


def shard_failures(response: Mapping[str, Any]) -> tuple[bool, str]:
    shards = response.get("_shards") or {}
    failed = int(shards.get("failed", 0) or 0)
    timed_out = bool(response.get("timed_out"))
    if not failed and not timed_out:
        return False, ""
    reasons = []
    for failure in shards.get("failures") or []:
        reasons.append(f"{failure.get('index')}[{failure.get('shard')}]: {error_reason(failure.get('reason'))}")
    what = f"{failed} of {shards.get('total', '?')} shards failed" if failed else "timed out"
    return True, what + (": " + "; ".join(reasons) if reasons else "")


def ndjson(lines: Iterable[Mapping[str, Any]]) -> str:
    """Newline-delimited JSON (``_msearch``, ``_bulk``), ending with a newline."""
    return "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)


def flat_source(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A hit's ``_source`` in the flat layout (:func:`~elastic_recheck.core.documents.flatten_old_layout`)."""
    source = raw.get("_source") or {}
    try:
        return flatten_old_layout(source)
    except ValueError:  # a '@fields' that is not an object: the document as the cluster holds it
        return dict(source)


def hit_from(raw: Mapping[str, Any]) -> Hit:
    # logstash 1.1 indices (@fields/@message): the same flattener as ingest
    source = flat_source(raw)
    return Hit(
        id=str(raw.get("_id", "")),
        source=source,
        timestamp=parse_timestamp(source.get(TIMESTAMP)),
        index=raw.get("_index"),
    )


"""The Elasticsearch / OpenSearch adapter of the :class:`SearchBackend` port.

Several clients, one adapter: ``opensearch-py`` for OpenSearch (OpenDev's
log cluster), ``elasticsearch`` 7.17 for Elasticsearch 7, and the
``elasticsearch8``/``elasticsearch9`` clients (extras ``es8``/``es9``) for
Elasticsearch 8 and 9. ``[data_source] backend = opensearch`` uses
``opensearch-py`` directly; ``elasticsearch`` and ``cluster`` (what an
``es_url`` without a ``backend`` means) read ``GET /`` on first use and pick
the client that fits the server (:mod:`elastic_recheck.adapters.elastic.clients`).

How requests are built (all of it is data, never string concatenation):

* every text of :attr:`QuerySpec.queries` becomes its own ``query_string``
  clause in ``bool.must``, unchanged. ``default_field`` is ``message`` and
  ``default_operator`` is ``OR``: an unqualified term searches the log line,
  as in the old logstash ``_all``-era setups, in the embedded store and in
  Lucene's classic QueryParser. Without an explicit ``default_field`` ES 7
  falls back to ``index.query.default_field`` (``*`` by default), which
  would also match exact values of keyword fields such as ``build_name``
  or ``filename`` and give different answers than the embedded store;
* :class:`Filters` become ``term``/``terms`` clauses in ``bool.filter``, on
  ``<field><keyword_suffix>`` (``keyword_suffix`` is empty for mappings
  where ``build_*`` are ``keyword`` fields, as in OpenDev's OpenSearch, and
  ``.keyword`` or ``.raw`` for the logstash templates that map strings as
  ``text`` with a keyword sub-field). The same suffix names the fields of
  aggregations;
* the :class:`TimeWindow` is a ``range`` on ``@timestamp`` (``gte``/``lt``)
  and also selects the daily indices (``index_format``) of the window's
  days, with ``ignore_unavailable``; an open window, or one of more than
  :data:`MAX_DAILY_INDICES` days, searches the wildcard pattern instead.

Retries are the adapter's own (the clients' are switched off): connection
errors, timeouts, 429 and 5xx answers are retried ``retries`` times with
exponential backoff, then raised as ``BackendError(retryable=True)``; 4xx
answers (a bad query, bad credentials) raise ``BackendError(retryable=False)``
with the cluster's reason. Credentials never appear in messages or logs.

``failed_tests`` needs the subunit2sql database, which this adapter does not
read: it returns None (unknown), so ``test_ids`` fingerprints are not
restricted on this backend.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from elastic_recheck.adapters.elastic.clients import (
    LEGACY,
    MODERN,
    MODERN_CLIENTS,
    ClientChoice,
    ServerInfo,
    choose_client,
    client_errors,
    make_client,
    perform,
    server_info,
)
from elastic_recheck.adapters.elastic.dsl import (
    build_query,
    cardinality_agg,
    error_reason,
    flat_source,
    hit_from,
    index_names,
    interval_string,
    key_string,
    ndjson,
    shard_failures,
    sort_clause,
    total_hits,
    wildcard_index,
)
from elastic_recheck.adapters.elastic.settings import (
    COMPOSITE_PAGE,
    FLAVORS,
    MAX_STATUSES,
    TIMESTAMP,
    ClusterSettings,
    RetryPolicy,
    redact_url,
)
from elastic_recheck.core.config import Config, split_credentials
from elastic_recheck.core.errors import BackendError, ConfigError
from elastic_recheck.core.schema import (
    BUILD_FIELDS,
    DEFAULT_MAPPING,
    build_log_url,
    mapping_from_properties,
    properties_of,
)
from elastic_recheck.core.schema import Mapping as FieldMapping
from elastic_recheck.core.search_types import (
    Bucket,
    BuildSummary,
    Filters,
    QuerySpec,
    SearchResult,
    TermCount,
    TimeWindow,
)
from elastic_recheck.core.timestamps import parse_timestamp

LOG = logging.getLogger(__name__)

T = TypeVar("T")

# ---------------------------------------------------------------------------
# The adapter


class ElasticBackend:
    """:class:`SearchBackend` over an Elasticsearch or OpenSearch cluster.

    Thread-safe (the clients pool their connections); the bot's workers share one.
    The client is made on first use (after reading ``GET /`` unless the flavor
    is ``opensearch``), so building the adapter never touches the network.
    """

    def __init__(self, settings: ClusterSettings, client: Any | None = None) -> None:
        if settings.flavor not in FLAVORS:
            raise BackendError(f"unknown cluster flavor {settings.flavor!r} (elasticsearch, opensearch or cluster)", retryable=False)
        self.settings = settings
        urls = [u for u in (p.strip() for p in settings.url.split(",")) if u]
        if not urls:
            raise BackendError("no cluster URL configured ([data_source] es_url)", retryable=False)
        hosts: list[str] = []
        user, password = settings.username, settings.password
        for url in urls:
            clean, url_user, url_password = split_credentials(url)
            hosts.append(clean)
            if not user and url_user:
                user, password = url_user, url_password
        self._hosts = hosts
        self._auth = (user, password) if user else None
        secrets = [s for s in (password,) if s]
        if self._auth:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            secrets.append(token)
        self._secrets = tuple(secrets)
        self._errors = client_errors()
        if not settings.verify_certs and any(h.startswith("https:") for h in hosts):
            # Said once here instead of a urllib3 warning on every request.
            LOG.warning("TLS certificates of %s are not verified ([data_source] verify_certs = false)", ", ".join(hosts))
        self._lock = threading.Lock()
        self._client: Any = client
        self._choice: ClientChoice | None = None
        #: What ``GET /`` said (None until the client is made, or with ``opensearch``).
        self.server: ServerInfo | None = None
        #: Requests sent, by endpoint (``_msearch``, ``_search``, ``_bulk``...; benchmarks, stats).
        self.requests: Counter[str] = Counter()
        if client is not None:
            module = type(client).__module__.split(".", 1)[0]
            self._choice = ClientChoice(module, MODERN if module in MODERN_CLIENTS else LEGACY)
        elif settings.flavor == "opensearch":
            self._choice = ClientChoice("opensearchpy", LEGACY)
            self._client = self._make_client(self._choice)
        self._warned_tests = threading.Event()

    # -- plumbing -----------------------------------------------------------

    def _make_client(self, choice: ClientChoice) -> Any:
        s = self.settings
        kwargs: dict[str, Any] = {
            "timeout": s.timeout,
            "max_retries": 0,  # retries are ours, with backoff
            "retry_on_timeout": False,
            "verify_certs": s.verify_certs,
        }
        if s.ca_certs:
            kwargs["ca_certs"] = s.ca_certs
        if not s.verify_certs and any(h.startswith("https:") for h in self._hosts):
            kwargs["ssl_show_warn"] = False
        if self._auth:
            kwargs["http_auth"] = self._auth
        # Library errors, bad URLs, a missing CA file...
        setup_errors: tuple[type[BaseException], ...] = (*self._errors.base, ValueError, TypeError, OSError)
        try:
            return make_client(choice, self._hosts, kwargs)
        except setup_errors as exc:
            raise BackendError(self.redact(f"cannot set up the {choice.module} client: {exc}"), retryable=False) from None

    def _connect(self) -> None:
        """Read ``GET /`` (with opensearch-py, which talks to every version) and make the fitting client."""
        probe_choice = ClientChoice("opensearchpy", LEGACY)
        probe = self._make_client(probe_choice)
        try:
            payload = self._call("GET /", lambda: probe.info())
        except BaseException:
            probe.close()
            raise
        info = server_info(payload)
        choice = choose_client(info)
        if self.settings.flavor != "cluster" and info.flavor != self.settings.flavor:
            LOG.warning("[data_source] backend = %s, but %s answers at %s: using the %s client",
                        self.settings.flavor, info, ", ".join(self._hosts), choice.module)
        if choice.note:
            LOG.info("%s: %s", info, choice.note)
        LOG.debug("%s at %s: %s client", info, ", ".join(self._hosts), choice.module)
        client = probe
        if choice.module != probe_choice.module:
            probe.close()
            self._errors = client_errors([choice.module])
            client = self._make_client(choice)
        self.server, self._choice, self._client = info, choice, client

    @property
    def client(self) -> Any:
        """The underlying client (made on first use; tests and admin tasks)."""
        if self._choice is None or self._client is None:
            with self._lock:
                if self._choice is None or self._client is None:
                    self._connect()
        return self._client

    @property
    def client_choice(self) -> ClientChoice:
        """Which client talks to the cluster, with which headers (makes the client)."""
        self.client  # noqa: B018 - made on demand
        assert self._choice is not None
        return self._choice

    def describe(self) -> str:
        """``opensearch at https://host:9200`` (credentials left out): what the CLI logs."""
        return f"{self.settings.flavor} at {', '.join(self._hosts)}"

    def redact(self, text: str) -> str:
        """``text`` without user info in URLs, the password or the auth token."""
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"ElasticBackend({self.settings.flavor} at {', '.join(self._hosts)})"

    def close(self) -> None:
        if self._client is None:
            return
        try:
            self._client.close()
        except Exception:  # closing must never fail the caller
            LOG.debug("closing the %s client failed", self.settings.flavor, exc_info=True)

    def _translate(self, exc: BaseException, what: str) -> BackendError:
        connection, transport = self._errors.connection, self._errors.transport
        name = type(exc).__name__
        if name == "UnsupportedProductError":
            hint = "; for OpenSearch set [data_source] backend = opensearch" if self.settings.flavor == "elasticsearch" else ""
            return BackendError(self.redact(f"{what}: {exc}{hint}"), retryable=False)
        if isinstance(exc, connection) and ("SSL" in name or "Tls" in name):
            # A certificate that does not verify will not verify on retry either.
            detail = getattr(exc, "error", None) or exc
            return BackendError(
                self.redact(f"{what}: TLS error ({self}): {detail}; check [data_source] ca_certs / verify_certs"),
                retryable=False,
            )
        if isinstance(exc, connection):
            kind = "timed out" if "Timeout" in name else "connection failed"
            detail = getattr(exc, "error", None) or exc
            hint = "; is the cluster up, and [data_source] es_url right?" if kind == "connection failed" else ""
            return BackendError(self.redact(f"{what}: {kind} ({self}): {detail}{hint}"), retryable=True)
        if isinstance(exc, transport):
            status = getattr(exc, "status_code", None)
            info = getattr(exc, "info", None)
            reason = ""
            if isinstance(info, Mapping):
                reason = error_reason(info.get("error"))
            if not reason or reason == "unknown error":
                reason = str(getattr(exc, "error", "") or exc)
            retryable = self.retry.retryable_status(status)
            return BackendError(self.redact(f"{what}: HTTP {status}: {reason}"), retryable=retryable)
        return BackendError(self.redact(f"{what}: {name}: {exc}"), retryable=False)

    @property
    def retry(self) -> RetryPolicy:
        """The one retry policy of every request (:class:`RetryPolicy`), from the settings."""
        return RetryPolicy(self.settings.retries, self.settings.backoff)

    def _call(self, what: str, fn: Callable[[], T], retries: int | None = None) -> T:
        """Run one request, retrying retryable failures with exponential backoff."""
        base = self._errors.base
        policy = self.retry if retries is None else RetryPolicy(retries, self.settings.backoff)
        attempts = policy.attempts
        for attempt in range(attempts):
            try:
                return fn()
            except base as exc:
                err = self._translate(exc, what)
                if not err.retryable or attempt + 1 >= attempts:
                    if err.retryable and attempts > 1:
                        err = BackendError(f"{err} (after {attempts} attempts)", retryable=True)
                    raise err from None
                delay = policy.delay(attempt)
                LOG.warning("%s; retry %d of %d in %.1fs", err, attempt + 1, attempts - 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """One request through the client's transport (same call for every client).

        The transport, not the per-API helpers: elasticsearch-py 7.17
        deprecates ``body=`` there and opensearch-py has no other form.
        """
        client = self.client
        assert self._choice is not None
        endpoint = path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            self.requests[endpoint if endpoint.startswith("_") else path] += 1
        return perform(client, self._choice, method, path, body, params)

    def _indices(self, window: TimeWindow) -> list[str]:
        return index_names(self.settings.index_format, window)

    def _query(self, spec: QuerySpec) -> dict[str, Any]:
        return build_query(spec, self.settings.keyword_suffix, self.settings.default_field, self.settings.voting_values)

    def _field(self, name: str) -> str:
        return name if name == TIMESTAMP else name + self.settings.keyword_suffix

    def _search(self, what: str, indices: Sequence[str], body: dict[str, Any]) -> Mapping[str, Any]:
        params = {"ignore_unavailable": "true", "allow_no_indices": "true"}
        response: Mapping[str, Any] = self._call(
            what, lambda: self._request("POST", "/" + quote(",".join(indices), safe=",*") + "/_search", body, params)
        )
        return response

    def _aggs(self, what: str, spec: QuerySpec, aggs: dict[str, Any]) -> Mapping[str, Any]:
        body = {"size": 0, "track_total_hits": False, "query": self._query(spec), "aggs": aggs}
        response = self._search(what, self._indices(spec.window), body)
        partial, why = shard_failures(response)
        if partial:
            # Aggregations over the shards that answered: counts may be low.
            LOG.warning("%s: partial answer, counts may be low: %s", what, self.redact(why))
        aggregations: Mapping[str, Any] = response.get("aggregations") or {}
        return aggregations

    # -- SearchBackend ------------------------------------------------------

    def search_body(self, spec: QuerySpec, size: int = 100, newest_first: bool = False) -> dict[str, Any]:
        """The ``_search`` body of :meth:`search` (also one ``_msearch`` body)."""
        return {
            "query": self._query(spec),
            "size": size,
            "sort": sort_clause(newest_first),
            "track_total_hits": True,
        }

    def _result(self, spec: QuerySpec, response: Mapping[str, Any]) -> SearchResult:
        partial, why = shard_failures(response)
        if partial:
            LOG.warning("query %r: partial answer: %s", spec.label or spec.queries, self.redact(why))
        hits = response.get("hits") or {}
        return SearchResult(
            hits=[hit_from(h) for h in hits.get("hits") or []],
            total=total_hits(hits),
            label=spec.label,
            partial=partial,
        )

    def search(self, spec: QuerySpec, size: int = 100, newest_first: bool = False) -> SearchResult:
        body = self.search_body(spec, size, newest_first)
        return self._result(spec, self._search("search", self._indices(spec.window), body))

    def msearch_lines(self, specs: Sequence[QuerySpec], size: int = 1) -> list[dict[str, Any]]:
        """The NDJSON header/body pairs of one ``_msearch`` request."""
        lines: list[dict[str, Any]] = []
        for spec in specs:
            lines.append({"index": self._indices(spec.window), "ignore_unavailable": True, "allow_no_indices": True})
            lines.append(self.search_body(spec, size))
        return lines

    def msearch(self, specs: Sequence[QuerySpec], size: int = 1) -> list[SearchResult]:
        if not specs:
            return []
        lines = self.msearch_lines(specs, size)
        attempts = self.retry.attempts
        for attempt in range(attempts):
            response: Mapping[str, Any] = self._call("msearch", lambda: self._request("POST", "/_msearch", ndjson(lines)))
            items = list(response.get("responses") or [])
            if len(items) != len(specs):
                raise BackendError(
                    f"msearch: the cluster answered {len(items)} responses for {len(specs)} queries", retryable=True
                )
            # A rejected or unavailable item (429, 5xx) is the cluster's
            # trouble, not the query's: try the batch again, then give up.
            transient = [i for i in items if "error" in i and self.retry.retryable_status(int(i.get("status", 0) or 0))]
            if not transient:
                break
            reason = self.redact(error_reason(transient[0].get("error")))
            if attempt + 1 >= attempts:
                raise BackendError(
                    f"msearch: {len(transient)} queries failed on the cluster side after {attempts} attempts: {reason}",
                    retryable=True,
                )
            delay = self.retry.delay(attempt)
            LOG.warning("msearch: %d queries rejected (%s); retry in %.1fs", len(transient), reason, delay)
            time.sleep(delay)
        results: list[SearchResult] = []
        for spec, item in zip(specs, items, strict=True):
            if "error" in item:
                reason = self.redact(error_reason(item.get("error")))
                LOG.warning("query %r failed: %s", spec.label or spec.queries, reason)
                results.append(SearchResult(hits=[], total=0, label=spec.label, error=reason))
            else:
                results.append(self._result(spec, item))
        return results

    def count_builds(self, spec: QuerySpec) -> int:
        aggs = self._aggs("count_builds", spec, {"builds": cardinality_agg(self._field("build_uuid"))})
        return int((aggs.get("builds") or {}).get("value") or 0)

    def histogram_aggs(self, interval: timedelta) -> dict[str, Any]:
        """The aggregation of :meth:`build_histogram`."""
        builds = cardinality_agg(self._field("build_uuid"))
        return {
            "histogram": {
                "date_histogram": {
                    "field": TIMESTAMP,
                    "fixed_interval": interval_string(interval),
                    "min_doc_count": 1,
                },
                "aggs": {
                    "status": {
                        "terms": {"field": self._field("build_status"), "size": MAX_STATUSES},
                        "aggs": {"builds": builds},
                    },
                    "builds": builds,
                },
            }
        }

    def build_histogram(self, spec: QuerySpec, interval: timedelta) -> list[Bucket]:
        aggs = self._aggs("build_histogram", spec, self.histogram_aggs(interval))
        out: list[Bucket] = []
        for raw in (aggs.get("histogram") or {}).get("buckets") or []:
            # Like the embedded store: only documents of a build count, and
            # builds without a build_status are in no status.
            if not raw.get("doc_count") or not (raw.get("builds") or {}).get("value"):
                continue
            start = parse_timestamp(raw.get("key"))
            if start is None:
                continue
            status = raw.get("status") or {}
            counts = {
                key_string(b): int((b.get("builds") or {}).get("value") or 0)
                for b in status.get("buckets") or []
            }
            if status.get("sum_other_doc_count"):
                LOG.warning("build_histogram: more than %d build_status values; the rest are left out", MAX_STATUSES)
            out.append(Bucket(start=start, counts=counts))
        out.sort(key=lambda b: b.start)
        return out

    def terms(self, spec: QuerySpec, field: str, size: int = 10) -> list[TermCount]:
        # Ordering by a cardinality sub-aggregation is approximate when the
        # index has several shards (each shard sends its top shard_size terms).
        aggs = self._aggs(
            "terms",
            spec,
            {
                "top": {
                    "terms": {
                        "field": self._field(field),
                        "size": size,
                        "order": [{"builds": "desc"}, {"_count": "desc"}, {"_key": "asc"}],
                    },
                    "aggs": {"builds": cardinality_agg(self._field("build_uuid"))},
                }
            },
        )
        return [
            TermCount(
                value=key_string(b),
                builds=int((b.get("builds") or {}).get("value") or 0),
                docs=int(b.get("doc_count") or 0),
            )
            for b in (aggs.get("top") or {}).get("buckets") or []
        ]

    def _composite(self, what: str, spec: QuerySpec, field: str, sub: dict[str, Any]) -> Iterable[Mapping[str, Any]]:
        """Every bucket of a composite aggregation on ``field``, page by page."""
        after: Mapping[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": [{"key": {"terms": {"field": self._field(field)}}}]}
            if after is not None:
                composite["after"] = after
            agg: dict[str, Any] = {"composite": composite}
            if sub:
                agg["aggs"] = sub
            page = self._aggs(what, spec, {"pages": agg}).get("pages") or {}
            buckets = page.get("buckets") or []
            yield from buckets
            after = page.get("after_key")
            if not buckets or after is None or len(buckets) < COMPOSITE_PAGE:
                return

    def _build_sub_aggs(self) -> dict[str, Any]:
        return {
            "first_seen": {"min": {"field": TIMESTAMP}},
            "last_seen": {"max": {"field": TIMESTAMP}},
            "doc": {
                "top_hits": {
                    "size": 1,
                    "sort": sort_clause(newest_first=True),
                    "_source": {"includes": [*BUILD_FIELDS, "filename"]},
                }
            },
        }

    @staticmethod
    def _build_info(uuid: str, raw: Mapping[str, Any]) -> BuildSummary:
        hits = ((raw.get("doc") or {}).get("hits") or {}).get("hits") or []
        source = flat_source(hits[0]) if hits else {}
        fields = {k: source[k] for k in BUILD_FIELDS if k in source and source[k] is not None}
        if "log_url" in fields:
            # as in the embedded store: the build's log directory, not the URL of this document's file
            fields["log_url"] = build_log_url(fields["log_url"], source.get("filename"))
        return BuildSummary(
            uuid=uuid,
            fields=fields,
            first_seen=parse_timestamp((raw.get("first_seen") or {}).get("value")),
            last_seen=parse_timestamp((raw.get("last_seen") or {}).get("value")),
            docs=int(raw.get("doc_count") or 0),
        )

    def builds(self, spec: QuerySpec, limit: int | None = None) -> list[BuildSummary]:
        if limit is not None:
            if limit <= 0:
                return []
            # Ordering terms by a max sub-aggregation, descending, is exact
            # even across shards, so the newest ``limit`` builds are right.
            aggs = self._aggs(
                "builds",
                spec,
                {
                    "newest": {
                        "terms": {
                            "field": self._field("build_uuid"),
                            "size": limit,
                            "order": [{"last_seen": "desc"}, {"_key": "asc"}],
                        },
                        "aggs": self._build_sub_aggs(),
                    }
                },
            )
            return [self._build_info(key_string(b), b) for b in (aggs.get("newest") or {}).get("buckets") or []]
        infos = [
            self._build_info(str((b.get("key") or {}).get("key")), b)
            for b in self._composite("builds", spec, "build_uuid", self._build_sub_aggs())
        ]
        infos.sort(key=lambda i: i.uuid)
        infos.sort(key=lambda i: i.last_seen or datetime.min.replace(tzinfo=UTC), reverse=True)
        return infos

    def latest_timestamp(self, until: datetime | None = None) -> datetime | None:
        spec = QuerySpec(window=TimeWindow(end=until)) if until is not None else QuerySpec()
        aggs = self._aggs("latest_timestamp", spec, {"latest": {"max": {"field": TIMESTAMP}}})
        return parse_timestamp((aggs.get("latest") or {}).get("value"))

    def indexed_files(self, build_uuid: str) -> set[str]:
        spec = QuerySpec(filters=Filters(build_uuid=build_uuid))
        return {
            str((b.get("key") or {}).get("key"))
            for b in self._composite("indexed_files", spec, "filename", {})
        }

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        # subunit2sql is not read by this adapter (see the module docstring).
        if not self._warned_tests.is_set():
            self._warned_tests.set()
            LOG.info("failed test ids are unknown on the %s backend (subunit2sql is not read)", self.settings.flavor)
        return None

    def ping(self) -> bool:
        try:
            # through _request, not client.info(): the modern clients' helpers send their own
            # version in the compatibility headers, which an older server refuses
            self._call("ping", lambda: self._request("GET", "/"), retries=0)
        except BackendError as exc:
            LOG.warning("%s", exc)
            return False
        return True

    def field_mapping(self) -> FieldMapping | None:
        """The cluster's fields as a :class:`~elastic_recheck.core.schema.Mapping` (``check-queries``' field check).

        Every field of every index of the pattern counts, sub-fields included
        (``build_name.keyword``); ``text`` fields are the analyzed ones. None
        when no index of the pattern exists yet.
        """
        pattern = wildcard_index(self.settings.index_format)
        answer: Mapping[str, Any] = self._call(
            "mapping", lambda: self._request("GET", "/" + quote(pattern, safe=",*") + "/_mapping",
                                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        )
        return mapping_from_answer(answer, self.settings.default_field)

    # -- loading (the writer is search/bulk.py's BulkWriter) ------------------

    def index_for(self, doc: Mapping[str, Any]) -> str:
        """The daily index of one document (from its ``@timestamp``)."""
        ts = parse_timestamp(doc.get(TIMESTAMP))
        if ts is None:
            raise BackendError(f"document without a valid {TIMESTAMP}: {str(dict(doc))[:200]}", retryable=False)
        return ts.strftime(self.settings.index_format)


def mapping_from_answer(answer: Mapping[str, Any], default_field: str = DEFAULT_MAPPING.default_field) -> FieldMapping | None:
    """A :class:`~elastic_recheck.core.schema.Mapping` of a ``GET <indices>/_mapping`` answer (None: no index)."""
    return mapping_from_properties(properties_of(answer), default_field)


def backend_from_config(config: Config, flavor: str | None = None) -> ElasticBackend:
    """The adapter for ``[data_source]`` of a :class:`~elastic_recheck.core.config.Config`.

    ``flavor`` overrides ``[data_source] backend`` (``collect --to``).
    """

    ds = config.data_source
    flavor = config.backend if flavor is None else flavor
    if flavor == "embedded":
        flavor = "cluster"
    settings = ClusterSettings(
        url=ds.es_url,
        flavor=flavor,
        index_format=ds.index_format,
        username=ds.username,
        password=ds.password,
        verify_certs=ds.verify_certs,
        ca_certs=ds.ca_certs,
        timeout=ds.timeout,
        retries=ds.retries,
        keyword_suffix=ds.keyword_suffix,
        voting_values=_voting_values(ds.voting_values),
    )
    return ElasticBackend(settings)


def _voting_values(text: str) -> tuple[str, str]:
    values = [v.strip() for v in text.split(",")]
    if len(values) != 2 or not all(values):
        raise ConfigError(f"[data_source] voting_values must be two terms, voting then non-voting (e.g. 1,0 or "
                          f"true,false), not {text!r}")
    return values[0], values[1]


if TYPE_CHECKING:
    from elastic_recheck.ports.search import SearchBackend

    _port: type[SearchBackend] = ElasticBackend  # mypy checks the adapter against its port

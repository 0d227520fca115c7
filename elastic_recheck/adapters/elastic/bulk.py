"""Writing documents into an Elasticsearch/OpenSearch cluster: the one bulk writer.

``elastic-recheck ingest`` and ``collect`` (and the bot's on-demand fetch)
write through :class:`BulkWriter`, which has the same loading methods as the
embedded store (``add_documents``, ``delete_build``, ``record_test_results``),
so the ingest pipeline (:mod:`elastic_recheck.ingest.jsonl`, :mod:`elastic_recheck.ingest.build_dir`) and the collector's
sink drive either one unchanged.

* Each document goes into the daily index of its ``@timestamp``
  (``[data_source] index_format``), in ``_bulk`` requests of at most
  ``chunk_docs`` documents and ``chunk_bytes`` bytes.
* Before the first write, an index template (``[data_source] index_template``,
  empty: none) gives new indices of the pattern the logstash mapping of
  :mod:`elastic_recheck.core.schema`: ``message`` and ``tags`` analyzed text,
  ``@timestamp`` a date, every other field an exact ``keyword`` (also fields
  that are not known yet: numbers and booleans too, as the embedded store
  compares them as strings).
* ``voting`` is written as the term of ``[data_source] voting_values`` that
  the search adapter's voting filter asks for (``1``/``0`` by default),
  whichever way the document spells it (``true``, ``"1"``...).
* Document ids are stable: a document's ``id`` (or ``_id``) is used, else
  :func:`~elastic_recheck.core.documents.document_id` of its build, file and
  position in the file (what ``collect`` assigns), so loading the same
  build or file twice replaces documents instead of duplicating them.
* One retry policy, the search adapter's
  (:class:`~elastic_recheck.adapters.elastic.backend.RetryPolicy`):
  connection errors, timeouts, 429 and 5xx are retried with exponential
  backoff; documents that the cluster rejects with 429/5xx inside a
  successful ``_bulk`` answer are sent again the same way (only those).
  Other rejected documents are counted (with the cluster's reason) like bad
  input lines.
  Credentials never appear in messages (the adapter's ``redact``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from elastic_recheck.adapters.elastic.backend import ElasticBackend, backend_from_config
from elastic_recheck.adapters.elastic.dsl import error_reason, ndjson, wildcard_index
from elastic_recheck.adapters.elastic.settings import TIMESTAMP
from elastic_recheck.core.config import Config
from elastic_recheck.core.documents import stable_ids
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.schema import DEFAULT_MAPPING, KNOWN_FIELDS
from elastic_recheck.core.timestamps import parse_timestamp
from elastic_recheck.ports.loading import IngestStats, TestResult

LOG = logging.getLogger(__name__)

#: Default ``[data_source] index_template``.
TEMPLATE_NAME = "elastic-recheck"

#: Priority of the composable template: above the built-in ``logs-*-*``
#: templates (100) so that it wins for its own pattern.
TEMPLATE_PRIORITY = 200

#: Keyword values longer than this many characters are stored but not
#: indexed (Lucene refuses terms over 32766 bytes; the embedded store does
#: not index huge values either).
IGNORE_ABOVE = 8191

CHUNK_DOCS = 2000
CHUNK_BYTES = 8 * 1024 * 1024


def index_template(index_format: str, text_fields: Iterable[str] = DEFAULT_MAPPING.text_fields) -> dict[str, Any]:
    """The composable index template (``PUT _index_template/<name>``) of ``index_format``."""
    keyword = {"type": "keyword", "ignore_above": IGNORE_ABOVE}
    texts = sorted(set(text_fields))
    props: dict[str, Any] = {name: dict(keyword) for name in KNOWN_FIELDS if name not in texts}
    props[TIMESTAMP] = {"type": "date"}
    for name in texts:
        props[name] = {"type": "text"}
    dynamic = [
        {f"{kind}_as_keyword": {"match_mapping_type": kind, "mapping": dict(keyword)}}
        for kind in ("string", "long", "double", "boolean")
    ]
    return {
        "index_patterns": [wildcard_index(index_format)],
        "priority": TEMPLATE_PRIORITY,
        "template": {
            "mappings": {
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": dynamic,
                "properties": props,
            }
        },
        "_meta": {"description": "logstash-style CI log lines (elastic-recheck)"},
    }


class BulkWriter:
    """Loads documents into the daily indices of one cluster (see the module docstring)."""

    def __init__(
        self,
        backend: ElasticBackend,
        template: str = TEMPLATE_NAME,
        chunk_docs: int = CHUNK_DOCS,
        chunk_bytes: int = CHUNK_BYTES,
        refresh: bool = True,
    ) -> None:
        self.backend = backend
        self.template = template
        self.chunk_docs = max(1, chunk_docs)
        self.chunk_bytes = chunk_bytes
        self.refresh = refresh
        self._template_done = not template

    @property
    def target(self) -> str:
        return self.backend.settings.flavor

    def __repr__(self) -> str:
        return f"BulkWriter({self.backend!r})"

    def close(self) -> None:
        self.backend.close()

    # -- requests -------------------------------------------------------------

    def _send(self, what: str, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        backend = self.backend
        return backend._call(what, lambda: backend._request(method, path, body, params))

    def ensure_template(self) -> None:
        """Install the index template once (a user without the right gets a warning, not an error)."""
        if self._template_done:
            return
        self._template_done = True
        body = index_template(self.backend.settings.index_format)
        try:
            self._send("index template", "PUT", f"/_index_template/{self.template}", body)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.warning("index template %s not installed (%s); new indices get the cluster's default mapping",
                        self.template, exc)
            return
        LOG.info("index template %s installed for %s", self.template, body["index_patterns"][0])

    def _bulk(self, actions: list[tuple[int, dict[str, Any], dict[str, Any]]], stats: IngestStats) -> set[str]:
        """Send one chunk of ``(ordinal, header, source)``; returns the indices written.

        Rejected documents go to ``stats`` under their ordinal.
        """
        backend = self.backend
        attempts = backend.retry.attempts
        pending = list(range(len(actions)))
        written: set[str] = set()
        for attempt in range(attempts):
            lines: list[dict[str, Any]] = []
            for i in pending:
                _, header, source = actions[i]
                lines.append({"index": header})
                lines.append(source)
            response: Mapping[str, Any] = self._send("bulk", "POST", "/_bulk", ndjson(lines))
            items = list(response.get("items") or [])
            if len(items) != len(pending):
                raise BackendError(f"bulk: the cluster answered {len(items)} items for {len(pending)} documents")
            again: list[int] = []
            last_reason = ""
            for i, item in zip(pending, items, strict=True):
                result: Mapping[str, Any] = next(iter(item.values()), {}) if isinstance(item, Mapping) else {}
                if "error" not in result:
                    written.add(str(actions[i][1]["_index"]))
                    stats.docs += 1
                    continue
                status = int(result.get("status", 0) or 0)
                reason = backend.redact(f"{result.get('_index')}: {error_reason(result.get('error'))}")
                if backend.retry.retryable_status(status):
                    again.append(i)
                    last_reason = reason
                else:
                    stats.add_bad_line(actions[i][0], f"rejected by the cluster: {reason}")
            if not again:
                return written
            if attempt + 1 >= attempts:
                raise BackendError(f"bulk: {len(again)} documents still refused after {attempts} attempts: {last_reason}")
            delay = backend.retry.delay(attempt)
            LOG.warning("bulk: %d documents refused (%s); retry in %.1fs", len(again), last_reason, delay)
            time.sleep(delay)
            pending = again
        return written  # pragma: no cover - the loop returns or raises

    # -- the store-like loading API -------------------------------------------

    def add_documents(self, docs: Iterable[Mapping[str, Any]], batch_size: int | None = None) -> IngestStats:
        """Index documents into their daily indices; returns what was stored.

        A document without a valid ``@timestamp`` or that the cluster rejects
        is counted as bad (with its ordinal and the reason), never fatal.
        """
        stats = IngestStats()
        started = time.perf_counter()
        self.ensure_template()
        chunk_docs = batch_size or self.chunk_docs
        index_format = self.backend.settings.index_format
        touched: set[str] = set()
        batch: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        size = 0
        for n, doc in enumerate(stable_ids(self._checked(docs, stats)), 1):
            source = dict(doc)
            if "voting" in source:
                source["voting"] = self._voting_term(source["voting"])
            doc_id = source.pop("id", None) or source.pop("_id", None)
            source.pop("_id", None)
            ts = parse_timestamp(source.get(TIMESTAMP))
            if ts is None:
                stats.add_bad_line(n, f"no valid {TIMESTAMP}: the daily index is chosen by it")
                continue
            header = {"_index": ts.strftime(index_format), "_id": str(doc_id)}
            batch.append((n, header, source))
            size += len(json.dumps(source, ensure_ascii=False)) + 100
            if len(batch) >= chunk_docs or size >= self.chunk_bytes:
                touched |= self._bulk(batch, stats)
                batch, size = [], 0
        if batch:
            touched |= self._bulk(batch, stats)
        if touched and self.refresh:
            self.refresh_indices(sorted(touched))
        stats.seconds = time.perf_counter() - started
        return stats

    def _voting_term(self, value: Any) -> Any:
        """A document's voting flag (``1``, ``"1"``, ``true``...) as the cluster's filter asks for it.

        The adapter's voting filter is one exact term of ``[data_source]
        voting_values``; the embedded store accepts every spelling. Written
        in that term, a build spelled ``true`` (Zuul's API) is found as
        voting on the cluster too. A value already indexed as that term
        (``1`` or ``"1"``), or one that is no flag, is kept as given.
        """
        from elastic_recheck.core.schema import parse_voting

        flag = parse_voting(value)
        if flag is None:
            return value
        yes, no = self.backend.settings.voting_values
        term = yes if flag else no
        as_indexed = json.dumps(value) if isinstance(value, bool) else str(value)  # a keyword field's term
        return value if as_indexed == term else term

    @staticmethod
    def _checked(docs: Iterable[Any], stats: IngestStats) -> Iterator[Mapping[str, Any]]:
        for n, doc in enumerate(docs, 1):
            if isinstance(doc, Mapping):
                yield doc
            else:
                stats.add_bad_line(n, f"not a JSON object: {type(doc).__name__}")

    def refresh_indices(self, indices: Sequence[str]) -> None:
        """Make what was written searchable now (not after the refresh interval)."""
        for start in range(0, len(indices), 50):  # keep the request line short
            names = ",".join(indices[start : start + 50])
            self._send("refresh", "POST", f"/{names}/_refresh", params={"ignore_unavailable": "true"})

    def delete_build(self, build_uuid: str, filenames: Iterable[str] | None = None) -> int:
        """Remove a build's documents (only those of ``filenames`` when given); returns how many."""
        clauses: list[dict[str, Any]] = [{"term": {self.backend._field("build_uuid"): build_uuid}}]
        names = sorted(set(filenames)) if filenames is not None else None
        if names is not None:
            if not names:
                return 0
            clauses.append({"terms": {self.backend._field("filename"): names}})
        pattern = wildcard_index(self.backend.settings.index_format)
        params = {"conflicts": "proceed", "refresh": "true", "ignore_unavailable": "true", "allow_no_indices": "true"}
        response: Mapping[str, Any] = self._send(
            "delete", "POST", f"/{pattern}/_delete_by_query", {"query": {"bool": {"filter": clauses}}}, params
        )
        return int(response.get("deleted") or 0)

    def record_test_results(self, build_uuid: str, results: Iterable[TestResult | tuple[str, str]]) -> int:
        """Test results are not kept in a cluster (log lines only; see ``[data_source] db_uri``)."""
        count = len(list(results))
        if count:
            LOG.info("build %s: %d test results not stored (a cluster keeps log lines only)", build_uuid[:7], count)
        return 0


def writer_from_config(config: Config, flavor: str | None = None) -> BulkWriter:
    """The bulk writer for ``[data_source]`` (``flavor`` overrides ``backend``, as ``collect --to`` does)."""
    return BulkWriter(backend_from_config(config, flavor), template=config.data_source.index_template)


if TYPE_CHECKING:
    from elastic_recheck.ports.loading import DocumentStore

    _port: type[DocumentStore] = BulkWriter  # mypy checks the adapter against its port

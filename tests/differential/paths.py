"""Evaluate one query over one corpus on every path the project has.

* ``store``: the embedded SQLite/FTS5 store, searched like ``search --batch``
  (the query compiled to SQL);
* ``matcher``: :class:`elastic_recheck.core.lucene.matcher.MemoryIndex` over the documents
  as given (what ``lucene.parse`` + the matcher answer);
* ``percolation``: the store's ``msearch`` restricted to one build, which
  loads the build into memory from its stored parts (the classify path).

An outcome is the sorted list of matching document ids, ``"error"`` when
the query is rejected, or ``"crash: <exception>"`` when a path fails otherwise
(so that one crash shows as a disagreement instead of ending the run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.errors import BackendError, QuerySyntaxError
from elastic_recheck.core.lucene import parser as lucene
from elastic_recheck.core.lucene.matcher import MemoryIndex
from elastic_recheck.core.search_types import Filters, QuerySpec

Outcome = list[str] | str
PATHS = ("store", "matcher", "percolation")
#: Every generated document belongs to this build (percolation needs one build).
BUILD = "b0000000000000000000000000000001"


def _crash(exc: BaseException) -> str:
    return f"crash: {type(exc).__name__}: {exc}"


class Corpus:
    """One set of documents loaded once into a store and a matcher, for one mode."""

    def __init__(self, docs: Sequence[Mapping[str, Any]], directory: Path, es_mode: bool) -> None:
        self.docs = [dict(d, build_uuid=BUILD) for d in docs]
        self.es_mode = es_mode
        self.ids = [str(d["id"]) for d in self.docs]
        self.store = EmbeddedStore(directory / f"store-{'es' if es_mode else 'lucene'}.db", es_mode=es_mode)
        if self.store.count_documents() == 0:
            self.store.add_documents(self.docs)
        self.index = MemoryIndex(self.docs)

    def close(self) -> None:
        self.store.close()

    def store_outcome(self, query: str) -> Outcome:
        spec = QuerySpec(queries=(query,))
        try:
            total = self.store.search(spec, size=0).total
            hits = self.store.search(spec, size=max(total, 1)).hits
        except BackendError as exc:
            if isinstance(exc.__cause__, QuerySyntaxError):
                return "error"
            return _crash(exc)
        except Exception as exc:  # noqa: BLE001 - reported as this query's outcome
            return _crash(exc)
        return sorted(h.id for h in hits)

    def matcher_outcome(self, query: str) -> Outcome:
        try:
            ast = lucene.parse(query, es_mode=self.es_mode)
            found = self.index.search(ast)
        except QuerySyntaxError:
            return "error"
        except Exception as exc:  # noqa: BLE001 - reported as this query's outcome
            return _crash(exc)
        return sorted(self.ids[i] for i in found)

    def percolation_outcomes(self, queries: Sequence[str]) -> list[Outcome]:
        """Every query in one ``msearch`` over the build, as the classifier sends them."""
        filters = Filters(build_uuid=BUILD)
        specs = [QuerySpec(queries=(q,), filters=filters, label=str(i)) for i, q in enumerate(queries)]
        specs.append(QuerySpec(filters=filters, label="all"))  # percolation needs two specs at least
        try:
            results = self.store.msearch(specs, size=len(self.docs) + 1)
        except Exception as exc:  # noqa: BLE001 - one crash: every query of the msearch lost
            return [_crash(exc)] * len(queries)
        out: list[Outcome] = []
        for res in results[:-1]:
            out.append("error" if res.error else sorted(h.id for h in res.hits))
        return out

    def outcomes(self, queries: Sequence[str]) -> dict[str, list[Outcome]]:
        """``path -> outcome per query``."""
        return {
            "store": [self.store_outcome(q) for q in queries],
            "matcher": [self.matcher_outcome(q) for q in queries],
            "percolation": self.percolation_outcomes(queries),
        }

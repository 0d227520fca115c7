"""Preparing documents for the embedded store: split into shape and per-line parts, analyzed.

The CPU-heavy half of storing a document, free of I/O: big ingests run
:class:`DocumentPreparer` in worker processes, and :mod:`.writer` stores
what it returns (:data:`PreparedDoc`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import Any

from elastic_recheck.adapters.sqlite.layout import (
    GAP,
    PER_LINE_FIELDS,
    PRESENT,
    UNINDEXED_PER_LINE,
    dumps_json,
    keyword_values,
    nested_keywords,
    text_values,
)
from elastic_recheck.core.documents import flatten_fields
from elastic_recheck.core.lucene.build_index import indexable
from elastic_recheck.core.lucene.matcher import document_id
from elastic_recheck.core.timestamps import timestamp_ms

#: Distinct shapes (and tags lists) remembered while ingesting. Documents
#: arrive file by file, so a few hundred cover every run of identical shapes;
#: more only costs memory (a million lines hold ~30,000 shapes).
SHAPE_CACHE = 512

def fts_text(values: Sequence[str], tokenize: Callable[[str], list[str]]) -> str:
    """The FTS5 column text of one text field: PRESENT, then the values' tokens separated by GAP."""
    parts = [PRESENT]
    for i, value in enumerate(values):
        if i:
            parts.append(GAP)
        parts.extend(tokenize(value))
    return " ".join(parts)


#: One document split and analyzed, ready for :meth:`~elastic_recheck.adapters.sqlite.store.EmbeddedStore.add_prepared`:
#: ``(doc_id, shape_key, ts, body, fts, kw)`` where ``shape_key`` is the
#: canonical JSON of the shape fields, ``body`` the JSON of the per-line
#: fields, ``fts`` the FTS5 text per text field and ``kw`` the per-line
#: keyword ``(field, value)`` pairs. A plain tuple: it crosses process
#: boundaries cheaply.
PreparedDoc = tuple[str | None, str, int | None, str, tuple[str | None, ...], tuple[tuple[str, str], ...]]


def shape_key(shape: AbcMapping[str, Any]) -> str:
    """The canonical JSON of a document's shape fields (identical shapes, identical keys)."""
    return json.dumps(shape, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _tuple_getter(keys: Sequence[str]) -> Callable[[AbcMapping[str, Any]], tuple[Any, ...]]:
    """``doc -> tuple(doc[k] for k in keys)`` (KeyError when one is missing), in C where possible."""
    if not keys:
        return lambda doc: ()
    if len(keys) == 1:
        only = keys[0]
        return lambda doc: (doc[only],)
    return operator.itemgetter(*keys)


@dataclass(frozen=True, eq=False)
class _KeyPlan:
    """How documents with one set of keys split into body and shape (hashed by identity)."""

    size: int
    body_names: tuple[str, ...]
    body_values: Callable[[AbcMapping[str, Any]], tuple[Any, ...]]
    shape_names: tuple[str, ...]
    shape_values: Callable[[AbcMapping[str, Any]], tuple[Any, ...]]
    #: body fields indexed in ``kw``
    kw_names: tuple[str, ...]


class DocumentPreparer:
    """Splits documents into shape and per-line parts and analyzes their text fields.

    The CPU-heavy half of storing a document, kept free of I/O so that big
    ingests can run it in worker processes (it pickles without its tokenizer).
    """

    def __init__(self, text_fields: Sequence[str], tokenize: Callable[[str], list[str]] | None) -> None:
        self.text_fields = tuple(text_fields)
        self._tokenize = tokenize
        self._body_keys = PER_LINE_FIELDS | frozenset(self.text_fields)
        self._text_set = frozenset(self.text_fields)
        self._skip_kw = UNINDEXED_PER_LINE | frozenset(self.text_fields)
        self._list_cache: dict[tuple[Any, ...], tuple[str, tuple[tuple[str, str], ...]]] = {}
        self._shape_keys: dict[tuple[Any, ...], str] = {}
        self._plans: dict[tuple[str, ...], _KeyPlan] = {}
        self._last_plan: _KeyPlan | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"text_fields": self.text_fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["text_fields"], None)  # type: ignore[misc]

    @property
    def tokenize(self) -> Callable[[str], list[str]]:
        if self._tokenize is None:
            from elastic_recheck.core.lucene.analysis import tokenize

            self._tokenize = tokenize
        return self._tokenize

    def _plan(self, doc: AbcMapping[str, Any]) -> _KeyPlan:
        """How to split documents with the keys of ``doc``."""
        names = tuple(doc)
        plan = self._plans.get(names)
        if plan is None:
            body_keys = self._body_keys
            # ``message.a`` (written dotted or nested) is stored with the line, like ``message``
            body = tuple(k for k in names if k in body_keys or k.split(".", 1)[0] in self._text_set)
            shape = tuple(k for k in names if k not in body)
            plan = _KeyPlan(
                size=len(names),
                body_names=body,
                body_values=_tuple_getter(body),
                shape_names=shape,
                shape_values=_tuple_getter(shape),
                kw_names=tuple(k for k in body if k not in self._skip_kw),
            )
            if len(self._plans) > 1000:
                self._plans.clear()
            self._plans[names] = plan
        self._last_plan = plan
        return plan

    def prepare(self, doc: AbcMapping[str, Any]) -> PreparedDoc:
        # Documents of a file share their keys: the last plan usually fits (same
        # number of keys, all found: the same set of keys).
        plan = self._last_plan
        if plan is None or len(doc) != plan.size:
            plan = self._plan(doc)
        try:
            body_values = plan.body_values(doc)
            shape_values = plan.shape_values(doc)
        except KeyError:
            plan = self._plan(doc)
            body_values = plan.body_values(doc)
            shape_values = plan.shape_values(doc)
        body = dict(zip(plan.body_names, body_values, strict=True))
        doc_id = document_id(body.get("id"))
        ts = timestamp_ms(body.get("@timestamp"))
        fts: list[str | None] = []
        kw: list[tuple[str, str]] = []
        tokenize = self.tokenize
        for name in self.text_fields:
            value = body.get(name)
            if isinstance(value, str):
                fts.append(PRESENT + " " + " ".join(tokenize(value)))
            elif isinstance(value, list) and len(value) <= 8:
                # Lists (tags) repeat from line to line: analyze each distinct one once
                # (its FTS5 text and the keywords of objects nested in it).
                try:
                    key: tuple[Any, ...] | None = (name, *value)
                    cached = self._list_cache.get(key)  # type: ignore[arg-type]
                except TypeError:
                    key, cached = None, None
                if cached is None:
                    values_ = text_values(value)
                    cached = (fts_text(values_, tokenize) if values_ is not None else "", tuple(nested_keywords(name, value)))
                    if key is not None:
                        if len(self._list_cache) > SHAPE_CACHE:
                            self._list_cache.clear()
                        self._list_cache[key] = cached
                fts.append(cached[0] or None)
                if cached[1]:
                    kw.extend(cached[1])
            else:
                values_ = text_values(value)
                fts.append(fts_text(values_, tokenize) if values_ is not None else None)
                if isinstance(value, (dict, list)):
                    kw.extend(nested_keywords(name, value))
        for key_name in plan.kw_names:
            value = body[key_name]
            if isinstance(value, str):
                if len(value) < 10_000 or indexable(value):
                    kw.append((key_name, value))
                continue
            for name, raw in flatten_fields({key_name: value}):
                kw.extend((name, v) for v in keyword_values(raw) if indexable(v))
        try:
            # Types too: True == 1 == 1.0, but they are different JSON.
            cache_key: tuple[Any, ...] | None = (plan, shape_values, tuple(map(type, shape_values)))
            skey = self._shape_keys.get(cache_key)  # type: ignore[arg-type]
        except TypeError:  # list or object values: not hashable
            cache_key, skey = None, None
        if skey is None:
            skey = shape_key(dict(zip(plan.shape_names, shape_values, strict=True)))
            if cache_key is not None:
                if len(self._shape_keys) > SHAPE_CACHE:
                    self._shape_keys.clear()
                self._shape_keys[cache_key] = skey
        # Tuples of strings only: the garbage collector stops tracking them (a
        # batch of prepared documents does not make its full collections slow).
        return (doc_id, skey, ts, dumps_json(body), tuple(fts), tuple(kw))

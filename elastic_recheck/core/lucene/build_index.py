"""A build's :class:`~elastic_recheck.core.lucene.matcher.MemoryIndex`, built from its stored parts.

A build's lines share most of their fields (the build's metadata, the
file's name and URL...): a store keeps those once per *shape*, and
:func:`build_index` indexes them once per shape instead of once per line.
Percolation (:mod:`elastic_recheck.adapters.sqlite.percolate`) builds each
build's index this way, with only the postings its queries look up.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from collections.abc import Set as AbstractSet
from typing import Any

from elastic_recheck.core.lucene.matcher import (
    ID_FIELD,
    MAX_KEYWORD_BYTES,
    MemoryIndex,
    document_id,
    flatten_document,
    value_text,
)
from elastic_recheck.core.schema import Mapping

LOG = logging.getLogger(__name__)


def indexable(value: str) -> bool:
    """Whether Lucene indexes a keyword value (at most :data:`MAX_KEYWORD_BYTES` in UTF-8)."""
    return len(value) * 3 <= MAX_KEYWORD_BYTES or len(value.encode("utf-8")) <= MAX_KEYWORD_BYTES


def build_index(
    shapes: AbcMapping[int, AbcMapping[str, Any]],
    rows: Sequence[tuple[int, AbcMapping[str, Any]]],
    mapping: Mapping,
    tokenize: Callable[[str], list[str]],
    wanted: AbcMapping[str, frozenset[str] | None] | None = None,
    keyword_fields: AbstractSet[str] | None = None,
    *,
    line_tokens: Callable[[int], Sequence[Sequence[str] | None]] | None = None,
    text_fields: Sequence[str] = (),
    present_fields: AbstractSet[str] | None = None,
    doc_ids: Sequence[str | None] | None = None,
    defer: AbstractSet[str] = frozenset(),
    select: Callable[[MemoryIndex], AbstractSet[int] | None] | None = None,
) -> MemoryIndex | None:
    """A :class:`~elastic_recheck.core.lucene.matcher.MemoryIndex` of stored documents, built from their parts.

    ``rows`` holds one ``(shape id, body)`` per document, in index order;
    document ``d`` is ``{**shapes[shape], **body}``. The result equals
    ``MemoryIndex([...those documents...], mapping)`` (same postings, values
    and field presence), but each shape's fields (the build's metadata, the
    file's name, URL...: most of a document) are indexed once for all its
    lines instead of once per line, and repeated lists (``tags``) are
    analyzed once. Returns None when a field name comes from both a shape
    and a body (nested objects flattened to the same dotted name): the
    caller then indexes the assembled documents.

    ``wanted`` (text field -> tokens, None for all) restricts the postings
    of text fields to the tokens some query will look up: the index then
    answers exactly like the full one for queries whose text terms and
    phrases use only those tokens (multi-term queries on a text field
    need all of its tokens; field presence is always complete). A text
    field missing from ``wanted`` gets no postings. Most of a build's
    tokens (ids, numbers, timestamps) are in no fingerprint. Likewise
    ``keyword_fields`` (None: all) names the keyword fields whose values are
    indexed (``@timestamp``, ``log_url``... are in no fingerprint), and
    ``present_fields`` (None: all) those whose presence (``_exists_``) is
    recorded. Sets of all of a build's lines, one per field, are what a
    full index holds most of: leaving them out also spares the garbage
    collector walking through them while the index is cached.

    ``line_tokens(d)`` gives document ``d``'s tokens already analyzed (a
    store keeps them), one entry per field of ``text_fields`` (None:
    unknown): a string field's tokens are taken from there instead of
    analyzing its text again. ``doc_ids`` are the documents' ids (``_id``;
    default: their ``id`` values).

    ``defer`` names text fields (with a ``wanted`` set of tokens) whose
    per-line string values are indexed last, and then only on the lines
    ``select`` returns when given the index of everything else (None: all
    lines). The postings of those fields are then incomplete: the caller
    must know that no query it evaluates can match the other lines (e.g.
    none of them holds the terms every match of a query holds on the other
    fields, :mod:`~elastic_recheck.core.lucene.required`).
    """
    ids = doc_ids if doc_ids is not None else [document_id(body.get("id")) for _, body in rows]
    postings: dict[str, dict[str, set[int]]] = {}
    values: dict[str, dict[str, set[int]]] = {}
    present: dict[str, set[int]] = {}
    gap = mapping.position_increment_gap
    is_text = mapping.is_text
    analyzed: dict[tuple[str, ...], list[tuple[str, int]]] = {}

    def analyze(vals: Sequence[str]) -> list[tuple[str, int]]:
        """Lucene positions of a multi-valued text field (``analysis.analyze_values``)."""
        key = tuple(vals)
        got = analyzed.get(key)
        if got is None:
            got = []
            position = -1
            for i, value in enumerate(vals):
                if i:
                    position += gap
                for tok in tokenize(value):
                    position += 1
                    got.append((tok, position))
            if len(analyzed) < 10_000:
                analyzed[key] = got
        return got

    def want(name: str) -> frozenset[str] | None:
        return None if wanted is None else wanted.get(name, frozenset())

    def add_text(name: str, pairs: Sequence[tuple[str, int]], docs: Sequence[int]) -> None:
        field_post = postings.setdefault(name, {})
        keep = want(name)
        for tok, pos in pairs:
            if keep is not None and tok not in keep:
                continue
            new = [(d << 32) | pos for d in docs]
            keys = field_post.get(tok)
            if keys is None:
                field_post[tok] = set(new)
            else:
                keys.update(new)

    def presence(name: str) -> bool:
        return present_fields is None or name in present_fields

    def add_keywords(name: str, vals: Sequence[str], docs: Sequence[int]) -> None:
        field_vals = values.setdefault(name, {})
        indexed = keyword_fields is None or name in keyword_fields
        kept = False
        for v in vals:
            if not indexable(v):
                LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                continue
            kept = True
            if indexed:
                got = field_vals.get(v)
                if got is None:
                    field_vals[v] = set(docs)
                else:
                    got.update(docs)
        if kept and presence(name):
            present.setdefault(name, set()).update(docs)

    def add_field(name: str, vals: list[str], docs: Sequence[int]) -> None:
        if is_text(name):
            if want(name) != frozenset():
                add_text(name, analyze(vals), docs)
            else:
                postings.setdefault(name, {})
            if presence(name):
                present.setdefault(name, set()).update(docs)
        else:
            add_keywords(name, vals, docs)

    by_shape: dict[int, list[int]] = {}
    for d, (sid, _) in enumerate(rows):
        docs_of = by_shape.get(sid)
        if docs_of is None:
            by_shape[sid] = [d]
        else:
            docs_of.append(d)
    shape_names: dict[int, frozenset[str]] = {}
    for sid, docs_of in by_shape.items():
        flat = flatten_document(shapes[sid])
        shape_names[sid] = frozenset(flat)
        for name, vals in flat.items():
            add_field(name, vals, docs_of)

    # Per-line fields. Strings take the fast path (a message is tokenized, a
    # keyword value added); lists of strings (tags) repeat from line to line,
    # so their documents are grouped and each distinct list indexed once.
    # A body field can only be named like a shape field when the shape's name
    # comes from flattening an object, i.e. holds a dot.
    text_slots: dict[str, tuple[dict[str, set[int]], set[int] | None, frozenset[str] | None, int]] = {}
    # keyword field -> its values' documents (indexed), the lines that have one (presence
    # only), or an empty tuple (neither is wanted)
    kw_slots: dict[str, dict[str, set[int]] | list[int] | tuple[()]] = {}
    kw_present: set[str] = set()
    # deferred text field -> its lines' ``(document, value)``
    later: dict[str, list[tuple[int, str]]] | None = {} if defer and select is not None else None
    unwanted: set[str] = set()  # keyword fields whose string values are only checked for length
    groups: dict[tuple[str, ...], list[int]] = {}
    column = {name: i for i, name in enumerate(text_fields)}
    for d, (sid, body) in enumerate(rows):
        names = shape_names[sid]
        analyzed_line: Sequence[Sequence[str] | None] | None = None
        for name, value in body.items():
            if name in unwanted and type(value) is str:  # a keyword no query looks up, nor whether lines have one
                if len(value) * 3 > MAX_KEYWORD_BYTES and not indexable(value):
                    LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                continue
            if name == ID_FIELD:
                continue  # a metadata field: the document's own id answers it
            if type(value) is str:
                if "." in name and name in names:
                    return None
                slot = text_slots.get(name)
                kw = kw_slots.get(name) if slot is None else None
                if slot is None and kw is None:  # the first line with this field
                    if is_text(name):
                        slot = text_slots[name] = (
                            postings.setdefault(name, {}),
                            present.setdefault(name, set()) if presence(name) else None,
                            want(name),
                            column.get(name, -1) if line_tokens is not None else -1,
                        )
                    else:
                        indexed = values.setdefault(name, {})
                        if presence(name):
                            kw_present.add(name)
                        if keyword_fields is None or name in keyword_fields:
                            kw = kw_slots[name] = indexed
                        else:  # no query looks its values up: at most whether lines have one
                            kw = kw_slots[name] = [] if name in kw_present else ()
                            if name not in kw_present and "." not in name and name != ID_FIELD:
                                unwanted.add(name)  # (a dotted name may be a shape's too: checked line by line)
                if slot is not None:
                    field_post, docs_with, keep, col = slot
                    if docs_with is not None:
                        docs_with.add(d)
                    if keep is not None and not keep:
                        continue
                    if later is not None and keep is not None and name in defer:
                        later.setdefault(name, []).append((d, value))
                        continue
                    toks: Sequence[str] | None = None
                    if col >= 0 and line_tokens is not None:  # the tokens stored with the line: no analysis
                        if analyzed_line is None:
                            analyzed_line = line_tokens(d)
                        toks = analyzed_line[col] if col < len(analyzed_line) else None
                    if toks is None:
                        toks = tokenize(value)
                    if keep is None:
                        for tok, key in zip(toks, itertools.count(d << 32)):
                            keys = field_post.get(tok)
                            if keys is None:
                                field_post[tok] = {key}
                            else:
                                keys.add(key)
                    else:
                        _add_kept(field_post, d, toks, keep)
                    continue
                if len(value) * 3 > MAX_KEYWORD_BYTES and not indexable(value):
                    LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                elif isinstance(kw, list):
                    kw.append(d)
                elif isinstance(kw, dict):
                    got = kw.get(value)
                    if got is None:
                        kw[value] = {d}
                    else:
                        got.add(d)
            elif value is None:
                continue
            elif type(value) is list:
                if not value:
                    continue
                try:
                    key_: tuple[str, ...] | None = (name, *value)
                    docs_of = groups.get(key_)  # type: ignore[arg-type]
                except TypeError:  # unhashable items: not strings
                    key_, docs_of = None, None
                # (a list equal to one already grouped holds strings only)
                if docs_of is not None or (key_ is not None and all(type(v) is str for v in value)):
                    if "." in name and name in names:
                        return None
                    if docs_of is None:
                        groups[key_] = [d]  # type: ignore[index]
                    else:
                        docs_of.append(d)
                    continue
                if _flat_names_collide(body, names):
                    return None
                for fname, vals in flatten_document({name: value}).items():
                    add_field(fname, vals, (d,))
            elif isinstance(value, dict):  # nested: flatten as MemoryIndex does
                if _flat_names_collide(body, names):
                    return None
                for fname, vals in flatten_document({name: value}).items():
                    add_field(fname, vals, (d,))
            else:
                if name in names:
                    return None
                add_field(name, [value_text(value)], (d,))
    for (name, *vals_), docs_of in groups.items():
        add_field(name, vals_, docs_of)
    for name, kw in kw_slots.items():  # documents with a value (the fast path kept them all)
        if kw and name in kw_present:
            present.setdefault(name, set()).update(*kw.values() if isinstance(kw, dict) else (kw,))
    index = MemoryIndex.from_postings(mapping, ids, postings, values, present)
    if later and select is not None:
        lines = select(index)
        for name, pending in later.items():
            field_post, _, keep, col = text_slots[name]
            assert keep is not None
            for d, value in pending:
                if lines is not None and d not in lines:
                    continue
                toks = None
                if col >= 0 and line_tokens is not None:
                    analyzed_line = line_tokens(d)
                    toks = analyzed_line[col] if col < len(analyzed_line) else None
                if toks is None:
                    toks = tokenize(value)
                _add_kept(field_post, d, toks, keep)
    return index


def _add_kept(field_post: dict[str, set[int]], d: int, toks: Sequence[str], keep: frozenset[str]) -> None:
    """Postings of document ``d``'s tokens ``toks`` that are in ``keep`` (``d << 32 | position`` keys)."""
    hits = keep.intersection(toks)
    if hits:
        base = d << 32
        for pos, tok in enumerate(toks):
            if tok in hits:
                keys = field_post.get(tok)
                if keys is None:
                    field_post[tok] = {base | pos}
                else:
                    keys.add(base | pos)


def _flat_names_collide(body: AbcMapping[str, Any], names: frozenset[str]) -> bool:
    """Whether two of a body's fields, or a body field and a shape field, flatten to the same name."""
    seen = set(names)
    for key, value in body.items():
        flat = flatten_document({key: value})
        if not seen.isdisjoint(flat):
            return True
        seen.update(flat)
    return False

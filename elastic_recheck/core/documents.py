"""The shape of a logstash document, whatever logstash version wrote it (pure).

One flattener for every reader of documents: ``ingest`` (JSON lines, ES
dumps) and the cluster adapter (hits of an index written by logstash 1.1).
And the one way a document gets its stable id (:func:`stable_ids`), shared by
the embedded store and the cluster bulk writer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

#: logstash 1.1 meta fields that lose their ``@`` in the flat layout.
_OLD_META = ("@source", "@source_host", "@source_path", "@type")


def _unwrap_single(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def flatten_old_layout(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The flat layout of a logstash 1.1 document; any other document as given.

    ``@message`` -> ``message``, ``@tags`` -> ``tags``, each ``@fields.X`` ->
    ``X`` (one-element lists unwrapped, as logstash 1.1 wrapped every field
    value in a list; a top-level field wins over a ``@fields`` one),
    ``@source*``/``@type`` lose their ``@``.

    :raises ValueError: ``@fields`` is not an object.
    """
    if "@fields" not in doc and "@message" not in doc:
        return doc if isinstance(doc, dict) else dict(doc)
    fields = doc.get("@fields") or {}
    if not isinstance(fields, Mapping):
        raise ValueError("'@fields' is not an object")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "@fields":
            continue
        if key == "@message":
            out["message"] = value
        elif key == "@tags":
            out["tags"] = value
        elif key in _OLD_META:
            out[key[1:]] = value
        else:
            out[key] = value
    for key, value in fields.items():
        out.setdefault(str(key), _unwrap_single(value))
    return out


def normalize_document(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A flat logstash document from one JSON object.

    * ES/OpenSearch hits (``{"_id", "_index", "_source": {...}}``) are unwrapped;
      ``_id`` becomes ``id`` unless the source has one.
    * The old logstash 1.1 layout is flattened (:func:`flatten_old_layout`).
    * Everything else is kept exactly as given.

    :raises ValueError: when the object is not a document.
    """
    if "_source" in obj and isinstance(obj["_source"], Mapping):
        doc = dict(obj["_source"])
        if "id" not in doc and isinstance(obj.get("_id"), (str, int)):
            doc["id"] = str(obj["_id"])
        return flatten_old_layout(doc)
    return flatten_old_layout(obj)

def _objects(value: Any) -> Iterator[Mapping[str, Any]]:
    """The objects in a list, at any depth of nested lists, in order."""
    for item in value:
        if isinstance(item, Mapping):
            yield item
        elif isinstance(item, (list, tuple)):
            yield from _objects(item)


def _without_objects(value: Any) -> list[Any]:
    """A list with its objects (at any depth) left out, and the lists left empty by that."""
    out: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            continue
        if isinstance(item, (list, tuple)) and has_object(item):
            item = _without_objects(item)
            if not item:
                continue
        out.append(item)
    return out


def has_object(value: Any) -> bool:
    """Whether a value is an object or a list holding one (at any depth)."""
    if isinstance(value, Mapping):
        return True
    return isinstance(value, (list, tuple)) and any(has_object(v) for v in value)


def flatten_fields(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(field, value)`` pairs of a document with nested objects flattened to dotted names,
    as Elasticsearch indexes them (the one flattener of the store and the matcher).

    ``{"a": {"b": 1}}`` gives ``("a.b", 1)``; an object inside a list, at any
    depth, gives its fields under the list's name plus a dot
    (``{"a": [1, {"b": 2}]}`` gives ``("a", [1])`` and ``("a.b", 2)``). Values
    are as given otherwise (scalars, ``None``, lists without objects); a name
    may come more than once.
    """
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_fields(value, name + ".")
        elif isinstance(value, (list, tuple)) and has_object(value):
            plain = _without_objects(value)
            if plain:
                yield name, plain
            for obj in _objects(value):
                yield from flatten_fields(obj, name + ".")
        else:
            yield name, value


# ---------------------------------------------------------------------------
# Stable document ids

def document_id(build_uuid: str, filename: str, n: int) -> str:
    """A stable id for the ``n``-th document of a file of a build.

    Loading the same build twice (a crash between the load and the state
    update, or ``ingest`` run again) then replaces documents instead of
    duplicating them, in the embedded store (``id``) and in a cluster
    (``_id``) alike.
    """
    return hashlib.sha1(f"{build_uuid}\0{filename}\0{n}".encode()).hexdigest()


def stable_ids(docs: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """``docs`` (copied), each with an ``id``: its own ``id``/``_id`` if it has one, else a stable one.

    A document of a build gets :func:`document_id` of its ``build_uuid``,
    ``filename`` and its position among the documents of that file (what
    ``collect`` assigns); a document without ``build_uuid`` gets a hash of
    its content and of how many identical documents came before it.
    """
    ids = StableIds()
    for doc in docs:
        out = dict(doc)
        key = id_key(out)
        out["id"] = str(out.get("id", out.get("_id"))) if key is None else ids.next(key)
        out.pop("_id", None)
        yield out


#: What a document's stable id is derived from: ``(build_uuid, filename)``, or ``(content digest, None)``.
IdKey = tuple[str, str | None]


def id_key(doc: Mapping[str, Any]) -> IdKey | None:
    """None when ``doc`` has its own ``id``/``_id``; else what :class:`StableIds` numbers it by."""
    own = doc.get("id", doc.get("_id"))
    if isinstance(own, (str, int)) and not isinstance(own, bool) and str(own):
        return None
    if doc.get("build_uuid"):
        return str(doc["build_uuid"]), str(doc.get("filename", ""))
    return hashlib.sha1(json.dumps(dict(doc), sort_keys=True, default=str).encode()).hexdigest(), None


class StableIds:
    """Numbers the documents of one load, in order: the ``n``-th document of a build's file gets
    :func:`document_id` ``(build_uuid, filename, n)``; the ``k``-th copy of a build-less document
    its content digest (``k`` > 1: :func:`document_id` ``(digest, "", k)``)."""

    def __init__(self) -> None:
        self.counts: dict[IdKey, int] = {}

    def of(self, doc: Mapping[str, Any]) -> str | None:
        """The next id for ``doc``, or None when it has its own."""
        key = id_key(doc)
        return None if key is None else self.next(key)

    def next(self, key: IdKey) -> str:
        n = self.counts[key] = self.counts.get(key, 0) + 1
        first, filename = key
        if filename is None:
            return first if n == 1 else document_id(first, "", n)
        return document_id(first, filename, n)

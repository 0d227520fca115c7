"""The shape of a logstash document, whatever logstash version wrote it (pure).

One flattener for every reader of documents: ``ingest`` (JSON lines, ES
dumps) and the cluster adapter (hits of an index written by logstash 1.1).
"""

from __future__ import annotations

from collections.abc import Mapping
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

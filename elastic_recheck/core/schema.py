"""The document schema and the field mapping shared by every backend.

Documents are logstash-style flat dicts, one per log line (see ``ingest``).
Text fields are analyzed like Elasticsearch's ``standard`` analyzer; every
other field is an exact, case-sensitive keyword.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

from elastic_recheck.core.errors import short_repr

#: Fields every ingested document may carry: the built-in mapping, used when
#: neither ``[data_source] mapping`` nor a cluster's own mapping says more.
#: It is the union of OpenStack's logstash (2013-2021: the original
#: elastic-recheck's fingerprints query ``syslog_program``, ``error_pr``...)
#: and OpenDev's ci-log-processing documents.
KNOWN_FIELDS: tuple[str, ...] = (
    "@timestamp",
    "message",
    "tags",
    "filename",
    "build_name",
    "build_status",
    "build_uuid",
    "build_short_uuid",
    "build_change",
    "build_patchset",
    "build_queue",
    "build_branch",
    "build_ref",
    "build_master",
    "build_node",
    "build_zuul_url",
    "build_set",
    "build_newrev",
    "project",
    "voting",
    "node_provider",
    "loglevel",
    "log_url",
    "host",
    "hosts_id",
    "module",
    "severity",
    "type",
    "zuul_executor",
    "received_at",
    # OpenStack's logstash (the original elastic-recheck's recorded hits)
    "@version",
    "syslog_program",
    "syslog_host",
    "pid",
    "error_pr",
    "source",
    "source_host",
    "source_path",
    # ci-log-processing (OpenDev's OpenSearch)
    "tenant",
    "change_url",
    "hosts_region",
)


#: Build-level fields (the same on every line of a build), reported in
#: :attr:`elastic_recheck.core.search_types.BuildSummary.fields` by every backend.
BUILD_FIELDS: tuple[str, ...] = (
    "build_uuid",
    "build_short_uuid",
    "build_name",
    "build_change",
    "build_patchset",
    "build_queue",
    "build_status",
    "build_branch",
    "build_ref",
    "build_set",
    "project",
    "voting",
    "node_provider",
    "tenant",
    "log_url",
)


#: How a voting and a non-voting build are spelled (any case) in documents,
#: Zuul build records and ``ingest --voting``: OpenDev's indexer writes
#: ``1``/``0``, Zuul's API ``true``/``false``.
VOTING_SPELLINGS: MappingABC[bool, tuple[str, ...]] = {
    True: ("1", "true", "yes", "on"),
    False: ("0", "false", "no", "off"),
}


def parse_voting(value: Any, *, strict: bool = False) -> bool | None:
    """Whether a build votes, from a ``voting`` value (``1``/``"1"``/``true``/``"no"`` ...); None if absent.

    A value that is none of :data:`VOTING_SPELLINGS` is ``None`` (unknown),
    or with ``strict`` a number's truth, else :class:`ValueError`.
    """
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    for flag, spellings in VOTING_SPELLINGS.items():
        if text in spellings:
            return flag
    if not strict:
        return None
    if isinstance(value, int | float):
        return bool(value)
    raise ValueError(f"not a boolean: {short_repr(value)}")


def voting_value(flag: bool) -> int:
    """The ``voting`` field a document is written with (OpenDev's ``1``/``0``)."""
    return 1 if flag else 0


def voting_spellings(flag: bool) -> tuple[str, ...]:
    """Every exact term a document's ``voting`` field may hold for ``flag`` (the spellings in
    lower, title and upper case), for a store that keeps documents as given."""
    return tuple(dict.fromkeys(v for s in VOTING_SPELLINGS[flag] for v in (s, s.title(), s.upper())))


def build_log_url(url: object, filename: object) -> object:
    """The build's log directory from one document's ``log_url`` (the URL of its file).

    Documents carry the URL of their own file (``.../job-output.txt``); a
    build's ``log_url`` is the directory the files are under. Anything that
    does not end with the file's name is returned as it is.
    """
    if isinstance(url, str) and isinstance(filename, str) and filename:
        for suffix in (filename + ".gz", filename):
            if url.endswith("/" + suffix):
                return url[: -len(suffix)]
    return url


@dataclass(frozen=True)
class Mapping:
    """Which fields are analyzed text; everything else is an exact keyword."""

    text_fields: frozenset[str] = frozenset({"message", "tags"})
    default_field: str = "message"
    known_fields: frozenset[str] = field(default_factory=lambda: frozenset(KNOWN_FIELDS))
    #: Lucene (ES) position gap between values of a multi-valued text field.
    position_increment_gap: int = 100

    def is_text(self, name: str) -> bool:
        return name in self.text_fields

    def is_known(self, name: str) -> bool:
        return name in self.known_fields or name in self.text_fields or name in ("_exists_", "_id")


DEFAULT_MAPPING = Mapping()


def mapping_from_properties(
    properties: Iterable[MappingABC[str, Any]], default_field: str = DEFAULT_MAPPING.default_field
) -> Mapping | None:
    """A :class:`Mapping` of Elasticsearch ``properties`` blocks (one per index); None when they hold no field.

    Every field counts, sub-fields (``build_name.keyword``) and object
    children (``a.b``) included; ``text`` fields are the analyzed ones.
    """
    known: set[str] = set()
    text: set[str] = set()

    def walk(props: MappingABC[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            if not isinstance(spec, MappingABC):
                continue
            full = prefix + name
            known.add(full)
            if spec.get("type") in ("text", "match_only_text"):
                text.add(full)
            for sub, sub_spec in (spec.get("fields") or {}).items():
                known.add(f"{full}.{sub}")
                if isinstance(sub_spec, MappingABC) and sub_spec.get("type") == "text":
                    text.add(f"{full}.{sub}")
            if isinstance(spec.get("properties"), MappingABC):
                walk(spec["properties"], full + ".")

    for props in properties:
        walk(props, "")
    if not known:
        return None
    return Mapping(text_fields=frozenset(text), default_field=default_field, known_fields=frozenset(known))


def properties_of(data: Any) -> list[MappingABC[str, Any]]:
    """The ``properties`` blocks of a mapping document, whatever its shape.

    Accepted: a ``GET <index>/_mapping`` answer (``{index: {"mappings": ...}}``),
    an index template (``{"template": {"mappings": ...}}`` or a legacy one with
    ``mappings``), ``{"mappings": ...}`` or ``{"properties": ...}``; a
    ``mappings`` block may still carry a 6.x type level (``{"doc": {"properties"}}``).
    """
    if not isinstance(data, MappingABC):
        return []
    if isinstance(data.get("properties"), MappingABC):
        return [data["properties"]]
    for key in ("template", "mappings"):
        if isinstance(data.get(key), MappingABC):
            return properties_of(data[key])
    out: list[MappingABC[str, Any]] = []
    for value in data.values():  # one entry per index, or a 6.x mapping type
        out.extend(properties_of(value))
    return out

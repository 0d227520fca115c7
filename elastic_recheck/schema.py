"""The document schema and the field mapping shared by every backend.

Documents are logstash-style flat dicts, one per log line (see ``ingest``).
Text fields are analyzed like Elasticsearch's ``standard`` analyzer; every
other field is an exact, case-sensitive keyword.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Fields every ingested document may carry (the OpenDev/logstash schema).
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
)


#: Build-level fields (the same on every line of a build), reported in
#: :attr:`elastic_recheck.search.BuildInfo.fields` by every backend.
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

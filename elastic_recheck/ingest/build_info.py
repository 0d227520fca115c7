"""The metadata every document of one build carries: :class:`BuildInfo`.

From ``ingest``'s options, or from a Zuul build record (REST API or
logscraper ``buildinfo``): :func:`build_info_from_zuul`, :func:`load_zuul_build`.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import short_repr
from elastic_recheck.core.timestamps import parse_timestamp

LOG = logging.getLogger(__name__)

def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


@dataclass(frozen=True)
class BuildInfo:
    """The metadata every document of one build carries."""

    uuid: str
    name: str | None = None
    status: str | None = None
    change: str | None = None
    patchset: str | None = None
    queue: str | None = None
    project: str | None = None
    voting: bool | None = None
    node_provider: str | None = None
    log_url: str | None = None
    branch: str | None = None
    ref: str | None = None
    newrev: str | None = None
    build_set: str | None = None
    tenant: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def short_uuid(self) -> str:
        return self.uuid[:7]

    @property
    def time(self) -> datetime | None:
        """The build's reference time (fallback for lines without a timestamp)."""
        return self.start_time or self.end_time

    def fields(self) -> dict[str, Any]:
        """The logstash ``build_*`` (and related) fields of the build's documents."""
        out: dict[str, Any] = {"build_uuid": self.uuid, "build_short_uuid": self.short_uuid}
        for key, value in (
            ("build_name", self.name),
            ("build_status", self.status),
            ("build_change", self.change),
            ("build_patchset", self.patchset),
            ("build_queue", self.queue),
            ("build_branch", self.branch),
            ("build_ref", self.ref),
            ("build_newrev", self.newrev),
            ("build_set", self.build_set),
            ("project", self.project),
            ("node_provider", self.node_provider),
            ("tenant", self.tenant),
        ):
            if value is not None:
                out[key] = value
        if self.voting is not None:
            out["voting"] = 1 if self.voting else 0
        return out

    def file_url(self, relpath: str) -> str | None:
        if not self.log_url:
            return None
        return self.log_url.rstrip("/") + "/" + relpath.lstrip("/")

def _parse_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {short_repr(value)}")


def build_info_from_zuul(record: Mapping[str, Any]) -> BuildInfo:
    """A :class:`BuildInfo` from a Zuul build record (REST API or logscraper ``buildinfo``).

    Both shapes are accepted: flat ref fields (``project``, ``branch``,
    ``change``, ``patchset``, ``ref``, ``newrev``) and the Zuul >= 9 nested
    ``ref: {project, branch, change, patchset, ref, newrev}``.

    :raises ValueError: when the record has no build uuid.
    """
    ref = record.get("ref")
    nested: Mapping[str, Any] = ref if isinstance(ref, Mapping) else {}

    def pick(key: str) -> Any:
        if key in nested and nested[key] not in (None, ""):
            return nested[key]
        value = record.get(key)
        return None if isinstance(value, Mapping) else value

    uuid = record.get("uuid")
    if not uuid or not isinstance(uuid, str):
        raise ValueError("Zuul build record has no 'uuid' (a build that never ran has no logs)")
    buildset = record.get("buildset")
    build_set = buildset.get("uuid") if isinstance(buildset, Mapping) else None
    node_provider = record.get("node_provider")
    return BuildInfo(
        uuid=uuid,
        name=_opt_str(record.get("job_name")),
        status=_opt_str(record.get("result")),
        change=_opt_str(pick("change")),
        patchset=_opt_str(pick("patchset")),
        queue=_opt_str(record.get("pipeline")),
        project=_opt_str(pick("project")),
        voting=_parse_bool(record.get("voting")),
        node_provider=_opt_str(node_provider),
        log_url=_opt_str(record.get("log_url")),
        branch=_opt_str(pick("branch")),
        ref=_opt_str(pick("ref")),
        newrev=_opt_str(pick("newrev")),
        build_set=_opt_str(build_set),
        tenant=_opt_str(record.get("tenant")),
        start_time=parse_timestamp(record.get("start_time")),
        end_time=parse_timestamp(record.get("end_time")),
    )


def load_zuul_build(path: Path) -> BuildInfo:
    """Read a Zuul build record from a JSON file (a record, or a one-element list)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read Zuul build record: {exc}") from None
    if isinstance(data, list):
        if len(data) != 1:
            raise ValueError(f"{path}: expected one build record, found {len(data)}")
        data = data[0]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object")  # noqa: TRY004 - one error type for bad input files
    return build_info_from_zuul(data)

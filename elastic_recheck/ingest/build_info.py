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

from elastic_recheck.core.schema import voting_value
from elastic_recheck.core.zuul_build import ZuulBuild

LOG = logging.getLogger(__name__)


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
            out["voting"] = voting_value(self.voting)
        return out

    def file_url(self, relpath: str) -> str | None:
        if not self.log_url:
            return None
        return self.log_url.rstrip("/") + "/" + relpath.lstrip("/")

    @classmethod
    def from_zuul(cls, build: ZuulBuild) -> BuildInfo:
        """The fields of a Zuul build (from Zuul's API, a record file, the collector's listing)."""
        return cls(
            uuid=build.uuid,
            name=build.job_name or None,
            status=build.result,
            change=str(build.change) if build.change is not None else None,
            patchset=build.patchset,
            queue=build.pipeline,
            project=build.project,
            voting=build.voting,
            node_provider=build.node_provider,
            log_url=build.log_url,
            branch=build.branch,
            ref=build.ref,
            newrev=build.newrev,
            build_set=build.buildset_uuid,
            tenant=build.tenant,
            start_time=build.start_time,
            end_time=build.end_time,
        )


def build_info_from_zuul(record: Mapping[str, Any]) -> BuildInfo:
    """A :class:`BuildInfo` from a Zuul build record (REST API or logscraper ``buildinfo``),
    read by the one Zuul record reader (:meth:`~elastic_recheck.core.zuul_build.ZuulBuild.from_api`,
    flat or nested ``ref`` shape; ``job_name`` may be absent).

    :raises ValueError: when the record has no build uuid, or a ``voting`` that is no flag.
    """
    return BuildInfo.from_zuul(ZuulBuild.from_api(record, require_job_name=False))


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

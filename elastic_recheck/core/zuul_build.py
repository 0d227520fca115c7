"""A Zuul build, whichever record shape it came from: :class:`ZuulBuild` (pure).

The one reader of Zuul build records: the REST API's answers (the
collector, the bot's on-demand fetch) and the records ``ingest
--zuul-build`` reads from a file (a REST record or logscraper's
``buildinfo``). Two shapes exist in the wild: the flat one (``change``,
``patchset``, ``project``, ``branch``, ``ref_url`` at the top level) and the
newer nested one (Zuul >= 9: ``ref: {project, branch, change, patchset,
ref, ref_url, oldrev, newrev}``); :meth:`ZuulBuild.from_api` reads both. A
nested value wins; an absent or empty one is taken from the top level.

Not to be confused with the search port's
:class:`~elastic_recheck.core.search_types.BuildSummary` (a build as found in the
indexed documents) nor with ingest's
:class:`~elastic_recheck.ingest.build_info.BuildInfo` (the fields every
document of one build carries, made from a :class:`ZuulBuild` by
``BuildInfo.from_zuul``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from elastic_recheck.core.schema import parse_voting
from elastic_recheck.core.timestamps import parse_timestamp


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Artifact:
    """One entry of a build's ``artifacts`` list."""

    name: str
    url: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str | None:
        value = self.metadata.get("type")
        return str(value) if value else None


@dataclass(frozen=True)
class NodeInfo:
    """What a build's ``zuul-info/inventory.yaml`` tells about its nodes."""

    node_provider: str | None = None
    hosts_id: tuple[str, ...] = ()
    hosts_region: tuple[str, ...] = ()
    zuul_executor: str | None = None
    #: Inventory host names (``controller``, ``compute1``...), in file order.
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZuulBuild:
    """One Zuul build, whichever record shape it came from."""

    uuid: str
    job_name: str
    result: str | None
    pipeline: str | None
    project: str | None
    branch: str | None = None
    change: int | None = None
    patchset: str | None = None
    ref: str | None = None
    ref_url: str | None = None
    newrev: str | None = None
    #: None when the record does not say (Zuul's default: voting).
    voting: bool | None = True
    log_url: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: float | None = None
    nodeset: str | None = None
    buildset_uuid: str | None = None
    event_id: str | None = None
    tenant: str | None = None
    error_detail: str | None = None
    final: bool = True
    artifacts: tuple[Artifact, ...] = ()
    #: From the build's inventory (see :meth:`with_node_info`), or the record's own (logscraper).
    node_provider: str | None = None
    hosts_id: tuple[str, ...] = ()
    zuul_executor: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def short_uuid(self) -> str:
        return self.uuid[:7]

    @property
    def manifest_url(self) -> str | None:
        """URL of the Zuul manifest artifact, when the build published one."""
        for art in self.artifacts:
            if art.type == "zuul_manifest" and art.url:
                return art.url
        return None

    @property
    def timestamp(self) -> datetime | None:
        """The time used to place the build (end, else start)."""
        return self.end_time or self.start_time

    def with_node_info(self, info: NodeInfo) -> ZuulBuild:
        return replace(
            self,
            node_provider=info.node_provider or self.node_provider,
            hosts_id=info.hosts_id or self.hosts_id,
            zuul_executor=info.zuul_executor or self.zuul_executor,
        )

    @classmethod
    def from_api(cls, record: Mapping[str, Any], tenant: str | None = None, require_job_name: bool = True) -> ZuulBuild:
        """Parse one build record (flat or nested ``ref`` shape).

        ``require_job_name=False`` reads a record without ``job_name`` (as
        ``ingest --zuul-build`` does: the documents then carry no ``build_name``);
        its :attr:`job_name` is ``""``.

        :raises ValueError: the record has no ``uuid`` (e.g. a SKIPPED build),
            no ``job_name`` (when required), or a ``voting`` that is no flag.
        """
        uuid = record.get("uuid")
        if not uuid or not isinstance(uuid, str):
            raise ValueError("Zuul build record has no 'uuid' (a build that never ran has no logs)")
        job_name = _opt_str(record.get("job_name")) or ""
        if not job_name and require_job_name:
            raise ValueError(f"build {uuid} without job_name")
        ref_obj = record.get("ref")
        # Newer Zuul nests the ref fields; older Zuul has them at top level and
        # ``ref`` is the git ref string. Nested values win, top-level fill gaps.
        nested: Mapping[str, Any] = ref_obj if isinstance(ref_obj, Mapping) else {}

        def pick(name: str) -> Any:
            value = nested.get(name)
            if value is None or value == "":
                value = record.get(name)
            return None if isinstance(value, Mapping) else value

        ref_str = nested.get("ref") if nested else ref_obj
        artifacts: list[Artifact] = []
        for art in record.get("artifacts") or ():
            if isinstance(art, Mapping) and art.get("name") is not None:
                meta = art.get("metadata")
                artifacts.append(
                    Artifact(
                        name=str(art.get("name")),
                        url=str(art.get("url") or ""),
                        metadata=dict(meta) if isinstance(meta, Mapping) else {},
                    )
                )
        buildset = record.get("buildset")
        buildset_uuid = _opt_str(buildset.get("uuid")) if isinstance(buildset, Mapping) else None
        duration = record.get("duration")
        voting = record.get("voting")
        final = record.get("final")
        return cls(
            uuid=uuid,
            job_name=job_name,
            result=_opt_str(record.get("result")),
            pipeline=_opt_str(record.get("pipeline")),
            project=_opt_str(pick("project")),
            branch=_opt_str(pick("branch")),
            change=_opt_int(pick("change")),
            patchset=_opt_str(pick("patchset")),
            ref=_opt_str(ref_str) if not isinstance(ref_str, Mapping) else None,
            ref_url=_opt_str(pick("ref_url")),
            newrev=_opt_str(pick("newrev")),
            voting=parse_voting(voting, strict=True),
            log_url=_opt_str(record.get("log_url")),
            start_time=parse_timestamp(record.get("start_time")),
            end_time=parse_timestamp(record.get("end_time")),
            duration=float(duration) if isinstance(duration, (int, float)) else None,
            nodeset=_opt_str(record.get("nodeset")),
            buildset_uuid=buildset_uuid,
            event_id=_opt_str(record.get("event_id")),
            tenant=_opt_str(record.get("tenant")) or tenant,
            error_detail=_opt_str(record.get("error_detail")),
            final=True if final is None else bool(final),
            artifacts=tuple(artifacts),
            node_provider=_opt_str(record.get("node_provider")),
            raw=dict(record),
        )

"""Which log files of a build to fetch: rules, globs, the Zuul manifest, safe paths (pure).

A :class:`FileRule` names globs (over paths relative to the build's
``log_url``) for the jobs whose name matches a regex; ``[zuul] log_files``
adds rules to :data:`DEFAULT_FILE_RULES`. A build's ``zuul-manifest.json``
lists the files that exist (:func:`manifest_files`); without one the
fetcher tries :data:`KNOWN_PATHS`. Paths that would leave the download
directory are refused (:func:`safe_relpath`).
"""

from __future__ import annotations

import fnmatch
import logging
import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elastic_recheck.core.errors import ConfigError

LOG = logging.getLogger(__name__)

MANIFEST_NAME = "zuul-manifest.json"
INVENTORY_PATH = "zuul-info/inventory.yaml"
JOB_OUTPUT = "job-output.txt"


def _glob_segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(_glob_segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return fnmatch.fnmatchcase(path[0], head) and _glob_segments_match(pattern[1:], path[1:])


def glob_match(pattern: str, path: str) -> bool:
    """Match a relative path against a glob: ``*``/``?``/``[..]`` stay within one
    path segment, ``**`` spans any number of segments (``**/*.subunit``)."""
    return _glob_segments_match(pattern.strip("/").split("/"), path.strip("/").split("/"))


@dataclass(frozen=True)
class FileRule:
    """Log files (globs over paths relative to the build's ``log_url``) for jobs matching ``job_re``."""

    job_re: str
    globs: tuple[str, ...]

    def applies_to(self, job_name: str) -> bool:
        return re.search(self.job_re, job_name) is not None


DEFAULT_FILE_RULES: tuple[FileRule, ...] = (
    FileRule(".*", (JOB_OUTPUT, "testrepository.subunit", "*.subunit")),
    # devstack-based jobs (Zuul v3 layout: one directory per node).
    FileRule(
        ".*",
        (
            "*/logs/screen-*.txt",
            "*/logs/devstack@*.service.log.txt",
            "*/logs/syslog.txt",
            "controller/logs/devstacklog.txt",
        ),
    ),
    # Zuul v2 / devstack-gate layout.
    FileRule(".*", ("logs/screen-*.txt", "logs/syslog.txt", "logs/devstacklog.txt")),
)

#: Services whose screen logs are tried when a build has no manifest.
_KNOWN_SERVICES = (
    "n-api",
    "n-api-meta",
    "n-cond-cell1",
    "n-cpu",
    "n-sch",
    "n-super-cond",
    "q-svc",
    "q-agt",
    "q-dhcp",
    "q-l3",
    "q-meta",
    "q-ovn-metadata-agent",
    "c-api",
    "c-sch",
    "c-vol",
    "c-bak",
    "g-api",
    "keystone",
    "placement-api",
    "s-proxy",
)

#: Paths tried (if a rule selects them) when a build has no manifest.
KNOWN_PATHS: tuple[str, ...] = (
    JOB_OUTPUT,
    "testrepository.subunit",
    *(f"{host}/logs/screen-{svc}.txt" for host in ("controller", "compute1") for svc in _KNOWN_SERVICES),
    "controller/logs/syslog.txt",
    "compute1/logs/syslog.txt",
    "controller/logs/devstacklog.txt",
    *(f"logs/screen-{svc}.txt" for svc in _KNOWN_SERVICES),
    "logs/syslog.txt",
    "logs/devstacklog.txt",
)


def parse_file_rules(text: str) -> list[FileRule]:
    """``job-regex=glob[,glob]`` lines (the ``[zuul] log_files`` setting).

    :raises ConfigError: a line without ``=`` or with an invalid regex.
    """
    rules: list[FileRule] = []
    for raw in text.replace(";", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        job_re, sep, globs = line.partition("=")
        if not sep:
            raise ConfigError(f"[zuul] log_files: expected job-regex=glob[,glob], got {line!r}")
        job_re = job_re.strip() or ".*"
        try:
            re.compile(job_re)
        except re.error as exc:
            raise ConfigError(f"[zuul] log_files: bad job regex {job_re!r}: {exc}") from None
        patterns = tuple(g.strip() for g in globs.split(",") if g.strip())
        if patterns:
            rules.append(FileRule(job_re, patterns))
    return rules


def safe_relpath(path: str) -> str | None:
    """A normalized relative POSIX path, or None when it would leave the directory."""
    if not path or "\x00" in path or "\\" in path:
        return None
    if path.startswith("/"):
        return None
    norm = posixpath.normpath(path)
    if norm in (".", "..") or norm.startswith(("../", "/")):
        return None
    return norm


def _manifest_size(value: Any) -> int | None:
    """A manifest entry's size; None (unknown: the download's own limit applies) unless a finite number >= 0.

    JSON from a log server may say ``1e999`` (infinity) or ``NaN``: not a
    reason to fail the build.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, int | None]:
    """``{relative path: size}`` of the files listed in a Zuul manifest.

    The manifest is ``{"tree": [entry...], "index_links": bool}``; an entry is
    ``{"name", "mimetype", "encoding", "last_modified", "size"}``, or a
    directory with ``"mimetype": "application/directory"`` and ``"children"``.
    Entries whose path would leave the log root are dropped.
    """
    out: dict[str, int | None] = {}

    def walk(entries: Any, prefix: str, depth: int) -> None:
        if not isinstance(entries, list) or depth > 64:
            return
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                continue
            rel = safe_relpath(f"{prefix}{name}")
            if rel is None:
                LOG.warning("manifest entry %r leaves the log root, ignored", f"{prefix}{name}")
                continue
            children = entry.get("children")
            if entry.get("mimetype") == "application/directory" or isinstance(children, list):
                walk(children, rel + "/", depth + 1)
                continue
            size = entry.get("size")
            out[rel] = _manifest_size(size)

    walk(manifest.get("tree"), "", 0)
    return out

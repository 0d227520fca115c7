"""Top values of each attribute of the documents a fingerprint hits (pure).

The analysis of the original ``elastic-recheck-query``: every field of the
hit documents is a section, in alphabetical order, except meta fields
(``@timestamp``, ``@version``...), the raw ``message`` and, unless verbose,
:data:`IGNORED_ATTRIBUTES`. Within a section, values are sorted by share,
then by value. A list value (``tags``) is one value, its items joined by
spaces. The original counted documents; ``query`` also counts the distinct
builds (what a bug affects), the old console script prints the original's
document percentages.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Fields the original left out unless ``--verbose``: per-build noise.
IGNORED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "build_master",
        "build_patchset",
        "build_ref",
        "build_short_uuid",
        "build_uuid",
        "error_pr",
        "host",
        "received_at",
        "type",
    }
)


@dataclass(frozen=True)
class ValueShare:
    """One value of one attribute among the hit documents."""

    value: str
    docs: int
    builds: int
    #: Share of the documents that have the attribute, in percent.
    doc_percent: float
    #: Share of the builds (of those documents) that have the attribute, in percent.
    build_percent: float


@dataclass(frozen=True)
class AttributeSection:
    name: str
    #: By document share (descending), then value (ascending), as the original.
    by_docs: tuple[ValueShare, ...]
    #: By build count (descending), then value (ascending).
    by_builds: tuple[ValueShare, ...]


def display_value(value: Any) -> str:
    """How the original printed a value: list items joined by spaces, scalars as text."""
    if isinstance(value, list):
        return " ".join(display_value(v) for v in value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return json.dumps(value)


def is_section(name: str, verbose: bool = False) -> bool:
    """True for a field the original showed (meta fields and ``message`` never are)."""
    if not name or name[0] in "@_" or name == "message":
        return False
    return verbose or name not in IGNORED_ATTRIBUTES


def attribute_sections(sources: Iterable[Mapping[str, Any]], verbose: bool = False) -> list[AttributeSection]:
    """The sections of the original's analysis, in its (alphabetical) order."""
    docs: dict[str, Counter[str]] = defaultdict(Counter)
    builds: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for n, source in enumerate(sources):
        build = str(source.get("build_uuid") or f"(document {n})")
        for name, raw in source.items():
            if not is_section(name, verbose):
                continue
            value = display_value(raw)
            docs[name][value] += 1
            builds[name][value].add(build)
    out: list[AttributeSection] = []
    for name in sorted(docs):
        total_docs = sum(docs[name].values())
        total_builds = len(set().union(*builds[name].values()))
        shares = [
            ValueShare(
                value=value,
                docs=count,
                builds=len(builds[name][value]),
                doc_percent=100.0 * count / total_docs,
                build_percent=100.0 * len(builds[name][value]) / total_builds,
            )
            for value, count in docs[name].items()
        ]
        out.append(
            AttributeSection(
                name=name,
                by_docs=tuple(sorted(shares, key=lambda s: (-s.docs, s.value))),
                by_builds=tuple(sorted(shares, key=lambda s: (-s.builds, -s.docs, s.value))),
            )
        )
    return out


def format_original(total: int, sections: Iterable[AttributeSection], quantity: int) -> str:
    """The original ``elastic-recheck-query`` report: ``total hits: N`` and ``  P% value`` lines."""
    lines = [f"total hits: {total}"]
    for section in sections:
        lines.append(section.name)
        lines.extend(f"  {int(s.doc_percent)}% {s.value}" for s in section.by_docs[:quantity])
    return "\n".join(lines) + "\n"

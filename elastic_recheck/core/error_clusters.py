"""Clusters of error lines that say the same thing, and the phrase queries that find them.

Pure. Used by ``suggest`` (one draft fingerprint per cluster) and the site's
uncategorized rows (:mod:`elastic_recheck.report.triage`).

* **Phrases.** The runs of stable words (:class:`~elastic_recheck.core.error_lines.Run`)
  common to many lines (:func:`common_runs`), the most specific first
  (:func:`best_phrases`).
* **Clusters.** Lines with the same normalized text form one group;
  :func:`cluster_lines` then merges near-duplicate groups (Jaccard
  similarity of their stable tokens, at least ``merge_threshold``) as long as
  they still share a stable phrase.
* **Queries.** A cluster's candidate queries (:func:`candidates_for`): a
  Lucene phrase on the longest run of stable words common to all its lines
  (:func:`lucene_phrase` escapes ``"`` and ``\\``), then narrowed with
  ``tags:"<file>"``, a second phrase, or the jobs (``build_name``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from elastic_recheck.core.error_lines import MESSAGE_FIELD, TAGS_FIELD, ErrorLine, Run, Signature, is_generic, signature

#: Token-set Jaccard similarity from which two normalized lines may merge.
DEFAULT_MERGE_THRESHOLD = 0.75
#: Example lines kept per cluster (for display; clustering sees them all).
MAX_EXAMPLES = 5
#: A phrase longer than this many tokens is cut (long phrases are brittle).
MAX_PHRASE_TOKENS = 16
#: At most this many jobs are listed in a ``build_name`` restriction.
MAX_SCOPE_JOBS = 3

# ---------------------------------------------------------------------------
# Phrases common to many lines
# ---------------------------------------------------------------------------

_SEP = "\x00"


def _joined(tokens: Sequence[str]) -> str:
    return _SEP + _SEP.join(tokens) + _SEP


def contains_phrase(haystack: Sequence[str], phrase: Sequence[str]) -> bool:
    """``phrase`` occurs in ``haystack`` as consecutive tokens."""
    if not phrase:
        return False
    return _joined(phrase) in _joined(haystack)


def specific_enough(tokens: Sequence[str]) -> bool:
    """At least two tokens, or one long (dotted) token such as an exception name."""
    return len(tokens) >= 2 or (len(tokens) == 1 and len(tokens[0]) >= 12)


def common_runs(runs: Sequence[Run], targets: Sequence[Sequence[str]]) -> list[Run]:
    """The maximal sub-runs of ``runs`` that occur in every token list of ``targets``.

    Longest first (by tokens); sub-runs of one run do not overlap.
    """
    joined = [_joined(t) for t in targets]
    out: list[Run] = []
    for run in runs:
        n = len(run.words)
        taken = [False] * n
        spans = sorted(
            ((i, j) for i in range(n) for j in range(i + 1, n + 1)),
            key=lambda ij: (-len(run.sub(*ij).tokens), ij[0]),
        )
        for i, j in spans:
            if any(taken[i:j]):
                continue
            sub = run.sub(i, j)
            if not sub.tokens or not sub.word_tokens[0] or not sub.word_tokens[-1]:
                continue
            key = _joined(sub.tokens)
            if all(key in h for h in joined):
                out.append(sub)
                for k in range(i, j):
                    taken[k] = True
    return sorted(out, key=Run.rank)


def best_phrases(runs: Iterable[Run], limit: int = 3) -> list[Run]:
    """The most specific runs (most tokens, then earliest), cut to :data:`MAX_PHRASE_TOKENS`."""
    out = []
    for run in sorted(runs, key=Run.rank):
        if not specific_enough(run.tokens) or is_generic(run.text):
            continue
        out.append(_cut(run))
        if len(out) >= limit:
            break
    return out


def _cut(run: Run) -> Run:
    if len(run.tokens) <= MAX_PHRASE_TOKENS:
        return run
    count = 0
    for j, toks in enumerate(run.word_tokens):
        count += len(toks)
        if count >= MAX_PHRASE_TOKENS:
            return run.sub(0, j + 1)
    return run


# ---------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """Error lines that say the same thing, from one or more builds."""

    #: The normalized line of the group seen in most builds.
    key: str
    signature: Signature
    #: normalized line -> its lines.
    groups: dict[str, list[ErrorLine]] = field(default_factory=dict)
    #: Stable runs common to every line of the cluster, most specific first.
    runs: list[Run] = field(default_factory=list)

    @property
    def lines(self) -> list[ErrorLine]:
        return [line for group in self.groups.values() for line in group]

    @property
    def builds(self) -> set[str]:
        return {line.build_uuid for line in self.lines}

    def jobs(self) -> Counter[str]:
        """Job name -> distinct builds."""
        seen: dict[str, set[str]] = {}
        for line in self.lines:
            seen.setdefault(line.build_name or "(unknown job)", set()).add(line.build_uuid)
        return Counter({job: len(uuids) for job, uuids in seen.items()})

    def files(self) -> Counter[str]:
        """File name -> distinct builds."""
        seen: dict[str, set[str]] = {}
        for line in self.lines:
            seen.setdefault(line.filename or "(unknown file)", set()).add(line.build_uuid)
        return Counter({f: len(uuids) for f, uuids in seen.items()})

    def common_tag(self) -> str | None:
        """A ``tags`` value every line has: the file's own tag when there is one."""
        lines = self.lines
        if not lines:
            return None
        common = set(lines[0].tags)
        for line in lines[1:]:
            common &= set(line.tags)
        if not common:
            return None
        for line in lines:
            base = line.filename.rsplit("/", 1)[-1]
            if base in common:
                return base
        return next(t for t in lines[0].tags if t in common)

    def examples(self, limit: int = MAX_EXAMPLES) -> list[ErrorLine]:
        """Lines with distinct text (each variant's first line first), at most ``limit``."""
        out: list[ErrorLine] = []
        seen: set[str] = set()
        firsts = [group[0] for group in self.groups.values() if group]
        for line in [*firsts, *self.lines]:
            if len(out) >= limit:
                break
            if line.body not in seen:
                out.append(line)
                seen.add(line.body)
        return out

    def phrases(self, limit: int = 3) -> list[Run]:
        return best_phrases(self.runs, limit=limit)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _prefix_tokens(tokens: frozenset[str], order: Mapping[str, int], threshold: float) -> list[str]:
    """Prefix filtering: two sets with Jaccard >= t share one of these tokens."""
    ranked = sorted(tokens, key=lambda t: (order.get(t, 0), t))
    size = len(ranked)
    keep = size - int(threshold * size + 1e-9) + 1
    return ranked[: max(1, keep)]


def cluster_lines(
    lines: Iterable[ErrorLine],
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
) -> list[Cluster]:
    """Group lines by normalized text, then merge near-duplicate groups.

    Groups are visited by decreasing number of builds; each joins the first
    cluster whose leader's stable tokens are at least ``merge_threshold``
    similar (Jaccard) and with which it still shares a specific phrase, or
    starts a cluster. ``merge_threshold`` None (or >= 1) merges nothing.
    Clusters come back by decreasing number of builds.
    """
    groups: dict[str, list[ErrorLine]] = {}
    sigs: dict[str, Signature] = {}
    for line in lines:
        sig = signature(line.body)
        if not sig.normalized:
            continue
        groups.setdefault(sig.normalized, []).append(line)
        sigs.setdefault(sig.normalized, sig)
    order = sorted(groups, key=lambda k: (-len({x.build_uuid for x in groups[k]}), k))
    merging = merge_threshold is not None and 0 < merge_threshold < 1
    threshold = float(merge_threshold or 0.0)
    # Global token frequency (rarest first) for prefix filtering.
    freq: Counter[str] = Counter()
    if merging:
        for k in order:
            freq.update(sigs[k].stable_tokens)
    rank = {t: i for i, (t, _) in enumerate(sorted(freq.items(), key=lambda kv: (kv[1], kv[0])))}
    clusters: list[Cluster] = []
    index: dict[str, list[int]] = {}
    for k in order:
        sig = sigs[k]
        runs = sig.runs()
        placed = False
        if merging and runs:
            stable = sig.stable_tokens
            candidates: set[int] = set()
            for tok in _prefix_tokens(stable, rank, threshold) if stable else []:
                candidates.update(index.get(tok, ()))
            for ci in sorted(candidates):
                cluster = clusters[ci]
                if jaccard(cluster.signature.stable_tokens, stable) < threshold:
                    continue
                shared = common_runs(cluster.runs, [sig.tokens])
                if not best_phrases(shared, limit=1):
                    continue
                cluster.groups[k] = groups[k]
                cluster.runs = shared
                placed = True
                break
        if placed:
            continue
        clusters.append(Cluster(key=k, signature=sig, groups={k: groups[k]}, runs=sorted(runs, key=Run.rank)))
        if merging and sig.stable_tokens:
            for tok in _prefix_tokens(sig.stable_tokens, rank, threshold):
                index.setdefault(tok, []).append(len(clusters) - 1)
    return sorted(clusters, key=lambda c: (-len(c.builds), c.key))


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


def lucene_escape_phrase(text: str) -> str:
    """Escape ``\\`` and ``"`` for use inside a quoted Lucene phrase."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def lucene_phrase(field_name: str, text: str) -> str:
    """``field:"text"`` with the text escaped."""
    return f'{field_name}:"{lucene_escape_phrase(text)}"'


def build_query(phrases: Sequence[str], tag: str | None = None, jobs: Sequence[str] = ()) -> str:
    """A draft query: every phrase on ``message``, plus optional file tag and job scoping."""
    parts = [lucene_phrase(MESSAGE_FIELD, p) for p in phrases]
    if tag:
        parts.append(lucene_phrase(TAGS_FIELD, tag))
    if jobs:
        alts = " OR ".join(lucene_phrase("build_name", j) for j in jobs)
        parts.append(f"({alts})" if len(jobs) > 1 else alts)
    return " AND ".join(parts)


@dataclass(frozen=True)
class ClusterQuery:
    """One way to query a cluster: its phrases and scoping."""

    phrases: tuple[str, ...]
    tag: str | None = None
    jobs: tuple[str, ...] = ()

    @property
    def query(self) -> str:
        return build_query(self.phrases, self.tag, self.jobs)

    @property
    def clauses(self) -> int:
        return len(self.phrases) + (self.tag is not None) + bool(self.jobs)


def candidates_for(cluster: Cluster) -> list[ClusterQuery]:
    """Queries for a cluster, simplest first: phrase; + file tag; + second phrase; + jobs."""
    phrases = [r.text for r in cluster.phrases(limit=2)]
    if not phrases:
        return []
    tag = cluster.common_tag()
    out = [ClusterQuery((phrases[0],))]
    if tag:
        out.append(ClusterQuery((phrases[0],), tag))
    if len(phrases) > 1:
        out.append(ClusterQuery(tuple(phrases), tag))
    names = {line.build_name for line in cluster.lines}
    jobs = tuple(sorted(names))
    if "" not in names and 0 < len(jobs) <= MAX_SCOPE_JOBS:
        out.append(ClusterQuery(tuple(phrases), tag, jobs))
    return out

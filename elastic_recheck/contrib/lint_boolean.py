"""The boolean meaning of one parenthesis level: Lucene's versus the usual reading.

Lucene's classic QueryParser does not give ``AND`` precedence over ``OR``.
Each parenthesis level is a flat list of clauses; ``AND`` marks the clauses
on both of its sides *required*, every other clause is *optional*
(``SHOULD``), and optional clauses change nothing as soon as one clause is
required. So ``a AND b OR c`` is ``+a +b c``: it matches ``a AND b`` and
``c`` is ignored, and ``a OR b AND c`` is ``a +b +c``, which matches
``b AND c``. :func:`level_meaning_differs` evaluates, over every truth
assignment of a level's clauses, both Lucene's meaning and the reading a
person would give it (``NOT`` binds tightest, then ``AND``, then ``OR``; a
missing operator is ``OR``; a ``+``/``-``/``NOT`` clause joined to its
neighbours without an explicit operator applies to the whole level, as
Lucene's modifiers do). ``mixed-and-or`` is reported exactly when the two
differ.

``implicit-or`` is reported whenever two clauses are joined without an
operator and so become alternatives (``message:"a" tags:"b"`` matches lines
with *either*). That is what the text literally says, but fingerprint
authors almost always mean ``AND``: writing the ``OR`` (or ``AND``) out
costs nothing and removes the doubt.
"""

from __future__ import annotations

from collections.abc import Sequence

from elastic_recheck.contrib.lint_findings import WARNING, QueryFinding
from elastic_recheck.contrib.lint_syntax import Clause, Level, clause_source
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

#: At most this many distinct clauses per level are compared on every truth assignment (2**16 bits).
MAX_TRUTH_TABLE_ATOMS = 16

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


def lucene_occurs(lv: Level) -> list[str]:
    """The occur (must/should/must_not) Lucene's classic parser gives each clause.

    Follows ``QueryParserBase.addClause`` with the default operator OR: an
    ``AND`` makes the clause before it required (unless it is prohibited) and
    the clause after it required; ``+`` is required; ``-``/``NOT`` prohibited;
    everything else optional.
    """
    occurs: list[str] = []
    for k, c in enumerate(lv.clauses):
        if k > 0 and c.conj == "AND" and occurs[k - 1] != MUST_NOT:
            occurs[k - 1] = MUST
        prohibited = c.mod in ("-", "NOT")
        required = c.mod == "+" or (c.conj == "AND" and not prohibited)
        occurs.append(MUST if required else MUST_NOT if prohibited else SHOULD)
    return occurs


def _atom_key(c: Clause) -> str:
    return f"{c.field}\x00{c.kind}\x00{' '.join(c.text.split())}"


def _var_masks(n: int) -> tuple[list[int], int]:
    """Bit masks of ``n`` boolean variables over all ``2**n`` assignments (bit j = assignment j)."""
    size = 1 << n
    full = (1 << size) - 1
    masks = []
    for i in range(n):
        block = 1 << i
        unit = ((1 << block) - 1) << block  # ones in the upper half of a 2*block window
        comb = full // ((1 << (2 * block)) - 1)
        masks.append(unit * comb)
    return masks, full


def _lucene_value(occurs: Sequence[str], values: Sequence[int], full: int, es_mode: bool) -> int:
    must = [v for o, v in zip(occurs, values, strict=True) if o == MUST]
    should = [v for o, v in zip(occurs, values, strict=True) if o == SHOULD]
    must_not = [v for o, v in zip(occurs, values, strict=True) if o == MUST_NOT]
    if must:
        result = full
        for v in must:
            result &= v
    elif should:
        result = 0
        for v in should:
            result |= v
    elif must_not and es_mode:
        result = full  # ES adds match_all to a purely negative query
    else:
        result = 0
    for v in must_not:
        result &= full ^ v
    return result


def reading_items(lv: Level) -> tuple[list[tuple[str | None, bool, int]], list[tuple[bool, int]]]:
    """The usual boolean reading of a level.

    Returns ``(items, globals)``: ``items`` are ``(conj, negated, clause
    index)`` with ``conj`` "AND"/"OR"/None, read with AND before OR;
    ``globals`` are ``(negated, clause index)`` for ``+``/``-``/``NOT``
    clauses that no explicit operator touches (Lucene-style modifiers, which
    apply to the whole level). A missing operator reads as OR.
    """
    clauses = lv.clauses
    items: list[tuple[str | None, bool, int]] = []
    globs: list[tuple[bool, int]] = []
    for k, c in enumerate(clauses):
        after = clauses[k + 1].conj if k + 1 < len(clauses) else None
        before = c.conj
        negated = c.mod in ("-", "NOT")
        if c.mod is not None and before in (None, "IMPLICIT") and after in (None, "IMPLICIT"):
            globs.append((negated, k))
            continue
        conj: str | None = "AND" if before == "AND" else "OR" if before in ("OR", "IMPLICIT") else None
        if not items:
            conj = None
        items.append((conj, negated, k))
    return items, globs


def _reading_value(lv: Level, values: Sequence[int], full: int) -> int:
    items, globs = reading_items(lv)
    result = full
    for negated, k in globs:
        result &= (full ^ values[k]) if negated else values[k]
    if items:
        total = 0
        cur: int | None = None
        for conj, negated, k in items:
            v = (full ^ values[k]) if negated else values[k]
            if conj == "AND" and cur is not None:
                cur &= v
            else:
                if cur is not None:
                    total |= cur
                cur = v
        if cur is not None:
            total |= cur
        result &= total
    return result


def level_meaning_differs(lv: Level, es_mode: bool = True) -> bool | None:
    """True when Lucene's meaning of this level differs from its usual boolean reading.

    Clauses are atoms (identical clauses are the same atom); nested groups
    are atoms too (they are checked on their own). None when the level has
    too many distinct clauses to compare (see :data:`MAX_TRUTH_TABLE_ATOMS`).
    """
    if len(lv.clauses) < 2:
        return False
    keys: dict[str, int] = {}
    idx = [keys.setdefault(_atom_key(c), len(keys)) for c in lv.clauses]
    if len(keys) > MAX_TRUTH_TABLE_ATOMS:
        return None
    masks, full = _var_masks(len(keys))
    values = [masks[i] for i in idx]
    lucene = _lucene_value(lucene_occurs(lv), values, full, es_mode)
    reading = _reading_value(lv, values, full)
    return lucene != reading

def explain_lucene(query: str, lv: Level) -> str:
    """Lucene's reading of a level, e.g. ``+a +b c``."""
    prefix = {MUST: "+", SHOULD: "", MUST_NOT: "-"}
    return " ".join(prefix[o] + clause_source(query, c) for o, c in zip(lucene_occurs(lv), lv.clauses, strict=True))


def explain_reading(query: str, lv: Level) -> str:
    """The usual reading of a level with explicit parentheses, e.g. ``(a AND b) OR c``."""
    items, globs = reading_items(lv)
    groups: list[list[str]] = []
    for conj, negated, k in items:
        text = ("NOT " if negated else "") + clause_source(query, lv.clauses[k])
        if conj == "AND" and groups:
            groups[-1].append(text)
        else:
            groups.append([text])
    parts = []
    for g in groups:
        joined = " AND ".join(g)
        parts.append(f"({joined})" if len(g) > 1 and len(groups) > 1 else joined)
    text = " OR ".join(parts)
    extra = [("NOT " if neg else "") + clause_source(query, lv.clauses[k]) for neg, k in globs]
    if extra:
        head = " AND ".join(extra)
        text = f"{head} AND ({text})" if len(parts) > 1 else (f"{head} AND {text}" if text else head)
    return text


def _describe_lucene(query: str, lv: Level, es_mode: bool) -> str:
    occurs = lucene_occurs(lv)
    must = [clause_source(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == MUST]
    should = [clause_source(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == SHOULD]
    must_not = [clause_source(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == MUST_NOT]
    if len(must) > 1:
        text = "it matches only when " + " and ".join(must) + " match"
    elif must:
        text = f"it matches only when {must[0]} matches"
    elif len(should) > 1:
        text = "it matches when any of " + ", ".join(should) + " matches"
    elif should:
        text = f"it matches when {should[0]} matches"
    elif es_mode:
        text = "it matches everything"
    else:
        text = "it matches nothing"
    if must_not:
        text += ", unless " + " or ".join(must_not) + " matches"
    if must and should:
        verb = "is optional and changes" if len(should) == 1 else "are optional and change"
        text += "; " + ", ".join(should) + f" {verb} nothing"
    return text



def boolean_findings(
    query: str, lv: Level, es_mode: bool, top: bool, mapping: Mapping = DEFAULT_MAPPING
) -> list[QueryFinding]:
    out: list[QueryFinding] = []
    clauses = lv.clauses
    if not clauses:
        return out
    occurs = lucene_occurs(lv)
    if all(o == MUST_NOT for o in occurs) and (top or not es_mode):
        what = "every log line except those" if es_mode else "nothing at all (plain Lucene drops purely negative groups)"
        if not top:
            what = "nothing: in plain Lucene a group of only negative clauses matches no document"
        out.append(
            QueryFinding(
                lv.start if not top else clauses[0].start,
                WARNING,
                "not-only",
                f"only negative clauses: this matches {what}; add a positive clause (e.g. the message you expect)",
            )
        )
    differs = level_meaning_differs(lv, es_mode)
    has_and = any(c.conj == "AND" for c in clauses)
    has_or = any(c.conj in ("OR", "IMPLICIT") for c in clauses)
    if differs is None:  # too many clauses for a truth table: syntactic fallback
        differs = has_and and has_or
    if differs:
        first = next(
            (c.conj_pos for c in clauses if c.conj in ("OR", "IMPLICIT") and c.conj_pos is not None),
            clauses[0].start,
        )
        explicit = any(c.conj in ("AND", "OR") for c in clauses) or any(c.mod == "NOT" for c in clauses)
        lucene = explain_lucene(query, lv)
        reading = explain_reading(query, lv)
        if explicit:
            why = (
                "Lucene does not give AND precedence over OR"
                if has_and and has_or
                else "Lucene's NOT and OR are not the boolean operators they look like"
            )
            message = (
                f"{why}: it reads this as `{lucene}` (+ required, - excluded, others optional), so "
                f"{_describe_lucene(query, lv, es_mode)}; not `{reading}`. "
                "Add parentheses (or use AND NOT) to say which you mean"
            )
            out.append(QueryFinding(first, WARNING, "mixed-and-or", message))
        else:
            message = (
                f"clauses without an operator are optional: Lucene reads this as `{lucene}`, so "
                f"{_describe_lucene(query, lv, es_mode)}; write AND or OR between the clauses"
            )
            out.append(QueryFinding(first, WARNING, "implicit-or", message))
        return out
    # Implicit OR between two clauses that really become alternatives.
    if any(o == MUST for o in occurs):
        return out
    for k in range(1, len(clauses)):
        c, prev = clauses[k], clauses[k - 1]
        if c.conj != "IMPLICIT" or occurs[k] != SHOULD or occurs[k - 1] != SHOULD:
            continue
        if c.field == prev.field and not mapping.is_text(c.field) and "GROUP" not in (c.kind, prev.kind):
            # Two values of one keyword field (build_name:(a b)): a build has
            # one value, so OR is the only meaning that can match.
            continue
        a, b = clause_source(query, prev), clause_source(query, c)
        out.append(
            QueryFinding(
                c.conj_pos if c.conj_pos is not None else c.start,
                WARNING,
                "implicit-or",
                f"no operator between `{a}` and `{b}`: Lucene's default operator is OR, so a line "
                "matching either one matches. Fingerprint authors almost always mean AND here, so this is "
                "always flagged: write `AND` if both must match, or `OR` if either is really enough",
            )
        )
        break  # one per level is enough
    return out

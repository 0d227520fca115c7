"""Rules on single terms and phrases as written: operators in lower case, single quotes,
wildcards (leading, inside a phrase, or across token boundaries), words the analyzer splits,
and clauses that analyze to no token."""

from __future__ import annotations

import re

from elastic_recheck.contrib.lint_findings import WARNING, QueryFinding
from elastic_recheck.contrib.lint_syntax import Clause, has_unescaped, shorten, unescape
from elastic_recheck.core.schema import Mapping


def _tokenize(text: str) -> list[str]:
    """Tokens of ``text`` with the text fields' analyzer (StandardAnalyzer)."""
    from elastic_recheck.core.lucene import analysis

    return analysis.tokenize(text)


def _fits_in_token(fragment: str, open_left: bool, open_right: bool) -> bool:
    """Can ``fragment`` be part of one analyzed token (wildcards standing for what is on the open sides)?

    Characters such as ``.`` ``:`` ``'`` join letters or digits inside a
    token but not at its ends, so the fragment is tried with a letter or a
    digit on each side where the wildcard could supply one.
    """
    from elastic_recheck.core.lucene.analysis import java_lower

    lefts = ("a", "0") if open_left else ("",)
    rights = ("a", "0") if open_right else ("",)
    for left in lefts:
        for right in rights:
            probe = left + fragment + right
            if _tokenize(probe) == [java_lower(probe)]:
                return True
    return False


def _phrase_content(token_text: str) -> str:
    inner = token_text[1:-1] if len(token_text) >= 2 and token_text.endswith('"') else token_text[1:]
    return unescape(inner)


def term_findings(query: str, c: Clause, mapping: Mapping) -> list[QueryFinding]:
    out: list[QueryFinding] = []
    text_field = mapping.is_text(c.field)
    at = c.term_start
    if c.kind == "TERM":
        raw = c.text
        if raw.upper() in ("AND", "OR", "NOT") and raw != raw.upper() and c.explicit_field is None:
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "lowercase-operator",
                    f"`{raw}` is a search word here, not an operator: Lucene's operators are upper case "
                    f"({raw.upper()}); write `{raw.upper()}`, or quote the word if you mean to search for it",
                )
            )
        if raw.startswith("'"):
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "single-quotes",
                    "single quotes are not phrase quotes in Lucene: "
                    f"`{shorten(raw)}...` is read as separate terms, OR-ed together; use double quotes for a phrase",
                )
            )
        has_wild = has_unescaped(raw, "*?")
        if has_wild:
            if raw[0] in "*?" and raw != "*":
                out.append(
                    QueryFinding(
                        at,
                        WARNING,
                        "leading-wildcard",
                        f"`{shorten(raw)}` starts with a wildcard: it scans every term of the field, is slow on "
                        "a large cluster and is refused where allow_leading_wildcard is off",
                    )
                )
            if text_field:
                pieces = re.split(r"(?<!\\)[*?]", raw)
                for k, part in enumerate(pieces):
                    if not part or _fits_in_token(unescape(part), k > 0, k < len(pieces) - 1):
                        continue
                    toks = _tokenize(unescape(part))
                    out.append(
                        QueryFinding(
                            at,
                            WARNING,
                            "wildcard-split",
                            f"`{shorten(raw)}` is a wildcard pattern, matched against single tokens of "
                            f"{c.field} without analysis, but `{part}` is never part of one token "
                            f"(the analyzer makes {', '.join(toks) or 'nothing'} of it): "
                            "this clause matches nothing; use a phrase of whole words instead",
                        )
                    )
                    break
        elif text_field and not c.fuzzy:
            value = unescape(raw)
            toks = _tokenize(value)
            if not toks:
                out.append(_empty_finding(at, raw, c.field))
            elif len(toks) > 1:
                quoted = '"' + value.replace('"', '\\"') + '"'
                out.append(
                    QueryFinding(
                        at,
                        WARNING,
                        "split-term",
                        f"`{shorten(raw)}` is not quoted, so the analyzer splits it into {len(toks)} tokens "
                        f"({', '.join(toks[:6])}{', ...' if len(toks) > 6 else ''}) and the clause matches a line "
                        f"containing any one of them; quote it to match the words in sequence: {c.field}:{shorten(quoted)}",
                    )
                )
    elif c.kind == "QUOTED":
        content = _phrase_content(c.text)
        if text_field and not _tokenize(content):
            out.append(_empty_finding(at, c.text, c.field))
        elif re.search(r"(?<=\w)\*|(?<!\\)\*(?=\w)", content):
            what = (
                "the analyzer drops the `*` and the phrase matches the literal words only"
                if text_field
                else f"{c.field} is an exact keyword, so this matches only a value with a literal `*`"
            )
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "wildcard-in-phrase",
                    f"`{shorten(c.text)}`: wildcards are not expanded inside double quotes; {what}. "
                    "Use an unquoted wildcard term (AND-ed with the rest) if you need one",
                )
            )
    return out


def _empty_finding(at: int, raw: str, fld: str) -> QueryFinding:
    return QueryFinding(
        at,
        WARNING,
        "empty-clause",
        f"`{shorten(raw)}` has no letters or digits, so it analyzes to no token on {fld}: Lucene silently "
        "drops the clause (the rest of the query matches without it; alone it matches nothing)",
    )

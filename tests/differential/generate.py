"""Seeded generator of documents and Lucene queries that nearly hit and nearly miss each other.

Everything is drawn from one :class:`random.Random` seeded by the caller, so a
seed names one corpus forever (as long as this module is unchanged). The
vocabulary is small on purpose: queries are built from the words the
documents hold, with near misses (one edit away, another case, a prefix, an
escaped separator) so that fuzzy, wildcard, regexp and range queries land on
the edges.

What is generated is what the Lucene oracle models (``../shared/tools/
lucene-oracle/README.md``): no field-name wildcards, no ``default_field: *``,
no queries on ``id`` (the oracle takes it as the document id and does not
index it as a field) and no ``_exists_:_id`` (Elasticsearch answers it with
every document; the oracle does not model metadata fields).
"""

from __future__ import annotations

import random
from typing import Any

WORDS = (
    "foo", "fooo", "fo", "bar", "baz", "qux", "error", "errors", "timeout", "timed",
    "nova", "Neutron", "x", "a", "über", "naïve", "日本", "1.5", "10", "a-b", "c_d",
    "e.f", "CamelCase", "n-cpu.txt", "réseau", "ΣΊΣΥΦΟΣ", "i18n", "42",
    "connection", "connexion", "refused", "instance", "instances", "libvirtError", "ERROR:", "o'neil",
    "don't", "U.S.A.", "3.14", "v1.2.3", "wi-fi", "foo_bar", "ÅNGSTRÖM", "İstanbul", "ǅemal", "café",
    "cafe\u0301", "𝔘nicode", "emoji😀", "ก่อนหน้า", "한국어", "日本語テキスト", "١٢٣", "x²", "½",
)
KEYWORDS: dict[str, tuple[Any, ...]] = {
    "build_name": ("job-a", "job-b", "Job-A", "job b", "job\\c", "jöb"),
    "build_status": ("FAILURE", "SUCCESS", "failure"),
    "filename": ("console.html", "logs/n-cpu.txt", "job-output.txt"),
    "loglevel": ("ERROR", "INFO", "DEBUG", "error"),
    "project": ("openstack/nova", "openstack/neutron", "x"),
    "voting": ("1", "0", 1, True, False),
}
TAGS = ("screen", "n-cpu.txt", "console", "Screen", "screen-n-cpu.txt", "a b")
#: Fields queries name (``""``: the default field, ``message``).
QUERY_FIELDS = ("", "", "", "message", "tags", *KEYWORDS, "nosuch", "message.a", "tags.x", "meta.k", "_id")
PUNCT = (" ", " ", " ", ", ", ". ", ": ", " - ", "/", "_", "\n", "\t", "(", ")", '"', "\u3000", "'", ".")
REGEXES = (
    "fo.*", "ba[rz]", "(foo|bar)", "f[a-z]?o+", ".*o", "error.?", "[0-9]+", "n.*", "job-[ab]",
    "a{1,2}", "~(foo)", "fo<1-5>", "@", "#", "qux|baz", "[^a]+", "\\u00fcber", "ti.e.*",
    "FAILURE", "(job|Job)-.", "b&ba.", ".", "open.*/n.*",
    "[z-a]", "con(n|x)e.+", "in.{3,6}", ".*(err|ERR).*", "\\d+", "<1-100>", "(a|b)*", "\\.", "a\\-b",
    "[^0-9]*", "\"foo\"", "@&~(foo)", "caf.", "(", "a{2,1}", "x{0}", "[a-", ".*😀", "日本.*", "İ.*",
)
BROKEN = (
    "(", ")", "foo AND", "AND foo", '"foo', "foo:", "[a TO", "{a TO b]x", "\\", "/foo", "foo^", "foo^x",
    "foo~-1", "+", "-", "!", "a OR OR b", "((foo)", "foo))", "message:(", ":foo", "\\u12", "\\uZZZZ",
    "foo\\u00e", "*:", "[* TO *", "foo && || bar", "foo~1.5", '"a b"~x',
)


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def _text(rng: random.Random, lo: int = 1, hi: int = 7) -> str:
    parts = []
    for i in range(rng.randint(lo, hi)):
        if i:
            parts.append(rng.choice(PUNCT))
        parts.append(_word(rng))
    return "".join(parts)


def _message(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.7:
        return _text(rng)
    if r < 0.8:
        return [_text(rng, 1, 3) for _ in range(rng.randint(1, 3))]
    if r < 0.86:
        return {"a": _text(rng, 1, 2)}
    if r < 0.9:
        return [[_text(rng, 1, 2)], _text(rng, 1, 2)]
    if r < 0.94:
        return ""
    if r < 0.97:
        return None
    return rng.choice([42, 1.5, True])


def _tags(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.75:
        return rng.sample(TAGS, rng.randint(0, 3))
    if r < 0.85:
        return [{"x": rng.choice(TAGS)}]
    if r < 0.92:
        return [[rng.choice(TAGS)], rng.choice(TAGS)]
    return rng.choice(TAGS)


def documents(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` documents with ids ``d0``, ``d1``..."""
    docs = []
    for i in range(count):
        doc: dict[str, Any] = {"id": f"d{i}"}
        if rng.random() < 0.93:
            doc["message"] = _message(rng)
        if rng.random() < 0.6:
            doc["tags"] = _tags(rng)
        for name, values in KEYWORDS.items():
            if rng.random() < 0.7:
                doc[name] = rng.choice(values)
        if rng.random() < 0.1:
            doc["meta"] = {"k": rng.choice(WORDS)}
        if rng.random() < 0.05:
            doc["build_name"] = [rng.choice(KEYWORDS["build_name"]), rng.choice(KEYWORDS["build_name"])]
        docs.append(doc)
    return docs


_ESCAPABLE = set('+-!():^[]"{}~*?\\/ &|')


def _escape(word: str) -> str:
    return "".join("\\" + c if c in _ESCAPABLE else c for c in word)


def _near(rng: random.Random, word: str) -> str:
    """``word`` or a near miss of it."""
    r = rng.random()
    if r < 0.5 or not word:
        return word
    if r < 0.6:
        return word.upper()
    if r < 0.7:
        i = rng.randrange(len(word))
        return word[:i] + word[i + 1 :]
    if r < 0.8:
        i = rng.randrange(len(word) + 1)
        return word[:i] + rng.choice("aoxz") + word[i:]
    if r < 0.9:
        return word + rng.choice(("\\ bar", "\\\n", "\\-x", "\\:", "\\u0041", "\\uD83D", "\\/"))
    return word[::-1]


def _value_for(rng: random.Random, field: str) -> str:
    if field in KEYWORDS:
        return str(rng.choice(KEYWORDS[field]))
    if field == "tags":
        return rng.choice(TAGS)
    if field == "_id":
        return f"d{rng.randrange(12)}"
    return _word(rng)


def _atom(rng: random.Random, field: str) -> str:
    value = _near(rng, _value_for(rng, field))
    kind = rng.random()
    if kind < 0.25:
        return _escape(value) if "\\" not in value else value
    if kind < 0.37:
        words = [_near(rng, _value_for(rng, field)).replace("\\", "") for _ in range(rng.randint(0, 3))]
        if words and rng.random() < 0.15:
            words.append(words[0])  # a repeated term
        slop = rng.choice(("", "", "~1", "~2", "~0", "~5", "~99", "~101", "~1.5"))
        return '"' + " ".join(words).replace('"', "") + '"' + slop
    if kind < 0.47:
        base = _escape(value.replace("\\", ""))
        return base[: rng.randint(1 if field == "_id" else 0, len(base))] + "*"
    if kind < 0.57:
        chars = list(_escape(value.replace("\\", "")))
        for _ in range(rng.randint(1, 2)):
            chars.insert(rng.randint(0, len(chars)), rng.choice("*?"))
        return "".join(chars)
    if kind < 0.65:
        return "/" + rng.choice(REGEXES) + "/"
    if kind < 0.75:
        return _escape(value.replace("\\", "")) + rng.choice(("~", "~1", "~2", "~0", "~0.5", "~0.8", "~3"))
    if kind < 0.85:
        lo, hi = sorted((_escape(_value_for(rng, field)), _escape(_value_for(rng, field))))
        if rng.random() < 0.15:
            lo, hi = hi, lo  # an empty range
        if rng.random() < 0.2:
            lo, hi = '"' + lo.replace("\\", "") + '"', '"' + hi.replace("\\", "") + '"'
        lo = rng.choice((lo, lo, "*"))
        hi = rng.choice((hi, hi, "*"))
        if rng.random() < 0.3:
            return rng.choice((">", ">=", "<", "<=")) + _escape(_value_for(rng, field))
        return rng.choice("[{") + f"{lo} TO {hi}" + rng.choice("]}")
    if kind < 0.9 and field != "_id":  # ES answers _id:* with every document; the oracle does not model _id
        return "*"
    return _escape(value.replace("\\", ""))


def _clause(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if r < 0.06:
        return "_exists_:" + rng.choice(("message", "tags", "build_name", "voting", "nosuch", "message.a", "tags.x", "meta.k"))
    if r < 0.08:
        return "*:*"
    if r < 0.09:
        return rng.choice(('""', 'message:""', 'build_name:""', "build\\_name:job\\-a", "tags:\"screen console\"~100"))
    if depth > 0 and r < 0.25:
        inner = _query(rng, depth - 1)
        field = rng.choice(("", "", "message:", "tags:", "build_name:"))
        return f"{field}({inner})"
    field = rng.choice(QUERY_FIELDS)
    atom = _atom(rng, field)
    if rng.random() < 0.05:
        atom += "^2"
    return f"{field}:{atom}" if field else atom


def _query(rng: random.Random, depth: int) -> str:
    parts = []
    for i in range(rng.randint(1, 4)):
        if i:
            parts.append(rng.choice((" ", " ", " AND ", " OR ", " && ", " || ", " AND NOT ", " ", "\t", "\n", "\u3000", " and ")))
        prefix = rng.choice(("", "", "", "", "+", "-", "NOT ", "!"))
        parts.append(prefix + _clause(rng, depth))
    return "".join(parts)


def queries(rng: random.Random, count: int) -> list[str]:
    """``count`` queries; a few are broken on purpose."""
    out = []
    for _ in range(count):
        if rng.random() < 0.04:
            out.append(rng.choice(BROKEN))
        else:
            out.append(_query(rng, 2))
    return out


def corpus(seed: int, docs: int = 40, count: int = 200) -> tuple[list[dict[str, Any]], list[str]]:
    """The documents and queries of one seed."""
    rng = random.Random(seed)
    return documents(rng, docs), queries(rng, count)

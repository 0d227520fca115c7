#!/usr/bin/env python3
"""Record Lucene conformance fixtures with the real Lucene oracle.

usage: python3 tests/conformance/generate.py [--oracle PATH] [--seed N] [--only SUITE ...]

Needs Java 17 and Debian's ``liblucene8-java``/``libjackson2-databind-java``
(the oracle installs them when missing). Writes, next to this file:

* ``tokens.json.gz``: strings and the tokens Lucene's ``StandardAnalyzer``
  (no stopwords) produces for them (``TokenDump.java``).
* ``<suite>.json.gz``: documents, queries and, for each query, the oracle's
  outcome in ES mode (``--es``) and in plain Lucene mode: the sorted indexes
  of the matching documents, or an error.

``tests/unit/test_conformance.py`` and ``tests/unit/test_analysis.py`` replay
these fixtures against :mod:`elastic_recheck` without Java.

Suites: ``features`` (handwritten documents and queries aimed at each query
feature with near misses), ``random`` (random documents over a vocabulary of
tricky tokens and random queries from a small grammar, including broken
ones), ``syntax`` (random strings of query-syntax characters: accept/reject
agreement), ``fingerprints`` (synthetic log lines built from the phrases of
real elastic-recheck fingerprints, hit and near-miss variants, queried with
those fingerprints and mutations of them; the fingerprints are read from
``../shared/data/elastic-recheck-queries`` when present, and only the
queries, not the data files, are stored), ``limits`` (regexps and wildcards
around Lucene's 10,000-state determinization limit: accept/reject and hits).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO / ".." / "shared"
DEFAULT_ORACLE = SHARED / "tools" / "lucene-oracle" / "oracle"
FINGERPRINTS = SHARED / "data" / "elastic-recheck-queries"

Doc = dict[str, Any]


# --------------------------------------------------------------------------
# Running Java
# --------------------------------------------------------------------------


def run_oracle(oracle: Path, docs: Sequence[Doc], queries: Sequence[str], es: bool) -> list[dict[str, Any]]:
    """One oracle run: a result dict per query, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        dpath = Path(tmp) / "docs.jsonl"
        qpath = Path(tmp) / "queries.jsonl"
        with dpath.open("w", encoding="utf-8") as f:
            for i, doc in enumerate(docs):
                f.write(json.dumps(dict(doc, id=f"{i:06d}"), ensure_ascii=False) + "\n")
        with qpath.open("w", encoding="utf-8") as f:
            for i, q in enumerate(queries):
                f.write(json.dumps({"qid": i, "query": q}, ensure_ascii=False) + "\n")
        args = [str(oracle), *(["--es"] if es else []), str(dpath), str(qpath)]
        proc = subprocess.run(args, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    rows.sort(key=lambda r: r["qid"])
    assert [r["qid"] for r in rows] == list(range(len(queries))), "oracle lost queries"
    return rows


def _jar(name: str) -> str:
    for cand in [Path("/usr/share/java") / f"{name}.jar", *sorted(Path("/usr/share/java").glob(f"{name}-[0-9]*.jar"))]:
        if cand.exists():
            return str(cand)
    raise SystemExit(f"missing /usr/share/java/{name}.jar (apt-get install liblucene8-java libjackson2-databind-java)")


def token_dump(texts: Sequence[str]) -> list[list[str]]:
    """Lucene's StandardAnalyzer tokens for each text (compiles TokenDump.java)."""
    cp = ":".join(
        _jar(j)
        for j in ("lucene-core", "lucene-analyzers-common", "jackson-core", "jackson-databind", "jackson-annotations")
    )
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["javac", "-nowarn", "-d", tmp, "-cp", cp, str(HERE / "TokenDump.java")], check=True)
        data = "".join(json.dumps(t) + "\n" for t in texts)
        proc = subprocess.run(
            ["java", "-cp", f"{tmp}:{cp}", "TokenDump"], input=data, capture_output=True, text=True, check=True
        )
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(texts)
    return out


def write_fixture(name: str, payload: dict[str, Any]) -> None:
    path = HERE / f"{name}.json.gz"
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(raw)
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)", file=sys.stderr)


def record_suite(oracle: Path, name: str, docs: list[Doc], queries: list[str], note: str) -> None:
    queries = list(dict.fromkeys(queries))  # dedupe, keep order
    ids = {f"{i:06d}": i for i in range(len(docs))}
    cases = []
    es_rows = run_oracle(oracle, docs, queries, es=True)
    plain_rows = run_oracle(oracle, docs, queries, es=False)
    for q, es_row, plain_row in zip(queries, es_rows, plain_rows, strict=True):
        case: dict[str, Any] = {"q": q}
        for key, row in (("es", es_row), ("plain", plain_row)):
            if row["ok"]:
                case[key] = sorted(ids[h] for h in row["hits"])
            else:
                case[key] = {"error": row["error"][:300]}
        cases.append(case)
    n_err = sum(1 for c in cases if isinstance(c["es"], dict))
    print(f"{name}: {len(docs)} docs, {len(cases)} queries ({n_err} ES errors)", file=sys.stderr)
    write_fixture(name, {"suite": name, "note": note, "docs": docs, "cases": cases})


# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------

WORDS = [
    "nova.compute.manager",
    "nova",
    "compute",
    "manager",
    "Nova.Compute",
    "put_object",
    "put",
    "object",
    "cpu.txt",
    "screen-n-cpu.txt",
    "console.html",
    "job-output.txt",
    "10.0.0.1",
    "10.0.0",
    "192.168.1.10:8080",
    "can't",
    "cant",
    "a:b",
    "a",
    "b",
    "foo-bar",
    "foo",
    "bar",
    "foo/bar",
    "foo_bar",
    "x@y.com",
    "ERROR",
    "error",
    "Error:",
    "Errno",
    "[Errno",
    "12abc",
    "abc12",
    "v1.2",
    "1.a",
    "a1.b",
    "__init__",
    "_private",
    "trailing_",
    "...",
    "--",
    "a'b",
    "'quoted'",
    '"dq"',
    "café",
    "CAFÉ",
    "Straße",
    "İstanbul",
    "ΣΑΣ",
    "日本語",
    "ひらがな",
    "カタカナ",
    "한국어",
    "ไทย",
    "😀",
    "👍🏽",
    "1,000.5",
    "1,000",
    "3.14",
    "-1",
    "+1",
    "x=1",
    "k=v,w",
    "(paren)",
    "[bracket]",
    "{brace}",
    "<tag>",
    "#hash",
    "$var",
    "100%",
    "a&b",
    "a|b",
    "a!b",
    "a*b",
    "a?b",
    "a\\b",
    "tempest.api.compute.servers",
    "test_create_server",
    "TimeoutException",
    "Timed",
    "out",
    "waiting",
    "for",
    "the",
    "Failed",
    "to",
    "build",
    "and",
    "run",
    "instance",
    "libvirtError",
    "libvirt.libvirtError",
    "AND",
    "OR",
    "NOT",
    "TO",
    "and",
    "or",
    "not",
    "to",
    "status",
    "137",
    "143",
    "200",
    "2024-01-02",
    "03:04:05.123",
    "req-3f2a9c1e-8b7d",
    "1a2b3c4d-5e6f",
    "http://example.com/path?q=1",
    "https://x.org/a/b",
    "/opt/stack/nova",
    "C:\\path",
    "e.g.",
    "i.e",
    "U.S.A.",
    "a.b.c.",
    "x.",
    ".y",
    "fooBar",
    "FOOBAR",
    "foobar",
    "foobaz",
    "fooba",
    "fobar",
    "ofobar",
    "barfoo",
    "volume",
    "volumes",
    "attach",
    "detach",
    "detached",
    "ssh",
    "ping",
    "timeout",
    "Timeout",
    "TIMEOUT",
]
SEPARATORS = [" ", " ", " ", " - ", "/", ": ", ", ", "\t", " | ", "\n", "..", " (", ") ", "=", "'", '"']
KEYWORD_VALUES = {
    "build_name": ["tempest-full", "Tempest-Full", "tempest-full-py3", "tempest full", "", "grenade", "tempest-slow"],
    "build_status": ["FAILURE", "failure", "SUCCESS", "POST_FAILURE"],
    "project": ["openstack/nova", "openstack/cinder", "openstack/neutron", "OpenStack/Nova"],
    "build_queue": ["gate", "check", "Gate", "periodic"],
    "filename": ["job-output.txt", "logs/screen-n-cpu.txt", "console.html", "job-output.txt.gz"],
    "loglevel": ["ERROR", "WARNING", "INFO", "error"],
}


def random_message(rng: random.Random, n_min: int = 2, n_max: int = 12) -> str:
    n = rng.randint(n_min, n_max)
    parts = []
    for i in range(n):
        if i:
            parts.append(rng.choice(SEPARATORS))
        parts.append(rng.choice(WORDS))
    return "".join(parts)


def random_doc(rng: random.Random) -> Doc:
    doc: Doc = {}
    r = rng.random()
    if r < 0.08:
        doc["message"] = [random_message(rng, 1, 5) for _ in range(rng.randint(2, 3))]
    elif r < 0.1:
        doc["message"] = ""
    elif r < 0.12:
        pass
    else:
        doc["message"] = random_message(rng)
    if rng.random() < 0.7:
        tags = rng.sample(
            ["console", "console.html", "job-output.txt", "screen-n-cpu.txt", "screen-c-vol.txt", "syslog.txt"],
            rng.randint(1, 3),
        )
        doc["tags"] = tags if len(tags) > 1 or rng.random() < 0.5 else tags[0]
    for field, values in KEYWORD_VALUES.items():
        if rng.random() < 0.6:
            doc[field] = rng.choice(values)
    if rng.random() < 0.3:
        doc["voting"] = rng.choice([True, False, 1, 0, "1", "0"])
    if rng.random() < 0.3:
        doc["build_change"] = rng.choice([12345, 829161, "12345", 9])
    return doc


def _escape_term(text: str) -> str:
    return re.sub(r'([+\-!():^\[\]"{}~*?\\/ &|])', r"\\\1", text)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 2:
        return word + "x"
    i = rng.randrange(len(word))
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]
    if op == 2:
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
    if i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word


def random_leaf(rng: random.Random, docs: Sequence[Doc]) -> str:
    doc = rng.choice(docs)
    msg = doc.get("message")
    if isinstance(msg, list):
        msg = rng.choice(msg) if msg else ""
    msg = msg or random_message(rng, 2, 4)
    words = [w for w in re.split(r"[ \t\n]+", msg) if w]
    word = rng.choice(words) if words else rng.choice(WORDS)
    field = rng.choice(["", "", "", "message:", "tags:", "message:", "build_name:"])
    kind = rng.randrange(20)
    if kind <= 4:  # phrase from the doc (a hit) or shuffled (a near miss)
        k = rng.randint(1, min(5, len(words))) if words else 1
        start = rng.randrange(max(1, len(words) - k + 1))
        chunk = words[start : start + k] if words else [word]
        if rng.random() < 0.3:
            rng.shuffle(chunk)
        phrase = " ".join(chunk)
        if rng.random() < 0.2:
            phrase = phrase.upper()
        slop = f"~{rng.choice([1, 2, 3, 5, 100])}" if rng.random() < 0.25 else ""
        return f"{field or rng.choice(['', 'message:'])}{_quote(phrase)}{slop}"
    if kind <= 7:  # a bare (escaped) word
        return field + _escape_term(word if rng.random() < 0.8 else word.upper())
    if kind == 8:  # unescaped word: may be a syntax error or split oddly
        return field + word
    if kind == 9:  # prefix
        stem = re.sub(r"[^A-Za-z0-9_.]", "", word)[: rng.randint(1, 5)] or "a"
        return f"{field}{stem}*"
    if kind == 10:  # wildcard
        w = re.sub(r"[^A-Za-z0-9_.]", "", word) or "ab"
        i = rng.randrange(len(w))
        return field + w[:i] + rng.choice("?*") + w[i + 1 :]
    if kind == 11:  # fuzzy
        w = re.sub(r"[^A-Za-z0-9_.]", "", word) or "ab"
        return field + _typo(rng, w) + rng.choice(["~", "~1", "~2", "~0", "~0.5", "~3"])
    if kind == 12:  # regexp
        w = re.sub(r"[^a-z0-9]", "", word.lower()) or "ab"
        pat = rng.choice([w[:2] + ".*", "." + w[1:], w + "|xyz", "[a-f]+" + w[-1:], w[:1] + "{1,3}.*", "~(" + w + ")"])
        return f"{field or 'message:'}/{pat}/"
    if kind == 13:  # keyword field
        kf = rng.choice(list(KEYWORD_VALUES))
        v = rng.choice(KEYWORD_VALUES[kf])
        form = rng.randrange(4)
        if form == 0:
            return f"{kf}:{_quote(v)}"
        if form == 1:
            return f"{kf}:{_escape_term(v) or _quote(v)}"
        if form == 2:
            return f"{kf}:{_escape_term(v[:3])}*"
        return f"{kf}:{_escape_term(v.lower()) or _quote(v)}"
    if kind == 14:  # range
        a, b = sorted([rng.choice(WORDS).lower(), rng.choice(WORDS).lower()])
        f = rng.choice(["message", "build_name", "build_change", "tags"])
        br = rng.choice(["[]", "{}", "[}", "{]"])
        return f"{f}:{br[0]}{_quote(a)} TO {rng.choice([_quote(b), '*'])}{br[1]}"
    if kind == 15:  # ES one-sided range
        f = rng.choice(["build_change", "message", "build_name"])
        return (
            f"{f}:{rng.choice(['>', '>=', '<', '<='])}{_escape_term(rng.choice(['12345', '2', 'm', 'tempest', 'Foo']))}"
        )
    if kind == 16:
        return rng.choice(
            [
                "_exists_:voting",
                "_exists_:message",
                "_exists_:nothing",
                "*:*",
                "tags:*",
                "build_name:*",
                "message:*",
                "*",
            ]
        )
    if kind == 17:  # field group
        return (
            f"{rng.choice(['message', 'tags', 'build_name'])}:({_escape_term(word)} {_escape_term(rng.choice(WORDS))})"
        )
    if kind == 18:  # boosted
        return f"{_escape_term(word)}^{rng.choice(['2', '0.5', '10'])}"
    return field + _escape_term(rng.choice(WORDS))


def random_query(rng: random.Random, docs: Sequence[Doc], depth: int = 0) -> str:
    n = rng.randint(1, 4 if depth == 0 else 3)
    parts = []
    for i in range(n):
        if i:
            parts.append(rng.choice([" ", " AND ", " OR ", " AND NOT ", " && ", " || ", " ", " NOT "]))
        mod = rng.choice(["", "", "", "", "+", "-", "NOT ", "!"])
        if depth < 2 and rng.random() < 0.25:
            inner = random_query(rng, docs, depth + 1)
            parts.append(f"{mod}({inner})")
        else:
            parts.append(mod + random_leaf(rng, docs))
    q = "".join(parts)
    if depth == 0 and rng.random() < 0.08:  # break it
        pos = rng.randrange(len(q) + 1)
        q = q[:pos] + rng.choice(['"', "(", ")", ":", "/", "\\", "AND ", "^", "~", "[", "}"]) + q[pos:]
    return q


# --------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------


def features_suite() -> tuple[list[Doc], list[str]]:
    """Handwritten documents aimed at each feature, with near misses."""
    messages = [
        # token boundaries
        "nova.compute.manager Failed to build and run instance",
        "nova compute manager failed to build",
        "Nova.Compute.Manager FAILED",
        "put_object returned 500",
        "put object returned 500",
        "cpu.txt screen-n-cpu.txt",
        "10.0.0.1 connection refused",
        "10.0.0 connection refused",
        "can't connect: can t",
        "a:b a-b a/b a@b.com a_b a.b",
        "12abc abc12 v1.2 1.a a1.b",
        "__init__ ___ _x_",
        "1,000.5 1,a ab,cd a;b 1;2",
        "foo-bar baz",
        "foo bar baz",
        "bar foo baz",
        "foo x bar",
        "foo x y bar",
        "foo foo bar foo",
        "fooBar FOOBAR foobar",
        "foobaz fooba fobar ofobar",
        "café CAFÉ Straße İstanbul ΣΑΣ σας",
        "日本語 ひらがな カタカナ 한국어 ไทยภาษา",
        "😀 👍🏽 🇺🇸 © 1️⃣",
        "http://example.com/path?q=1&r=2",
        "/opt/stack/nova/nova/compute/manager.py line 123",
        "ERROR oslo_messaging.rpc.server [req-3f2a9c1e-8b7d-4e5f]",
        "Timed out waiting for a reply to message ID 1234",
        "timed out waiting",
        "waiting timed out",
        "AND OR NOT TO and or not to",
        "x=1 k=v,w (paren) [bracket] {brace} <tag> #hash $var 100%",
        "a&b a|b a!b a*b a?b a\\b",
        "",
        "---",
        "...",
        "a",
        "ab",
        "abc",
        "abcd",
        "abcdef",
        "abcdefgh",
        "ba",
        "bca",
        "cab",
        "acb",
        "aaa",
        "1234567",
        "12345",
        "99",
        "100",
        "m",
        "n",
        "tempest",
        "Tempest",
        "status: 137",
        "FAILED with status: 143",
        "POST-RUN END RESULT_TIMED_OUT",
        "RUN END RESULT_TIMED_OUT",
        "[EnvInject] - [ERROR] - SEVERE ERROR occurs:",
        "fatal: [subnode-2]: UNREACHABLE!",
        "1 packets transmitted, 0 received, 100% packet loss, time 0ms",
        '{"conflictingRequest": {"message": "Cannot \'migrate\' instance',
        "testtools.matchers._impl.MismatchError: [(1, 0, 'N343')] != []",
    ]
    docs: list[Doc] = []
    for i, m in enumerate(messages):
        doc: Doc = {"message": m}
        if i % 3 == 0:
            doc["tags"] = ["console.html", "screen-n-cpu.txt"]
        elif i % 3 == 1:
            doc["tags"] = "job-output.txt"
        names = ["tempest-full", "Tempest-Full", "tempest-full-py3", "tempest full", "", "grenade", "a:b", "x\\y", "*"]
        doc["build_name"] = names[i % len(names)]
        if i % 4 == 0:
            doc["voting"] = i % 8 == 0
        if i % 5 == 0:
            doc["build_change"] = 100 + i
        if i % 7 == 0:
            doc["x"] = [1.5, 10000000000.0, 0.001, -0.0][i % 4]
        docs.append(doc)
    # multi-valued text fields: phrases across values need slop >= 101
    docs.append({"message": ["first value end", "start second value"], "tags": ["a", "b c"]})
    docs.append({"message": ["first value end", "", "start third"], "tags": []})
    docs.append({"message": ["only"], "tags": None, "build_name": ["multi", "values"]})
    docs.append({"nested": {"field": "inner value", "n": 3}, "message": "nested doc"})
    docs.append({"message": "long " + "a" * 300 + " tail " + "b" * 255 + "c"})
    docs.append({"message": "under " + "_" * 300 + "z end"})
    # unicode and escapes
    docs.append({"message": "日本語 テスト ひらがな 한국어 café CAFÉ İstanbul ΣΑΣ σας 😀 👍🏽", "build_name": "日本"})
    docs.append({"message": "message:foo build_name:bar a:b", "build_name": "a b"})
    docs.append({"message": "foo\tbar\nbaz qux\u00a0quux", "tags": ["x y", "z"]})
    docs.append({"message": "a b c", "build_name": ["one", "two", "Three"]})
    docs.append({"message": "İ i ı I", "build_name": "İ"})
    docs.append({"message": "aaaa", "build_name": "a\\b"})
    docs.append({"message": "x", "build_name": 'x"y'})

    q: list[str] = []
    words = [
        "nova.compute.manager",
        "nova",
        "compute",
        "Nova",
        "NOVA.COMPUTE.MANAGER",
        "put_object",
        "put",
        "object",
        "cpu.txt",
        "cpu",
        "txt",
        "10.0.0.1",
        "10.0.0",
        "can't",
        "can",
        "a:b",
        "a",
        "b",
        "a-b",
        "a/b",
        "a@b.com",
        "b.com",
        "12abc",
        "v1.2",
        "1.a",
        "a1.b",
        "a1",
        "__init__",
        "___",
        "1,000.5",
        "1,a",
        "foo-bar",
        "foo",
        "bar",
        "fooBar",
        "café",
        "CAFÉ",
        "cafe",
        "straße",
        "STRASSE",
        "i̇stanbul",
        "istanbul",
        "σας",
        "σασ",
        "ΣΑΣ",
        "日本語",
        "日",
        "ひ",
        "カタカナ",
        "한국어",
        "ไทยภาษา",
        "😀",
        "👍🏽",
        "🇺🇸",
        "©",
        "x=1",
        "k=v,w",
        "paren",
        "(paren)",
        "bracket",
        "#hash",
        "hash",
        "100%",
        "a&b",
        "http",
        "example.com",
        "q=1",
        "tempest",
        "TO",
        "to",
        "and",
        "AND",
    ]
    for w in words:
        q.append(_escape_term(w))
        q.append(_quote(w))
        q.append(w)  # unescaped: errors and odd splits are part of the test
        q.append("message:" + _escape_term(w))
        q.append("build_name:" + _escape_term(w))
    phrases = [
        "nova compute manager",
        "compute manager",
        "manager compute",
        "failed to build",
        "to build and",
        "foo bar",
        "bar foo",
        "foo baz",
        "foo foo",
        "foo foo foo",
        "foo bar foo",
        "timed out waiting",
        "waiting timed out",
        "out waiting",
        "end start",
        "value start",
        "first end",
        "end first",
        "first value",
        "value end start second",
        "second value",
        "a b",
        "b c",
        "c b",
        "status 137",
        "with status: 143",
        "RUN END RESULT_TIMED_OUT",
        "POST-RUN END",
        "nested doc",
        "inner value",
        "a:b a-b",
        "a b a",
        "x bar",
        "foo x y bar",
    ]
    for p in phrases:
        q.append(_quote(p))
        for slop in (1, 2, 3, 4, 99, 100, 101, 102, 200, 201):
            q.append(f"{_quote(p)}~{slop}")
        q.append("tags:" + _quote(p))
    q += [
        '"foo bar"~-1',
        '"foo"~-1',
        '"foo bar"~1.9',
        '"foo bar"~x',
        '"foo bar"~2^3',
        '"foo bar"^3~2',
        '"foo bar"~',
        '"foo bar"~ 2',
        '"foo bar" ~2',
        '""',
        '" "',
        '"---"',
        'message:""',
        'build_name:""',
        'build_name:" "',
        'build_name:"tempest full"',
        "build_name:tempest\\ full",
        "build_name:tempest full",
        "build_name:Tempest-Full",
        "build_name:tempest-full",
        'build_name:"a:b"',
        "build_name:a\\:b",
        "build_name:a:b",
        "build_name:x\\\\y",
        'build_name:"x\\\\y"',
        "build_name:\\*",
        "build_name:*",
        'build_name:"*"',
        "build_name:tempest*",
        "build_name:Tempest*",
        "build_name:tempest-full*",
        "build_name:temp?st-full",
        "build_name:*full",
        "build_name:/tempest.*/",
        "build_name:/Tempest.*/",
        "build_name:/.*/",
        "build_name:[tempest TO tempest-full]",
        "build_name:{tempest-full TO *]",
        "build_name:>tempest",
        "build_name:<=grenade",
        "build_name:(tempest-full OR grenade)",
        "build_name:(tempest-full grenade)",
        "build_name:multi",
        "build_name:values",
        "voting:true",
        "voting:false",
        "voting:True",
        "voting:1",
        "build_change:100",
        "build_change:[100 TO 110]",
        "build_change:>=150",
        "build_change:>150",
        "build_change:<110",
        "build_change:[1 TO 2]",
        "x:1.5",
        "x:1.0E10",
        "x:10000000000",
        "x:0.001",
        'x:"-0.0"',
        "nested.field:inner",
        "nested.n:3",
        "_exists_:nested.field",
        "_exists_:nested",
        "_exists_:nested.*",
        "_exists_:nested\\*",
        '_exists_:"nested.*"',
        "_exists_:x",
        "_exists_:voting",
        "_exists_:message",
        "_exists_:tags",
        "_exists_:nope",
        "_exists_:*",
        "_exists_:build_*",
        "tags:*",
        "message:*",
        "x:*",
        "nope:*",
        "*",
        "*:*",
        "*:foo",
        "**",
        "?",
        "message:?",
        "tags:?",
        "-*:*",
        "NOT *:*",
        "(*:*)",
        "-(*:*)",
        "long",
        "a" * 255,
        "a" * 256,
        "a" * 45,
        "b" * 255,
        "b" * 255 + "c",
        "c",
        "under",
        "_" * 254 + "z",
        "z",
        "end",
        "tail",
        '"long ' + "a" * 255 + '"',
        '"a' * 1 + "a" * 254 + ' a"',
    ]
    # operators and precedence
    ops = [
        "a OR b AND c",
        "a AND b OR c",
        "a b AND c",
        "a AND b c",
        "foo AND bar OR baz",
        "foo OR bar AND baz",
        "foo -bar",
        "foo NOT bar",
        "foo AND NOT bar",
        "NOT foo",
        "-foo",
        "-foo -bar",
        "(-foo)",
        "(-foo -bar)",
        "nova (-foo)",
        "nova AND (-foo)",
        "nova AND NOT (foo OR bar)",
        "+foo bar",
        "+foo -bar baz",
        "foo +bar",
        "foo && bar",
        "foo || bar",
        "!foo",
        "foo !bar",
        "foo!bar",
        "foo ! bar",
        "foo + bar",
        "foo - bar",
        "foo +-bar",
        "foo -+bar",
        "foo AND AND bar",
        "foo OR",
        "OR foo",
        "AND",
        "NOT",
        "foo NOT",
        "(foo",
        "foo)",
        "()",
        "(foo))",
        "((foo)",
        "foo ()",
        "foo^2",
        "foo^",
        "foo^x",
        "(foo bar)^2",
        "foo^2~1",
        "foo~1^2",
        "foo~",
        "foo~1",
        "fooo~1",
        "fo~1",
        "foo~2",
        "foo~0",
        "foo~0.5",
        "foo~0.9",
        "foo~1.0",
        "foo~1.5",
        "foo~2.0",
        "foo~3",
        "foo~-1",
        "foo~a",
        "foo~1a",
        "foo~1.5a",
        "foo~1e1",
        "foo~NaN",
        "foo~Infinity",
        "foo~2d",
        "fooBar~",
        "FOOBAR~1",
        "abc~",
        "abc~1",
        "abcd~",
        "ab~",
        "ab~1",
        "a~1",
        "ba~1",
        "abc~2",
        "acb~1",
        "cab~2",
        "bca~1",
        "abcdefgh~",
        "abcdefg~",
        "abcdefgh~1",
        "aaa~2",
        "foo* AND bar",
        "fo*",
        "f*o",
        "*ar",
        "?oo",
        "fo?",
        "fo??",
        "f*",
        "*",
        "fo\\*",
        "fo\\?",
        "message:Fo*",
        "message:FO?",
        "message:\\Fo*",
        "message:F\\o*",
        "foo\\-bar",
        "foo\\ bar",
        '"foo\\ bar"',
        "foo\\:bar",
        "a\\:b",
        "a\\/b",
        "a/b",
        "message:a\\/b",
        "\\u0061",
        "\\u006",
        "\\uzzzz",
        "foo\\",
        "\\",
        "\\\\",
        "message:\\(paren\\)",
        "message:(paren)",
        "message:\\[bracket\\]",
        "[bracket]",
        "{brace}",
        "message:\\{brace\\}",
        "<tag>",
        "message:<tag>",
        "message:>tag",
        "#hash",
        "$var",
        "100%",
        "a&b",
        "a&&b",
        "a & b",
        "a&&&b",
        "a||b",
        "a|b",
        "a | b",
        "x=1",
        "k=v,w",
        "project:openstack/cinder",
        "project:openstack\\/cinder",
        'project:"openstack/cinder"',
        "project:/openstack.*/",
        "message:/fo+/",
        "message:/fo{1,2}.*/",
        "message:/[a-c]{3}/",
        "message:/.*/",
        "message://",
        "message:/a|/",
        "message:/(/",
        "message:/a{2/",
        "message:/[z-a]/",
        "message:/<1-100>/",
        "message:/<1-2-3>/",
        "message:/<abc>/",
        "message:/~a/",
        "message:/a&b/",
        "message:/a.*&.*b/",
        "message:/\\d+/",
        "message:/[0-9]+/",
        'message:/"foo"/',
        "message:/#/",
        "message:/@/",
        "message:/(ab|ba)/",
        "message:/ab?c?/",
        "message:/FOO/",
        "message:/Foo.*/",
        "/foo/bar/",
        "/foo\\/bar/",
        "message:[a TO c]",
        "message:{a TO c}",
        "message:[a TO c}",
        "message:[c TO a]",
        "message:[* TO b]",
        "message:[b TO *]",
        "message:[* TO *]",
        'message:["*" TO b]',
        "message:[a TO]",
        "message:[TO TO TO]",
        "message:[a b]",
        "message:[a TO b TO c]",
        "message:[a TO b",
        "message:[A TO C]",
        "message:>=foo",
        "message:>foo",
        "message:<foo",
        "message:<=foo",
        "message:>",
        "message:>=",
        'message:">foo"',
        "message:\\>foo",
        'message:["a b" TO c]',
        "message:[a\tTO\tc]",
        "message:[ a TO c ]",
        "message:[a TO c]^2",
        "message:nova.compute.*",
        "message:nova.*",
        "message:nova-*",
        "tags:console*",
        "tags:console.html",
        'tags:"console.html"',
        "tags:console",
        "tags:html",
        "tags:(console.html OR job-output.txt)",
        "message:(nova AND -foo)",
        "message:(+nova -foo)",
        'message:("foo bar" baz)',
        "tags:(a b)",
        "message:(a:b)",
        "(a:b)",
        "a:b:c",
        "message:a:b",
        "*:nova",
        "message:*:nova",
        "message:(nova)^2 OR foo",
        "foo bar baz qux",
        "foo OR bar OR baz",
        "foo AND bar AND baz",
        "foo AND (bar OR baz)",
        "(foo AND bar) OR baz",
        "foo AND bar OR baz AND qux",
        "foo OR bar AND baz OR qux",
        "-(foo bar)",
        "-(-foo)",
        "NOT (NOT foo)",
        "+(-foo)",
        "nova AND NOT compute",
        "nova NOT compute NOT manager",
        "+nova +compute -failed",
        "nova OR -compute",
        "-nova OR compute",
        "-nova AND compute",
        "nova AND -compute OR manager",
        "+nova OR compute",
        "a - b",
        "a + b",
        "+ a",
        "- a",
        "! a",
        "a !",
        "a -",
        "a +",
        "foo-bar",
        "foo+bar",
        "foo-",
        "-",
        "+",
        "!",
        "&&",
        "||",
        "a AND",
        "AND a",
        "a OR || b",
        "tags:a AND tags:b",
        'tags:"b c"',
        'tags:"a b"',
        'tags:"a b"~100',
        'tags:"a b"~101',
        'message:"end start"~101',
        'message:"end start"~100',
    ]
    q += ops
    q += [
        "日本語",
        '"日本語"',
        "message:日本",
        '"日本"',
        "テスト",
        "ひら*",
        "ひ",
        "한국어",
        "한국*",
        "CAFÉ",
        "café",
        "cafe",
        "caf?",
        "CAF*",
        "İstanbul",
        "istanbul",
        "İSTANBUL*",
        "σας",
        "ΣΑΣ",
        "σασ",
        "😀",
        "👍🏽",
        '"😀 👍🏽"',
        "build_name:日本",
        "build_name:日*",
        "message\\:foo",
        '"message:foo"',
        "build\\_name:bar",
        "build_name:bar",
        '"foo bar"',
        '"foo\tbar"',
        '"foo\nbar"',
        "foo\tbar",
        "qux\u00a0quux",
        '"qux quux"',
        "quux",
        "qux",
        'tags:"x y"',
        'tags:"y z"',
        'tags:"y z"~100',
        'tags:"y z"~101',
        "build_name:Three",
        "build_name:three",
        "build_name:(one AND two)",
        "build_name:(one AND three)",
        "build_name:[one TO two]",
        "build_name:{one TO two}",
        "İ",
        "i",
        "ı",
        "I",
        "build_name:İ",
        "build_name:i",
        "message:İ*",
        "message:/İ/",
        "message:/i/",
        "build_name:a\\\\b",
        'build_name:"a\\\\b"',
        "build_name:a\\b",
        'build_name:x\\"y',
        'build_name:"x\\"y"',
        'build_name:x"y',
        "\\u65e5",
        "\\u65E5\\u672C",
        "\\uD83D\\uDE00",
        "\\uD83D",
        "message:\\u0041AAA",
        "message:[\\u0061 TO b]",
        "message:[a\\ b TO c]",
        "NOT(a)",
        "NOT (a) b",
        "-(a b) c",
        "a AND (b OR NOT c)",
        "a && !b",
        '"a b c"~1',
        '"c b a"~3',
        '"c b a"~4',
        '"a c"',
        '"a c"~1',
        "nofield:*",
        "((((((((((a))))))))))",
        "(" * 50 + "a" + ")" * 50,
    ]
    return docs, q


def random_suite(seed: int) -> tuple[list[Doc], list[str]]:
    rng = random.Random(seed)
    docs = [random_doc(rng) for _ in range(400)]
    queries = [random_query(rng, docs) for _ in range(2600)]
    return docs, queries


SYNTAX_ALPHABET = [
    "a",
    "b",
    "foo",
    " ",
    " ",
    '"',
    "(",
    ")",
    ":",
    "*",
    "?",
    "~",
    "^",
    "2",
    "1.5",
    "\\",
    "/",
    "[",
    "]",
    "{",
    "}",
    "+",
    "-",
    "!",
    "&&",
    "||",
    "AND",
    "OR",
    "NOT",
    "TO",
    " AND ",
    " OR ",
    "message:",
    "tags:",
    "build_name:",
    "_exists_:",
    "*:*",
    "\t",
    "\n",
    "\u3000",
    ">",
    "<=",
    "=",
    ".",
    "'",
    "&",
    "|",
    "@",
    "x1",
    "\\u0041",
    "é",
]


def syntax_suite(seed: int) -> tuple[list[Doc], list[str]]:
    rng = random.Random(seed)
    docs = [random_doc(rng) for _ in range(40)] + [{"message": "a b foo x1 ab ba é", "build_name": "a"}]
    queries = []
    for _ in range(2200):
        n = rng.randint(1, 9)
        queries.append("".join(rng.choice(SYNTAX_ALPHABET) for _ in range(n)))
    return docs, queries


def multiterm_suite(seed: int) -> tuple[list[Doc], list[str]]:
    """Dense small vocabularies: fuzzy (incl. the 50-expansion cap), regexp, wildcard, sloppy phrases."""
    rng = random.Random(seed)
    alphabet = "abcé"

    def word() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))

    docs: list[Doc] = []
    for _ in range(250):
        docs.append({"message": " ".join(word() for _ in range(rng.randint(1, 4))), "build_name": word().upper()})
    for _ in range(150):  # phrase documents over a 4-letter vocabulary: many repeats
        docs.append({"message": " ".join(rng.choice("abcd") for _ in range(rng.randint(1, 10)))})
    queries: list[str] = []
    for _ in range(450):
        w = word()
        queries.append(w + rng.choice(["~", "~1", "~2", "~0", "~0.5", "~0.3", "~0.8"]))
        if rng.random() < 0.4:
            queries.append("build_name:" + w.upper() + rng.choice(["~", "~1", "~2"]))
    for _ in range(350):
        a, b = word(), word()
        pat = rng.choice(
            [
                a + ".*",
                "." + a,
                a + "|" + b,
                "[a-c]+" + a,
                a[:1] + "{1,3}.*",
                "~(" + a + ")",
                "(" + a + ")&(.*" + b[:1] + ".*)",
                a + "?" + b,
                "@" + a,
                "#|" + a,
                '"' + a + '"',
                "[^a]" + b,
                "<1-50>",
                a + "{2}",
                "(" + a + ")*",
                a + "+",
                a.upper() + ".*",
                "\\" + a,
            ]
        )
        queries.append(rng.choice(["", "build_name:"]) + "/" + pat + "/")
    for _ in range(250):
        a = word()
        i = rng.randrange(len(a) + 1)
        queries.append(
            rng.choice(["", "build_name:"]) + a[:i] + rng.choice(["*", "?", "??", "*?", "\\*", "\\?"]) + a[i:]
        )
    for _ in range(700):
        phrase = " ".join(rng.choice("abcd") for _ in range(rng.randint(2, 4)))
        queries.append(f'"{phrase}"~{rng.randint(0, 6)}')
    return docs, queries


def limits_suite(seed: int) -> tuple[list[Doc], list[str]]:
    """Regexps and wildcards around Lucene's 10,000-state determinization limit (and isFinite's depth limit)."""
    rng = random.Random(seed)
    docs: list[Doc] = []
    for _ in range(120):
        word = "".join(rng.choice("ab") for _ in range(rng.randint(1, 20)))
        docs.append({"message": word + " " + "".join(rng.choice("abc1") for _ in range(rng.randint(1, 8)))})
    queries: list[str] = []
    for k in range(8, 17):
        queries += [
            f"/[ab]*a[ab]{{{k}}}/",
            f"/(a|b)*a(a|b){{{k}}}/",
            f"/.*a.{{{k}}}/",
            f"/(a|b)*a(a|b){{{k - 2},{k}}}/",
            f"/a(a|b){{{k}}}.*/",
            f"/~([ab]*a[ab]{{{k}}})/",
            f"/([ab]*a[ab]{{{k}}})&a.*/",
            "*a" + "?" * k,
            "*a*b" + "?" * k,
            "a*" + "?" * k + "b",
        ]
    for n in (998, 999, 1000, 1001):
        queries += [f"/a{{{n}}}b*/", f"/a{{{n}}}/", f"/a{{{n}}}.*/", "*" + "a" * n + "*"]
    for reps in (3332, 3333, 3334, 5000, 9999, 10000, 10001):
        queries += [f'/("abc"){{{reps}}}/', f"/(ab){{{reps}}}/", f"/a{{{reps},}}/", f"/[ab]{{0,{reps}}}/"]

    # Lucene also determinizes the reversed UTF-8 automaton of an infinite language
    # (CompiledAutomaton's common suffix) and the UTF-8 automaton itself:
    for k in (11, 12, 13, 14):
        queries += [f"/[ab]{{{k}}}a[ab]*/", f"/.{{{k}}}a.*/", f"/[^b]{{{k}}}a.*/", "a" + "?" * k + "*", "?" * k + "a*"]
    queries.append("/(ab|ba)*(b{8,10}[^b]{11,19}[ab][^b]*){12,14}/")

    atoms = ["a", "b", "[ab]", ".", "(a|b)", "(ab|ba)", "[^b]", "~(a)", "@", "<1-20>", '"ab"', "#", "a?"]

    def expr(depth: int) -> str:
        parts = []
        for _ in range(rng.randint(1, 4)):
            if depth < 2 and rng.random() < 0.35:
                part = "(" + expr(depth + 1) + ")"
            else:
                part = rng.choice(atoms)
            r = rng.random()
            if r < 0.2:
                part += "*"
            elif r < 0.3:
                part += "+"
            elif r < 0.4:
                part += "?"
            elif r < 0.6:
                lo = rng.randint(0, 12)
                part += rng.choice([f"{{{lo}}}", f"{{{lo},}}", f"{{{lo},{lo + rng.randint(0, 8)}}}"])
            parts.append(part)
        out = "".join(parts)
        r = rng.random()
        if r < 0.15:
            out += "|" + expr(depth + 1)
        elif r < 0.22:
            out += "&" + expr(depth + 1)
        return out

    for _ in range(900):
        queries.append("/" + expr(0) + "/")
    for _ in range(300):
        queries.append("".join(rng.choice(["a", "b", "?", "*", "??", "a?"]) for _ in range(rng.randint(3, 16))))
    return docs, queries


def load_fingerprints() -> list[str]:
    if not FINGERPRINTS.is_dir():
        return []
    import yaml  # noqa: PLC0415 - optional at generation time

    out = []
    for path in sorted(FINGERPRINTS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("query"), str):
            out.append(data["query"].strip())
    return out


_FIELD_PHRASE = re.compile(r'([A-Za-z_@.]+)\s*:\s*"((?:[^"\\]|\\.)*)"')


def _unescape_phrase(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def fingerprints_suite(seed: int) -> tuple[list[Doc], list[str]]:
    """Log lines made from real fingerprints' phrases: exact, case/punctuation variants, near misses."""
    rng = random.Random(seed)
    fps = load_fingerprints()
    docs: list[Doc] = []
    queries: list[str] = []
    for fp in fps:
        pairs = _FIELD_PHRASE.findall(fp)
        msgs = [_unescape_phrase(v) for f, v in pairs if f == "message"]
        tags = [_unescape_phrase(v) for f, v in pairs if f == "tags"] or ["console"]
        others = {f: _unescape_phrase(v) for f, v in pairs if f not in ("message", "tags")}
        for variant in range(6):
            parts = []
            for m in msgs:
                if variant == 0:
                    parts.append(m)
                elif variant == 1:
                    parts.append(m.upper())
                elif variant == 2:  # punctuation changed: often still a hit
                    parts.append(re.sub(r"[ :]", lambda mm: rng.choice([" ", "  ", "-", ":", "/", "_"]), m))
                elif variant == 3:  # one word dropped: a near miss
                    ws = m.split()
                    if len(ws) > 1:
                        ws.pop(rng.randrange(len(ws)))
                    parts.append(" ".join(ws))
                elif variant == 4:  # words swapped
                    ws = m.split()
                    if len(ws) > 1:
                        i = rng.randrange(len(ws) - 1)
                        ws[i], ws[i + 1] = ws[i + 1], ws[i]
                    parts.append(" ".join(ws))
                else:  # one word with a typo
                    ws = m.split()
                    if ws:
                        i = rng.randrange(len(ws))
                        ws[i] = _typo(rng, ws[i])
                    parts.append(" ".join(ws))
            prefix = "2024-01-02 03:04:05.123 12345 ERROR nova.compute.manager [req-3f2a9c1e] "
            doc: Doc = {"message": prefix + " ... ".join(parts) + rng.choice(["", " trailing words", ": done"])}
            doc["tags"] = rng.choice(tags) if variant % 2 == 0 else [rng.choice(tags), "console.html"]
            for f, v in others.items():
                doc[f] = v if variant != 5 else v.upper()
            if rng.random() < 0.3:
                doc["message"] = [doc["message"], random_message(rng, 2, 6)]
            docs.append(doc)
        # queries: the fingerprint, its clauses, and mutations
        queries.append(fp)
        for f, v in pairs:
            queries.append(f'{f}:"{v}"')
            queries.append(f'{f}:"{v}"~2')
            ws = v.split()
            if len(ws) > 2:
                queries.append(f'{f}:"{" ".join(ws[1:])}"')
        queries.append(fp.replace(" AND ", " OR "))
        queries.append(fp.replace(" AND ", " "))
        queries.append("NOT (" + fp + ")")
        queries.append(fp.replace('"', ""))
    for _ in range(300):  # plus generic noise documents
        docs.append(random_doc(rng))
    return docs, queries


def token_strings(seed: int) -> list[str]:
    """Strings whose tokenization is recorded (a spread of every rule)."""
    rng = random.Random(seed)
    out: list[str] = []
    reps = list("bB\u05d1\u05d0\u0662 21\u30ad\u30ab\u203f_:,.'\"\u0301\u00ad\u200d\u0e02\u0e31\u4e2d\u3042")
    reps += [
        "\U0001f603",
        "\U0001f1e6",
        "\U0001f1fa",
        "-",
        "\U0001f3fb",
        "\u261d",
        "#",
        "*",
        "\u2139",
        "\ufe0e",
        "\ufe0f",
        "\u20e3",
        "\u0130",
        "\u03a3",
        "/",
        "@",
        "\t",
        "\n",
        "\u00e9",
        "\U000e0067",
        "\U000e007f",
        "\U0001f3f4",
        "\u30fc",
        "\uff11",
        "\u3005",
        "\u3007",
    ]
    for _ in range(2500):
        out.append("".join(rng.choice(reps) for _ in range(rng.randint(1, 14))))
    ascii_al = list("aZ09_.:,;'\"-/@#*= \t()[]{}<>!?&|\\^~`$%+") + ["ab", "12", "x1", "...", "::", "__"]
    for _ in range(1500):
        out.append("".join(rng.choice(ascii_al) for _ in range(rng.randint(1, 20))))
    for _ in range(300):
        out.append(random_message(rng, 3, 15))
    for _ in range(150):
        n = rng.choice([250, 254, 255, 256, 300, 511])
        unit = rng.choice(["a", "1", "a.", "1,", "_", "a_", "é", "😀", "\u0301", "カ", "中", "ก", "\U0001d400"])
        s = (unit * n)[:n] + rng.choice(["", "b", " x", ".5", "_z"])
        out.append(rng.choice(["", "x "]) + s)
    for cp in list(range(0x20, 0x250)) + list(range(0x2000, 0x2070)) + [0x3000, 0xFF0E, 0xFF1A, 0xFE52, 0x2018, 0x2019]:
        ch = chr(cp)
        out += [f"a{ch}b", f"1{ch}2", ch]
    return list(dict.fromkeys(out))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--oracle", type=Path, default=DEFAULT_ORACLE)
    ap.add_argument("--seed", type=int, default=20240102)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    if not args.oracle.exists():
        print(f"oracle not found: {args.oracle}", file=sys.stderr)
        return 2
    if shutil.which("javac") is None:
        print("javac not found (Java 17 needed)", file=sys.stderr)
        return 2
    want = set(args.only) if args.only else None

    def on(name: str) -> bool:
        return want is None or name in want

    if on("tokens"):
        texts = token_strings(args.seed)
        write_fixture(
            "tokens",
            {
                "note": "Lucene 8 StandardAnalyzer (no stopwords) tokens",
                "cases": [[t, toks] for t, toks in zip(texts, token_dump(texts), strict=True)],
            },
        )
    if on("features"):
        docs, queries = features_suite()
        record_suite(args.oracle, "features", docs, queries, "handwritten feature probes")
    if on("random"):
        docs, queries = random_suite(args.seed)
        record_suite(args.oracle, "random", docs, queries, f"random documents and queries, seed {args.seed}")
    if on("syntax"):
        docs, queries = syntax_suite(args.seed + 1)
        record_suite(args.oracle, "syntax", docs, queries, f"random query-syntax strings, seed {args.seed + 1}")
    if on("multiterm"):
        docs, queries = multiterm_suite(args.seed + 3)
        record_suite(
            args.oracle, "multiterm", docs, queries, f"fuzzy/regexp/wildcard/slop stress, seed {args.seed + 3}"
        )
    if on("limits"):
        docs, queries = limits_suite(args.seed + 4)
        record_suite(
            args.oracle, "limits", docs, queries, f"regexps/wildcards around the 10,000-state limit, seed {args.seed + 4}"
        )
    if on("fingerprints"):
        docs, queries = fingerprints_suite(args.seed + 2)
        if not queries:
            print("fingerprints: ../shared/data/elastic-recheck-queries not found, suite skipped", file=sys.stderr)
        else:
            record_suite(args.oracle, "fingerprints", docs, queries, "synthetic lines from real fingerprints' phrases")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C.UTF-8")
    sys.exit(main())

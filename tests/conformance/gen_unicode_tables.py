#!/usr/bin/env python3
"""Measure Lucene 8's StandardTokenizer character classes and write elastic_recheck/core/lucene/_unicode_tables.py.

usage: python3 tests/conformance/gen_unicode_tables.py

Lucene's JFlex grammar was generated from an older Unicode version than
Python's (or the ``regex`` module's) tables, so instead of trusting Unicode
properties this asks Lucene itself: every code point up to U+323AF (plus
U+E0000-U+E01EF) is tokenized in a few dozen contexts (``a?a``, ``1?1``,
``?:?``, after a Hebrew letter, next to an emoji, ...), and its behaviour
(with the probed character replaced by a placeholder) is compared with that
of a representative character of each class (``b`` = ALetter, ``٢`` =
Numeric, ``:`` = MidLetter, ...). A code point belongs to the class whose
representative behaves identically. Java's ``Character.toLowerCase`` mapping
is dumped too. Needs Java 17 and ``liblucene8-java`` (see generate.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import REPO, token_dump  # noqa: E402

OUT = REPO / "elastic_recheck" / "core" / "lucene" / "_unicode_tables.py"

TEMPLATES = [
    "{c}", "a{c}a", "1{c}1", "{c}a", "a{c}", "{c}{c}", "\u30ab{c}\u30ab", "\U0001F600{c}\U0001F600",
    "\u05d0{c}\u05d0", "{c}:{c}", "{c},{c}", "{c}.{c}", "\u05d0{c}", "{c}\u200d{c}", "{c}\u20e3", "{c}_{c}",
    "{c}\U0001F3FB", "\u0e01{c}\u0e01", "{c}\u200d\U0001F600", "{c}'\u05d0", "\u05d0{c}'", '{c}"{c}',
]  # fmt: skip
# A representative of each class (none of them appears in the templates).
REPRESENTATIVES = {
    "ALetter": "b", "Hebrew": "\u05d1", "Numeric": "\u0662", "Katakana": "\u30ad", "ENL": "\u203f",
    "MidLetter": ":", "MidNum": ",", "MidNumLet": ".", "SQ": "'", "DQ": '"', "Extend": "\u0301",
    "ZWJ": "\u200d", "SA": "\u0e02", "SAExtend": "\u0e31", "EmojiBase": "\u261d", "Ideo": "\u4e2d",
    "Emoji": "\U0001F603", "RI": "\U0001F1E6", "Other": "-", "EmojiMod": "\U0001F3FB", "KeycapSym": "#",
    "ALetterEmoji": "\u2139",
}  # fmt: skip
# Characters used in the templates, classified by hand (checked by the fuzz tests).
KNOWN = {0x61: "ALetter", 0x41: "ALetter", 0x31: "Numeric", 0x5D0: "Hebrew", 0xE01: "SA", 0x30AB: "Katakana",
         0x1F600: "Emoji", 0xFE0E: "ExtendNotEmoji"}  # fmt: skip

LOWER_JAVA = """
public class LowerDump {
  public static void main(String[] a) {
    StringBuilder sb = new StringBuilder();
    for (int cp = 0; cp <= 0x10FFFF; cp++) {
      int l = Character.toLowerCase(cp);
      if (l != cp) sb.append(cp).append(' ').append(l).append('\\n');
    }
    System.out.print(sb);
  }
}
"""


def java_lower_map() -> dict[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "LowerDump.java"
        src.write_text(LOWER_JAVA)
        subprocess.run(["javac", "-d", tmp, str(src)], check=True)
        out = subprocess.run(["java", "-cp", tmp, "LowerDump"], capture_output=True, text=True, check=True).stdout
    return {int(a): int(b) for a, b in (line.split() for line in out.splitlines())}


def classify(lower: dict[int, int]) -> dict[int, str]:
    cps = [c for c in [*range(0, 0x323B0), *range(0xE0000, 0xE01F0)] if not 0xD800 <= c <= 0xDFFF]
    cps += [ord(r) for r in REPRESENTATIVES.values()]
    texts = [t.format(c=chr(c)) for c in cps for t in TEMPLATES]
    print(f"tokenizing {len(texts)} probes with Lucene ...", file=sys.stderr)
    results = token_dump(texts)
    k = len(TEMPLATES)
    sigs: dict[int, tuple[str, ...]] = {}
    for i, c in enumerate(cps):
        ch, lo = chr(c), chr(lower.get(c, c))
        sigs[c] = tuple(
            json.dumps([t.replace(ch, "\0").replace(lo, "\0") for t in toks]) for toks in results[i * k : (i + 1) * k]
        )
    by_sig: dict[tuple[str, ...], str] = {}
    for name, rep in REPRESENTATIVES.items():
        by_sig.setdefault(sigs[ord(rep)], name)
    classes = {c: by_sig.get(sigs[c], "?") for c in cps}
    classes.update(KNOWN)
    for c in range(0x1F3FB, 0x1F400):  # skin tones: each other's representative would differ
        classes[c] = "EmojiMod"
    unknown = [hex(c) for c, v in classes.items() if v == "?"]
    if unknown:
        raise SystemExit(f"unclassified code points: {unknown[:20]} ... ({len(unknown)})")
    print(Counter(classes.values()), file=sys.stderr)
    return classes


def _ranges(cps: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def _esc(c: int) -> str:
    return f"\\U{c:08X}" if c > 0xFFFF else f"\\u{c:04X}"


def write_tables(classes: dict[int, str], lower: dict[int, int]) -> None:
    def members(*names: str) -> list[int]:
        return sorted(c for c, v in classes.items() if v in names)

    sets = {
        "ALETTER": members("ALetter", "Hebrew", "ALetterEmoji"),
        "HEBREW_LETTER": members("Hebrew"),
        "NUMERIC": members("Numeric"),
        "KATAKANA": members("Katakana"),
        "EXTEND_NUM_LET": members("ENL"),
        "MID_LETTER": members("MidLetter", "MidNumLet", "SQ"),
        "MID_NUM": members("MidNum", "MidNumLet", "SQ"),
        "SINGLE_QUOTE": members("SQ"),
        "DOUBLE_QUOTE": members("DQ"),
        "EXTEND": members("Extend", "ZWJ", "SAExtend", "ExtendNotEmoji"),
        "EMOJI_EXTEND": [c for c in members("Extend", "ZWJ", "SAExtend") if c != 0xFE0F],
        "COMPLEX_CONTEXT": members("SA", "SAExtend"),
        "IDEOGRAPHIC": members("Ideo"),
        "EMOJI": members("Emoji", "EmojiBase", "ALetterEmoji", "EmojiMod"),
        "EMOJI_NON_MODIFIER": members("Emoji", "EmojiBase", "ALetterEmoji"),
        "EMOJI_MODIFIER_BASE": members("EmojiBase"),
        "EMOJI_MODIFIER": members("EmojiMod"),
        "REGIONAL_INDICATOR": members("RI"),
    }
    lines = [
        '"""Character classes of Lucene 8.7\'s StandardTokenizer, measured against it.',
        "",
        "Generated by ``tests/conformance/gen_unicode_tables.py`` from the real Lucene",
        "tokenizer's behaviour on every code point up to U+323AF (and U+E0000-U+E01EF),",
        "so they follow Lucene's Unicode version, not Python's. Each constant is the body",
        "of a regular-expression character class. Do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    for name, cps in sets.items():
        rs = _ranges(cps)
        parts = [_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in rs]
        chunks = [""]
        for p in parts:
            if len(chunks[-1]) + len(p) > 80:
                chunks.append("")
            chunks[-1] += p
        lines.append(f"# {len(cps)} code points in {len(rs)} ranges")
        lines.append(f"{name} = (")
        lines += [f'    r"{ch}"' for ch in chunks]
        lines.append(")")
    runs: list[list[int]] = []
    for cp, lo in sorted(lower.items()):
        d = lo - cp
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == d:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, d])
    lines += ["", "#: Java's Character.toLowerCase(int) as (first, last, delta) runs of code points."]
    lines.append("LOWER_RANGES: tuple[tuple[int, int, int], ...] = (")
    items = [f"(0x{a:04X}, 0x{b:04X}, {d})," for a, b, d in runs]
    lines += ["    " + " ".join(items[k : k + 4]) for k in range(0, len(items), 4)]  # four runs a line
    lines.append(")")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}", file=sys.stderr)


def main() -> int:
    lower = java_lower_map()
    write_tables(classify(lower), lower)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Untrusted values made safe to quote: one-line text and http(s)-only links.

Indexed documents (file names, log URLs, log lines), bug titles and job
names come from servers and files we do not control. Written into a Gerrit
comment, an IRC line or a page, they must not add lines (a bare ``recheck``
line in a comment re-triggers CI) nor links other than http(s).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["escape_controls", "one_line", "safe_url"]

_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Control characters but tab and newline written as ``\\xNN`` (for logs: no terminal escapes, no CR)."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line: every run of whitespace (newlines included) becomes one space; cut to ``limit``."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL on one line, else None (never ``javascript:``, never a line break)."""
    if not isinstance(value, str) or not value:
        return None
    text: str = value.strip()
    if _UNSAFE_IN_URL.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text

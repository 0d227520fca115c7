"""Where things are on the rendered site: page paths and their public URLs (pure).

The site (:mod:`elastic_recheck.report.site`) writes the pages; the bot links
them in its comments when ``[site] url`` says where the site is published.
"""

from __future__ import annotations

import hashlib
import re


def bug_page(bug: str) -> str:
    """Relative path of a bug's page; the name is file-system and URL safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", bug).strip(".") or "_"
    if safe != bug:
        safe += "-" + hashlib.sha1(bug.encode("utf-8")).hexdigest()[:8]
    return f"bug/{safe}.html"


def page_url(site_url: str, page: str = "") -> str:
    """``page`` (a relative path such as :func:`bug_page`) under the site's public URL."""
    return site_url.rstrip("/") + "/" + page

"""The static trend site: one :func:`render_site` for cron and the preview server.

Output layout (all links relative, so the site works from ``file://`` too)::

    index.html              every fingerprint, its trend chart and failure share
    gate.html               the same, gate queue only
    bug/<bug>.html          one page per bug: query, charts, breakdowns, builds
    uncategorized.html      classification rate overall, per group and job
    integrated_gate.html    uncategorized failed builds of the integrated gate
    others.html             ... and of the other projects
    health.html             generation time, indexing lag, backend, load errors
    stale_fingerprints.html quiet fingerprints: removal candidates, keepers
    graph.json              the original elastic-recheck format
    uncategorized.json      rates and the uncategorized builds
    health.json
    static/                 css and the small age-filter script

The index lists the resolved bugs that came back (:func:`stale.find_returning`:
a ``resolved_at`` in the YAML, or Fix Released in the tracker, and failed
builds since), each affected bug page carries a badge, and health.json has
both lists. Bug statuses come from ``bug_data`` (the configured tracker, as
the ``render`` command passes it); without it only ``resolved_at`` counts.

Rendering happens in a temporary directory next to the target, which then
replaces the target in one step (an atomic ``renameat2(RENAME_EXCHANGE)``
where the kernel offers it, else two renames), so a reader never sees a
half-written site.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from elastic_recheck.core.config import Config
from elastic_recheck.core.fingerprint_loading import LoadResult
from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import (
    BugData,
    Progress,
)
from elastic_recheck.report.site_data import RenderResult, collect_site_data
from elastic_recheck.report.site_pages import write_site
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)
# --------------------------------------------------------------------------- atomic swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False when unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    LOG.debug("renameat2(RENAME_EXCHANGE) failed: %s", os.strerror(err))
    return False


def swap_into_place(new: Path, target: Path) -> None:
    """Make ``new`` (a finished directory) appear at ``target``; the old one is removed."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    tmp.chmod(0o755)
    return tmp


def render_site(
    backend: SearchBackend,
    load_result: LoadResult,
    config: Config,
    out: Path,
    *,
    window: ReportWindow,
    templates: Path | None = None,
    bug_data: Mapping[str, BugData] | None = None,
    progress: Progress | None = None,
    backend_name: str = "",
    rechecks: Sequence[Recheck] | None = None,
    zuul_seconds: Mapping[str, float] | None = None,
) -> RenderResult:
    """Collect every number, render the site next to ``out``, then swap it into place.

    Used by the cron command (``render``) and the preview server (``serve``).
    On any failure ``out`` is left as it was.

    :raises BackendDown: the backend did not answer (nothing written).
    :raises BackendError: the backend failed half-way (nothing written).
    """
    t0 = time.perf_counter()
    data = collect_site_data(
        backend, load_result, config, window, bug_data=bug_data, progress=progress, backend_name=backend_name,
        rechecks=rechecks, zuul_seconds=zuul_seconds,
    )
    t1 = time.perf_counter()
    tmp = staging_dir(out)
    try:
        files = write_site(data, tmp, templates=templates, progress=progress)
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    t2 = time.perf_counter()
    LOG.info("rendered %d files into %s (%.2fs collecting, %.2fs writing)", files, out, t1 - t0, t2 - t1)
    return RenderResult(out=out, health=data.health, files=files, seconds={"collect": t1 - t0, "write": t2 - t1},
                        impact=data.impact)

"""Bug titles, status and affected projects for the pages, from the bug tracker.

Optional: callers import this module inside ``try/except ImportError`` and
fall back to the ``bug_title``/``projects`` keys of the fingerprint files
(:func:`~elastic_recheck.report.graph.bug_data_from_fingerprint`) when the
tracker module is not available or the tracker fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from elastic_recheck.adapters.launchpad.trackers import tracker_from_config
from elastic_recheck.core.config import Config
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.ports.bugs import BugInfo
from elastic_recheck.report.graph import BugData

LOG = logging.getLogger(__name__)

PRIVATE = "Unknown (Private Bug)"


def bug_data_from_info(info: BugInfo) -> BugData:
    """graph.json's ``bug_data`` as the original wrote it: ``affects`` = ``(target - status), ...``."""
    if info.private:
        return BugData(name=PRIVATE, affects=PRIVATE)
    affects = ", ".join(
        f"({t.target or t.project} - {t.status})" if t.status else f"({t.target or t.project})" for t in info.tasks
    )
    return BugData(name=info.title or "", affects=affects, status=info.status, projects=info.projects)


def bug_data_from_tracker(config: Config, fingerprints: Sequence[Fingerprint]) -> dict[str, BugData]:
    """bug -> :class:`BugData` from the ``[bugs] tracker`` (cached; offline data as fallback).

    :raises BugTrackerError: when the tracker fails and has no fallback.
    """
    tracker = tracker_from_config(config, fingerprints)
    infos = tracker.get_many([fp.bug for fp in fingerprints])
    out = {}
    for bug, info in infos.items():
        if info.missing:
            LOG.warning("bug %s: not found in the %s tracker", bug, tracker.name)
            continue
        out[bug] = bug_data_from_info(info)
    return out

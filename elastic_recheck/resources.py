"""Where the files shipped next to the package live: ``web/``, ``sample/``, ``queries/``.

They are top-level directories of the source tree. A checkout or an editable
install finds them next to the package; ``pip install .`` copies them, as the
``data_files`` of ``setup.cfg``, to ``<prefix>/share/elastic-recheck/<name>``.
Candidates, in order:

1. ``$ELASTIC_RECHECK_<NAME>`` when the caller names that variable;
2. ``<name>/`` next to the package (a source checkout or an editable install);
3. ``<prefix>/share/elastic-recheck/<name>`` for the prefix the package itself
   was installed under (``pip install --prefix``), ``sys.prefix`` (a virtualenv
   or system install), and the user base (``pip install --user``).
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from elastic_recheck.core.errors import ConfigError

#: The directory holding the ``elastic_recheck`` package.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def candidates(name: str, env: str | None = None) -> list[Path]:
    """Every place ``name`` (``web``, ``sample``, ``queries``) may be, most specific first."""
    out: list[Path] = []
    if env and os.environ.get(env):
        out.append(Path(os.environ[env]).expanduser())
    out.append(PACKAGE_PARENT / name)
    prefixes: list[Path] = []
    if PACKAGE_PARENT.name in ("site-packages", "dist-packages") and len(PACKAGE_PARENT.parents) > 2:
        # The prefix the package itself was installed under comes first: with
        # ``pip install --prefix`` (or PYTHONPATH into another install) sys.prefix
        # may hold a different copy of the data files.
        prefixes.append(PACKAGE_PARENT.parents[2])  # <prefix>/lib/pythonX.Y/site-packages
    prefixes.append(Path(sys.prefix))
    user_base = site.getuserbase()
    if user_base:
        prefixes.append(Path(user_base))
    for prefix in prefixes:
        path = prefix / "share" / "elastic-recheck" / name
        if path not in out:
            out.append(path)
    return out


def find(name: str, marker: str | None = None, env: str | None = None) -> Path:
    """The first candidate directory for ``name`` that holds ``marker`` (a relative file path;
    ``None``: any existing directory).

    :raises ConfigError: naming every place looked at.
    """
    tried = candidates(name, env)
    for path in tried:
        if (path / marker).is_file() if marker else path.is_dir():
            return path
    hint = f"; set ${env}" if env else ""
    what = f"{name}/{marker}" if marker else f"{name}/"
    raise ConfigError(f"{what} not found (looked in {', '.join(map(str, tried))}){hint}")

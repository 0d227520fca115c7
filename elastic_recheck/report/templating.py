"""Where the site's templates and static files live, and the Jinja2 environment.

The templates and static files are kept in the top-level ``web/`` directory
of the source tree (``web/templates/*.html``, ``web/static/*``). They are
found, in this order:

1. ``--templates DIR`` (per template: a file there overrides the built-in
   one of the same name; ``DIR/static/*`` overrides or adds static files);
2. ``$ELASTIC_RECHECK_WEB`` (a directory holding ``templates/`` and ``static/``);
3. ``web/`` next to the package (a source checkout or an editable install),
   else ``<prefix>/share/elastic-recheck/web`` where pip installs the
   ``data_files`` of ``setup.cfg`` (see :mod:`elastic_recheck.resources`).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from elastic_recheck import resources
from elastic_recheck.core.errors import ConfigError
from elastic_recheck.core.safe_text import safe_url
from elastic_recheck.core.stats import humanize_delta
from elastic_recheck.core.timestamps import to_epoch_ms

ENV_WEB = "ELASTIC_RECHECK_WEB"


def web_dir_candidates() -> list[Path]:
    return resources.candidates("web", ENV_WEB)


def web_dir() -> Path:
    """The directory holding the built-in ``templates/`` and ``static/``.

    :raises ConfigError: when none of the candidate locations has them.
    """
    return resources.find("web", "templates/base.html", ENV_WEB)


def fmt_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "unknown"
    return value.strftime(fmt) + " UTC"


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def template_env(templates: Path | None = None) -> Environment:
    """Autoescaping environment; ``templates`` (if given) overrides built-in files."""
    loaders: list[FileSystemLoader] = []
    if templates is not None:
        if not templates.is_dir():
            raise ConfigError(f"--templates {templates}: not a directory")
        loaders.append(FileSystemLoader(str(templates)))
    loaders.append(FileSystemLoader(str(web_dir() / "templates")))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["time"] = fmt_time
    env.filters["pct"] = fmt_pct
    env.filters["ms"] = lambda d: to_epoch_ms(d) if d is not None else 0
    env.filters["delta"] = humanize_delta
    env.filters["urlquote"] = lambda s: quote(str(s), safe="")
    return env


def copy_static(out: Path, templates: Path | None = None) -> list[Path]:
    """Copy the built-in static files (then the override's ``static/``) to ``out/static``.

    ``favicon.ico`` is also put at the root, where browsers ask for it on
    pages that do not name one (graph.json opened in a browser).
    """
    dest = out / "static"
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sources = [web_dir() / "static"]
    if templates is not None and (templates / "static").is_dir():
        sources.append(templates / "static")
    for src in sources:
        for f in sorted(src.iterdir()):
            if f.is_file():
                shutil.copyfile(f, dest / f.name)
                written.append(dest / f.name)
    if (dest / "favicon.ico").is_file():
        shutil.copyfile(dest / "favicon.ico", out / "favicon.ico")
        written.append(out / "favicon.ico")
    return written

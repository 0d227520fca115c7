"""The cron report builders: graph.json, the uncategorized pages, the static site.

* :mod:`.graph` -- per-bug trend numbers and graph.json (original format);
* :mod:`.uncategorized` -- failed gate builds no fingerprint explains, rates;
* :mod:`.health` -- the health header (lag, backend status, load errors);
* :mod:`.charts` -- inline SVG trend charts;
* :mod:`.site` -- :func:`~.site.render_site`, used by ``render`` and ``serve``.
"""

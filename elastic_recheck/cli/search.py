"""``elastic-recheck search`` and ``elastic-recheck query``."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import click

from elastic_recheck.cli.common import make_window, note, window_options
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError, ElasticRecheckError, FingerprintError, QuerySyntaxError
from elastic_recheck.core.fingerprints import load_file
from elastic_recheck.core.search_types import Filters, Hit, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)

#: Matching lines ``query`` reads its attribute values from (newest first).
QUERY_HITS = 10_000
#: ... and with ``--original`` (the old tool's search size).
ORIGINAL_QUERY_HITS = 1_000


def _open_text(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _validate(query: str, es_mode: bool) -> None:
    from elastic_recheck.core.lucene import parser as lucene

    lucene.parse(query, es_mode=es_mode)


def _warn_lint(findings: Any) -> None:
    """The warnings ``check-queries`` would give, on stderr (the search still runs)."""
    for finding in findings:
        click.echo(finding.format_text(), err=True)


def _all_ids(backend: SearchBackend, spec: QuerySpec) -> list[str]:
    total = backend.search(spec, size=0).total
    result = backend.search(spec, size=max(total, 1))
    return sorted(h.id for h in result.hits)


def _iter_batch(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with _open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"line {n}: invalid JSON: {exc.msg}"
                continue
            if not isinstance(obj, dict) or "query" not in obj:
                yield n, None, f"line {n}: expected an object with 'qid' and 'query'"
                continue
            yield n, obj, None


def _format_hit(hit: Hit) -> str:
    src = hit.source
    ts = src.get("@timestamp", "")
    name = src.get("build_name", "")
    fname = src.get("filename", "")
    msg = src.get("message", "")
    if isinstance(msg, list):
        msg = " | ".join(map(str, msg))
    first = str(msg).splitlines()[0] if msg else ""
    return f"{ts} {hit.id} {name} {fname}: {first}"


@click.command()
@click.argument("query", required=False)
@click.option("--batch", "batch", metavar="FILE", help="JSON lines {qid, query} (gzip ok, - for stdin); one JSON result line per query.")
@click.option("--ids", is_flag=True, help="Print only the ids of matching documents (with --batch: the contract format).")
@click.option("--json", "as_json", is_flag=True, help="Print matching documents as JSON lines.")
@click.option("-n", "--limit", type=int, default=50, show_default=True, help="At most this many documents (0: all).")
@click.option("--build-uuid", help="Restrict to one build (structured filter; a short uuid, as in classify, works too).")
@click.option("--lucene-mode", type=click.Choice(["es", "lucene"]), help="Elasticsearch query_string semantics (default) or plain Lucene.")
@window_options
@click.pass_obj
def search(
    app: AppContext,
    query: str | None,
    batch: str | None,
    ids: bool,
    as_json: bool,
    limit: int,
    build_uuid: str | None,
    lucene_mode: str | None,
    days: float | None,
    since: str | None,
    until: str | None,
) -> None:
    """Search log lines with a Lucene QUERY (whole store unless a window is given).

    \b
    Examples:
      elastic-recheck search 'message:"Timed out waiting" AND tags:"screen-n-cpu.txt"'
      elastic-recheck search --days 2 --json 'build_status:FAILURE AND message:libvirtError'
      elastic-recheck search --batch queries.jsonl --ids > hits.jsonl
    """
    from elastic_recheck.cli.classify import build_ref

    if lucene_mode:
        app.lucene_mode = lucene_mode
    es_mode = app.es_mode
    window = make_window(days, since, until)
    filters = build_ref(build_uuid).filters(voting_only=False) if build_uuid else Filters()
    backend = app.backend()
    if batch:
        out = sys.stdout
        for _n, obj, err in _iter_batch(batch):
            if obj is None:
                out.write(json.dumps({"qid": None, "ok": False, "error": err}) + "\n")
                continue
            qid = obj.get("qid")
            text = obj.get("query")
            if not isinstance(text, str):
                out.write(json.dumps({"qid": qid, "ok": False, "error": "query must be a string"}) + "\n")
                continue
            try:
                _validate(text, es_mode)
                hits = _all_ids(backend, QuerySpec(queries=(text,), filters=filters, window=window))
            except QuerySyntaxError as exc:
                out.write(json.dumps({"qid": qid, "ok": False, "error": str(exc)}) + "\n")
                continue
            except BackendError as exc:
                out.write(json.dumps({"qid": qid, "ok": False, "error": f"backend: {exc}"}) + "\n")
                continue
            except ElasticRecheckError as exc:
                out.write(json.dumps({"qid": qid, "ok": False, "error": str(exc)}) + "\n")
                continue
            except Exception as exc:  # noqa: BLE001 - one query's failure must not lose the others' answers
                LOG.debug("query %r failed", text, exc_info=True)
                error = f"internal error: {type(exc).__name__}: {exc}"
                out.write(json.dumps({"qid": qid, "ok": False, "error": error}) + "\n")
                continue
            if ids:
                out.write(json.dumps({"qid": qid, "ok": True, "hits": hits}) + "\n")
            else:
                out.write(json.dumps({"qid": qid, "ok": True, "total": len(hits), "hits": hits}) + "\n")
        return
    if not query:
        raise click.UsageError("give a QUERY or --batch FILE")
    try:
        _validate(query, es_mode)
    except QuerySyntaxError as exc:
        raise click.ClickException(f"invalid query: {exc}") from None
    from elastic_recheck.contrib.lint import lint_search

    _warn_lint(lint_search(query, es_mode=es_mode))
    spec = QuerySpec(queries=(query,), filters=filters, window=window)
    try:
        if ids:
            for doc_id in _all_ids(backend, spec)[: limit or None]:
                click.echo(doc_id)
            return
        size = limit if limit > 0 else max(backend.search(spec, size=0).total, 1)
        result = backend.search(spec, size=size, newest_first=True)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from None
    for hit in result.hits:
        if as_json:
            click.echo(json.dumps({"_id": hit.id, **dict(hit.source)}, default=str))
        else:
            click.echo(_format_hit(hit))
    if not as_json:
        shown = len(result.hits)
        more = f" (showing {shown}; use -n 0 for all)" if shown < result.total else ""
        note(f"{result.total} matching documents{more}")


@click.command()
@click.argument("fingerprint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--days", type=float, default=None, help="Only the last N days (default: whole store).")
@click.option("--quantity", type=int, default=5, show_default=True, help="Top values shown per attribute.")
@click.option("--verbose", "verbose_attrs", is_flag=True,
              help="Also the per-build attributes the original left out (build_uuid, build_ref, host...).")
@click.option("--original", is_flag=True,
              help="The old elastic-recheck-query's report: 'total hits: N', then percentages of the newest 1,000 lines.")
@click.pass_obj
def query(app: AppContext, fingerprint: Path, days: float | None, quantity: int, verbose_attrs: bool, original: bool) -> None:
    """Show what one fingerprint hits: totals, then top values per attribute.

    The attributes are those of the old elastic-recheck-query, in its order:
    every field of the hit documents, alphabetically, without meta fields,
    the message and (unless --verbose) per-build noise. Percentages are of
    the distinct builds hit (the old tool counted log lines; builds are what
    a bug affects). Values come from the newest 10,000 matching lines.
    """
    from elastic_recheck.core.attributes import attribute_sections, format_original

    try:
        fp = load_file(fingerprint, es_mode=app.es_mode)
    except FingerprintError as exc:
        raise click.ClickException(str(exc)) from None
    from elastic_recheck.contrib.lint import lint_text
    from elastic_recheck.contrib.lint_findings import WARNING

    es_mode = app.es_mode
    linted = lint_text(fingerprint.read_text(encoding="utf-8"), str(fingerprint), es_mode=es_mode)
    _warn_lint(f for f in linted.findings if f.level == WARNING)
    window = make_window(days, None, None) if days else TimeWindow()
    spec = QuerySpec(queries=(fp.query,), window=window, label=fp.bug)
    backend = app.backend()
    try:
        if original:
            result = backend.search(spec, size=ORIGINAL_QUERY_HITS, newest_first=True)
            sections = attribute_sections((h.source for h in result.hits), verbose=verbose_attrs)
            click.echo(format_original(result.total, sections, quantity), nl=False)
            return
        result = backend.search(spec, size=QUERY_HITS, newest_first=True)
        builds = backend.count_builds(spec)
        click.echo(f"bug {fp.bug}: {fp.url}")
        click.echo(f"query: {fp.query}")
        click.echo(f"total hits: {result.total} log lines in {builds} builds")
        if builds == 0:
            return
        non_voting = backend.count_builds(replace(spec, filters=Filters(voting=False)))
        click.echo(
            f"(non-voting builds count here: {non_voting} of the {builds}; "
            "the site's pages and graph count voting builds only)"
        )
        if len(result.hits) < result.total:
            click.echo(f"(attribute values from the newest {len(result.hits)} lines)")
        # Departure from the original (docs/compatibility.md): percentages of
        # builds, not of log lines (--original prints the old report).
        for section in attribute_sections((h.source for h in result.hits), verbose=verbose_attrs):
            click.echo(section.name)
            for share in section.by_builds[:quantity]:
                click.echo(f"  {share.build_percent:5.1f}% {share.value} ({share.builds} builds)")
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None

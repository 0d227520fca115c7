"""``elastic-recheck check-queries``: validate and lint fingerprints without a backend."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from elastic_recheck.cli.common import note
from elastic_recheck.cli.main import AppContext
from elastic_recheck.contrib.lint import CODES, FileResult, LintReport, lint_files
from elastic_recheck.contrib.lint_findings import ERROR, Finding
from elastic_recheck.contrib.lint_patterns import MEASURED
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import ElasticRecheckError, FingerprintError
from elastic_recheck.core.fingerprint_loading import iter_query_files
from elastic_recheck.core.fingerprints import read_fingerprint_text
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping, mapping_from_properties, properties_of
from elastic_recheck.core.search_types import QuerySpec

LOG = logging.getLogger(__name__)


@contextmanager
def _quiet_loader() -> Iterator[None]:
    """The loader logs unknown keys itself; here they are findings, so keep stderr clean."""
    logger = logging.getLogger("elastic_recheck.core.fingerprints")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def _read(paths: list[Path]) -> tuple[list[tuple[str, str]], list[FileResult]]:
    texts: list[tuple[str, str]] = []
    unreadable: list[FileResult] = []
    for p in paths:
        name = str(p)
        try:
            texts.append((name, read_fingerprint_text(p)))
        except FingerprintError as exc:
            unreadable.append(FileResult(name, [Finding(name, 1, 1, ERROR, "yaml", exc.message)]))
    return texts, unreadable


def _measure(app: AppContext, report: LintReport) -> None:
    """Append to each broad/slow finding the share of lines its query hits on the configured backend.

    Only when there is one to ask (a cluster, or an existing embedded store)
    and only for the files with such findings; a backend failure is one
    warning line and the findings stay as they are.
    """
    targets = [fr for fr in report.files if fr.fingerprint is not None and any(f.code in MEASURED for f in fr.findings)]
    if not targets or (not app.cluster and not app.store_path.exists()):
        return
    try:
        backend = app.backend()
        total = backend.search(QuerySpec(), size=0).total
        for fr in targets:
            assert fr.fingerprint is not None
            hits = backend.search(QuerySpec(queries=(fr.fingerprint.query,)), size=0).total
            share = f"{100.0 * hits / total:.1f}%" if total else "no lines indexed"
            where = "the cluster" if app.cluster else "the store"
            note = f" (measured on {where}: {hits} of {total} lines, {share})"
            fr.findings = [dataclasses.replace(f, message=f.message + note) if f.code in MEASURED else f for f in fr.findings]
    except (ElasticRecheckError, click.ClickException) as exc:
        click.echo(f"warning: broad-query findings not measured: {exc}", err=True)


def configured_mapping(config: Config | None) -> Mapping:
    """``[data_source] mapping`` (a JSON mapping file), else the built-in mapping.

    :raises click.ClickException: the file cannot be read or holds no field.
    """
    path = config.data_source.mapping if config is not None else ""
    if not path:
        return DEFAULT_MAPPING
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"[data_source] mapping: {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise click.ClickException(f"[data_source] mapping: {path}: not JSON: {exc}") from None
    mapping = mapping_from_properties(properties_of(data))
    if mapping is None:
        raise click.ClickException(f"[data_source] mapping: {path}: no field found (expected a GET <index>/_mapping "
                                   "answer, an index template or {\"properties\": ...})")
    LOG.info("fields checked against %s (%d fields)", path, len(mapping.known_fields))
    return mapping


def _cluster_mapping(app: AppContext) -> Mapping:
    """The configured cluster's fields for the field check (the configured mapping if it cannot say)."""
    fallback = configured_mapping(app.config)
    source = "[data_source] mapping" if app.config.data_source.mapping else "the built-in mapping"
    try:
        mapping: Mapping | None = app.cluster_backend().field_mapping()
    except ElasticRecheckError as exc:
        click.echo(f"warning: fields checked against {source}: {exc}", err=True)
        return fallback
    if mapping is None:
        click.echo(f"warning: no index of the cluster's index_format yet: fields checked against {source}", err=True)
        return fallback
    LOG.info("fields checked against the cluster's mapping (%d fields)", len(mapping.known_fields))
    return mapping


def _log_internal(name: str, exc: Exception) -> None:
    LOG.error("%s: linter failure", name, exc_info=exc)


@click.command(name="check-queries")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: file:line:col: level: message [code]; json: one object per finding per line.")
@click.option("--strict", is_flag=True, help="Exit non-zero on warnings too.")
@click.option("--ignore", "ignored", multiple=True, metavar="CODE", help="Leave out findings with this code (repeatable).")
@click.option("--lucene-mode", type=click.Choice(["es", "lucene"]),
              help="Elasticsearch query_string semantics (default: [data_source] lucene_mode) or plain Lucene.")
@click.option("--list-codes", is_flag=True, help="Describe every finding code and exit.")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Back broad/slow-query warnings with the share of lines the query hits on the configured "
                   "store or cluster (when there is one).")
@click.pass_obj
def check_queries(
    app: AppContext | None,
    paths: tuple[Path, ...],
    fmt: str,
    strict: bool,
    ignored: tuple[str, ...],
    lucene_mode: str | None,
    list_codes: bool,
    measure: bool,
) -> None:
    """Validate and lint fingerprint files (default: the queries directory).

    Checks YAML and keys, Lucene syntax, fields against the document mapping
    (the configured cluster's, when there is one),
    and warns about queries that don't mean what they seem to: implicit OR,
    AND mixed with OR, single quotes, leading wildcards, wildcards inside
    phrases, clauses that analyze to nothing, unquoted hyphenated words,
    queries without a message clause or with only NOT clauses, duplicates
    and very broad queries. See --list-codes.

    Exit status: 0 clean, 1 errors (or warnings with --strict).

    \b
    Examples:
      elastic-recheck check-queries
      elastic-recheck check-queries --strict queries/1234567.yaml
      elastic-recheck check-queries --format json queries | jq .code
    """
    if list_codes:
        for code, text in CODES.items():
            click.echo(f"{code:20} {text}")
        return
    for code in ignored:
        if code not in CODES:
            raise click.BadParameter(f"unknown code {code!r} (see --list-codes)", param_hint="--ignore")
    config = app.config if app is not None else None
    if not paths:
        default = config.queries_dir if config is not None else Path("queries")
        if not default.is_dir():
            raise click.UsageError(f"no PATHS given and no queries directory at {default}")
        paths = (default,)
    mode = lucene_mode or (config.data_source.lucene_mode if config is not None else "es")
    files = iter_query_files(paths)
    texts, unreadable = _read(files)
    mapping = _cluster_mapping(app) if app is not None and app.cluster else configured_mapping(config)
    with _quiet_loader():
        report = lint_files(
            texts, mapping=mapping, es_mode=mode == "es", on_internal_error=_log_internal, bug_file_names=True
        )
    if measure and app is not None:
        _measure(app, report)
    report = LintReport(report.files + unreadable)
    findings = [f for f in report.findings if f.code not in ignored]
    out = sys.stdout
    for f in findings:
        out.write((json.dumps(f.as_json()) if fmt == "json" else f.format_text()) + "\n")
    errors = sum(1 for f in findings if f.level == ERROR)
    warnings = len(findings) - errors
    note(
        f"checked {len(files)} fingerprint file{'s' if len(files) != 1 else ''}: "
        f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    )
    if errors or (strict and warnings):
        raise SystemExit(1)

"""``elastic-recheck classify``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from elastic_recheck.adapters.sqlite.signatures import service_from_config
from elastic_recheck.adapters.subunit2sql.results import test_results_from_config
from elastic_recheck.cli.common import make_window, queries_option
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.classify import BuildRef, Classification, Classifier
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.fingerprint_loading import load_fingerprints


def _read_uuids(path: str) -> Iterator[str]:
    fh = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        for line in fh:
            uuid = line.strip()
            if uuid and not uuid.startswith("#"):
                yield uuid
    finally:
        if fh is not sys.stdin:
            fh.close()


def build_ref(uuid: str) -> BuildRef:
    """A full 32-hex uuid, or a 7-hex short uuid (old Zuul v2 log URLs)."""
    if len(uuid) < 32:
        return BuildRef(short_uuid=uuid)
    return BuildRef(uuid=uuid)


def _print_text(res: Classification) -> None:
    if res.error:
        click.echo(f"{res.build.key}: error: {res.error}")
        return
    if not res.matches:
        click.echo(f"{res.build.key}: no known bug matched")
        return
    click.echo(f"{res.build.key}: {', '.join(res.bugs)}")
    for m in res.matches:
        quiet = " (suppress-notification)" if m.suppressed else ""
        click.echo(f"  {m.fingerprint.url}{quiet}")
        click.echo(f"    {m.file or '?'}: {m.line[:200]}")
        if m.log_url:
            click.echo(f"    {m.log_url}")


@click.command()
@click.option("--build-uuid", "uuids", multiple=True, metavar="UUID", help="Build to classify (repeatable; short uuids accepted).")
@click.option("--builds", "builds_file", metavar="FILE", help="File with one build uuid per line (- for stdin).")
@queries_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per build: {build_uuid, bugs, matches} (+ signature for an unexplained failure).")
@click.option("--days", type=float, help="Only look at documents of the last N days (default: any age).")
@click.pass_obj
def classify(
    app: AppContext,
    uuids: tuple[str, ...],
    builds_file: str | None,
    queries_dir: Path | None,
    as_json: bool,
    days: float | None,
) -> None:
    """Tell which known bugs explain the given builds.

    Every fingerprint is run against each build in one multi-search. Unknown
    builds give an error line (exit code 1 at the end), not a crash.
    """
    all_uuids = list(uuids)
    if builds_file:
        all_uuids.extend(_read_uuids(builds_file))
    if not all_uuids:
        raise click.UsageError("give --build-uuid UUID or --builds FILE")
    qdir = queries_dir or app.config.queries_dir
    # bad files are logged (file, line, column) by the loader and skipped
    loaded = load_fingerprints(qdir, es_mode=app.es_mode)
    if not loaded.fingerprints:
        raise click.ClickException(f"no usable fingerprints in {qdir}")
    window = make_window(days, None, None) if days else None
    backend = app.backend()
    try:
        tests = test_results_from_config(backend, app.config.data_source.db_uri)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    signatures = service_from_config(app.config, backend, app.store_path, app.cluster, tests)
    classifier = Classifier(backend, loaded.fingerprints, window=window, test_results=tests, signatures=signatures)
    failures = 0
    for uuid in all_uuids:
        try:
            res = classifier.classify(build_ref(uuid))
        except ElasticRecheckError as exc:
            res = Classification(build_ref(uuid), error=str(exc))
        if res.error:
            failures += 1
        if as_json:
            click.echo(json.dumps(res.as_json()))
        else:
            _print_text(res)
    if failures:
        sys.exit(1)

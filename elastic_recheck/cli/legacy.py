"""The original's console scripts, as thin translations onto the one ``elastic-recheck`` CLI.

An existing deployment's cron jobs and habits keep working:

* ``elastic-recheck-graph [-o OUT] [-q QUEUE] [-c CONF] [-v] QUERIES`` ->
  ``elastic-recheck [-c CONF] graph --queries QUERIES [-o OUT] [-q QUEUE]``;
* ``elastic-recheck-uncategorized [-d DIR] [-t TEMPLATES] [-o OUT] [-c CONF]
  [--all-fails-query Q] [--excluded-jobs-regex R] [--included-projects-regex R]
  [--search-size N] [-v]`` -> ``uncategorized`` (the three query/regex options
  override ``[site]`` settings; ``--search-size`` is accepted and ignored:
  nothing is truncated here);
* ``elastic-recheck-query [-q N] [-d DAYS] [-v] [-c CONF] FILE`` ->
  ``query --original`` (the old report format, last 10 days by default);
* ``elastic-recheck-success [-d DIR] [-c CONF]`` -> ``success`` (``--lp`` and
  ``--rate`` are accepted and ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

OLD_DEFAULT_QUERIES = "queries"
#: The old elastic-recheck-query searched the last 10 days.
OLD_QUERY_DAYS = 10.0


def _run(conf: str | None, verbose: bool, args: list[str], prog: str) -> None:
    from elastic_recheck.cli.main import cli

    head = (["-c", conf] if conf else []) + (["-v"] if verbose else [])
    cli.main(args=head + args, prog_name=prog)


#: The old scripts took -h/--help like argparse.
_old_script = click.command(context_settings={"help_option_names": ["-h", "--help"]})
_conf_option = click.option(
    "-c", "--conf", help="elasticRecheck.conf for data_source options (es_url, ls_url, db_uri...)."
)
_dir_option = click.option(
    "-d", "--dir", "queries", default=OLD_DEFAULT_QUERIES, show_default=True, help="Queries directory."
)


@_old_script
@click.argument("queries", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "output", help="Output filename. Omit for stdout.")
@click.option("-q", "queue", help="Limit results to a build queue.")
@_conf_option
@click.option("-v", "verbose", is_flag=True, help="Print out details as we go.")
def graph(queries: Path, output: str | None, queue: str | None, conf: str | None, verbose: bool) -> None:
    """Generate data for graphs (graph.json)."""
    args = ["graph", "--queries", str(queries)]
    args += ["-o", output] if output else []
    args += ["--queue", queue] if queue else []
    _run(conf, verbose, args, "elastic-recheck-graph")


@_old_script
@_dir_option
@click.option("-t", "--templatedir", help="Template directory.")
@click.option("-o", "--output", help="Directory for integrated_gate.html and others.html (default: the current one).")
@_conf_option
@click.option("--search-size", help="Accepted for compatibility; ignored (results are never truncated).")
@click.option("--all-fails-query", help="Query that finds every failure ([site] all_fails_query).")
@click.option("--excluded-jobs-regex", help="Jobs to leave out ([site] excluded_jobs_re).")
@click.option("--included-projects-regex", help="Projects to include ([site] included_projects_re).")
@click.option("-v", "--verbose", is_flag=True, help="Print status as we go.")
def uncategorized(
    queries: str, templatedir: str | None, output: str | None, conf: str | None, search_size: str | None,
    all_fails_query: str | None, excluded_jobs_regex: str | None, included_projects_regex: str | None, verbose: bool,
) -> None:
    """Build the list of all uncategorized test runs."""
    # Departure from the original (docs/compatibility.md): --search-size is
    # ignored; every failed build is read, never a capped list of hits.
    for key, value in (
        ("ALL_FAILS_QUERY", all_fails_query),
        ("EXCLUDED_JOBS_RE", excluded_jobs_regex),
        ("INCLUDED_PROJECTS_RE", included_projects_regex),
    ):
        if value is not None:
            os.environ[f"ELASTIC_RECHECK_SITE_{key}"] = value
    args = ["uncategorized", "--queries", queries, "-o", output or os.getcwd()]
    args += ["--templates", templatedir] if templatedir else []
    _run(conf, verbose, args, "elastic-recheck-uncategorized")


@_old_script
@click.argument("query_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-q", "--quantity", type=int, default=5, show_default=True, help="Maximum quantity of values to show for each attribute.")
@click.option("-d", "--days", type=float, default=OLD_QUERY_DAYS, show_default=True, help="Timespan to query, in days (may be a decimal).")
@click.option("-v", "--verbose", is_flag=True, help="Report on additional query metadata.")
@_conf_option
def query(query_file: Path, quantity: int, days: float, verbose: bool, conf: str | None) -> None:
    """Execute elastic-recheck query files and analyze the results."""
    args = ["query", "--original", "--quantity", str(quantity), "--days", repr(days), str(query_file)]
    args += ["--verbose"] if verbose else []
    _run(conf, False, args, "elastic-recheck-query")


@_old_script
@_dir_option
@click.option("-l", "--lp", help="Accepted for compatibility; ignored.")
@click.option("-r", "--rate", help="Accepted for compatibility; ignored.")
@_conf_option
def success(queries: str, lp: str | None, rate: str | None, conf: str | None) -> None:
    """List the fingerprints that hit successful builds (queries that are too broad)."""
    _run(conf, False, ["success", "--queries", queries], "elastic-recheck-success")

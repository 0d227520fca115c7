"""``elastic-recheck demo``: the whole pipeline on the bundled sample, no server needed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from elastic_recheck import resources
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import ConfigError

SAMPLE_NOW = "2026-11-20T00:00:00Z"
#: The bot's dry-run output starts each comment with this line.
COMMENT_HEADER = "=== would comment on "


def _run(args: list[str], what: str, stdout: Path | None = None, env: dict[str, str] | None = None) -> None:
    shown = " ".join(shlex.quote(a) for a in ["elastic-recheck", *args])
    if env:
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shown
    if stdout is not None:
        shown += f" > {shlex.quote(str(stdout))}"
    click.secho(f"\n$ {shown}", fg="cyan", err=True)
    click.echo(f"# {what}", err=True)
    cmd = [sys.executable, "-m", "elastic_recheck", *args]
    full_env = {**os.environ, **env} if env else None
    if stdout is None:
        proc = subprocess.run(cmd, check=False, env=full_env)
    else:
        with stdout.open("w", encoding="utf-8") as fh:
            proc = subprocess.run(cmd, check=False, stdout=fh, env=full_env)
    if proc.returncode != 0:
        raise click.ClickException(f"step failed (exit {proc.returncode}): {shown}")


def _sample_path(given: Path | None, name: str, marker: str | None) -> Path:
    if given is not None:
        return given
    try:
        return resources.find(name, marker)
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (pass --sample-dir/--queries)") from None


def _example_comment(path: Path) -> tuple[int, str]:
    """How many comments the dry run wrote to ``path``, and one that names a bug (else the first)."""
    blocks = [(COMMENT_HEADER + b).rstrip() for b in path.read_text(encoding="utf-8").split(COMMENT_HEADER)[1:]]
    naming = [b for b in blocks if "you hit bug" in b]
    return len(blocks), (naming or blocks or [""])[0]


@click.command()
@click.option("--sample-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Sample data (logs.jsonl.gz, events.jsonl). Default: the bundled sample/.")
@click.option("--queries", "queries_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Fingerprints. Default: the bundled queries/.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("er-demo"), show_default=True,
              help="Where the demo's store, the actions and comments files and the site go.")
@click.option("--fresh", is_flag=True, help="Re-create the store even if it already holds the sample.")
@click.pass_obj
def demo(app: AppContext, sample_dir: Path | None, queries_dir: Path | None, out: Path, fresh: bool) -> None:
    """Ingest the sample CI history, search it, replay Gerrit events through
    the bot (dry run: the comments it would post go to OUT/comments.txt,
    nothing is posted) and render the trend site. Every step is an ordinary
    elastic-recheck command, shown as it runs, so you can repeat any of them
    by hand.

    The sample's builds are synthetic, so the demo keeps them in its own
    store, OUT/store.db (unless --store says otherwise), never in the store
    of your configuration.
    """
    sample_dir = _sample_path(sample_dir, "sample", "logs.jsonl.gz")
    queries_dir = _sample_path(queries_dir, "queries", None)
    logs = sample_dir / "logs.jsonl.gz"
    events = sample_dir / "events.jsonl"
    for p in (logs, events):
        if not p.exists():
            raise click.ClickException(f"{p} not found (pass --sample-dir)")
    store = app.store_override or out / "store.db"
    out.mkdir(parents=True, exist_ok=True)
    if fresh and store.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(store) + suffix).unlink(missing_ok=True)
    base = ["--store", str(store)]
    if not store.exists():
        _run([*base, "ingest", "--jsonl", str(logs)], "load ~43,000 sample log lines into the demo's own store")
    else:
        click.echo(f"# {store} exists; reusing it (--fresh to rebuild)", err=True)
    _run(
        [*base, "search", "-n", "3", 'message:"End of file while reading data" AND tags:"screen-n-cpu.txt"'],
        "a fingerprint's query over the store",
    )
    comments = out / "comments.txt"
    site = out / "site"
    _run(
        [*base, "bot", "--queries", str(queries_dir), "--replay", str(events), "--dry-run", "--no-irc",
         "--actions-out", str(out / "actions.jsonl")],
        "replay Gerrit events: classify each failed build and write the comment the bot would post\n"
        "# (the sample holds one deliberately malformed event: the bot warns about it, skips it and goes on;\n"
        "# the comments link the demo's own site, as [site] url would the published one)",
        stdout=comments,
        env={"ELASTIC_RECHECK_SITE_URL": site.resolve().as_uri() + "/"},
    )
    count, example = _example_comment(comments)
    click.echo(f"{count} comments written to {comments}; one of them:\n\n{example}\n", err=True)
    _run(
        [*base, "render", "--queries", str(queries_dir), "--now", SAMPLE_NOW, "-o", str(site)],
        "render the trend pages as of the end of the sample",
    )
    click.secho(f"\nDone. Open {(site / 'index.html').resolve()} in a browser,", fg="green", err=True)
    click.echo(f"or run: elastic-recheck serve -o {site}", err=True)
    click.echo(f"Actions taken per event: {out / 'actions.jsonl'}", err=True)

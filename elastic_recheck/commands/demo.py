"""``elastic-recheck demo``: the whole pipeline on the bundled sample, no server needed."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import click

from elastic_recheck.cli import AppContext

REPO = Path(__file__).resolve().parents[2]
SAMPLE_NOW = "2026-11-20T00:00:00Z"


def _run(args: list[str], what: str) -> None:
    shown = " ".join(shlex.quote(a) for a in ["elastic-recheck", *args])
    click.secho(f"\n$ {shown}", fg="cyan", err=True)
    click.echo(f"# {what}", err=True)
    proc = subprocess.run([sys.executable, "-m", "elastic_recheck", *args], check=False)
    if proc.returncode != 0:
        raise click.ClickException(f"step failed (exit {proc.returncode}): {shown}")


@click.command()
@click.option("--sample-dir", type=click.Path(file_okay=False, path_type=Path), default=REPO / "sample", show_default=True, help="Sample data (logs.jsonl.gz, events.jsonl).")
@click.option("--queries", "queries_dir", type=click.Path(file_okay=False, path_type=Path), default=REPO / "queries", show_default=True)
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("er-demo"), show_default=True, help="Where the actions file and the site go.")
@click.option("--fresh", is_flag=True, help="Re-create the store even if it already holds the sample.")
@click.pass_obj
def demo(app: AppContext, sample_dir: Path, queries_dir: Path, out: Path, fresh: bool) -> None:
    """Ingest the sample CI history, search it, replay Gerrit events through
    the bot (dry run: comments are printed, nothing is posted) and render the
    trend site. Every step is an ordinary elastic-recheck command, shown as
    it runs, so you can repeat any of them by hand.
    """
    logs = sample_dir / "logs.jsonl.gz"
    events = sample_dir / "events.jsonl"
    for p in (logs, events):
        if not p.exists():
            raise click.ClickException(f"{p} not found (run from a checkout, or pass --sample-dir)")
    store = app.store_path
    out.mkdir(parents=True, exist_ok=True)
    if fresh and store.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(store) + suffix).unlink(missing_ok=True)
    base = ["--store", str(store)]
    if not store.exists():
        _run([*base, "ingest", "--jsonl", str(logs)], "load ~43,000 sample log lines into the embedded store")
    else:
        click.echo(f"# {store} exists; reusing it (--fresh to rebuild)", err=True)
    _run(
        [*base, "search", "-n", "3", 'message:"End of file while reading data" AND tags:"screen-n-cpu.txt"'],
        "a fingerprint's query over the store",
    )
    _run(
        [*base, "bot", "--queries", str(queries_dir), "--replay", str(events), "--dry-run", "--no-irc",
         "--actions-out", str(out / "actions.jsonl")],
        "replay Gerrit events: classify each failed build and print the comment the bot would post",
    )
    site = out / "site"
    _run(
        [*base, "render", "--queries", str(queries_dir), "--now", SAMPLE_NOW, "-o", str(site)],
        "render the trend pages as of the end of the sample",
    )
    click.secho(f"\nDone. Open {(site / 'index.html').resolve()} in a browser,", fg="green", err=True)
    click.echo(f"or run: elastic-recheck serve -o {site}", err=True)
    click.echo(f"Actions taken per event: {out / 'actions.jsonl'}", err=True)

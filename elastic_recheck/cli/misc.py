"""``elastic-recheck config``: the effective configuration."""

from __future__ import annotations

import json

import click

from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.config import SETTINGS, sample_config


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--describe", is_flag=True, help="Also print each setting's help text.")
@click.option("--defaults", is_flag=True,
              help="Print a sample config file instead: every setting at its default, with its help (docs/deploy.md).")
@click.pass_obj
def show_config(app: AppContext, as_json: bool, describe: bool, defaults: bool) -> None:
    """Print every setting's effective value (file, env overrides, defaults).

    Secrets (passwords, key paths, credential-bearing URLs) are shown as ***.
    Any setting can be overridden with ELASTIC_RECHECK_<SECTION>_<KEY>.
    """
    if defaults:
        click.echo(sample_config(), nl=False)
        return
    values = app.config.redacted()
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    helps = {(s.section, s.key): s.help for s in SETTINGS}
    source = app.config.path or "(no config file: defaults and environment)"
    click.echo(f"# effective configuration from {source}")
    for section, items in values.items():
        click.echo(f"\n[{section}]")
        for key, value in items.items():
            if describe:
                click.echo(f"# {helps[(section, key)]}")
            if isinstance(value, bool):
                value = "true" if value else "false"
            click.echo(f"{key} = {value}")

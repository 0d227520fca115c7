"""``elastic-recheck promote``: move approved fixes of the worst gate bugs to the front of the gate."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from elastic_recheck.cli.common import note, queries_option
from elastic_recheck.cli.main import AppContext
from elastic_recheck.core.errors import BackendError, ElasticRecheckError

LOG = logging.getLogger(__name__)

#: Exit status when the promotion went through but the IRC notice did not.
EXIT_IRC = 4


@click.command("promote")
@click.option("--apply", "apply_", is_flag=True,
              help="Ask Zuul to promote (needs [zuul] promote = true and [zuul] auth_token). Default: only print the plan.")
@click.option("--threshold", type=float, help="Gate share in percent (default: [zuul] promote_threshold).")
@click.option("--now", "now_text", metavar="TIME", help="End of the 24 h window (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--no-irc", is_flag=True, help="Do not post the notice to [zuul] promote_channel.")
@queries_option
@click.pass_obj
def promote(app: AppContext, apply_: bool, threshold: float | None, now_text: str | None, as_json: bool,
            no_irc: bool, queries_dir: Path | None) -> None:
    """List the approved fixes of the bugs whose share of the failed gate
    builds in the last 24 hours is at least the threshold, and (with
    --apply) promote them in Zuul's gate pipeline.

    Fixes come from Gerrit ([site] fixes: rest or ssh), asked afresh; the
    queue from Zuul's status API ([zuul] url, tenant). A fix that is not
    approved, not in the gate pipeline, or already at the front of its
    queue is never promoted. After a promotion a notice goes to [zuul]
    promote_channel on IRC ([ircbot]).

    Exit status: 0 ok; 1 error (nothing promoted); 2 bad command line;
    4 promoted, but the IRC notice failed.
    """
    from elastic_recheck.adapters.zuul.gate_queue import gate_status_from_config, zuul_client
    from elastic_recheck.adapters.zuul.gate_queue import promote as zuul_promote
    from elastic_recheck.cli.report import _backend, _load, _window
    from elastic_recheck.core.promote import PROMOTE, notice, plan
    from elastic_recheck.core.stats import Share, failure_share
    from elastic_recheck.report.graph import collect_bug_stats
    from elastic_recheck.report.reviews import BugFixes, gerrit_source_from_config
    from elastic_recheck.report.uncategorized import all_failed_gate_builds

    cfg = app.config
    pipeline = cfg.site.gate_queue
    limit = cfg.zuul.promote_threshold if threshold is None else threshold
    if apply_:
        if not cfg.zuul.promote:
            raise click.ClickException("--apply needs [zuul] promote = true (nothing promoted)")
        if not cfg.zuul.auth_token:
            raise click.ClickException("--apply needs [zuul] auth_token, a Zuul token allowed to promote (nothing promoted)")
    if not cfg.zuul.url:
        raise click.ClickException("promote needs [zuul] url to read the gate queue")
    source = gerrit_source_from_config(cfg, "fixes", when_off="auto")
    if source is None:
        raise click.ClickException("promote needs Gerrit to find fixes: set [gerrit] url or host ([site] fixes = rest or ssh)")

    window = _window(now_text, 1.0)
    loaded = _load(app, queries_dir)
    backend = _backend(app)
    try:
        stats = collect_bug_stats(backend, loaded.fingerprints, window, histogram=False)
        failed = {b.uuid for b in all_failed_gate_builds(backend, cfg, window)}
    except BackendError as exc:
        raise click.ClickException(f"backend down or failing: {exc}") from None
    shares = {s.bug: Share(*failure_share(s.uuids, failed)) for s in stats if not s.error}
    worst = [b for b, s in shares.items() if s.hits and s.percent is not None and s.percent >= limit]
    try:
        fixes = BugFixes(source, None, 0.0).get_many(worst) if worst else {}
        status = gate_status_from_config(cfg)
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    candidates = plan(shares, fixes, status, pipeline, limit)
    chosen = [c for c in candidates if c.action == PROMOTE]
    if as_json:
        click.echo(json.dumps([{"bug": c.bug, "change": c.fix.change_id, "project": c.fix.project, "action": c.action,
                                "reason": c.reason, "gate_share": c.share.percent, "position": c.position}
                               for c in candidates], indent=2))
    else:
        note(f"{len(worst)} bug(s) at or above {limit:g}% of the failed {pipeline} builds in 24 h; "
             f"{len(chosen)} fix(es) to promote{'' if apply_ else ' (dry run: --apply to promote)'}")
        for c in candidates:
            click.echo(c.line())
    if not apply_ or not chosen:
        return
    try:
        zuul_promote(zuul_client(cfg), cfg.zuul.auth_token, pipeline, [c.fix.change_id for c in chosen])
    except ElasticRecheckError as exc:
        raise click.ClickException(str(exc)) from None
    note(f"promoted {', '.join(c.fix.change_id for c in chosen)} in the {pipeline} pipeline")
    channel = cfg.zuul.promote_channel.strip()
    if no_irc or not channel:
        return
    from elastic_recheck.contrib.announce import post

    try:
        post(cfg, [channel], [notice(chosen, pipeline)])
    except ElasticRecheckError as exc:
        click.echo(f"warning: promoted, but the IRC notice to {channel} failed: {exc}", err=True)
        sys.exit(EXIT_IRC)

"""The bot run with the original's own elasticRecheck.conf and recorded events (issue: drop-in).

Items checked against the original's behaviour:

* ``ci_username = jenkins`` still reads zuul's reports (the original always did);
* ``jobs_re`` is searched in the whole report comment: a report that matches
  has *all* its failed jobs classified, one that does not is skipped;
* no Gerrit comment when no bug matched (``comment_unmatched`` opts in);
* ``--actions-out`` lists under ``jobs`` only what the bot reported,
  ``suppress-notification`` matches go under ``suppressed``.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.service import Bot
from elastic_recheck.cli.bot import settings_from_config
from elastic_recheck.core.config import load_config
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from tests.fixtures.original import failure_events, original_config, recorded_docs

ORIGINAL_QUERIES = "logstash/originals/test-queries/queries"
#: What the real console lines of each recorded failure say.
NETWORK = "test_network_basic_ops AssertionError: Timed out waiting for"  # the original's 1224001
CREATE_IMAGE = "Cannot 'createImage'"  # the original's 1218391
OFFLINE = "Looks like the node went offline during the build"


class RecordingReviewer:
    def __init__(self) -> None:
        self.reviews: list[tuple[str, str, str]] = []

    def review(self, change: str, patchset: str, message: str) -> None:
        self.reviews.append((change, patchset, message))

    def posted(self, change: str, patchset: str, message: str) -> bool | None:
        return None  # cannot tell (what a reviewer without a query answers)


@pytest.fixture
def queries(shared_data: Path, tmp_path: Path) -> Path:
    """Two of the original's fingerprints; 1218391 marked suppress-notification."""
    qdir = tmp_path / "queries"
    qdir.mkdir()
    shutil.copy(shared_data / ORIGINAL_QUERIES / "1224001.yaml", qdir)
    text = (shared_data / ORIGINAL_QUERIES / "1218391.yaml").read_text()
    (qdir / "1218391.yaml").write_text(text + "suppress-notification: true\n")
    return qdir


def _run(
    shared_data: Path, tmp_path: Path, queries: Path, events: list[dict[str, Any]],
    docs: list[dict[str, Any]], **changes: dict[str, str],
) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]], list[str | None]]:
    cfg = load_config(original_config(shared_data, tmp_path, queries, **changes))
    store_path = tmp_path / "store.db"
    store = EmbeddedStore(store_path)
    store.add_documents(docs)
    store.close()
    settings = settings_from_config(cfg, deadline_s=5.0, first_poll_s=0.05, workers=1)
    reviewer = RecordingReviewer()
    out = io.StringIO()
    fps = load_fingerprints(cfg.queries_dir).fingerprints
    bot = Bot(EmbeddedStore(store_path), fps, BotState(tmp_path / "state.db"), settings, reviewer=reviewer, actions_out=out)
    bot.start()
    try:
        keys = [bot.submit(e) for e in events]
        assert bot.wait_idle(60)
    finally:
        bot.stop()
    return reviewer.reviews, [json.loads(line) for line in out.getvalue().splitlines()], keys


def test_original_config_reads_zuul_reports_too(shared_data: Path, tmp_path: Path, queries: Path) -> None:
    event = copy.deepcopy(failure_events(shared_data)["63078"])
    assert event["author"]["username"] == "jenkins"
    event["author"] = {"username": "zuul", "name": "Zuul"}
    docs = recorded_docs(shared_data, NETWORK, event, "check-tempest-dsvm-full")
    cfg = load_config(original_config(shared_data, tmp_path, queries))
    assert cfg.recheckwatch.ci_username == "jenkins"
    reviews, actions, keys = _run(shared_data, tmp_path, queries, [event], docs)
    assert keys[0] is not None
    assert actions[0]["jobs"] == {"check-tempest-dsvm-full": ["1224001"]}
    assert len(reviews) == 1 and "https://bugs.launchpad.net/bugs/1224001" in reviews[0][2]
    # the original's found_bug message from recheckwatchbot.yaml
    assert reviews[0][2].startswith("I noticed Zuul failed, I think you hit bug(s):")


def test_jobs_re_is_searched_in_the_whole_comment(shared_data: Path, tmp_path: Path, queries: Path) -> None:
    """64749's failed jobs are python26/27: only its *successful* jobs say dsvm; the original classified both."""
    event = failure_events(shared_data)["64749"]
    failed = ["gate-keystone-python26", "gate-keystone-python27"]
    assert all("dsvm" not in job for job in failed) and "dsvm" in event["comment"]
    docs = recorded_docs(shared_data, NETWORK, event, failed[0]) + recorded_docs(shared_data, NETWORK, event, failed[1])
    reviews, actions, _ = _run(shared_data, tmp_path, queries, [event], docs)  # the sample's jobs_re = dsvm
    assert actions[0]["jobs"] == {failed[0]: ["1224001"], failed[1]: ["1224001"]}
    assert len(reviews) == 1 and all(f"- {job}: https://bugs.launchpad.net/bugs/1224001" in reviews[0][2] for job in failed)

    other = tmp_path / "other"
    other.mkdir()
    reviews, actions, keys = _run(shared_data, other, queries, [event], docs, recheckwatch={"jobs_re": "tripleo"})
    assert keys == [None] and actions == [] and reviews == []


def test_no_comment_when_no_bug_matched_unless_opted_in(shared_data: Path, tmp_path: Path, queries: Path) -> None:
    event = failure_events(shared_data)["65361"]
    job = "check-requirements-integration-dsvm"
    docs = recorded_docs(shared_data, OFFLINE, event, job)  # neither fingerprint matches these
    reviews, actions, _ = _run(shared_data, tmp_path, queries, [event], docs)
    assert actions[0]["jobs"] == {job: []} and actions[0]["comment"] is None
    assert reviews == []

    opted = tmp_path / "opted"
    opted.mkdir()
    reviews, actions, _ = _run(shared_data, opted, queries, [event], docs, recheckwatch={"comment_unmatched": "true"})
    assert len(reviews) == 1
    assert reviews[0][2].startswith("I noticed Zuul failed, refer to:")  # the original's no_bugs_found
    assert f"- {job}: unrecognized error" in reviews[0][2]


def test_actions_out_lists_suppressed_matches_apart(shared_data: Path, tmp_path: Path, queries: Path) -> None:
    event = failure_events(shared_data)["64749"]
    py26, py27 = "gate-keystone-python26", "gate-keystone-python27"
    docs = recorded_docs(shared_data, NETWORK, event, py26) + recorded_docs(shared_data, CREATE_IMAGE, event, py27)
    reviews, actions, _ = _run(shared_data, tmp_path, queries, [event], docs)
    assert actions[0]["jobs"] == {py26: ["1224001"], py27: []}
    assert actions[0]["suppressed"] == {py27: ["1218391"]}
    assert len(reviews) == 1 and "1218391" not in reviews[0][2] and "1224001" in reviews[0][2]
    assert "1218391" not in actions[0]["comment"]


def test_log_config_of_the_original_bot_is_applied(shared_data: Path, tmp_path: Path, queries: Path) -> None:
    """``[ircbot] log_config``: the original's logging.config file; the bot's log lines go where it says."""
    import subprocess
    import sys

    log = tmp_path / "bot.log"
    log_config = tmp_path / "logging.conf"
    log_config.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=INFO\nhandlers=file\n"
        f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(log)!r},)\n"
        "[formatter_plain]\nformat=%(levelname)s %(name)s: %(message)s\n"
    )
    conf = original_config(shared_data, tmp_path, queries, ircbot={"log_config": str(log_config)},
                           data_source={"backend": "embedded"})
    events = shared_data / "gerrit-events" / "elastic-recheck-gerrit-events-2014.jsonl"
    EmbeddedStore(tmp_path / "store.db").close()
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "-c", str(conf), "--store", str(tmp_path / "store.db"), "bot",
         "--replay", str(events), "--dry-run", "--no-irc"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "INFO elastic_recheck." in text and "giving up" in text  # the static empty store: every report times out

    broken = original_config(shared_data, tmp_path, queries, ircbot={"log_config": str(tmp_path / "missing.conf")},
                             data_source={"backend": "embedded"})
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "-c", str(broken), "--store", str(tmp_path / "store.db"), "bot",
         "--replay", str(events), "--dry-run", "--no-irc"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"[ircbot] log_config: {tmp_path / 'missing.conf'}: no such file" in proc.stderr

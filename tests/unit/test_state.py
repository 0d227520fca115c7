from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from elastic_recheck.adapters.sqlite.bot_state import BotState


def test_accept_is_idempotent_and_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    st = BotState(db)
    assert st.accept("1,2:abc", {"type": "comment-added"}, deadline_s=60, now=100.0)
    assert not st.accept("1,2:abc", {"type": "comment-added"}, deadline_s=60, now=101.0)
    st.close()
    st = BotState(db)
    pending = st.pending()
    assert [p.key for p in pending] == ["1,2:abc"]
    assert pending[0].deadline == 160.0
    st.finish("1,2:abc", "done", {"jobs": {}})
    assert st.pending() == []
    assert st.get("1,2:abc") is None
    assert st.status("1,2:abc") == "done"


def test_report_claims_are_once_per_channel(tmp_path: Path) -> None:
    st = BotState(tmp_path / "s.db")
    assert st.claim_report("k", "gerrit")
    assert not st.claim_report("k", "gerrit")
    assert st.claim_report("k", "irc")
    st.release_report("k", "gerrit")
    assert st.claim_report("k", "gerrit")


def test_reschedule_counts_attempts(tmp_path: Path) -> None:
    st = BotState(tmp_path / "s.db")
    st.accept("k", {}, deadline_s=10, now=0.0)
    st.reschedule("k", 5.0, "waiting")
    st.reschedule("k", 9.0, "waiting")
    got = st.get("k")
    assert got is not None and got.attempts == 2 and got.next_check == 9.0
    assert st.counts() == {"pending": 1}
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_irc_journal_claims_once_and_keeps_messages_until_sent(tmp_path: Path) -> None:
    state = BotState(tmp_path / "s.db")
    ids = state.claim_irc("k1", [("#qa", "one"), ("#nova", "two")], now=100.0)
    assert ids is not None and len(ids) == 2 and ids[0] < ids[1]
    assert state.claim_irc("k1", [("#qa", "again")]) is None  # announced once
    assert state.reported("k1", "irc")
    assert [(c, m, t) for _, c, m, t in state.irc_pending()] == [("#qa", "one", 100.0), ("#nova", "two", 100.0)]
    state.irc_sent(ids[0])
    state.close()
    reopened = BotState(tmp_path / "s.db")  # what a restart sees
    assert [(i, c, m) for i, c, m, _ in reopened.irc_pending()] == [(ids[1], "#nova", "two")]
    assert reopened.claim_irc("k2", []) == []  # nothing routed: claimed, nothing journaled
    reopened.close()

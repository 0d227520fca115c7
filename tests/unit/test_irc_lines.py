"""Pure parts of the IRC notifier: line budget, message splitting, token bucket."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elastic_recheck.core.irc_lines import IRC_LINE_LIMIT, TokenBucket, line_budget, split_message


def rejoin(original: str, pieces: list[str]) -> str:
    out, pos = "", 0
    for piece in pieces:
        assert original.startswith(piece, pos)
        out += piece
        pos += len(piece)
        if original[pos:pos + 1] == " ":
            out += " "
            pos += 1
    return out


def test_line_budget_counts_the_relayed_prefix() -> None:
    budget = line_budget("RecheckBot", "#openstack-qa", "~recheckbot@127.0.0.1")
    prefix = ":RecheckBot!~recheckbot@127.0.0.1 PRIVMSG #openstack-qa :"
    assert budget == IRC_LINE_LIMIT - 2 - len(prefix)
    # Unknown user@host: assume a long one (smaller budget).
    assert line_budget("RecheckBot", "#openstack-qa") < budget


def test_short_message_is_one_piece() -> None:
    assert split_message("hello world", 100) == ["hello world"]
    assert split_message("", 100) == []


def test_splits_at_spaces_and_drops_the_space() -> None:
    text = "alpha beta gamma delta epsilon"
    pieces = split_message(text, 12)
    assert pieces == ["alpha beta", "gamma delta", "epsilon"]
    assert " ".join(pieces) == text


def test_never_cuts_inside_a_character() -> None:
    text = "€" * 10  # 3 bytes each
    pieces = split_message(text, 8)
    assert pieces == ["€€", "€€", "€€", "€€", "€€"]
    emoji = "🙂" * 5  # 4 bytes each
    assert split_message(emoji, 7) == ["🙂"] * 5


def test_tiny_budget_rejected() -> None:
    with pytest.raises(ValueError):
        split_message("abc", 3)


words = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=" \r\n\x00"),
                min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(words, min_size=1, max_size=60), st.integers(min_value=4, max_value=120))
def test_pieces_fit_and_reassemble(parts: list[str], budget: int) -> None:
    text = " ".join(parts)
    pieces = split_message(text, budget)
    assert all(0 < len(p.encode("utf-8")) <= budget for p in pieces)
    assert rejoin(text, pieces) == text


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_take() and not bucket.try_take()
    clock.now += 100  # saved-up tokens are capped at the burst
    assert sum(bucket.try_take() for _ in range(10)) == 3


def test_token_bucket_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=1, clock=FakeClock())
    assert all(bucket.try_take() for _ in range(1000))


def test_settings_from_config() -> None:
    from elastic_recheck.adapters.irc.client import IrcNotifier, IrcSettings
    from elastic_recheck.core import config as er_config

    assert IrcSettings.from_config(er_config.from_mapping({})) is None  # no server: IRC off
    assert IrcNotifier.from_config(er_config.from_mapping({})) is None
    conf = er_config.from_mapping({"ircbot": {"server": "irc.oftc.net", "port": "6697", "ssl": "true",
                                              "nick": "RecheckBot", "pass": "hunter2"}})
    settings = IrcSettings.from_config(conf, ["openstack-qa", "#infra"], rate=0.5)
    assert settings is not None
    assert (settings.server, settings.port, settings.use_ssl, settings.nick) == ("irc.oftc.net", 6697, True,
                                                                                 "RecheckBot")
    assert settings.channels == ("#openstack-qa", "#infra") and settings.rate == 0.5
    assert settings.password == "hunter2" and "hunter2" not in repr(settings)

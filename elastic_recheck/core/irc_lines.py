"""IRC lines (pure, no I/O): what fits in one PRIVMSG, splitting a message to fit, and the send rate.

RFC 1459/2812 lines are at most 512 bytes, and the server prefixes ours with
``:nick!user@host`` before relaying it: :func:`line_budget` says how much
text is left, :func:`split_message` cuts a message to that, and
:class:`TokenBucket` paces the lines (servers disconnect a client that
floods). The connection itself is :mod:`elastic_recheck.adapters.irc.client`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ASSUMED_HOST_LEN", "ASSUMED_USER_LEN", "IRC_LINE_LIMIT", "TokenBucket", "line_budget", "split_message"]

#: RFC 1459/2812: a line is at most 512 bytes including the trailing CR LF.
IRC_LINE_LIMIT = 512
#: Used for the prefix length until the server has shown us our own
#: ``nick!user@host`` (on our first JOIN): USERLEN 10 plus a ``~``, and a
#: 63-byte host name (the DNS label limit most servers cap hosts at).
ASSUMED_USER_LEN = 11
ASSUMED_HOST_LEN = 63


def line_budget(nick: str, channel: str, user_host: str | None = None) -> int:
    """Bytes of text that fit in one PRIVMSG to ``channel`` as relayed to others.

    The server prefixes our line with ``:nick!user@host`` before relaying it,
    so that must fit in the 512 bytes too. ``user_host`` is ``user@host`` as
    the server reports it; unknown, a conservative length is assumed.
    """
    if user_host is None:
        user_host = "u" * ASSUMED_USER_LEN + "@" + "h" * ASSUMED_HOST_LEN
    prefix = f":{nick}!{user_host} PRIVMSG {channel} :"
    return IRC_LINE_LIMIT - 2 - len(prefix.encode("utf-8"))


def split_message(text: str, max_bytes: int) -> list[str]:
    """Split ``text`` into pieces of at most ``max_bytes`` UTF-8 bytes.

    A piece ends at the last space that leaves it at least a third full (the
    spaces at that point are dropped, like a line break: servers strip
    trailing spaces anyway), else exactly at the byte limit moved back to a
    character boundary (nothing is dropped). So the pieces joined with one
    space at space splits and nothing at hard cuts give back ``text`` (for
    text with single spaces).

    :raises ValueError: if ``max_bytes`` cannot hold one character (< 4).
    """
    if max_bytes < 4:
        raise ValueError(f"max_bytes too small: {max_bytes}")
    data = text.encode("utf-8")
    pieces: list[str] = []
    start = 0
    while len(data) - start > max_bytes:
        end = start + max_bytes
        # A space right at the limit counts too: the piece then ends before it.
        space = data.rfind(b" ", start, end + 1)
        if space >= 0 and space - start >= max_bytes // 3:
            piece = data[start:space].rstrip(b" ")
            start = space + 1
            while start < len(data) and data[start] == 0x20:
                start += 1
        else:
            # data[end] starts the next piece: it must not be a UTF-8
            # continuation byte (10xxxxxx).
            while (data[end] & 0xC0) == 0x80:
                end -= 1
            piece = data[start:end]
            start = end
        pieces.append(piece.decode("utf-8"))
    if start < len(data):
        pieces.append(data[start:].decode("utf-8"))
    return pieces


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up (rate <= 0: unlimited)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.rate > 0:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        """Take a token if one is available."""
        if self.rate <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is available (0 if one is)."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)

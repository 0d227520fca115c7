"""The chat port: queue a message for a channel (IRC today).

Implemented by :meth:`elastic_recheck.adapters.irc.client.IrcNotifier.send`;
the bot's :class:`~elastic_recheck.bot.notify.IrcReporter` and ``stale --irc``
send through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Sender(Protocol):
    """Queues one message; ``done`` is called once it was written (or given up)."""

    def __call__(self, channel: str, message: str, done: Callable[[], None] | None = None) -> None: ...

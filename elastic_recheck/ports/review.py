"""The review port: what the bot needs from a code review system to comment on a change.

Implemented by :class:`~elastic_recheck.adapters.gerrit.reviewer.GerritReviewer`
(and the dry run's echo in :mod:`elastic_recheck.cli.bot`).
"""

from __future__ import annotations

from typing import Protocol


class Reviewer(Protocol):
    """Posts the bot's comments, and says whether an unacknowledged one arrived.

    Errors are :class:`~elastic_recheck.core.errors.ElasticRecheckError`\\ s:
    ``retryable`` for timeouts and outages; a
    :class:`~elastic_recheck.core.errors.GerritError` also says whether the
    server ``rejected`` the comment (nothing was stored) or may have stored it.
    """

    def review(self, change: str, patchset: str, message: str) -> object:
        """Post ``message`` on ``change``,``patchset`` (whatever it returns is ignored)."""
        ...

    def posted(self, change: str, patchset: str, message: str) -> bool | None:
        """Whether ``message`` is already on ``change``,``patchset`` from our account.

        ``None``: this reviewer cannot tell (the bot then decides by who made
        the unacknowledged attempt; see ``Delivery._must_repost`` in ``bot/delivery.py``).
        """
        ...

"""The project's own exception types.

Every adapter translates the errors of the library it wraps into one of these,
so callers (the CLI, the bot) handle one family of exceptions.
"""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short_repr(value: Any) -> str:
    """``repr(value)`` for an error message: at most 120 characters, whatever the value.

    Values from files and servers we do not control can be huge or (YAML
    aliases) stand for billions of items; an error message must never
    render them in full.
    """
    text = _REPR.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class ElasticRecheckError(Exception):
    """Base class of every error this project raises on purpose.

    ``retryable`` says whether the same request may succeed later (a server
    down, slow or overloaded, a timeout, a full disk): the bot and the
    collector try those again and give up on the others. Errors in the input
    itself (configuration, queries, fingerprints, events) are not retryable.
    Subclasses set a default; ``retryable=`` overrides it per error.
    """

    retryable: bool = True

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ElasticRecheckError):
    """The configuration file or an option is invalid."""

    retryable = False


class QuerySyntaxError(ElasticRecheckError):
    """A Lucene query string that Lucene's classic QueryParser would reject.

    ``line`` and ``col`` are 1-based positions inside the query text (not the
    YAML file); :class:`FingerprintError` maps them onto the file.
    """

    retryable = False

    def __init__(self, message: str, line: int = 1, col: int = 1, query: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.query = query

    def __str__(self) -> str:
        return f"{self.line}:{self.col}: {self.message}"


class FingerprintError(ElasticRecheckError):
    """A fingerprint file that cannot be used; names the file and position."""

    retryable = False

    def __init__(self, path: str, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return self.describe(self.path)

    def describe(self, path: str) -> str:
        """``path:line:col: message``, naming the file as ``path`` (e.g. without its directory)."""
        pos = ""
        if self.line is not None:
            pos = f":{self.line}"
            if self.col is not None:
                pos += f":{self.col}"
        return f"{path}{pos}: {self.message}"


class BackendError(ElasticRecheckError):
    """The search backend failed. ``retryable`` tells the bot to try later."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)


class StoreError(ElasticRecheckError):
    """The embedded store cannot be opened or written (disk full, read-only, corrupt)."""


class EventParseError(ElasticRecheckError):
    """A Gerrit event that is malformed (logged and skipped by the bot)."""

    retryable = False


class GerritError(ElasticRecheckError):
    """Talking to Gerrit (SSH or REST) failed. ``retryable`` tells the bot to try later.

    ``rejected`` says Gerrit *answered* that it did not store the request (a
    refusal, or an error status such as HTTP 500/503), as opposed to no
    answer at all (timeout, connection lost, a proxy's 502/504), after which
    a review comment may or may not have been stored. Refusals that are not
    retryable are always rejections.
    """

    def __init__(self, message: str, retryable: bool = True, rejected: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.rejected = (not retryable) if rejected is None else rejected


class ZuulError(ElasticRecheckError):
    """The Zuul REST API (or a build's log server) failed or refused a request.

    ``status`` is the HTTP status when there was one; ``retryable`` is True for
    5xx answers, timeouts and connection errors that outlived the retries.
    """

    def __init__(self, message: str, status: int | None = None, url: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.url = url


class LogFetchError(ZuulError):
    """A build's log file could not be fetched (or its URL is not allowed)."""


class BugTrackerError(ElasticRecheckError):
    """The bug tracker (Launchpad, ...) failed or timed out.

    ``retryable`` is True for timeouts, connection errors and 5xx answers;
    :class:`elastic_recheck.adapters.launchpad.trackers.CachedTracker` then serves stale data.
    """

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)

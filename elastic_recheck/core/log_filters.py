"""Logging filters the CLI and the adapters install on handlers (stdlib ``logging`` only).

:class:`RedactSecrets` masks secret values (passwords, tokens) in every record,
third-party loggers included; :class:`EscapeControls` shows control characters
from other systems' text as escapes so they cannot drive the operator's terminal.
"""

from __future__ import annotations

import logging

from elastic_recheck.core.safe_text import escape_controls

__all__ = ["EscapeControls", "RedactSecrets"]


class RedactSecrets(logging.Filter):
    """Masks secret values in every record a handler emits (third-party loggers included:
    paramiko logs the SSH key path at DEBUG, HTTP clients may quote URLs)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string is the logging module's business
            return True
        clean = self._clean(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


class EscapeControls(logging.Filter):
    """Shows control characters in a record's message as escapes (``\\x1b``), tab and newline excepted.

    Job names, project names and log lines come from other systems: written
    raw, an ESC sequence would drive the operator's terminal and a CR would
    overwrite the line it is on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string is the logging module's business
            return True
        clean = escape_controls(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True

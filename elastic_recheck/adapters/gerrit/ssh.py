"""SSH plumbing shared by the Gerrit stream and reviewer: one connection, one command.

The SSH connection itself comes from gerritlib (:class:`gerritlib.gerrit.GerritConnection`);
commands go through :func:`run_command` because ``Gerrit._ssh()`` has no
timeout, and ``Gerrit.review()`` wraps the message in double quotes without
escaping it (a ``"`` in the message ends the argument early):
:func:`quote_command` quotes every word the way Gerrit splits them back.

Known gaps: gerritlib accepts any SSH host key (paramiko ``WarningPolicy``
after loading ``~/.ssh/known_hosts``); put Gerrit's key in ``known_hosts``
to be warned about a mismatch. gerritlib logs each failed connection attempt
with a traceback (logger ``gerrit.GerritConnection``).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence

import paramiko
from gerritlib.gerrit import GerritConnection

from elastic_recheck.core.errors import GerritError

__all__ = ["DEFAULT_TIMEOUT", "ChannelOpenError", "connect", "quote_command", "run_command"]

#: Seconds before an SSH command or REST request gives up.
DEFAULT_TIMEOUT = 30.0


def quote_command(argv: Sequence[str]) -> str:
    """Join ``argv`` into one SSH exec command line that Gerrit splits back into ``argv``.

    Gerrit's splitter (``CommandFactoryProvider.split``) treats single quotes
    like POSIX: everything inside is literal, newlines included. So
    :func:`shlex.quote` output round-trips byte-exact. Empty words are
    rejected: Gerrit would drop them and shift the following arguments.
    """
    if any(a == "" for a in argv):
        raise ValueError("Gerrit drops empty command-line words; refusing to send one")
    if any("\x00" in a for a in argv):
        raise ValueError("NUL byte in a command-line word")
    for a in argv:
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"not valid Unicode text (lone surrogate): {a[:40]!r}") from None
    return " ".join(shlex.quote(a) for a in argv)


def connect(host: str, port: int, user: str, keyfile: str | None, keepalive: int) -> paramiko.SSHClient:
    """One connection attempt through gerritlib; failures become :class:`GerritError`."""
    conn = GerritConnection(user, host, port, keyfile, keep_alive=keepalive, connection_attempts=1, retry_delay=0)
    try:
        client: paramiko.SSHClient = conn.connect()
    except paramiko.AuthenticationException as exc:
        raise GerritError(f"SSH authentication to {user}@{host}:{port} failed: {exc}", retryable=False) from None
    except Exception as exc:  # noqa: BLE001 (OSError, SSHException, EOFError, unreadable key files...)
        raise GerritError(f"cannot connect to Gerrit SSH {host}:{port}: {exc or type(exc).__name__}") from None
    return client


class ChannelOpenError(GerritError):
    """The command was not sent: the cached connection is unusable (safe to retry on a new one)."""


def run_command(
    client: paramiko.SSHClient, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, bytes, bytes]:
    """Run one Gerrit SSH command; return ``(exit status, stdout, stderr)``.

    The whole exchange is bounded by ``timeout``. Exit status ``-1`` means the
    connection ended without one.

    :raises GerritError: the connection is closed, the channel cannot be
        opened, or the command timed out (all retryable).
    """
    command = quote_command(argv)
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise ChannelOpenError("SSH connection to Gerrit is closed")
    deadline = time.monotonic() + timeout
    try:
        channel = transport.open_session(timeout=timeout)
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise ChannelOpenError(f"cannot open an SSH channel: {exc or type(exc).__name__}") from None
    out = bytearray()
    err = bytearray()
    try:
        channel.settimeout(min(0.5, timeout))
        channel.exec_command(command)
        while True:
            if time.monotonic() > deadline:
                raise GerritError(f"{' '.join(argv[:2])}: no answer within {timeout:g} s")
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            try:
                chunk = channel.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            out += chunk
        remaining = max(0.0, deadline - time.monotonic())
        channel.status_event.wait(remaining)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise GerritError(f"{' '.join(argv[:2])}: SSH error: {exc or type(exc).__name__}") from None
    finally:
        channel.close()
    return status, bytes(out), bytes(err)

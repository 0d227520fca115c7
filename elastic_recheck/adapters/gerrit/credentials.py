"""Checks of the Gerrit credentials before the bot connects (one clear line instead of retries).

``check_gerrit`` looks only at the configuration and the files it names: the
account, the SSH key (present, readable, a private key, not encrypted), or the
HTTP password for ``comment_via = rest``. It never connects; the stream then
stops at the first connection Gerrit refuses (``GerritEventStream.fatal``).
"""

from __future__ import annotations

import os
from pathlib import Path

import paramiko

from elastic_recheck.core.config import Config

#: The key files SSH (and paramiko) try when none is configured.
DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519", "id_dsa")
FIX = "see docs/deploy.md, 'The Gerrit account'"


def _key_problem(path_text: str) -> str | None:
    path = Path(path_text).expanduser()
    if not path.is_file():
        return f"[gerrit] key {path}: no such file"
    try:
        paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        return f"[gerrit] key {path} is encrypted; the bot needs a key without a passphrase (or an SSH agent and no key)"
    except PermissionError:
        return f"[gerrit] key {path}: cannot read it (permission denied for this user)"
    except (paramiko.SSHException, OSError, ValueError) as exc:
        return f"[gerrit] key {path} is not an SSH private key ({exc})"
    return None


def check_gerrit(cfg: Config, *, stream: bool, comment: bool) -> list[str]:
    """What prevents logging in to Gerrit for the ``stream`` (SSH) and for posting comments (SSH or REST)."""
    problems: list[str] = []
    via = cfg.gerrit.comment_via
    if stream or (comment and via == "ssh"):
        user = cfg.gerrit.user.strip()
        key = cfg.gerrit.key.strip()
        host = f"{cfg.gerrit.host}:{cfg.gerrit.port}"
        if not user:
            problems.append(f"[gerrit] user is not set (the account the bot logs in to {host} as)")
        if key:
            problem = _key_problem(key)
            if problem:
                problems.append(problem)
        elif not os.environ.get("SSH_AUTH_SOCK") and not any((Path.home() / ".ssh" / k).is_file() for k in DEFAULT_KEYS):
            problems.append("[gerrit] key is not set, and there is no SSH agent nor ~/.ssh/id_* key to use instead")
    if comment and via == "rest":
        given = (("http_user", cfg.gerrit.http_user), ("http_password", cfg.gerrit.http_password))
        missing = [k for k, value in given if not value.strip()]
        if missing:
            problems.append(f"[gerrit] {' and '.join(missing)} must be set for comment_via = rest")
    return problems

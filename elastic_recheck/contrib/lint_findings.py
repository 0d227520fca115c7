"""What ``check-queries`` reports: findings about fingerprint files and query strings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one fingerprint file (``line``/``col`` are 1-based, in the file)."""

    file: str
    line: int
    col: int
    level: str
    code: str
    message: str

    def format_text(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.level}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "level": self.level,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class QueryFinding:
    """A finding about a query string; ``offset`` is a 0-based index into the query text."""

    offset: int
    level: str
    code: str
    message: str

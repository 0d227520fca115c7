"""Local files the adapters and use cases keep: the one SQLite helper (:mod:`.sqlite`).

Not an adapter of an outside system: the embedded store and the bot state
(``adapters/sqlite``), the bug cache (``adapters/launchpad``) and the
collector's ledger (``collect``) all open their files through it, and
adapters may not import each other (docs/architecture.md).
"""

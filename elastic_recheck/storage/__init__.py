"""Local files the adapters keep: the one SQLite helper (:mod:`.sqlite`).

Not an adapter of an outside system: the SQLite adapter (store, bot state,
rechecks, signatures, collector's ledger) and the Launchpad adapter's bug
cache both open their files through it, and adapters may not import each
other (docs/architecture.md).
"""

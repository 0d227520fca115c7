"""Gerrit adapter: ``ssh`` (one connection, one command), ``stream`` (stream-events with
reconnect and catch-up), ``reviewer`` (review comments over SSH or REST), ``credentials``
(checks before connecting). Each owns its timeouts and raises
:class:`~elastic_recheck.core.errors.GerritError`.
"""

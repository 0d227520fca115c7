"""Which Python client talks to which cluster (version-aware).

The cluster adapter sends every request itself (``perform_request`` with a
body it built), so a client is only its transport: connection pool, TLS,
authentication. Which one fits depends on the server, read from ``GET /``:

============================  =============================================
server                        client
============================  =============================================
OpenSearch (any version)      ``opensearch-py``
Elasticsearch 7.x and older   ``elasticsearch`` 7.17
Elasticsearch 8.x             ``elasticsearch8`` (extra ``es8``), else
                              ``elasticsearch9`` (extra ``es9``), else
                              ``elasticsearch`` 7.17; with REST API
                              compatibility headers when the client's major
                              version is not the server's
Elasticsearch 9.x and later   ``elasticsearch9``, else ``elasticsearch8``
                              (with ``compatible-with=8`` headers)
============================  =============================================

Elasticsearch 9 dropped the REST compatibility with version 7 clients, so a
9.x cluster needs one of the extras: ``pip install 'elastic-recheck[es9]'``
(the ``es8`` and ``es9`` extras exclude each other: their clients need
different ``elastic-transport`` versions). Everything here but
:func:`make_client` is pure.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from elastic_recheck.core.errors import BackendError

LOG = logging.getLogger(__name__)

#: Modules of the modern (elastic-transport based) clients, newest first.
MODERN_CLIENTS: dict[str, int] = {"elasticsearch9": 9, "elasticsearch8": 8}

LEGACY = "legacy"  # elasticsearch 7.17 / opensearch-py: client.transport.perform_request
MODERN = "modern"  # elasticsearch8/9: client.perform_request, ApiResponse


@dataclass(frozen=True)
class ServerInfo:
    """What ``GET /`` says about the cluster."""

    flavor: str  # "elasticsearch" or "opensearch"
    version: str
    major: int

    def __str__(self) -> str:
        name = "OpenSearch" if self.flavor == "opensearch" else "Elasticsearch"
        return f"{name} {self.version}"


def server_info(payload: Any) -> ServerInfo:
    """Parse the ``GET /`` answer of Elasticsearch or OpenSearch.

    :raises BackendError: when the answer is not one of theirs.
    """
    version = payload.get("version") if isinstance(payload, Mapping) else None
    number = str(version.get("number", "")) if isinstance(version, Mapping) else ""
    head = number.split(".", 1)[0]
    if not head.isdigit():
        raise BackendError(f"the server's GET / answer is not Elasticsearch's or OpenSearch's: {str(payload)[:200]}",
                           retryable=False)
    assert isinstance(version, Mapping)
    flavor = "opensearch" if str(version.get("distribution", "")).lower() == "opensearch" else "elasticsearch"
    return ServerInfo(flavor=flavor, version=number, major=int(head))


@dataclass(frozen=True)
class ClientChoice:
    """The client module for a server, and the headers every request carries."""

    module: str  # "opensearchpy", "elasticsearch", "elasticsearch8" or "elasticsearch9"
    api: str  # LEGACY or MODERN
    #: REST API compatibility version (``compatible-with=N``; the modern clients
    #: always send one), None: plain JSON.
    compat: int | None = None
    note: str = ""

    def headers(self, ndjson: bool = False) -> dict[str, str]:
        """``accept``/``content-type`` of a request (ndjson: ``_bulk``, ``_msearch``).

        Always a content-type: the legacy elasticsearch client's transport
        sets none, and a real node answers a body without one with 406.
        """
        if self.compat is None:
            return {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        kind = "x-ndjson" if ndjson else "json"
        return {
            "accept": f"application/vnd.elasticsearch+json; compatible-with={self.compat}",
            "content-type": f"application/vnd.elasticsearch+{kind}; compatible-with={self.compat}",
        }


def installed_clients() -> frozenset[str]:
    """The importable modern client modules."""
    return frozenset(name for name in MODERN_CLIENTS if importlib.util.find_spec(name) is not None)


def choose_client(info: ServerInfo, available: frozenset[str] | None = None) -> ClientChoice:
    """The client for ``info`` among ``available`` modern clients (default: the installed ones).

    :raises BackendError: no installed client can talk to the server.
    """
    if info.flavor == "opensearch":
        return ClientChoice("opensearchpy", LEGACY)
    if info.major <= 7:
        return ClientChoice("elasticsearch", LEGACY)
    avail = installed_clients() if available is None else available
    own = f"elasticsearch{info.major}"
    if own in avail:
        return ClientChoice(own, MODERN, info.major)
    for name, major in MODERN_CLIENTS.items():
        # A client speaks its own major version and, with compatibility
        # headers, the one before it (and an older server accepts the
        # headers of its own major version from a newer client).
        if name in avail and abs(major - info.major) <= 1:
            compat = min(major, info.major)
            return ClientChoice(name, MODERN, compat, note=f"{name} client with compatible-with={compat} headers")
    if info.major == 8:
        return ClientChoice("elasticsearch", LEGACY, 7, note="elasticsearch 7.17 client with compatible-with=7 headers "
                            "(install elastic-recheck[es8] for the matching client)")
    extra = "es9" if info.major == 9 else f"es{info.major}"
    raise BackendError(
        f"{info} needs a newer Python client than elasticsearch 7.17: pip install 'elastic-recheck[{extra}]'",
        retryable=False,
    )


@dataclass
class ClientErrors:
    """Exception classes of the installed clients, grouped the way the adapter maps them."""

    connection: tuple[type[BaseException], ...] = ()
    transport: tuple[type[BaseException], ...] = ()
    base: tuple[type[BaseException], ...] = ()
    names: list[str] = field(default_factory=list)


def client_errors(modules: Sequence[str] = ()) -> ClientErrors:
    """(connection errors, transport/API errors, every library error) of the legacy clients and ``modules``."""
    import elasticsearch.exceptions as es_exc
    import opensearchpy.exceptions as os_exc

    errors = ClientErrors(
        connection=(es_exc.ConnectionError, os_exc.ConnectionError),
        transport=(es_exc.TransportError, os_exc.TransportError),
        base=(es_exc.ElasticsearchException, os_exc.OpenSearchException, es_exc.ImproperlyConfigured,
              os_exc.ImproperlyConfigured),
    )
    for name in modules:
        if name not in MODERN_CLIENTS:
            continue
        mod = importlib.import_module(name)
        transport = importlib.import_module("elastic_transport")
        errors.connection += (transport.ConnectionError, transport.ConnectionTimeout, transport.TlsError)
        errors.transport += (mod.ApiError,)
        errors.base += (mod.ApiError, transport.TransportError, mod.exceptions.UnsupportedProductError, ValueError)
        errors.names.append(name)
    return errors


def _es7_transport_class() -> type[Any]:
    """elasticsearch-py 7.17's transport, accepting the Apache-2.0 (``oss``) builds of Elasticsearch 7.

    The client's product check refuses an Elasticsearch 7.0-7.13 whose
    ``build_flavor`` is not ``default`` ("not a supported distribution"):
    that is the Apache-2.0 distribution of 7.10.2, the last open-source
    Elasticsearch, which the client talks to perfectly well. Other products
    are still refused; only that distribution is let through.
    """
    # The check's names are private to elasticsearch-py 7.17 (pinned <8), so not in its stubs.
    import elasticsearch.transport as es_transport
    from elasticsearch import Transport

    checker: Any = getattr(es_transport, "_ProductChecker")  # noqa: B009

    class OssTolerantTransport(Transport):
        def _do_verify_elasticsearch(self, headers: Any, timeout: Any) -> None:
            verify: Any = getattr(super(), "_do_verify_elasticsearch")  # noqa: B009
            verify(headers, timeout)
            if getattr(self, "_verified_elasticsearch", None) == checker.UNSUPPORTED_DISTRIBUTION:
                setattr(self, "_verified_elasticsearch", checker.SUCCESS)  # noqa: B010

    return OssTolerantTransport


def make_client(choice: ClientChoice, hosts: Sequence[str], kwargs: Mapping[str, Any]) -> Any:
    """A client of ``choice`` (``kwargs``: the legacy clients' keyword arguments)."""
    args = dict(kwargs)
    if choice.module == "opensearchpy":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=list(hosts), **args)
    if choice.module == "elasticsearch":
        from elasticsearch import Elasticsearch

        return Elasticsearch(hosts=list(hosts), transport_class=_es7_transport_class(), **args)
    mod = importlib.import_module(choice.module)
    modern: dict[str, Any] = {
        "request_timeout": args.pop("timeout", None),
        "max_retries": args.pop("max_retries", 0),
        "retry_on_timeout": args.pop("retry_on_timeout", False),
        "verify_certs": args.pop("verify_certs", True),
    }
    if "ca_certs" in args:
        modern["ca_certs"] = args.pop("ca_certs")
    if "ssl_show_warn" in args:
        modern["ssl_show_warn"] = args.pop("ssl_show_warn")
    if "http_auth" in args:
        modern["basic_auth"] = tuple(args.pop("http_auth"))
    if choice.compat is not None:
        modern["headers"] = choice.headers()
    return mod.Elasticsearch(hosts=list(hosts), **modern)


def perform(client: Any, choice: ClientChoice, method: str, path: str, body: Any = None,
            params: Mapping[str, str] | None = None) -> Any:
    """One request through ``client`` (the same call for every client); the decoded answer."""
    ndjson = isinstance(body, str)
    headers = choice.headers(ndjson) or None
    if choice.api == MODERN:
        response = client.perform_request(method, path, params=dict(params or {}), headers=headers, body=body)
        return response.body
    return client.transport.perform_request(method, path, params=dict(params or {}), body=body, headers=headers)

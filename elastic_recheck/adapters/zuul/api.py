"""Zuul REST API client (the build record itself: :mod:`elastic_recheck.core.zuul_build`).

Only the read-only endpoints elastic-recheck needs:

- ``GET /api/tenant/<tenant>/builds`` with filters (``result``, ``pipeline``,
  ``project``, ``job_name``, ``change``, ``patchset``, ``uuid``, ``voting``;
  a list value is sent as a repeated parameter, which Zuul reads as "any of")
  and ``limit``/``skip`` paging, newest build first;
- ``GET /api/tenant/<tenant>/build/<uuid>``.

A white-labelled Zuul (one tenant served at the root) is reached with
``tenant=""``: the paths become ``/api/builds`` and ``/api/build/<uuid>``.

Errors: a 4xx answer raises :class:`~elastic_recheck.core.errors.ZuulError` at
once; 5xx answers, timeouts and connection errors are retried with
exponential backoff, then raise ``ZuulError(retryable=True)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import yaml

from elastic_recheck.core import bounded_yaml
from elastic_recheck.core.errors import ZuulError, short_repr
from elastic_recheck.core.zuul_build import NodeInfo, ZuulBuild

LOG = logging.getLogger(__name__)
IO_LOG = logging.getLogger(__name__ + ".io")

#: Seconds before one HTTP request to Zuul gives up (connect and read).
DEFAULT_TIMEOUT = 30.0
#: Retries of a request that failed with 5xx / timeout / connection error.
DEFAULT_RETRIES = 3
#: First backoff delay in seconds; doubles after each failed attempt.
DEFAULT_BACKOFF = 0.5
#: Upper bound of one backoff delay.
MAX_BACKOFF = 30.0
#: Builds asked for per page (Zuul's own default is 50).
DEFAULT_PAGE_SIZE = 100
USER_AGENT = "elastic-recheck (+https://opendev.org/opendev/elastic-recheck)"

#: Build results Zuul reports. Not exhaustive: unknown results are kept as-is.
KNOWN_RESULTS: frozenset[str] = frozenset(
    {
        "SUCCESS",
        "FAILURE",
        "POST_FAILURE",
        "RETRY_LIMIT",
        "TIMED_OUT",
        "NODE_FAILURE",
        "ABORTED",
        "SKIPPED",
        "ERROR",
        "MERGER_FAILURE",
        "CONFIG_ERROR",
        "DISK_FULL",
        "LOST",
    }
)


#: Most YAML values an ``inventory.yaml`` may expand to (aliases counted in
#: full; a real multi-node inventory has a few hundred).
MAX_INVENTORY_NODES = 100_000
#: Longest provider, region, host id or name kept from it.
MAX_INVENTORY_VALUE = 255


def _scalar(value: object) -> str:
    """A short scalar as text; "" for anything else (lists, maps, huge strings)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    text = str(value)
    return text if len(text) <= MAX_INVENTORY_VALUE else ""


def parse_inventory(text: str) -> NodeInfo:
    """Read ``zuul-info/inventory.yaml``: the node provider, host ids, executor.

    The provider is the ``nodepool.provider`` of the first host that has one
    (the controller in multi-node jobs, as hosts are listed in nodeset order).
    Malformed YAML, or YAML expanding to more than :data:`MAX_INVENTORY_NODES`
    values (an alias bomb), gives an empty :class:`NodeInfo`; only scalar
    values of at most :data:`MAX_INVENTORY_VALUE` characters are kept.
    """
    try:
        _root, data = bounded_yaml.load_bounded(text, MAX_INVENTORY_NODES)
    except yaml.YAMLError as exc:
        LOG.warning("unreadable inventory.yaml: %s", short_repr(str(exc) or type(exc).__name__))
        return NodeInfo()
    if not isinstance(data, Mapping):
        return NodeInfo()
    root = data.get("all")
    if not isinstance(root, Mapping):
        return NodeInfo()
    hosts = root.get("hosts")
    provider: str | None = None
    ids: list[str] = []
    regions: list[str] = []
    names: list[str] = []
    if isinstance(hosts, Mapping):
        for name, host in hosts.items():
            if _scalar(name):
                names.append(_scalar(name))
            if not isinstance(host, Mapping):
                continue
            nodepool = host.get("nodepool")
            if not isinstance(nodepool, Mapping):
                continue
            if provider is None and _scalar(nodepool.get("provider")):
                provider = _scalar(nodepool["provider"])
            host_id = _scalar(nodepool.get("host_id"))
            if host_id and host_id not in ids:
                ids.append(host_id)
            region = _scalar(nodepool.get("region"))
            cloud = _scalar(nodepool.get("cloud"))
            if region:
                label = f"{cloud}-{region}" if cloud else region
                if label not in regions:
                    regions.append(label)
    executor: str | None = None
    variables = root.get("vars")
    if isinstance(variables, Mapping):
        zuul = variables.get("zuul")
        if isinstance(zuul, Mapping):
            ex = zuul.get("executor")
            if isinstance(ex, Mapping) and _scalar(ex.get("hostname")):
                executor = _scalar(ex["hostname"])
    return NodeInfo(
        node_provider=provider,
        hosts_id=tuple(ids),
        hosts_region=tuple(regions),
        zuul_executor=executor,
        nodes=tuple(names),
    )


def _is_retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


def request_with_retries(
    session: requests.Session,
    url: str,
    *,
    params: Sequence[tuple[str, str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    sleep: Any = time.sleep,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    allow_redirects: bool = True,
    what: str = "Zuul",
) -> requests.Response:
    """GET ``url``, retrying 5xx/429 answers, timeouts and connection errors.

    Returns the response for any status below 500 (the caller decides what a
    4xx means). ``what`` names the server in messages.

    :raises ZuulError: ``retryable=True`` once the retries are used up.
    """
    attempt = 0
    delay = backoff
    while True:
        attempt += 1
        try:
            IO_LOG.debug("GET %s %s (attempt %d)", url, params or "", attempt)
            resp = session.get(
                url,
                params=list(params or ()),
                timeout=timeout,
                headers=dict(headers or {}),
                stream=stream,
                allow_redirects=allow_redirects,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            if attempt > retries:
                raise ZuulError(f"{what} request {kind} after {attempt} attempts: {url}: {exc}", url=url, retryable=True) from None
            LOG.warning("%s request %s (%s), retrying in %.1fs: %s", what, kind, exc.__class__.__name__, delay, url)
        except requests.RequestException as exc:
            raise ZuulError(f"{what} request failed: {url}: {exc}", url=url) from None
        else:
            status = resp.status_code
            if not _is_retryable_status(status):
                return resp
            resp.close()
            if attempt > retries:
                raise ZuulError(
                    f"{what} failed with {status} {resp.reason} after {attempt} attempts: {url}",
                    status=status,
                    url=url,
                    retryable=True,
                )
            LOG.warning("%s answered %d, retrying in %.1fs: %s", what, status, delay, url)
        sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)


class ZuulClient:
    """Read builds from one Zuul tenant.

    :param url: Zuul web root, e.g. ``https://zuul.opendev.org`` (a trailing
        ``/api`` or ``/api/tenant/<tenant>`` is accepted and understood).
    :param tenant: tenant name; ``""`` for a white-labelled Zuul.
    """

    def __init__(
        self,
        url: str,
        tenant: str,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        page_size: int = DEFAULT_PAGE_SIZE,
        session: requests.Session | None = None,
        sleep: Any = time.sleep,
    ) -> None:
        base = url.strip().rstrip("/")
        if not base:
            raise ZuulError("no Zuul URL given (--zuul or [zuul] url)")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ZuulError(f"Zuul URL must be http(s)://host[/path], not {url!r}")
        marker = "/api/tenant/"
        if marker in base:
            base, _, rest = base.partition(marker)
            tenant = rest.split("/", 1)[0]
        elif base.endswith("/api"):
            base = base[: -len("/api")]
        self.base_url = base
        self.tenant = tenant
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.page_size = max(1, page_size)
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self._sleep = sleep

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def api_url(self, path: str) -> str:
        prefix = f"{self.base_url}/api"
        if self.tenant:
            prefix += f"/tenant/{quote(self.tenant, safe='')}"
        return f"{prefix}/{path.lstrip('/')}"

    def get_json(self, path: str, params: Sequence[tuple[str, str]] | None = None) -> Any:
        """GET an API path and decode its JSON, with retries (see the module doc)."""
        url = self.api_url(path)
        resp = request_with_retries(
            self.session,
            url,
            params=params,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            sleep=self._sleep,
            headers={"Accept": "application/json"},
            what="Zuul",
        )
        status = resp.status_code
        if status >= 400:
            raise ZuulError(
                f"Zuul refused the request ({status} {resp.reason}): {resp.url}" + _error_body(resp),
                status=status,
                url=url,
            )
        try:
            return resp.json()
        except ValueError:
            raise ZuulError(f"Zuul answered {status} with invalid JSON: {url}", status=status, url=url) from None

    def build(self, uuid: str) -> ZuulBuild:
        """One build by uuid.

        :raises ZuulError: ``status == 404`` when Zuul does not know it.
        """
        if not uuid or "/" in uuid:
            raise ZuulError(f"invalid build uuid {short_repr(uuid)}")
        data = self.get_json(f"build/{quote(uuid, safe='')}")
        if not isinstance(data, Mapping):
            raise ZuulError(f"unexpected answer for build {uuid}: {type(data).__name__}")
        try:
            return ZuulBuild.from_api(data, tenant=self.tenant or None)
        except ValueError as exc:
            raise ZuulError(f"unusable build record {uuid}: {exc}") from None

    def builds(
        self,
        *,
        result: str | Sequence[str] | None = None,
        pipeline: str | Sequence[str] | None = None,
        project: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        change: int | str | None = None,
        patchset: int | str | None = None,
        uuid: str | None = None,
        voting: bool | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[ZuulBuild]:
        """Builds matching the filters, newest first, page after page.

        Paging stops at an empty page, when ``limit`` builds were
        yielded, or at the first build that started before ``since`` (Zuul
        orders builds by creation, so every later one started earlier). Records without a uuid (SKIPPED builds) and builds still
        running (no result) are passed over. A build seen twice (new builds
        shift the pages while we read them) is yielded once.
        """
        params: list[tuple[str, str]] = []
        for name, value in (("result", result), ("pipeline", pipeline), ("project", project), ("job_name", job_name)):
            params.extend((name, v) for v in _values(value))
        for name, scalar in (("change", change), ("patchset", patchset), ("uuid", uuid)):
            if scalar is not None and scalar != "":
                params.append((name, str(scalar)))
        if voting is not None:
            params.append(("voting", "1" if voting else "0"))
        seen: set[str] = set()
        yielded = 0
        skip = 0
        while True:
            page_size = self.page_size if limit is None else max(1, min(self.page_size, limit - yielded))
            page = self.get_json("builds", params + [("limit", str(page_size)), ("skip", str(skip))])
            if not isinstance(page, list):
                raise ZuulError(f"unexpected answer for builds: {type(page).__name__}, expected a list")
            for record in page:
                if not isinstance(record, Mapping):
                    continue
                try:
                    build = ZuulBuild.from_api(record, tenant=self.tenant or None)
                except ValueError as exc:
                    LOG.debug("passing over build record: %s", exc)
                    continue
                if since is not None:
                    # Zuul lists builds newest-created first, i.e. by start time.
                    when = build.start_time or build.end_time
                    if when is not None and when < since:
                        return
                if build.result is None or build.uuid in seen:
                    continue
                seen.add(build.uuid)
                yield build
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            # A short page is not proof of the end: zuul-web may cap ``limit``.
            # Only an empty page is.
            if not page:
                return
            skip += len(page)


def _values(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if v]


def _error_body(resp: requests.Response) -> str:
    text = (resp.text or "").strip().replace("\n", " ")
    if not text:
        return ""
    return f" ({text[:200]})"

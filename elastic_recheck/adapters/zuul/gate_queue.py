"""Zuul's pipeline status (who is in the gate, who is at the front) and its promote call.

* ``GET <zuul>/api/tenant/<tenant>/status``, read into a
  :class:`~elastic_recheck.core.gate_status.GateStatus` (the queues, front first);
* ``POST <zuul>/api/tenant/<tenant>/promote`` with
  ``{"pipeline": P, "changes": ["N,P", ...]}`` and ``Authorization: Bearer
  <token>``: what ``zuul-client promote`` sends (zuulclient/api
  ``ZuulRESTClient.promote``). Zuul moves the changes, in that order, to the
  front of their shared queue and restarts the jobs behind them.

A white-labelled Zuul (``[zuul] tenant`` empty) uses ``/api/status`` and
``/api/promote``, as :class:`~elastic_recheck.adapters.zuul.api.ZuulClient` does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import requests

from elastic_recheck.adapters.zuul.api import ZuulClient
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import ZuulError
from elastic_recheck.core.gate_status import GateStatus

LOG = logging.getLogger(__name__)


def zuul_client(config: Config) -> ZuulClient:
    return ZuulClient(config.zuul.url, config.zuul.tenant,
                      timeout=config.zuul.timeout)


def gate_status_from_config(config: Config) -> GateStatus:
    """Zuul's status now (``[zuul] url``, ``tenant``).

    :raises ZuulError: Zuul is not configured, unreachable or answered something unusable.
    """
    return GateStatus.from_api(zuul_client(config).get_json("status"))


def promote(client: ZuulClient, token: str, pipeline: str, changes: Sequence[str]) -> Any:
    """``POST .../promote`` as ``zuul-client promote`` does; returns Zuul's JSON answer.

    Never retried (a promote that reached Zuul must not be repeated).

    :raises ZuulError: refused (401/403: the token) or failed.
    """
    url = client.api_url("promote")
    try:
        resp = client.session.post(url, json={"pipeline": pipeline, "changes": list(changes)},
                                   headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                                   timeout=client.timeout)
    except requests.RequestException as exc:
        raise ZuulError(f"POST {url}: {type(exc).__name__}: {exc}") from None
    if resp.status_code in (401, 403):
        raise ZuulError(f"Zuul refused to promote ({resp.status_code}): check [zuul] auth_token and its tenant rights",
                        status=resp.status_code, url=url)
    if resp.status_code >= 400:
        raise ZuulError(f"Zuul refused to promote ({resp.status_code}): {resp.text.strip()[:200]}",
                        status=resp.status_code, url=url)
    try:
        return resp.json()
    except ValueError:
        return None

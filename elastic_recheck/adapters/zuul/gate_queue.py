"""Zuul's pipeline status (who is in the gate, who is at the front) and its promote call.

* ``GET <zuul>/api/tenant/<tenant>/status``: ``pipelines[].change_queues[].heads``
  is a list of chains of queue items, front first. An item names its change
  as ``id: "N,P"`` (Zuul < 10) or ``changes: [{"id": "N,P"}, ...]`` (Zuul >= 10,
  where ``id`` is the item's uuid); both are read.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from elastic_recheck.adapters.zuul.api import ZuulClient
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import ZuulError

LOG = logging.getLogger(__name__)


def _item_changes(item: Mapping[str, Any]) -> list[str]:
    changes = item.get("changes")
    if isinstance(changes, list):
        return [str(c["id"]) for c in changes if isinstance(c, Mapping) and c.get("id")]
    ident = item.get("id")
    return [str(ident)] if isinstance(ident, str | int) and "," in str(ident) else []


@dataclass(frozen=True)
class GateStatus:
    """pipeline -> its queues, each a list of items (front first), each the ``N,P`` ids of its changes."""

    pipelines: Mapping[str, list[list[list[str]]]] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Any) -> GateStatus:
        if not isinstance(data, Mapping) or not isinstance(data.get("pipelines"), list):
            raise ZuulError("Zuul's status has no 'pipelines' list")
        out: dict[str, list[list[list[str]]]] = {}
        for p in data["pipelines"]:
            if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
                continue
            queues = []
            for q in p.get("change_queues") or ():
                items: list[list[str]] = []
                for head in (q.get("heads") or ()) if isinstance(q, Mapping) else ():
                    for item in head if isinstance(head, list) else ():
                        if isinstance(item, Mapping) and item.get("live", True) is not False:
                            items.append(_item_changes(item))
                queues.append(items)
            out[p["name"]] = queues
        return cls(pipelines=out)

    def change_ids(self, pipeline: str) -> set[str]:
        """Every ``N,P`` (and bare ``N``) queued in ``pipeline``."""
        ids: set[str] = set()
        for queue in self.pipelines.get(pipeline, ()):
            for item in queue:
                for cid in item:
                    ids.add(cid)
                    ids.add(cid.split(",", 1)[0])
        return ids

    def ahead(self, pipeline: str, change_id: str) -> list[list[str]] | None:
        """The items ahead of the change in its queue (front first); None when it is not in ``pipeline``."""
        for queue in self.pipelines.get(pipeline, ()):
            for i, item in enumerate(queue):
                if change_id in item:
                    return queue[:i]
        return None

    def position(self, pipeline: str, change_id: str) -> int | None:
        """0 for the front of its queue, 1 behind it, ...; None when the change is not in ``pipeline``."""
        for queue in self.pipelines.get(pipeline, ()):
            for i, item in enumerate(queue):
                if change_id in item:
                    return i
        return None


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

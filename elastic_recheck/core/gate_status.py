"""Zuul's pipeline status as data: who is in each gate queue, and who is at its front (pure).

:meth:`GateStatus.from_api` reads the answer of ``GET <zuul>/api/tenant/<tenant>/status``
(fetched by :mod:`elastic_recheck.adapters.zuul.gate_queue`):
``pipelines[].change_queues[].heads`` is a list of chains of queue items,
front first. An item names its change as ``id: "N,P"`` (Zuul < 10) or
``changes: [{"id": "N,P"}, ...]`` (Zuul >= 10, where ``id`` is the item's
uuid); both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from elastic_recheck.core.errors import ZuulError


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

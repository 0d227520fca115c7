"""YAML we did not write, read within bounds.

PyYAML's safe loader is safe from code execution, not from size: an alias
bomb ("billion laughs") of a few hundred bytes stands for billions of
nodes, which is harmless while the aliases stay shared Python objects but
explodes as soon as something walks, copies or prints the value. And a few
values make the constructor raise plain ``ValueError`` (``2024-13-45`` read
as a timestamp, ``!!int abc``, an integer of thousands of digits).

:func:`load_bounded` composes the document once, refuses it when its *expanded*
size (every alias counted as a full copy of what it points to; a
recursive alias as infinite) is over ``max_nodes``, and turns constructor
failures into :class:`yaml.constructor.ConstructorError` with the node's
position, so callers only ever see ``yaml.YAMLError``.
"""

from __future__ import annotations

from typing import Any

import yaml

from elastic_recheck.core.errors import short_repr

__all__ = ["load_bounded"]


class _Loader(yaml.SafeLoader):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {short_repr(str(exc))}", node.start_mark
            ) from None


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document with every alias expanded; ``limit + 1`` as soon as it is over (or recursive)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            return limit + 1  # a recursive alias: infinite once expanded
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        open_nodes.discard(key)
        sizes[key] = min(total, limit + 1)
        return sizes[key]

    return size(root)


def load_bounded(text: str, max_nodes: int) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for positions) and its value.

    :raises yaml.YAMLError: bad YAML, a value the constructor refuses (with
        its position), more than ``max_nodes`` nodes once aliases are
        expanded, or nesting too deep for the parser.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        if _expanded_size(root, max_nodes) > max_nodes:
            raise yaml.constructor.ConstructorError(
                None, None, f"the document expands to more than {max_nodes} values (aliases counted in full)", root.start_mark
            )
        return root, loader.construct_document(root)
    except RecursionError:  # PyYAML's scanner and composer recurse per nesting level
        raise yaml.YAMLError("nested too deeply") from None
    finally:
        loader.dispose()

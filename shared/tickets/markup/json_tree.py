"""Walking the JSON a chat message is made of (Adaptive Cards, Block Kit): for budgets and tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in `node`, depth first, each before the objects inside it."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from objects(item)

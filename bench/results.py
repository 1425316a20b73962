"""Metrics, their targets, the printed table and bench-results.json."""

from __future__ import annotations

import json
import operator
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_COMPARE = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | int
    unit: str
    target: str | None  # ">= 100000", "<= 1.5", "== 0"; None: reported, no target yet
    baseline: float | int | None = None  # the physical baseline measured in the same run, when there is one
    note: str = ""  # what the number is made of (printed under the table)

    @property
    def ok(self) -> bool:
        """Whether the value meets its target (a metric without a target has nothing to miss)."""
        return meets(self.value, self.target)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "target": self.target, "ok": self.ok,
                "baseline": self.baseline}


def meets(value: float, target: str | None) -> bool:
    if target is None:
        return True
    op, _, bound = target.strip().partition(" ")
    if op not in _COMPARE:
        raise ValueError(f"target {target!r}: expected '>= N', '<= N' or '== N'")
    return bool(_COMPARE[op](value, float(bound.replace(",", "").replace("_", ""))))


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("no samples")
    return statistics.median(samples)


def rounded(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}") if value else 0.0


def table(metrics: Iterable[Metric]) -> str:
    rows = [("metric", "value", "unit", "target", "ok", "baseline")]
    for m in metrics:
        rows.append((m.name, _number(m.value), m.unit, m.target or "(reported)", "yes" if m.ok else "NO",
                     "" if m.baseline is None else _number(m.baseline)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _number(value: float | int) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def write_json(metrics: Iterable[Metric], path: Path) -> dict[str, Any]:
    body = {m.name: m.to_json() for m in metrics}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return body

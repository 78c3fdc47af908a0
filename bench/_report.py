"""Results: one row per benchmark (ours next to its baseline), the table and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Sample:
    """One measurement of one side in one round.

    ``cpu_us`` is the server's CPU time per request when it was measured; ``checked`` and
    ``wrong`` count the responses validated and the ones that were not the expected result.
    """

    value: float
    cpu_us: float | None = None
    checked: int = 0
    wrong: int = 0
    first_wrong: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class Side:
    """Ours or the baseline in one row: its samples, or why it could not run."""

    label: str
    samples: list[Sample] = attrs.field(factory=list)
    unavailable: str | None = None

    def median(self) -> float | None:
        """The median value, None without samples."""
        return statistics.median(s.value for s in self.samples) if self.samples else None

    def median_cpu(self) -> float | None:
        """The median CPU µs per request, None when not measured."""
        cpus = [s.cpu_us for s in self.samples if s.cpu_us is not None]
        return statistics.median(cpus) if cpus else None

    def shown(self, unit: str) -> str:
        """The table cell."""
        value = self.median()
        if value is not None:
            return format_value(value, unit)
        return f"n/a ({self.unavailable})" if self.unavailable else "-"


@attrs.define
class Row:
    """One benchmark: ``higher_is_better`` says which way the ratio is taken."""

    key: str
    title: str
    unit: str
    higher_is_better: bool
    ours: Side
    baseline: Side

    def ratio(self) -> float | None:
        """How many times better ours is than the baseline (> 1: ours is better)."""
        ours, base = self.ours.median(), self.baseline.median()
        if ours is None or base is None or ours <= 0 or base <= 0:
            return None
        return ours / base if self.higher_is_better else base / ours

    def as_json(self) -> dict[str, Any]:
        """The row for ``latest.json``."""
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "ratio": self.ratio(),
            "ours": _side_json(self.ours),
            "baseline": _side_json(self.baseline),
        }


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "label": side.label,
        "median": side.median(),
        "cpu_us_per_request": side.median_cpu(),
        "unavailable": side.unavailable,
        "samples": [attrs.asdict(sample) for sample in side.samples],
    }


def format_value(value: float, unit: str) -> str:
    """A figure with the precision its unit deserves."""
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.1f}"


def _cpu_cell(row: Row) -> str:
    ours, base = row.ours.median_cpu(), row.baseline.median_cpu()
    if ours is None and base is None:
        return ""
    return " / ".join("-" if cpu is None else f"{cpu:,.0f}" for cpu in (ours, base))


def table(rows: Sequence[Row]) -> str:
    """The results as a fixed-width text table."""
    header = ("benchmark", "ours", "baseline", "ratio", "unit", "CPU µs/req ours / baseline")
    lines = [header]
    for row in rows:
        ratio = row.ratio()
        lines.append(
            (
                f"{row.title} [{row.key}]",
                row.ours.shown(row.unit),
                row.baseline.shown(row.unit),
                "" if ratio is None else f"{ratio:.2f}x",
                row.unit,
                _cpu_cell(row),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {1, 2, 3}
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right and n else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append(" | ".join(cells).rstrip())
        if n == 0:
            out.append("-+-".join("-" * width for width in widths))
    return "\n".join(out)


def validation(rows: Sequence[Row], extra: Sequence[Sample] = ()) -> tuple[int, int, str]:
    """Responses checked, how many were wrong, and the first wrong one.

    ``extra`` holds samples outside the rows (warm-ups); a side shared by two rows counts once.
    """
    checked = wrong = 0
    first = ""
    seen: set[int] = set()
    labelled = [
        (f"{row.key} ({side.label})", side) for row in rows for side in (row.ours, row.baseline)
    ]
    for where, side in labelled:
        if id(side) in seen:
            continue
        seen.add(id(side))
        for sample in side.samples:
            checked += sample.checked
            wrong += sample.wrong
            if not first and sample.first_wrong:
                first = f"{where}: {sample.first_wrong}"
    for sample in extra:
        checked += sample.checked
        wrong += sample.wrong
        if not first and sample.first_wrong:
            first = f"warm-up: {sample.first_wrong}"
    return checked, wrong, first


def write_json(
    path: Path,
    meta: dict[str, Any],
    rows: Sequence[Row],
    notes: Sequence[str],
    warmups: Sequence[Sample] = (),
) -> None:
    """Write the whole run to ``path`` (its folder is created)."""
    checked, wrong, first = validation(rows, warmups)
    document = {
        **meta,
        "rows": [row.as_json() for row in rows],
        "validation": {"checked": checked, "wrong": wrong, "first_wrong": first},
        "notes": list(notes),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

"""Render the benchmark medians as an SVG bar chart with plain text output.

One small panel per scenario and metric (throughput, p99 latency), each with
its own scale, because the scenarios differ by two orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

COLORS = {"ours-1": "#4c78a8", "ours-2": "#72b7b2", "reference": "#f58518"}
METRICS = (("rate", "ops/s"), ("p99_ms", "p99 ms"))
PANEL_WIDTH = 230
PANEL_HEIGHT = 170
BAR_AREA = 110  # pixels for the tallest bar
MARGIN = 20
LEGEND_HEIGHT = 40


def render(
    summary: dict[str, Any], scenarios: Sequence[str], targets: Sequence[str]
) -> str:
    """Return an SVG document with one panel per (metric, scenario)."""
    width = MARGIN * 2 + PANEL_WIDTH * len(scenarios)
    height = LEGEND_HEIGHT + MARGIN + PANEL_HEIGHT * len(METRICS)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    parts.extend(_legend(targets))
    for row, (metric, label) in enumerate(METRICS):
        for column, scenario in enumerate(scenarios):
            x = MARGIN + column * PANEL_WIDTH
            y = LEGEND_HEIGHT + row * PANEL_HEIGHT
            values = [float(summary[t][scenario][metric]) for t in targets]
            parts.extend(_panel(x, y, f"{scenario}: {label}", values, targets))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legend(targets: Sequence[str]) -> list[str]:
    parts = []
    for index, target in enumerate(targets):
        x = MARGIN + index * 140
        parts.append(
            f'<rect x="{x}" y="12" width="12" height="12" '
            f'fill="{COLORS.get(target, "#999")}"/>'
        )
        parts.append(f'<text x="{x + 18}" y="22">{escape(target)}</text>')
    return parts


def _panel(
    x: int, y: int, title: str, values: list[float], targets: Sequence[str]
) -> list[str]:
    parts = [f'<text x="{x}" y="{y + 14}" font-weight="bold">{escape(title)}</text>']
    top = max(values) or 1.0
    bar_width = (PANEL_WIDTH - 40) / max(len(values), 1)
    baseline = y + 30 + BAR_AREA
    for index, (value, target) in enumerate(zip(values, targets, strict=True)):
        bar_height = BAR_AREA * value / top
        bar_x = x + index * bar_width
        parts.append(
            f'<rect x="{bar_x:.1f}" y="{baseline - bar_height:.1f}" '
            f'width="{bar_width - 6:.1f}" height="{bar_height:.1f}" '
            f'fill="{COLORS.get(target, "#999")}"/>'
        )
        parts.append(
            f'<text x="{bar_x + (bar_width - 6) / 2:.1f}" '
            f'y="{baseline - bar_height - 3:.1f}" text-anchor="middle">'
            f"{_number(value)}</text>"
        )
    parts.append(
        f'<line x1="{x}" y1="{baseline}" x2="{x + PANEL_WIDTH - 40}" '
        f'y2="{baseline}" stroke="#333"/>'
    )
    return parts


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"

"""Small inline-SVG charts (line and grouped bar) for the HTML report; no plotting library.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 28, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#e377c2",
    "#bcbd22",
    "#8c564b",
    "#7f7f7f",
    "#17becf",
)


@dataclass(frozen=True)
class Series:
    """One named line (or bar group member); None marks a missing point."""

    name: str
    values: Sequence[float | None]
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Scale:
    """The y axis: linear from 0 to ``top``, or logarithmic from ``bottom`` to ``top``."""

    top: float
    bottom: float = 0.0
    log: bool = False

    @classmethod
    def for_values(cls, values: Sequence[float], log: bool = False) -> Scale:
        positive = [v for v in values if v > 0]
        if log and positive:
            low = 10 ** math.floor(math.log10(min(positive)))
            high = 10 ** math.ceil(math.log10(max(positive)))
            return cls(float(max(high, low * 10)), float(low), log=True)
        return cls(nice_max(max(values, default=0.0)))

    def ticks(self) -> list[float]:
        if self.log:
            count = round(math.log10(self.top / self.bottom))
            return [self.bottom * 10**i for i in range(count + 1)]
        return [self.top * i / 4 for i in range(5)]

    def y(self, value: float) -> float:
        """The SVG y coordinate of ``value`` (clipped to the axis)."""
        if self.log:
            value = min(max(value, self.bottom), self.top)
            frac = math.log10(value / self.bottom) / math.log10(self.top / self.bottom)
        else:
            frac = min(max(value, 0.0), self.top) / self.top
        return TOP + PLOT_H - PLOT_H * frac


def color_for(name: str, names: Sequence[str]) -> str:
    """A stable colour for ``name`` by its position in ``names``."""
    index = list(names).index(name) if name in names else len(names)
    return PALETTE[index % len(PALETTE)]


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _frame(title: str, y_label: str, scale: Scale, x_labels: Sequence[str]) -> list[str]:
    mid = TOP + PLOT_H / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="12" y="{mid}" transform="rotate(-90 12 {mid})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for value in scale.ticks():
        y = scale.y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_short(value)}</text>'
        )
    for i, label in enumerate(x_labels):
        x = _x(i, len(x_labels))
        y = HEIGHT - BOTTOM + 16 + (12 * (i % 2) if len(x_labels) > 5 else 0)  # stagger long rows
        parts.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _short(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _x(i: int, n: int) -> float:
    return LEFT + PLOT_W * (i + 0.5) / max(n, 1)


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    for i, s in enumerate(series):
        y = TOP + 14 * i
        x = WIDTH - RIGHT + 12
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{s.color}" '
            f'stroke-width="2"{dash}/><text x="{x + 22}" y="{y + 4}">{escape(s.name)}</text>'
        )
    return parts


def _values(series: Sequence[Series]) -> list[float]:
    return [v for s in series for v in s.values if v is not None]


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    log: bool = False,
) -> str:
    """An SVG line chart with categorical x positions (one per label); ``log`` y axis."""
    scale = Scale.for_values(_values(series), log)
    parts = _frame(title, y_label + (" (log)" if scale.log else ""), scale, x_labels)
    n = len(x_labels)
    for s in series:
        points = [
            f"{_x(i, n):.1f},{scale.y(v):.1f}" for i, v in enumerate(s.values) if v is not None
        ]
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        if len(points) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} '
                f'points="{" ".join(points)}"><title>{escape(s.name)}</title></polyline>'
            )
        for point in points:
            cx, cy = point.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{s.color}"/>')
    parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series], y_label: str) -> str:
    """An SVG grouped bar chart: one group per category, one bar per series."""
    scale = Scale.for_values(_values(series))
    parts = _frame(title, y_label, scale, categories)
    n = len(categories)
    group_w = PLOT_W / max(n, 1) * 0.8
    bar_w = group_w / max(len(series), 1)
    base = scale.y(0.0)
    for k, s in enumerate(series):
        for i, v in enumerate(s.values):
            if v is None:
                continue
            x = _x(i, n) - group_w / 2 + k * bar_w
            y = scale.y(v)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" '
                f'height="{base - y:.1f}" fill="{s.color}"><title>{escape(s.name)} '
                f"{escape(categories[i])}: {v:.1f}</title></rect>"
            )
    parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(parts)

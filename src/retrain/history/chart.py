"""A line chart as inline SVG, drawn here: the history page opens offline with no
JavaScript and no library to download, and a test can count its marks in the DOM."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

# Distinct hues (Okabe-Ito, readable by colour-blind people), one per series.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")
WIDTH, HEIGHT = 760, 300
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 150, 16, 48


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # one per x label; None: no point there


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _bounds(series: list[Series]) -> tuple[float, float]:
    values = [v for s in series for v in s.values if v is not None]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 0.01
    return lo - pad, hi + pad


def _axes(labels: list[str], lo: float, hi: float) -> list[str]:
    y = _scale(lo, hi, HEIGHT - PAD_BOTTOM, PAD_TOP)
    x_end = WIDTH - PAD_RIGHT
    out = [
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{x_end}" '
        f'y2="{HEIGHT - PAD_BOTTOM}" stroke="#444"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" '
        f'y2="{HEIGHT - PAD_BOTTOM}" stroke="#444"/>',
    ]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(
            f'<text x="{PAD_LEFT - 6}" y="{y(v) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{v:.3f}</text>'
        )
    xs = _xs(len(labels))
    for i, label in enumerate(labels):
        out.append(
            f'<text class="x-label" x="{xs(i):.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" '
            f'font-size="10" text-anchor="middle">{escape(label)}</text>'
        )
    return out


def _xs(n: int) -> Callable[[float], float]:
    if n <= 1:
        return lambda i: (PAD_LEFT + WIDTH - PAD_RIGHT) / 2
    return _scale(0, n - 1, PAD_LEFT + 20, WIDTH - PAD_RIGHT - 20)


def line_chart(labels: list[str], series: list[Series], title: str) -> str:
    """An SVG of each series over `labels`: a polyline (class `line`) through its points
    (class `point`, one `circle` per value, its tooltip the label and value) and a legend."""
    lo, hi = _bounds(series)
    y = _scale(lo, hi, HEIGHT - PAD_BOTTOM, PAD_TOP)
    xs = _xs(len(labels))
    parts = _axes(labels, lo, hi)
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        pts = [(xs(i), y(v), labels[i], v) for i, v in enumerate(s.values) if v is not None]
        name = escape(s.name)
        if len(pts) > 1:
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in pts)
            parts.append(
                f'<polyline class="line" data-series="{name}" points="{coords}" '
                f'fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for px, py, label, v in pts:
            parts.append(
                f'<circle class="point" data-series="{name}" data-x="{escape(label)}" '
                f'cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}">'
                f"<title>{name} {escape(label)}: {v:.4f}</title></circle>"
            )
        ly = PAD_TOP + 8 + 18 * k
        lx = WIDTH - PAD_RIGHT + 14
        parts.append(
            f'<g class="legend"><rect x="{lx}" y="{ly - 8}" width="12" height="12" '
            f'fill="{colour}"/><text x="{lx + 18}" y="{ly + 2}" font-size="11">{name}</text></g>'
        )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">' + "".join(parts) + "</svg>"
    )

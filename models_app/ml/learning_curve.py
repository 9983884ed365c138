"""Learning curves of the simulated loop: points per seed → mean ± sd per budget → CSV and SVG.

Plain Python (no Django, no matplotlib: the chart is a hand-written SVG, so the
app needs no plotting library and the file renders in any browser or README).
The sd is the sample standard deviation over seeds (n − 1); with one seed it is 0.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

METRICS = ("accuracy", "log_loss", "ece")
METRIC_TITLES = {"accuracy": "Holdout accuracy", "log_loss": "Holdout log loss", "ece": "Holdout ECE"}
POINT_COLUMNS = ["seed", "answers", "training_labels", "audit_slice_answers", "model_version", *METRICS]
CURVE_COLUMNS = ["answers", "seeds", *[f"{metric}_{stat}" for metric in METRICS for stat in ("mean", "sd")]]
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass(frozen=True)
class CurvePoint:
    """One model of one seed's loop, measured on that seed's holdout after `answers` oracle answers."""

    seed: int
    answers: int
    training_labels: int  # gold labels in the run's snapshot (seed set + answers)
    audit_slice_answers: int  # how many of the answers so far the random audit slice picked
    model_version: int
    accuracy: float
    log_loss: float
    ece: float


@dataclass(frozen=True)
class CurveRow:
    """Mean and sd over the seeds that reached `answers`."""

    answers: int
    seeds: int
    stats: dict[str, tuple[float, float]]  # metric -> (mean, sd)


@dataclass(frozen=True)
class Curve:
    label: str
    rows: list[CurveRow]


def curve_summarise(points: Sequence[CurvePoint]) -> list[CurveRow]:
    """Group the points by number of answers, in ascending order."""
    by_answers: dict[int, list[CurvePoint]] = {}
    for point in points:
        by_answers.setdefault(point.answers, []).append(point)
    rows = []
    for answers in sorted(by_answers):
        group = by_answers[answers]
        stats = {metric: _mean_sd([getattr(p, metric) for p in group]) for metric in METRICS}
        rows.append(CurveRow(answers=answers, seeds=len(group), stats=stats))
    return rows


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def points_csv(points: Sequence[CurvePoint]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POINT_COLUMNS)
    for p in points:
        writer.writerow(
            [getattr(p, name) if name not in METRICS else f"{getattr(p, name):.6f}" for name in POINT_COLUMNS]
        )
    return out.getvalue()


def curve_csv(rows: Sequence[CurveRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS)
    for row in rows:
        cells: list[object] = [row.answers, row.seeds]
        for metric in METRICS:
            mean, sd = row.stats[metric]
            cells += [f"{mean:.6f}", f"{sd:.6f}"]
        writer.writerow(cells)
    return out.getvalue()


def curve_read_csv(text: str) -> list[CurveRow]:
    """The rows `curve_csv` wrote (to draw several runs' curves on one chart)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(CURVE_COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"Not a learning-curve CSV: column(s) {', '.join(sorted(missing))} missing.")
    return [
        CurveRow(
            answers=int(r["answers"]),
            seeds=int(r["seeds"]),
            stats={m: (float(r[f"{m}_mean"]), float(r[f"{m}_sd"])) for m in METRICS},
        )
        for r in reader
    ]


# --- the chart ----------------------------------------------------------------------------------

_PANEL_W, _PANEL_H, _MARGIN_L, _MARGIN_T, _GAP = 270, 220, 52, 54, 24


def curve_svg(curves: Sequence[Curve], *, title: str) -> str:
    """Three panels (accuracy, log loss, ECE vs answers): each curve's mean as a line, ± sd as a band."""
    if not curves or not any(c.rows for c in curves):
        raise ValueError("Nothing to draw: no curve has any point.")
    width = _MARGIN_L + 3 * (_PANEL_W + _GAP + _MARGIN_L) - _MARGIN_L
    legend_h = 22 * len(curves)
    height = _MARGIN_T + _PANEL_H + 50 + legend_h
    x_max = max(row.answers for c in curves for row in c.rows) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{_MARGIN_L}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, metric in enumerate(METRICS):
        left = _MARGIN_L + index * (_PANEL_W + _GAP + _MARGIN_L)
        parts += _panel(curves, metric, left, x_max)
    for index, curve in enumerate(curves):
        y = _MARGIN_T + _PANEL_H + 44 + 22 * index
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(
            f'<rect x="{_MARGIN_L}" y="{y - 9}" width="24" height="10" fill="{colour}" fill-opacity="0.25"/>'
            f'<line x1="{_MARGIN_L}" x2="{_MARGIN_L + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="2"/><text x="{_MARGIN_L + 32}" y="{y}">{escape(curve.label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(curves: Sequence[Curve], metric: str, left: float, x_max: int) -> list[str]:
    lows = [row.stats[metric][0] - row.stats[metric][1] for c in curves for row in c.rows]
    highs = [row.stats[metric][0] + row.stats[metric][1] for c in curves for row in c.rows]
    y_ticks = _ticks(min(lows), max(highs))
    y_min, y_max = y_ticks[0], y_ticks[-1]
    top, bottom = _MARGIN_T, _MARGIN_T + _PANEL_H

    def sx(x: float) -> float:
        return left + _PANEL_W * x / x_max

    def sy(y: float) -> float:
        return bottom - _PANEL_H * (y - y_min) / (y_max - y_min)

    parts = [
        f'<text x="{left}" y="{top - 8}" font-weight="bold">{METRIC_TITLES[metric]}</text>',
        f'<rect x="{left}" y="{top}" width="{_PANEL_W}" height="{_PANEL_H}" fill="none" stroke="#999"/>',
        f'<text x="{left + _PANEL_W / 2}" y="{bottom + 30}" text-anchor="middle">answers (oracle reviews)</text>',
    ]
    for tick in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + _PANEL_W}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    for tick in _ticks(0, x_max):
        if tick <= x_max:
            parts.append(f'<text x="{sx(tick):.1f}" y="{bottom + 14}" text-anchor="middle">{tick:g}</text>')
    for index, curve in enumerate(curves):
        colour = _COLOURS[index % len(_COLOURS)]
        rows = curve.rows
        upper = [f"{sx(r.answers):.1f},{sy(r.stats[metric][0] + r.stats[metric][1]):.1f}" for r in rows]
        lower = [f"{sx(r.answers):.1f},{sy(r.stats[metric][0] - r.stats[metric][1]):.1f}" for r in reversed(rows)]
        line = [f"{sx(r.answers):.1f},{sy(r.stats[metric][0]):.1f}" for r in rows]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" fill-opacity="0.18" stroke="none"/>')
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    return parts


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (at least a small span, so a flat curve still draws)."""
    if high - low < 1e-9:
        low, high = low - 0.5 * max(abs(low), 1e-3), high + 0.5 * max(abs(high), 1e-3)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < high - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks

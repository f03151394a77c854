"""Inline SVG charts for the reports: a waterfall, interval bars and a histogram.

Built as text by :func:`_tag`, which escapes every attribute value and text node with
markupsafe, so a feature name like ``<script>alert(1)</script>`` is drawn as those characters.
No ``style`` attributes are used (the Content-Security-Policy allows one hashed stylesheet
only); colours come from classes defined in ``style.css.j2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

from ._html import num, signed

_WIDTH = 920
_LABEL = 300  # width of the label column
_VALUE = 200  # width of the value column on the right
_ROW = 22
_TOP = 8
_AXIS = 30
_LABEL_CHARS = 44
_LABEL_LINES = 3
_LINE = 13  # line height of a wrapped label
_XLABEL = 18  # room under the tick labels for the x-axis label


def _tag(name: str, attrs: dict[str, object], content: str | Markup | None = None) -> Markup:
    """``<name attr="...">content</name>`` with attributes and (non-Markup) content escaped."""
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(text)}"')
    head = " ".join(parts)
    if content is None:
        return Markup(f"<{head}/>")
    return Markup(f"<{head}>{escape(content)}</{name}>")


def wrap(text: str, width: int = _LABEL_CHARS, max_lines: int = _LABEL_LINES) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken between words.

    A word longer than a line is broken where it must be; past ``max_lines`` the last line
    ends in "…" (the full text stays in the label's tooltip).
    """
    words = str(text).split()
    lines: list[str] = []
    line = ""
    for word in words:
        while len(word) > width:  # a word that fits no line: break it, never drop it
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return lines


def _label(
    text: str, x: float, y: float, anchor: str = "end", cls: str = "label", lines: int = 1
) -> Markup:
    """A text label of up to ``lines`` lines (from :func:`wrap`), the full text as a tooltip;
    ``y`` is the baseline of the first line."""
    shown = wrap(text, max_lines=lines)
    inner = _tag("title", {}, text)
    for i, part in enumerate(shown):
        inner += _tag("tspan", {"x": x, "dy": None if i == 0 else f"{_LINE}"}, part)
    return _tag("text", {"x": x, "y": y, "text_anchor": anchor, "class": cls}, Markup(inner))


def _row_height(text: str) -> float:
    """Height of a chart row whose label is ``text`` (wrapped)."""
    return max(_ROW, len(wrap(text)) * _LINE + 8)


def _svg(width: int, height: int, title: str, body: list[Markup]) -> Markup:
    # Inline in HTML, the SVG namespace is implied: no xmlns URL, so the page holds no URL.
    inner = _tag("title", {}, title) + Markup("").join(body)
    return _tag(
        "svg",
        {
            "viewBox": f"0 0 {width} {height}",
            "width": width,
            "height": height,
            "role": "img",
            "class": "chart",
        },
        Markup(inner),
    )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    t = first
    while t <= high + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else round(t, 12))
        t += step
    return ticks


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    left: float
    right: float

    @classmethod
    def covering(cls, values: Sequence[float], left: float, right: float) -> _Scale:
        finite = [v for v in values if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if high - low < 1e-12:
            low, high = low - 1.0, high + 1.0
        pad = 0.04 * (high - low)
        return cls(low - pad, high + pad, left, right)

    def __call__(self, v: float) -> float:
        v = min(max(v, self.low), self.high)
        return self.left + (v - self.low) / (self.high - self.low) * (self.right - self.left)


def _x_axis(scale: _Scale, y: float, top: float, label: str | None = None) -> list[Markup]:
    out = [_tag("line", {"x1": scale.left, "x2": scale.right, "y1": y, "y2": y, "class": "axis"})]
    for t in nice_ticks(scale.low, scale.high):
        x = scale(t)
        out.append(_tag("line", {"x1": x, "x2": x, "y1": top, "y2": y, "class": "grid"}))
        out.append(
            _tag("text", {"x": x, "y": y + 14, "text_anchor": "middle", "class": "tick"}, num(t, 3))
        )
    if label:
        out.append(
            _tag(
                "text",
                {
                    "x": (scale.left + scale.right) / 2,
                    "y": y + 14 + _XLABEL,
                    "text_anchor": "middle",
                    "class": "axis-label",
                },
                label,
            )
        )
    return out


@dataclass(frozen=True)
class Step:
    """One row of a waterfall: a label, a contribution and its standard error."""

    label: str
    value: float
    stderr: float


def _rows(labels: Sequence[str]) -> tuple[list[float], float]:
    """Top of each row (labels wrapped) and the bottom of the last."""
    tops, y = [], float(_TOP)
    for text in labels:
        tops.append(y)
        y += _row_height(text)
    return tops, y


def _whisker(x0: float, x1: float, mid: float) -> list[Markup]:
    out = [_tag("line", {"x1": x0, "x2": x1, "y1": mid, "y2": mid, "class": "whisker"})]
    for w in (x0, x1):
        out.append(
            _tag("line", {"x1": w, "x2": w, "y1": mid - 4, "y2": mid + 4, "class": "whisker"})
        )
    return out


def waterfall(
    base: float,
    steps: Sequence[Step],
    prediction: float,
    *,
    adverse: str | None,
    z: float = 1.96,
    title: str = "Contributions from the base value to the prediction",
    xlabel: str | None = None,
    base_label: str = "base value (mean over the background)",
) -> Markup:
    """Base value → each contribution (with a ``± z·stderr`` whisker) → prediction.

    ``adverse`` ("decrease" / "increase" / None) colours the contributions that push toward
    the adverse outcome differently from the others. Labels wrap onto up to three lines
    between words; ``xlabel`` names the axis (the output's scale).
    """
    labels = [base_label, *(s.label for s in steps), "prediction"]
    tops, bottom = _rows(labels)
    height = bottom + _AXIS + (_XLABEL if xlabel else 0)
    ends = np.cumsum([base] + [s.value for s in steps])
    whiskers = [
        e + sign * z * s.stderr
        for e, s in zip(ends[1:], steps, strict=True)
        if math.isfinite(s.stderr)
        for sign in (-1, 1)
    ]
    scale = _Scale.covering([*ends, *whiskers, prediction], _LABEL, _WIDTH - _VALUE)
    body = _x_axis(scale, bottom, _TOP, xlabel)

    def middle(i: int) -> float:
        return tops[i] + _row_height(labels[i]) / 2

    def text_y(i: int) -> float:
        # The first line's baseline, so the label block is centred on the row.
        n_lines = len(wrap(labels[i]))
        return middle(i) - (n_lines - 1) * _LINE / 2 + 4

    def marker(i: int, value: float, cls: str) -> list[Markup]:
        x, mid = scale(value), middle(i)
        return [
            _label(labels[i], _LABEL - 8, text_y(i), lines=_LABEL_LINES),
            _tag("line", {"x1": x, "x2": x, "y1": mid - 8, "y2": mid + 8, "class": cls}),
            _tag("text", {"x": _WIDTH - _VALUE + 8, "y": mid + 4, "class": "value"}, num(value)),
        ]

    body += marker(0, base, "marker")
    for i, (step, start, end) in enumerate(zip(steps, ends[:-1], ends[1:], strict=True), start=1):
        mid = middle(i)
        x0, x1 = sorted((scale(start), scale(end)))
        if adverse is None:
            cls = "bar up" if step.value >= 0 else "bar down"
        else:
            toward = step.value < 0 if adverse == "decrease" else step.value > 0
            cls = "bar adverse" if toward else "bar favourable"
        body.append(_label(step.label, _LABEL - 8, text_y(i), lines=_LABEL_LINES))
        body.append(
            _tag(
                "rect",
                {"x": x0, "y": mid - 7, "width": max(x1 - x0, 1.0), "height": 14.0, "class": cls},
            )
        )
        if math.isfinite(step.stderr) and step.stderr > 0:
            body += _whisker(scale(end - z * step.stderr), scale(end + z * step.stderr), mid)
        # A dotted connector from this bar's end to the next row's bar.
        xe = scale(end)
        body.append(
            _tag(
                "line",
                {"x1": xe, "x2": xe, "y1": mid + 7, "y2": middle(i + 1) - 7, "class": "link"},
            )
        )
        text = signed(step.value)
        if math.isfinite(step.stderr):
            text += f" ± {num(z * step.stderr, 2)}"
        body.append(_tag("text", {"x": _WIDTH - _VALUE + 8, "y": mid + 4, "class": "value"}, text))
    body += marker(len(labels) - 1, prediction, "marker prediction")
    return _svg(_WIDTH, math.ceil(height), title, body)


def interval_bars(
    labels: Sequence[str],
    values: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    *,
    title: str,
    xlabel: str | None = None,
) -> Markup:
    """Horizontal bars from 0 with an interval whisker each (e.g. global importance)."""
    tops, bottom = _rows(labels) if labels else ([], float(_TOP + _ROW))
    height = bottom + _AXIS + (_XLABEL if xlabel else 0)
    scale = _Scale.covering([0.0, *values, *lower, *upper], _LABEL, _WIDTH - _VALUE)
    body = _x_axis(scale, bottom, _TOP, xlabel)
    for label, top, v, lo, hi in zip(labels, tops, values, lower, upper, strict=True):
        mid = top + _row_height(label) / 2
        n_lines = len(wrap(label))
        x0, x1 = sorted((scale(0.0), scale(v)))
        body.append(
            _label(label, _LABEL - 8, mid - (n_lines - 1) * _LINE / 2 + 4, lines=_LABEL_LINES)
        )
        body.append(
            _tag(
                "rect",
                {
                    "x": x0,
                    "y": mid - 7,
                    "width": max(x1 - x0, 1.0),
                    "height": 14.0,
                    "class": "bar up",
                },
            )
        )
        body += _whisker(scale(lo), scale(hi), mid)
        text = f"{num(v)} [{num(lo, 3)}, {num(hi, 3)}]"
        body.append(_tag("text", {"x": _WIDTH - _VALUE + 8, "y": mid + 4, "class": "value"}, text))
    return _svg(_WIDTH, math.ceil(height), title, body)


def histogram(
    values: np.ndarray,
    *,
    bins: int = 20,
    title: str,
    xlabel: str,
    ylabel: str = "count",
) -> Markup:
    """Counts of ``values`` in ``bins`` equal-width bins, as vertical bars, both axes named."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    width, height, left, bottom = _WIDTH, 220, 60, 180
    if values.size == 0:
        counts, edges = np.zeros(1, dtype=np.int64), np.array([0.0, 1.0])
    else:
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-300:
            low, high = low - 0.5, high + 0.5
        counts, edges = np.histogram(values, bins=bins, range=(low, high))
    x = _Scale(float(edges[0]), float(edges[-1]), left, width - 20)
    peak = max(int(counts.max()), 1)
    body = _x_axis(x, bottom, 10, xlabel)
    # The y axis's name, turned to run up the axis (a presentation attribute, not a style).
    mid = (bottom + 10) / 2
    body.append(
        _tag(
            "text",
            {
                "x": 14,
                "y": mid,
                "text_anchor": "middle",
                "transform": f"rotate(-90 14 {mid:.1f})",
                "class": "axis-label",
            },
            ylabel,
        )
    )
    for t in nice_ticks(0, peak, 4):
        y = bottom - t / peak * (bottom - 10)
        body.append(
            _tag(
                "text",
                {"x": left - 6, "y": y + 4, "text_anchor": "end", "class": "tick"},
                num(t, 3),
            )
        )
    for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        if c == 0:
            continue
        h = c / peak * (bottom - 10)
        rect = {"x": x(lo), "y": bottom - h, "width": max(x(hi) - x(lo) - 1, 1.0), "height": h}
        body.append(
            _tag(
                "rect",
                {**rect, "class": "bar up"},
                Markup(_tag("title", {}, f"{c} in [{num(lo, 3)}, {num(hi, 3)})")),
            )
        )
    return _svg(width, height + 10, title, body)


_NEGATIVE_RGB, _ZERO_RGB, _POSITIVE_RGB = (33, 102, 172), (247, 247, 247), (178, 24, 43)
_MAX_CELLS = 64  # per side: a larger image is averaged into blocks first


def diverging(value: float, limit: float) -> str:
    """A colour for ``value`` on a blue-white-red scale from ``-limit`` to ``limit``."""
    if not math.isfinite(value):
        return "#ffffff"
    t = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
    end = _POSITIVE_RGB if t >= 0 else _NEGATIVE_RGB
    rgb = [round(z + abs(t) * (e - z)) for z, e in zip(_ZERO_RGB, end, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _blocks(grid: np.ndarray) -> np.ndarray:
    """``grid`` averaged into at most ``_MAX_CELLS`` blocks per side (NaN ignored)."""
    h, w = grid.shape
    step = max(1, math.ceil(max(h, w) / _MAX_CELLS))
    if step == 1:
        return grid
    out = np.full((math.ceil(h / step), math.ceil(w / step)), np.nan)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = grid[i * step : (i + 1) * step, j * step : (j + 1) * step]
            if np.isfinite(block).any():
                out[i, j] = float(np.nanmean(block))
    return out


def heatmap(attributions: np.ndarray, image: np.ndarray, *, title: str, label: str) -> Markup:
    """Attributions over an image: the image in grey, each cell tinted by its attribution
    (blue lowers the output, red raises it), and a colour bar. Colours are presentation
    attributes (``fill``), not ``style``, so the page's Content-Security-Policy holds."""
    attr, pixels = _blocks(np.asarray(attributions, float)), _blocks(np.asarray(image, float))
    h, w = attr.shape
    cell = max(4.0, min(28.0, 320.0 / max(h, w)))
    left, top = 20.0, 10.0
    finite = attr[np.isfinite(attr)]
    limit = float(np.abs(finite).max()) if finite.size else 0.0
    seen = pixels[np.isfinite(pixels)]
    low, high = (float(seen.min()), float(seen.max())) if seen.size else (0.0, 1.0)
    body: list[Markup] = []
    for i in range(h):
        for j in range(w):
            x, y = left + j * cell, top + i * cell
            ink = pixels[i, j] if pixels.shape == attr.shape else math.nan
            if math.isfinite(ink):
                level = 255 - round(255 * (ink - low) / (high - low)) if high > low else 255
                grey = f"#{level:02x}{level:02x}{level:02x}"
                body.append(
                    _tag("rect", {"x": x, "y": y, "width": cell, "height": cell, "fill": grey})
                )
            value = attr[i, j]
            body.append(
                _tag(
                    "rect",
                    {
                        "x": x,
                        "y": y,
                        "width": cell,
                        "height": cell,
                        "fill": diverging(value, limit),
                        "fill_opacity": "0.65",
                        "class": "cell",
                    },
                    Markup(_tag("title", {}, f"row {i}, column {j}: {num(value)}")),
                )
            )
    # The colour bar: 11 steps from -limit to +limit, ticks at both ends and 0.
    bar_x, bar_h = left + w * cell + 30, h * cell
    for s in range(11):
        v = limit * (1 - s / 5)
        body.append(
            _tag(
                "rect",
                {
                    "x": bar_x,
                    "y": top + s * bar_h / 11,
                    "width": 14.0,
                    "height": bar_h / 11 + 0.5,
                    "fill": diverging(v, limit),
                },
            )
        )
    for frac, v in ((0.0, limit), (0.5, 0.0), (1.0, -limit)):
        body.append(
            _tag(
                "text",
                {"x": bar_x + 20, "y": top + frac * bar_h + 4, "class": "tick"},
                num(v, 3),
            )
        )
    body.append(_tag("text", {"x": left, "y": top + bar_h + 20, "class": "tick"}, label))
    width = int(bar_x + 110)
    return _svg(width, int(top + bar_h + 30), title, body)

"""Server-rendered bar charts: inline SVG made here, no script, no CSS in attributes.

Invariants:
- The output is an ``<svg role="img">`` whose accessible name is its ``<title>`` (also in
  ``aria-label``): a chart says what it shows, and the table beside it carries the numbers.
- Geometry and colours are SVG presentation attributes (``x``, ``width``, ``fill``), never a
  ``style`` attribute, so the strict Content-Security-Policy holds.
- Every label is escaped; a suppressed count (a string such as ``"<5"``) draws no bar and
  shows its text, so the chart reveals no more than the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 500
LABEL_WIDTH = 225
VALUE_WIDTH = 50
ROW = 26
BAR = 18
PAD = 6
BAR_FILL = "#1d70b8"
TEXT_FILL = "#0b0c0c"


def bar_chart(
    title: str, bars: Sequence[tuple[str, int | float | str]], *, chart_id: str
) -> Markup:
    """A horizontal bar chart of ``bars`` (label, figure); figures that are strings (a
    suppressed count, a missing median) are shown as text without a bar. ``chart_id`` makes
    the ``<title>`` id unique on the page."""
    numbers = [v for _, v in bars if not isinstance(v, str)]
    top = max(numbers, default=0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 2 * PAD
    height = max(1, len(bars)) * ROW + 2 * PAD
    title_id = f"{chart_id}-title"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{escape(title_id)}" aria-label="{escape(title)}" '
        f'font-family="sans-serif" font-size="12">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(bars):
        y = PAD + i * ROW
        text_y = y + BAR - 4
        parts.append(
            f'<text x="{LABEL_WIDTH - PAD}" y="{text_y}" text-anchor="end" '
            f'fill="{TEXT_FILL}">{escape(label)}</text>'
        )
        length = round(span * value / top) if not isinstance(value, str) and top > 0 else 0
        if length:
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR}" '
                f'fill="{BAR_FILL}"/>'
            )
        parts.append(
            f'<text x="{LABEL_WIDTH + length + PAD}" y="{text_y}" '
            f'fill="{TEXT_FILL}">{escape(str(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped above

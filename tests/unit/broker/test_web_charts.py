"""broker.web.charts: accessible inline SVG, no script or style, bars in proportion, labels
escaped, suppressed counts drawn as text without a bar."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from broker.web.charts import BAR_FILL, LABEL_WIDTH, VALUE_WIDTH, WIDTH, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_the_chart_is_an_image_named_by_its_title() -> None:
    svg = _parse(bar_chart("Cases by type", [("mla.request", 12)], chart_id="c1"))
    assert svg.tag == SVG + "svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Cases by type"
    assert svg.get("aria-labelledby") == "c1-title"
    title = svg.find(SVG + "title")
    assert title is not None
    assert (title.get("id"), title.text) == ("c1-title", "Cases by type")


def test_no_script_no_style_only_presentation_attributes() -> None:
    markup = str(bar_chart("T", [("a", 3), ("b", 1)], chart_id="c"))
    assert "<script" not in markup
    assert "style" not in markup
    assert "on" not in re.findall(r"\s([a-z-]+)=", markup)  # no event handler attributes
    assert f'fill="{BAR_FILL}"' in markup


def test_bars_are_in_proportion_and_the_largest_fills_the_span() -> None:
    svg = _parse(bar_chart("T", [("a", 10), ("b", 5), ("c", 0)], chart_id="c"))
    widths = [int(r.get("width", "0")) for r in svg.iter(SVG + "rect")]
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 2 * 6
    assert widths == [span, round(span / 2)]  # zero draws no bar
    texts = [t.text for t in svg.iter(SVG + "text")]
    assert texts == ["a", "10", "b", "5", "c", "0"]


def test_suppressed_counts_and_missing_figures_draw_no_bar() -> None:
    svg = _parse(bar_chart("T", [("IT → US", "<5"), ("NL → DE", 7.5)], chart_id="c"))
    rects = list(svg.iter(SVG + "rect"))
    assert len(rects) == 1
    assert [t.text for t in svg.iter(SVG + "text")] == ["IT → US", "<5", "NL → DE", "7.5"]


def test_labels_and_titles_are_escaped() -> None:
    markup = str(bar_chart('<b>"x"</b>', [("<script>alert(1)</script>", 1)], chart_id="c"))
    assert "<script>" not in markup
    assert "<b>" not in markup
    assert "&lt;script&gt;" in markup
    _parse(markup)


def test_an_empty_chart_is_still_valid() -> None:
    svg = _parse(bar_chart("Nothing", [], chart_id="c"))
    assert list(svg.iter(SVG + "rect")) == []

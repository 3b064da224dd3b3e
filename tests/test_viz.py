"""The house style: ¥ and count formatting, the bundled CJK font, PNG display."""
from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import pytest
from matplotlib import font_manager

from crmkit import viz


def test_money_percent_and_count_formats():
    assert viz.fmt_yuan(1234567.8) == "¥1,234,568"
    assert viz.fmt_yuan(-1234.5, 2) == "-¥1,234.50"
    assert viz.fmt_yuan(float("nan")) == "–"
    assert viz.fmt_pct(0.1234) == "12.3%"
    assert viz.fmt_int(1234567) == "1,234,567"
    assert viz.fmt_int(None) == "–"
    assert viz.yuan_formatter(25000, 0) == "¥25,000"
    assert viz.int_formatter(12000.0, 0) == "12,000"
    assert viz.pct_formatter(0.25, 0) == "25%"
    assert viz.fmt_interval(1200, (800, 1600), viz.fmt_yuan) == "¥1,200 [¥800, ¥1,600]"
    assert viz.fmt_interval(0.5, None, viz.fmt_pct) == "50.0%"


def test_chinese_renders_with_the_bundled_font_not_boxes():
    if viz.cjk_font_path() is None:
        pytest.skip("mplfonts is not installed")
    fig, ax = viz.new_figure()
    ax.set_title("会员价值金字塔（元）")
    ax.set_xlabel("首购后第 k 个月")
    used = font_manager.findfont(ax.title.get_fontproperties(), fallback_to_default=False)
    assert used.endswith(viz.CJK_FONT_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for boxes
        png = viz.png_bytes(fig)
    plt.close(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_displays_one_png_and_closes_the_figure(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig, ax = viz.new_figure()
    ax.plot([0, 1], [0, 2])
    ax.set_title("净销售额（元）")
    viz.show(fig)
    assert len(shown) == 1
    assert shown[0].format == "png" and shown[0].data[:4] == b"\x89PNG"
    assert shown[0].metadata == {"alt": "净销售额（元）"}  # the HTML report's alternative text
    assert not plt.fignum_exists(fig.number)


def test_figure_title_prefers_the_suptitle():
    fig, (a, b) = viz.new_figure(1, 2)
    b.set_title("right")
    assert viz.figure_title(fig) == "right"
    fig.suptitle("both")
    assert viz.figure_title(fig) == "both"
    plt.close(fig)


def test_rate_differences_and_p_values_read_as_people_write_them():
    assert viz.fmt_pp(0.037) == "3.7 pp" and viz.fmt_pp(float("nan")) == "–"
    assert viz.fmt_p_value(4.43e-16) == "< 0.001" and viz.fmt_p_value(0.0614) == "0.061"
    assert viz.fmt_p_value(None) == "–"

"""The matplotlib house style: CJK font, money in the store's currency, zh / en labels.

Chinese renders on a fresh machine without root because crmkit uses the
Noto Sans CJK SC font shipped inside the ``mplfonts`` wheel (a declared
dependency), registered with matplotlib by file path at first use.
"""
from __future__ import annotations

import io
import sys

import matplotlib

if "ipykernel" not in sys.modules:  # scripts and the CLI never open windows; kernels keep their backend
    matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from .currency import fmt_money  # noqa: E402,F401  (part of the house style: viz.fmt_money)
from .fonts import CJK_FONT_FILE, cjk_font_path  # noqa: E402,F401  (viz.cjk_font_path as before)
from .text import fmt_int, fmt_p_value, fmt_pct, fmt_pp  # noqa: E402,F401  (and viz.fmt_pct ...)

PALETTE = ["#1f4e79", "#e07b39", "#3a9e6f", "#c0392b", "#7f5fa8", "#8c8c8c", "#d4a017", "#2a9fd6"]
_STYLED = False


def apply_style() -> str | None:
    """Register the CJK font and set the house rcParams; returns the font family used."""
    global _STYLED
    family = None
    path = cjk_font_path()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
    plt.rcParams.update({
        "font.family": "sans-serif",
        "font.sans-serif": ([family] if family else []) + ["DejaVu Sans"],
        "axes.unicode_minus": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "figure.figsize": (8, 4.5),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "savefig.dpi": 120,
        "axes.titleweight": "normal",
    })
    _STYLED = True
    return family


#: The former name of :func:`fmt_money` (an amount in the current currency, :mod:`crmkit.currency`),
#: from when every store was in yuan; notebooks written then still call it.
fmt_yuan = fmt_money


money_formatter = FuncFormatter(lambda x, _pos: fmt_money(x))
yuan_formatter = money_formatter  # the former name
pct_formatter = FuncFormatter(lambda x, _pos: fmt_pct(x, 0))
int_formatter = FuncFormatter(lambda x, _pos: fmt_int(x))


def new_figure(nrows: int = 1, ncols: int = 1, **kw):
    """``fig, ax = new_figure()`` in the house style."""
    if not _STYLED:
        apply_style()
    return plt.subplots(nrows, ncols, **kw)


def png_bytes(fig) -> bytes:
    """``fig`` as PNG at the house resolution (``savefig.dpi``), trimmed to its content."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def show(fig) -> None:
    """Display ``fig`` once as an embedded PNG in a notebook, then close it.

    Reports embed the image in their HTML, so they open offline; its title is
    the image's alternative text. Closing keeps the inline backend from
    showing the figure a second time.
    """
    from IPython.display import Image, display

    display(Image(data=png_bytes(fig), format="png", metadata={"alt": figure_title(fig)}))
    plt.close(fig)


def figure_title(fig) -> str:
    """The figure's suptitle, else the first axes title found (empty when none)."""
    if fig.get_suptitle():
        return fig.get_suptitle()
    return next((ax.get_title() for ax in fig.axes if ax.get_title()), "")


def fmt_interval(estimate, interval, fmt=fmt_int) -> str:
    """``£1,200 [£800, £1,600]``: an estimate with its interval (``(low, high)`` or None), each via ``fmt``."""
    if interval is None:
        return fmt(estimate)
    low, high = interval
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"

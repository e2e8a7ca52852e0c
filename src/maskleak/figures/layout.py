"""Panel grids, titles and a canvas that holds all of a figure's text: a figure of one
image or of square images must not cut off its title, legend or panel titles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, FigureBase
from matplotlib.text import Text

#: Most panel columns of a grid; more panels wrap to further rows.
MAX_COLS = 5
#: Margin (inches) left around text that had to be given room.
PAD_IN = 0.08


def grid_shape(n: int, max_cols: int = MAX_COLS) -> tuple[int, int]:
    ncols = max(1, min(max_cols, n))
    return math.ceil(n / ncols), ncols


def grid_axes(fig: Figure, n: int, **kwargs: Any) -> tuple[list[Axes], int, int]:
    """``n`` visible panels on a grid (<= 5 columns); unused cells are hidden."""
    nrows, ncols = grid_shape(n)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, **kwargs)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n]), nrows, ncols


def label_outer(axes: list[Axes], ncols: int, xlabel: str, ylabel: str) -> None:
    """Axis labels on the left column and on the lowest visible panel of each column."""
    n = len(axes)
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=7)
        if i + ncols >= n:
            ax.set_xlabel(xlabel, fontsize=7)
            ax.tick_params(labelbottom=True)
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="x", nbins=4)  # a narrow panel has room for few x labels


def legend_cols(handles: Sequence[Any], panel_cols: int) -> int:
    """Columns of a figure legend under a grid of ``panel_cols`` panels: one under a
    single panel, two under two or three, all in one row under a wider grid."""
    if panel_cols == 1:
        return 1
    return max(1, min(len(handles), 2 if panel_cols < 4 else len(handles)))


def suptitle(fig: FigureBase, head: str, detail: str = "", fontsize: float = 10) -> Text:
    """``head (detail)`` as the title of ``fig``, or on two lines where one line would be
    wider than the figure."""
    one_line = f"{head} ({detail})" if detail else head
    title = fig.suptitle(one_line, fontsize=fontsize)
    if detail and _width_in(title) > 0.95 * fig.get_figure(root=True).get_figwidth():
        title.set_text(f"{head}\n({detail})")
    return title


def renderer(fig: Figure) -> RendererBase:
    """The Agg renderer of ``fig`` (figures are made by common.new_figure)."""
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)
    return canvas.get_renderer()


def _width_in(text: Text) -> float:
    figure = text.get_figure(root=True)
    assert isinstance(figure, Figure)
    return float(text.get_window_extent(renderer(figure)).width / figure.dpi)


def fit_canvas(fig: Figure, tries: int = 4) -> None:
    """Grow ``fig`` until everything it draws (titles, legends, labels, tick labels)
    lies on its canvas. Constrained layout places text inside the figure where it can,
    but a title or legend wider than the figure overhangs both sides; so does a column of
    fixed-aspect images that is narrower than its titles."""
    for _ in range(tries):
        fig.draw_without_rendering()
        box = fig.get_tightbbox(renderer(fig))
        if box is None:
            return
        width, height = fig.get_size_inches()
        grow_w = max(0.0, -box.x0) + max(0.0, box.x1 - width)
        grow_h = max(0.0, -box.y0) + max(0.0, box.y1 - height)
        if grow_w <= 0 and grow_h <= 0:
            return
        fig.set_size_inches(
            width + (grow_w + 2 * PAD_IN if grow_w > 0 else 0.0),
            height + (grow_h + 2 * PAD_IN if grow_h > 0 else 0.0),
        )

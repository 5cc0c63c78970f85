"""Pictures of the §3 results: titled image grids with colour bars, mosaics, bar and line
charts, PNG files.

Matplotlib is an optional extra (``pip install "convscope[pictures]"``); it is imported on
first use with the non-interactive Agg backend, so ``convscope.visualize`` itself imports
without it. Every function returns a Figure, which :func:`save_png` writes to disk or
:func:`png_bytes` encodes for the HTML report.

Two kinds of panel: a *picture* (pixel values in [0, 1], (H, W) drawn in gray or (H, W, 3)
in RGB: an image in its own colours) and a *map* (a scalar array drawn with a colour map,
e.g. a saliency heat map). :func:`pictures` lays out images (N, C, H, W) as pictures.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .display import image_layout

__all__ = ["pyplot", "Panel", "panel_grid", "image_grid", "pictures", "mosaic", "bar_chart", "line_chart",
           "matrix_plot", "save_png", "png_bytes"]


def pyplot():
    """matplotlib.pyplot with the Agg backend; a clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError('pictures need matplotlib: pip install "convscope[pictures]"') from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


@dataclass
class Panel:
    """One cell of a grid: ``image`` (H, W) or (H, W, 3); ``picture`` True draws it in its own
    colours (values in [0, 1]: gray for (H, W), RGB for (H, W, 3)); otherwise it is a map drawn
    with ``cmap`` between ``vmin`` and ``vmax`` (None: its own range)."""

    image: np.ndarray
    title: str = ""
    picture: bool = False
    cmap: str = "gray"
    vmin: float | None = None
    vmax: float | None = None


def pictures(images) -> list[np.ndarray]:
    """Images (N, C, H, W) with pixel values in [0, 1] -> N arrays (H, W) or (H, W, 3) for
    picture panels (clipped to [0, 1]; other channel counts show their mean in gray)."""
    return list(np.clip(image_layout(np.asarray(images, dtype=np.float64)), 0.0, 1.0))


def panel_grid(panels: list[Panel], title: str = "", ncols: int | None = None, colorbar: bool = False,
               cell: float = 1.6):
    """The panels in rows of ``ncols``; ``colorbar`` adds one colour bar for the map panels
    (drawn from the last of them: give the maps one shared vmin / vmax)."""
    plt = pyplot()
    n = len(panels)
    ncols = max(1, min(ncols or min(n, 8), max(n, 1)))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + (0.8 if colorbar else 0), cell * nrows + 0.7),
                             squeeze=False)
    mappable = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        p = panels[i]
        if p.picture:
            rgb = p.image.ndim == 3
            ax.imshow(np.clip(p.image, 0, 1), cmap=None if rgb else "gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            mappable = ax.imshow(p.image, cmap=p.cmap, vmin=p.vmin, vmax=p.vmax, interpolation="nearest")
        if p.title:
            ax.set_title(p.title, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    if colorbar and mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8)
    return fig


def image_grid(images, titles=None, title: str = "", ncols: int | None = None, cmap: str = "gray",
               colorbar: bool = False, symmetric: bool = False, cell: float = 1.6, picture: bool = False):
    """One panel per image: (N, H, W) or (N, H, W, 3).

    ``picture`` draws them as images in their own colours (values in [0, 1]); otherwise as
    maps with ``cmap``, ``colorbar`` adding a shared colour bar (one scale for all panels) and
    ``symmetric`` centring the scale on zero for signed maps. RGB arrays are always pictures.
    """
    images = np.asarray(images)
    n = len(images)
    rgb = images.ndim == 4
    limits = (None, None)
    if symmetric and n:
        vmax = float(np.abs(images).max())
        limits = (-vmax, vmax)
    elif colorbar and n:
        limits = (float(images.min()), float(images.max()))
    titles = [""] * n if titles is None else [str(t) for t in titles]
    panels = [Panel(images[i], titles[i], picture or rgb, cmap, *limits) for i in range(n)]
    return panel_grid(panels, title, ncols, colorbar and not (picture or rgb), cell)


def mosaic(rows: list[list[np.ndarray]], row_labels: list[str], title: str = "", pad: int = 2,
           height: float = 0.62):
    """Rows of pictures (each (h, w) or (h, w, 3) in [0, 1], all one size) as one image with
    white separators, each row labelled on the left: many small images, one axes (fast)."""
    plt = pyplot()
    first = rows[0][0]
    h, w = first.shape[:2]
    ncols = max(len(r) for r in rows)
    canvas = np.ones((len(rows) * (h + pad) - pad, ncols * (w + pad) - pad) + first.shape[2:])
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            canvas[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = np.clip(img, 0, 1)
    fig, ax = plt.subplots(figsize=(2.6 + 0.62 * ncols, 0.6 + height * len(rows)))
    ax.imshow(canvas, cmap=None if canvas.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([i * (h + pad) + h / 2 for i in range(len(rows))], row_labels, fontsize=7)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def bar_chart(labels, values, title: str, ylabel: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(labels) + 1.5), 3.2))
    ax.bar(range(len(values)), values, color="#4472c4")
    ax.set_xticks(range(len(values)), [str(label) for label in labels], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def line_chart(series: dict, title: str, xlabel: str, ylabel: str):
    """``series``: label -> (x values, y values)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def matrix_plot(matrix, row_labels, col_labels, title: str, xlabel: str, ylabel: str, annotate: bool = True):
    """A heat map with a colour bar (confusion matrices, class selectivity tables)."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * matrix.shape[1], 1.0 + 0.3 * matrix.shape[0]))
    shown = ax.imshow(matrix, cmap="Blues", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in col_labels], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in row_labels], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if annotate and matrix.size <= 400:
        top = matrix.max() if matrix.size else 0
        for (i, j), v in np.ndenumerate(matrix):
            text = f"{v:d}" if np.issubdtype(matrix.dtype, np.integer) else f"{v:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6,
                    color="white" if top and v > 0.6 * top else "black")
    fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_png(fig, path) -> Path:
    """Write the figure to ``path`` (atomically) and close it."""
    from ..io import atomic_write_bytes
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig))
    return path

"""Pictures of the §3 results: titled image grids with colour bars, bar and line charts, PNG files.

Matplotlib is an optional extra (``pip install "convscope[pictures]"``); it is imported on
first use with the non-interactive Agg backend. Every function returns a Figure, which
:func:`save_png` writes to disk or :func:`png_bytes` encodes for the HTML report.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

__all__ = ["pyplot", "image_grid", "bar_chart", "line_chart", "matrix_plot", "save_png", "png_bytes",
           "to_display"]


def pyplot():
    """matplotlib.pyplot with the Agg backend; a clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError('pictures need matplotlib: pip install "convscope[pictures]"') from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def to_display(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) model-space or raw images -> (N, H, W) or (N, H, W, 3), each scaled to [0, 1]."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else (
            np.moveaxis(images, 1, -1) if images.shape[1] == 3 else images.mean(axis=1))
    axes = tuple(range(1, images.ndim))
    lo, hi = images.min(axis=axes, keepdims=True), images.max(axis=axes, keepdims=True)
    return (images - lo) / np.where(hi > lo, hi - lo, 1.0)


def image_grid(images, titles=None, title: str = "", ncols: int | None = None, cmap: str = "gray",
               colorbar: bool = False, symmetric: bool = False, cell: float = 1.6):
    """One panel per image: (N, H, W) (scalar maps, drawn with ``cmap``) or (N, H, W, 3) in [0, 1].

    ``colorbar`` adds a shared colour bar (for maps whose values matter); ``symmetric``
    centres the colour scale on zero for signed maps.
    """
    plt = pyplot()
    images = np.asarray(images)
    n = len(images)
    ncols = ncols or min(n, 8)
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + (0.8 if colorbar else 0), cell * nrows + 0.6),
                             squeeze=False)
    rgb = images.ndim == 4
    vmax = float(np.abs(images).max()) if symmetric and n else None
    lim = dict(vmin=-vmax, vmax=vmax) if symmetric else (
        dict(vmin=float(images.min()), vmax=float(images.max())) if colorbar and n else {})
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            shown = ax.imshow(images[i], cmap=None if rgb else cmap, interpolation="nearest", **lim)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if colorbar and shown is not None and not rgb:
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
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
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * matrix.shape[1], 0.8 + 0.4 * matrix.shape[0]))
    shown = ax.imshow(matrix, cmap="Blues")
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
    from ..training.checkpoint import atomic_write_bytes
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig))
    return path

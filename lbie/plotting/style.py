"""The book's figure style and the panels every figure is drawn with (matplotlib).

Each ``plot_*`` / ``show_*`` function of :mod:`lbie.plotting` draws one titled figure with labelled axes and
returns the :class:`matplotlib.figure.Figure`.  Arrays may be numpy arrays or torch tensors (:func:`plottable`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches

# The book's figure style, applied when this module is imported. Figures are drawn at most as wide
# as the book's text column (COLUMN_WIDTH inches), so the page never shrinks them and text of 8 pt
# or more stays 8 pt or more; inline figures are rendered at 150 dpi.
COLUMN_WIDTH = 7.5
MIN_FONTSIZE = 8
STYLE = {"figure.dpi": 150, "savefig.dpi": 150, "figure.figsize": (COLUMN_WIDTH, 3.6),
         "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8.5,
         "ytick.labelsize": 8.5, "legend.fontsize": 8, "legend.title_fontsize": 8.5,
         "figure.titlesize": 10.5}
plt.rcParams.update(STYLE)


def column_figsize(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` in inches, scaled down (aspect kept) to at most :data:`COLUMN_WIDTH` wide."""
    scale = min(1.0, COLUMN_WIDTH / width)
    return width * scale, height * scale


def plottable(x) -> np.ndarray:
    """A numpy array of ``x`` for drawing; a tensor is detached, cast to float32 (bf16 has no numpy type) and
    moved to the CPU."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def image_panel(ax, img, title=None):
    """An image without ticks, with an optional title."""
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


MASK_CMAP = "magma"


def mask_panel(ax, mask, image=None, title=None):
    """A mask in [0, 1] at any resolution, over ``image`` when given; returns the AxesImage."""
    extent = None
    if image is not None:
        image_panel(ax, image)
        H, W = np.asarray(image).shape[:2]
        extent = (-0.5, W - 0.5, H - 0.5, -0.5)
    im = ax.imshow(plottable(mask), cmap=MASK_CMAP, vmin=0, vmax=1, interpolation="nearest",
                   alpha=0.6 if image is not None else None, extent=extent)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def text_panel(ax, text: str, label: str | None = None, colour="k", width: int = 26, fontsize: float = 8.5):
    """A quoted, wrapped text in an axes without frame, below an optional bold ``label``."""
    import textwrap

    ax.axis("off")
    if label:
        ax.text(0.0, 0.95, label, color=colour, fontsize=8, fontweight="bold", va="top", transform=ax.transAxes)
    ax.text(0.0, 0.78 if label else 0.97, textwrap.fill(f"“{text}”", width), fontsize=fontsize, va="top", ha="left",
            transform=ax.transAxes)


def draw_word_row(ax, words, weights, y: float, colour, threshold: float, scale: float):
    """Words at height ``y``; above each, a bar of height ``weight / scale`` and the weight's value."""
    x = 0.0
    for word, w in zip(words, weights):
        width = max(len(word), 3) * 0.11 + 0.25
        hot = w > threshold
        h = 0.9 * w / scale
        ax.add_patch(patches.Rectangle((x + 0.05, y + 0.3), width - 0.1, h, color=colour if hot else "0.75"))
        ax.text(x + width / 2, y + 0.32 + h, f"{w:.2f}", ha="center", va="bottom", fontsize=8,
                fontweight="bold" if hot else "normal")
        ax.text(x + width / 2, y + 0.12, word, ha="center", va="center", fontsize=8.5,
                fontweight="bold" if hot else "normal", color=colour if hot else "k")
        x += width
    return x


def per_index(values, indices: list[int], n: int) -> dict | None:
    """{index: value} from ``values`` given for the whole data set (n rows) or one per index."""
    if values is None:
        return None
    if len(values) == len(indices) and len(values) != n:
        return dict(zip(indices, values))
    return {i: values[i] for i in indices}


def mean_std_pair(v):
    """``(mean, std)`` of a :func:`lbie.metrics.summary.mean_std` dict, or ``(v, 0)`` of a number."""
    if isinstance(v, dict):
        return v["mean"], v.get("std", 0.0)
    return float(v), 0.0

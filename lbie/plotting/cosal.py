"""Figures of the CoSaL data (LBIE §4.1; chapter 1): examples with their captions, caption graphs over the
3x3 grid, class balance, coverage and the nine shapes.  Sentences are numbered from 0, like
``data.sentences(i)``; "D" marks a direct and "R" a relational sentence."""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from matplotlib.colors import ListedColormap

from ..data.cosal import COLOR_RGB, COLORS, IS, SHAPES, VOCAB, CoSaL, labels_to_rgb
from .style import COLUMN_WIDTH, column_figsize, image_panel, plottable

KIND_COLOR = ("tab:blue", "tab:orange")  # direct, relational
KIND_LETTER = ("D", "R")
SENTENCE_CMAP = ListedColormap(plt.get_cmap("tab10").colors[:9], name="sentences")


def sentence_labels(data: CoSaL, i: int) -> list[str]:
    """``"0 D: circle is red"``, ``"5 R: blue below diamond"``, ... for the caption of image ``i``."""
    return [f"{j} {KIND_LETTER[k]}: {s}" for j, (k, s) in enumerate(zip(data.kind[i], data.sentences(i)))]


def _sentence_list(ax, data: CoSaL, i: int, fontsize=8):
    ax.axis("off")
    for j, line in enumerate(sentence_labels(data, i)):
        ax.text(0.0, 1 - (j + 0.5) / 9, line, color=KIND_COLOR[data.kind[i, j]], fontsize=fontsize,
                va="center", ha="left", transform=ax.transAxes, family="monospace")


def show_cosal_examples(data: CoSaL, indices: Iterable[int], predictions=None, *, title: str | None = None):
    """One row per image: input silhouettes, target, prediction (if ``predictions``, a label map
    (N, H, W) for the whole data set or one per index), and the nine sentences (blue "D" = direct,
    orange "R" = relational)."""
    indices = [int(i) for i in indices]
    if predictions is not None:
        predictions = plottable(predictions)
        if len(predictions) == len(indices) and len(predictions) != len(data):
            predictions = dict(zip(indices, predictions))
    n_img = 2 + (predictions is not None)
    ratios = [1] * n_img + [2.2]
    fig, axes = plt.subplots(len(indices), n_img + 1, figsize=(1.35 * n_img + 3.4, 1.55 * len(indices) + 0.4),
                             gridspec_kw=dict(width_ratios=ratios), squeeze=False)
    for row, i in enumerate(indices):
        top = row == 0
        image_panel(axes[row, 0], data.inputs(i), "input" if top else None)
        image_panel(axes[row, 1], data.targets(i), "target" if top else None)
        if predictions is not None:
            image_panel(axes[row, 2], labels_to_rgb(predictions[i]), "prediction" if top else None)
        axes[row, 0].set_ylabel(f"image {i}", fontsize=9)
        _sentence_list(axes[row, -1], data, i)
        if top:
            axes[row, -1].set_title("caption (D = direct, R = relational)", fontsize=9)
    fig.suptitle(title or f"CoSaL examples ({data.num_direct} direct sentences, coverage={data.coverage!r})")
    fig.tight_layout()
    return fig


def draw_caption_tree(ax, data: CoSaL, i: int, *, show_image: bool = True, labels: bool = True):
    """Draw the caption of image ``i`` as a graph over the 3x3 grid: cells with a direct sentence
    get a blue frame and a "D"; each relational sentence is an arrow from its reference cell to the
    cell it describes (labelled with its sentence index); cells no sentence determines are hatched.
    With ``coverage="full"`` the arrows form a spanning forest rooted at the direct cells."""
    if show_image:
        ax.imshow(data.targets(i), extent=(0, 3, 3, 0), interpolation="nearest")
    ax.set_xlim(0, 3)
    ax.set_ylim(3, 0)
    for k in range(1, 3):
        ax.axhline(k, color="0.6", lw=0.8)
        ax.axvline(k, color="0.6", lw=0.8)
    for cell in range(9):
        r, c = divmod(cell, 3)
        if not data.determined[i, cell]:
            ax.add_patch(patches.Rectangle((c, r), 1, 1, facecolor="0.5", alpha=0.45, hatch="///",
                                           edgecolor="0.2", lw=0))
    direct_cells = set(data.target[i][data.kind[i] == 0].tolist())
    for cell in direct_cells:
        r, c = divmod(cell, 3)
        ax.add_patch(patches.Rectangle((c + 0.04, r + 0.04), 0.92, 0.92, fill=False, edgecolor=KIND_COLOR[0],
                                       lw=2.5))
        ax.text(c + 0.1, r + 0.12, "D", color=KIND_COLOR[0], fontsize=9, fontweight="bold", va="top")
    for j in np.flatnonzero(data.kind[i] == 1):
        (r0, c0), (r1, c1) = divmod(int(data.ref[i, j]), 3), divmod(int(data.target[i, j]), 3)
        ax.annotate("", xy=(c1 + 0.5, r1 + 0.5), xytext=(c0 + 0.5, r0 + 0.5),
                    arrowprops=dict(arrowstyle="-|>", color=KIND_COLOR[1], lw=2.2, shrinkA=6, shrinkB=6))
        if labels:
            ax.text((c0 + c1) / 2 + 0.5 + 0.12 * (r1 != r0), (r0 + r1) / 2 + 0.5 - 0.12 * (c1 != c0), str(j),
                    color="k", fontsize=8, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=KIND_COLOR[1], lw=0.8))
    ax.set_xticks([0.5, 1.5, 2.5], ["col 0", "col 1", "col 2"], fontsize=8)
    ax.set_yticks([0.5, 1.5, 2.5], ["row 0", "row 1", "row 2"], fontsize=8)
    ax.set_title(f"image {i}: {int(data.determined[i].sum())}/9 cells determined", fontsize=9)
    return ax


def plot_caption_trees(data: CoSaL, indices: Iterable[int], *, with_sentences: bool = True,
                       title: str | None = None):
    """:func:`draw_caption_tree` for several images, each next to its caption."""
    indices = [int(i) for i in indices]
    cols = 2 if with_sentences else 1
    fig, axes = plt.subplots(len(indices), cols, figsize=(3.0 + 3.4 * (cols - 1), 3.0 * len(indices)),
                             squeeze=False, gridspec_kw=dict(width_ratios=[1, 1.15][:cols]))
    for row, i in enumerate(indices):
        draw_caption_tree(axes[row, 0], data, i)
        if with_sentences:
            _sentence_list(axes[row, 1], data, i, fontsize=9)
    fig.suptitle(title or f"caption graphs (coverage={data.coverage!r}, {data.num_direct} direct)\n"
                          "blue D = direct, orange arrow = relational, hatched = undetermined", fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_balance(data: CoSaL):
    """Four panels: colour frequency per cell, colour frequency per shape, sentence kind per
    sentence position, and the reasoning depth of cells (-1 = undetermined)."""
    C = data.num_colors
    palette = COLOR_RGB[:C] / 255.0
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.4))

    def stacked(ax, groups, names, xlabel):
        freq = np.stack([np.bincount(g, minlength=C) / max(len(g), 1) for g in groups])  # (G, C)
        bottom = np.zeros(len(groups))
        for c in range(C):
            ax.bar(np.arange(len(groups)), freq[:, c], bottom=bottom, color=palette[c], edgecolor="0.3",
                   lw=0.5, label=COLORS[c])
            bottom += freq[:, c]
        ax.axhline(1 / C, color="k", ls=":", lw=0.8)
        ax.set_xticks(np.arange(len(groups)), names, rotation=30 if len(names[0]) > 3 else 0, ha="right"
                      if len(names[0]) > 3 else "center", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of images")
        ax.set_ylim(0, 1)

    stacked(axes[0, 0], [data.cell_color[:, k] for k in range(9)], [str(k) for k in range(9)], "cell (row-major)")
    axes[0, 0].set_title("colour frequency per cell")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.915), ncol=C,
               fontsize=8, frameon=False, title="colour (dotted line: uniform 1/C)", title_fontsize=8)
    by_shape = [np.take_along_axis(data.cell_color, np.argsort(data.cell_shape, 1), 1)[:, k] for k in range(9)]
    stacked(axes[0, 1], by_shape, list(SHAPES), "shape")
    axes[0, 1].set_title("colour frequency per shape")

    ax = axes[1, 0]
    rel_tok = data.tokens[:, :, 1][data.kind == 1]  # the relation word of every relational sentence
    names = ["direct", "relational"] + [VOCAB[t] for t in range(IS + 1, len(VOCAB))]
    counts = [(data.kind == 0).sum(1).mean(), (data.kind == 1).sum(1).mean()] + \
             [(rel_tok == t).sum() / len(data) for t in range(IS + 1, len(VOCAB))]
    ax.bar(np.arange(len(names)), counts, color=list(KIND_COLOR) + ["tab:purple"] * (len(names) - 2))
    ax.set_xticks(np.arange(len(names)), names, fontsize=8, rotation=30, ha="right")
    ax.set_xlabel("sentence kind / relation word")
    ax.set_ylabel("mean count per caption")
    ax.set_title("sentence kinds and relation words")

    ax = axes[1, 1]
    values, counts = np.unique(data.depth, return_counts=True)
    ax.bar(values, counts / data.depth.size, color=["0.6" if v < 0 else "tab:green" for v in values])
    ax.set_xticks(values, ["undet." if v < 0 else str(v) for v in values])
    ax.set_xlabel("reasoning depth (relational hops from a direct cell)")
    ax.set_ylabel("share of cells")
    ax.set_title("cells by reasoning depth")
    fg = (data.labels > 0).mean()
    fig.suptitle(f"CoSaL class balance ({len(data)} images, {data.num_direct} direct, coverage={data.coverage!r};\n"
                 f"{fg:.1%} of pixels are foreground)")
    fig.tight_layout(rect=(0, 0, 1, 0.87))
    return fig


def plot_coverage(rows: Sequence[dict], keys: Sequence[str] | None = None):
    """Bar charts of coverage statistics: ``rows`` are dicts with ``coverage``, ``num_direct`` and
    numeric statistics (one panel per statistic in ``keys``; default every other key)."""
    keys = list(keys or [k for k in rows[0] if k not in ("coverage", "num_direct")])
    coverages = list(dict.fromkeys(r["coverage"] for r in rows))
    directs = sorted({r["num_direct"] for r in rows})
    fig, axes = plt.subplots(1, len(keys), figsize=column_figsize(2.5 * len(keys), 3.2), squeeze=False)
    width = 0.8 / len(coverages)
    for ax, key in zip(axes[0], keys):
        for j, cov in enumerate(coverages):
            vals = [next((r[key] for r in rows if r["coverage"] == cov and r["num_direct"] == d), np.nan)
                    for d in directs]
            ax.bar(np.arange(len(directs)) + (j - (len(coverages) - 1) / 2) * width, vals, width, label=cov)
        ax.set_xticks(np.arange(len(directs)), [str(d) for d in directs])
        ax.set_xlabel("number of direct sentences")
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(key.replace("_", " "), fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), title="coverage", fontsize=8, title_fontsize=8,
               loc="upper right", ncol=len(coverages), frameon=False)
    fig.suptitle("how much of each image the caption determines", x=0.4)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_shapes(n_samples: int = 4, *, cell: int = 16, seed: int = 0):
    """The nine CoSaL shapes (rows) in ``n_samples`` random jitter draws each (columns), one
    ``cell`` x ``cell`` grid cell per drawing, as the generator renders them."""
    from ..data.cosal import render_shape

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(SHAPES), n_samples, figsize=(1.1 * n_samples + 1.6, 1.05 * len(SHAPES)),
                             squeeze=False)
    for k, name in enumerate(SHAPES):
        masks = render_shape(k, n_samples, cell, rng)
        for j in range(n_samples):
            ax = axes[k, j]
            ax.imshow(~masks[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{k}: {name}", rotation=0, ha="right", va="center", fontsize=8)
            if k == 0:
                ax.set_title(f"draw {j + 1}", fontsize=8)
    fig.suptitle(f"the nine shapes ({cell}x{cell} px cell, token id: name)", fontsize=10)
    fig.tight_layout()
    return fig

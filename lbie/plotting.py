"""Every figure of the book, in one module (matplotlib).

Each ``plot_*`` / ``show_*`` function draws one titled figure with labelled axes and returns the
:class:`matplotlib.figure.Figure`; :func:`draw_caption_tree` draws into an existing axes.
Arrays may be numpy arrays or torch tensors.  Sentences are numbered from 0, like
``data.sentences(i)``; "D" marks a direct and "R" a relational sentence.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from matplotlib.colors import ListedColormap

from .cosal import COLOR_RGB, COLORS, IS, SHAPES, VOCAB, CoSaL, labels_to_rgb

KIND_COLOR = ("tab:blue", "tab:orange")  # direct, relational
KIND_LETTER = ("D", "R")
SENTENCE_CMAP = ListedColormap(plt.get_cmap("tab10").colors[:9], name="sentences")

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


def _figsize(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` in inches, scaled down (aspect kept) to at most :data:`COLUMN_WIDTH` wide."""
    scale = min(1.0, COLUMN_WIDTH / width)
    return width * scale, height * scale


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def sentence_labels(data: CoSaL, i: int) -> list[str]:
    """``"0 D: circle is red"``, ``"5 R: blue below diamond"``, ... for the caption of image ``i``."""
    return [f"{j} {KIND_LETTER[k]}: {s}" for j, (k, s) in enumerate(zip(data.kind[i], data.sentences(i)))]


def _image(ax, img, title=None):
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _sentence_list(ax, data: CoSaL, i: int, fontsize=8):
    ax.axis("off")
    for j, line in enumerate(sentence_labels(data, i)):
        ax.text(0.0, 1 - (j + 0.5) / 9, line, color=KIND_COLOR[data.kind[i, j]], fontsize=fontsize,
                va="center", ha="left", transform=ax.transAxes, family="monospace")


# --------------------------------------------------------------------------- CoSaL data
def show_cosal_examples(data: CoSaL, indices: Iterable[int], predictions=None, *, title: str | None = None):
    """One row per image: input silhouettes, target, prediction (if ``predictions``, a label map
    (N, H, W) for the whole data set or one per index), and the nine sentences (blue "D" = direct,
    orange "R" = relational)."""
    indices = [int(i) for i in indices]
    if predictions is not None:
        predictions = _np(predictions)
        if len(predictions) == len(indices) and len(predictions) != len(data):
            predictions = dict(zip(indices, predictions))
    n_img = 2 + (predictions is not None)
    ratios = [1] * n_img + [2.2]
    fig, axes = plt.subplots(len(indices), n_img + 1, figsize=(1.35 * n_img + 3.4, 1.55 * len(indices) + 0.4),
                             gridspec_kw=dict(width_ratios=ratios), squeeze=False)
    for row, i in enumerate(indices):
        top = row == 0
        _image(axes[row, 0], data.inputs(i), "input" if top else None)
        _image(axes[row, 1], data.targets(i), "target" if top else None)
        if predictions is not None:
            _image(axes[row, 2], labels_to_rgb(predictions[i]), "prediction" if top else None)
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
    fig, axes = plt.subplots(1, len(keys), figsize=_figsize(2.5 * len(keys), 3.2), squeeze=False)
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


# --------------------------------------------------------------------------- the fusion module
def plot_feature_maps(maps: dict, *, title: str = "feature maps", cmap: str = "viridis", vmin=None, vmax=None):
    """Named 2-D maps (e.g. gate means per region), each with its colour bar: one row of up to three
    maps, two rows for more."""
    cols = len(maps) if len(maps) <= 3 else -(-len(maps) // 2)
    rows = -(-len(maps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=_figsize(2.5 * cols, 2.3 * rows + 0.3), squeeze=False)
    for ax, (name, m) in zip(axes.flat, maps.items()):
        im = ax.imshow(_np(m), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("region column")
        ax.set_ylabel("region row")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes.flat[len(maps):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention_steps(data: CoSaL, i: int, attention, *, stop_prob=None):
    """Which sentence each region attends most at each step (paper Fig. 5 style).

    ``attention``: (T, M*N, S) weights of image ``i``.  Top row: per step, the M x N regions over
    the target image, coloured and numbered by their arg-max sentence (regions drawn faded after
    their most likely stopping step when ``stop_prob`` (T, M, N) is given).  Bottom row: the full
    region x sentence weights.  Up to four steps side by side (more wrap to further rows); the
    sentences are listed below (blue: direct, orange: relational)."""
    att = _np(attention)
    T, R, S = att.shape
    M = N = int(round(np.sqrt(R)))
    stop_step = _np(stop_prob).argmax(0) if stop_prob is not None else np.full((M, N), T - 1)
    per_row = min(T, 4)
    blocks = -(-T // per_row)
    # constrained layout fills the figure, and the saved image adds 0.1 in on each side
    fig = plt.figure(figsize=(COLUMN_WIDTH - 0.2, 3.9 * blocks + 1.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.9 * blocks, 1.0])
    axes = top.subplots(2 * blocks, per_row, squeeze=False, gridspec_kw=dict(height_ratios=[1, 1.25] * blocks))
    for t in range(T, blocks * per_row):  # the empty places of the last row
        axes[2 * (t // per_row), t % per_row].axis("off")
        axes[2 * (t // per_row) + 1, t % per_row].axis("off")
    labels = sentence_labels(data, i)
    for t in range(T):
        row, col = 2 * (t // per_row), t % per_row
        ax = axes[row, col]
        ax.imshow(data.targets(i), extent=(0, N, M, 0), interpolation="nearest")
        best = att[t].argmax(-1).reshape(M, N)
        for r in range(M):
            for c in range(N):
                j = int(best[r, c])
                active = t <= stop_step[r, c]
                ax.add_patch(patches.Rectangle((c, r), 1, 1, facecolor=SENTENCE_CMAP(j), alpha=0.55 if active else 0.1,
                                               edgecolor="white", lw=0.5))
                ax.text(c + 0.5, r + 0.5, str(j), ha="center", va="center", fontsize=8,
                        color="k" if active else "0.6", fontweight="bold" if data.kind[i, j] == 0 else "normal")
        for k in range(1, 3):
            ax.axhline(k * M / 3, color="k", lw=1.2)
            ax.axvline(k * N / 3, color="k", lw=1.2)
        ax.set_xlim(0, N)
        ax.set_ylim(M, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step t = {t + 1}", fontsize=9.5)
        if col == 0:
            ax.set_ylabel("arg-max sentence")

        ax = axes[row + 1, col]
        im = ax.imshow(att[t], aspect="auto", cmap="magma", vmin=0, vmax=float(att.max()), interpolation="nearest")
        ax.set_xticks(np.arange(S), [str(j) for j in range(S)], fontsize=8)
        for j, tick in enumerate(ax.get_xticklabels()):
            tick.set_color(KIND_COLOR[data.kind[i, j]])
            tick.set_fontweight("bold" if data.kind[i, j] == 0 else "normal")
        ax.set_xlabel("sentence")
        if col == 0:
            ax.set_ylabel("weights β per region\n(row-major)")
        else:
            ax.tick_params(labelleft=False)
    top.colorbar(im, ax=axes[1::2].ravel().tolist(), label="attention weight", shrink=0.9)
    bottom.text(0.0, 1.0, "sentences (D = direct, R = relational):", fontsize=8.5, va="top")
    rows = -(-S // 2)
    for j, line in enumerate(labels):
        bottom.text(0.5 * (j // rows), 0.8 - 0.8 * (j % rows) / rows, line, color=KIND_COLOR[data.kind[i, j]],
                    fontsize=8, family="monospace", va="top")
    fig.suptitle(f"attention over sentences, image {i}" +
                 ("\n(faded: after the region's most likely stopping step)" if stop_prob is not None else ""))
    return fig


def plot_stop_steps(stop_prob):
    """Termination: left, the most likely stopping step of each region (M x N); right, the
    stopping distribution.  ``stop_prob`` is (T, M, N) for one image or (B, T, M, N) for a batch
    (left then shows the per-region mean of the most likely step)."""
    p = _np(stop_prob)
    if p.ndim == 3:
        p = p[None]
    B, T, M, N = p.shape
    best = p.argmax(1) + 1  # (B, M, N), steps counted from 1
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.4))
    ax = axes[0]
    shown = best[0] if B == 1 else best.mean(0)
    im = ax.imshow(shown, cmap="viridis", vmin=1, vmax=max(T, 2), interpolation="nearest")
    for r in range(M):
        for c in range(N):
            ax.text(c, r, f"{shown[r, c]:.0f}" if B == 1 else f"{shown[r, c]:.1f}", ha="center", va="center",
                    fontsize=8, color="w" if shown[r, c] < (1 + T) / 2 else "k")
    ax.set_xlabel("region column")
    ax.set_ylabel("region row")
    ax.set_title("most likely stopping step" + ("" if B == 1 else f"\n(mean over {B} images)"), fontsize=9.5)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="step")
    ax = axes[1]
    steps = np.arange(1, T + 1)
    ax.bar(steps - 0.2, p.mean((0, 2, 3)), 0.4, label=r"mean $\beta^t$ (stop probability)")
    ax.bar(steps + 0.2, np.bincount(best.ravel() - 1, minlength=T) / best.size, 0.4,
           label="share of regions stopping here (arg-max)")
    ax.set_xticks(steps)
    ax.set_xlabel("step t")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1)
    ax.set_title("stopping distribution over regions", fontsize=9.5)
    ax.legend(fontsize=8)
    fig.suptitle("termination gates")
    fig.tight_layout()
    return fig


def plot_gumbel_temperatures(probs, taus=(5.0, 1.0, 0.5, 0.1), *, n_samples: int = 2000, n_shown: int = 20,
                             seed: int = 0):
    """Gumbel-softmax samples z ~ GS(log p, τ) at several temperatures against the categorical
    distribution ``p`` (K,): bars = p, grey lines = single samples, black = mean sample,
    red dots = how often each component is the sample's arg-max (equals p at every τ)."""
    import torch
    import torch.nn.functional as F

    p = torch.as_tensor(_np(probs), dtype=torch.float64)
    K = len(p)
    gen = torch.Generator().manual_seed(seed)
    cols = 2 if len(taus) == 4 else min(len(taus), 3)
    rows = -(-len(taus) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=_figsize(3.7 * cols, 2.7 * rows + 0.4), sharey=True, squeeze=False)
    x = np.arange(1, K + 1)
    for ax in axes.flat[len(taus):]:
        ax.axis("off")
    for ax, tau in zip(axes.flat, taus):
        g = -torch.log(-torch.log(torch.rand(n_samples, K, generator=gen, dtype=torch.float64).clamp_min(1e-20)))
        z = F.softmax((p.log() + g) / tau, dim=-1).numpy()
        ax.bar(x, p.numpy(), color="tab:blue", alpha=0.35, label="categorical p")
        for s in z[:n_shown]:
            ax.plot(x, s, color="0.5", lw=0.6, alpha=0.6)
        ax.plot(x, z.mean(0), "k-o", ms=4, lw=1.5, label="mean sample")
        ax.plot(x, np.bincount(z.argmax(1), minlength=K) / n_samples, "r.", ms=9, label="arg-max frequency")
        ax.set_title(f"τ = {tau:g}  (mean max z = {z.max(1).mean():.2f})", fontsize=9)
        ax.set_xticks(x)
        ax.set_xlabel("stopping step t")
    for ax in axes[:, 0]:
        ax.set_ylabel("probability / sample value")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Gumbel-softmax relaxation of a categorical stopping step")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- training and results
def plot_training_curves(history: Sequence[dict], *, title: str = "training"):
    """Left: the training loss.  When the records hold ``loss_curve`` ([global step, mean loss of
    the last steps] pairs, written by :func:`lbie.train.fit`) the loss is drawn against the
    training step, with each epoch's mean loss as a dot at the epoch's last step; otherwise the
    epoch means against the epoch.  Right: the test IoUs per epoch (``iou``, ``iou_determined``,
    ``iou_code_metric`` when evaluated)."""
    epochs = [h["epoch"] for h in history]
    curve = [pt for h in history for pt in h.get("loss_curve") or []]
    by_step = all("step" in h for h in history)
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.3))
    ax = axes[0]
    if curve:
        ax.plot(*zip(*curve), "-", lw=1.2, color="tab:blue", label="running mean of the batch losses")
    if by_step:
        ax.plot([h["step"] for h in history], [h["train_loss"] for h in history], "o", color="tab:red",
                label="epoch mean", zorder=3)
        ax.set_xlabel("training step (batches)")
        ax.legend(fontsize=8)
    else:
        ax.plot(epochs, [h["train_loss"] for h in history], "o-")
        ax.set_xlabel("epoch")
    ax.set_ylabel("weighted cross-entropy")
    ax.set_title("training loss")
    for key, style in (("iou", "o-"), ("iou_determined", "s--"), ("iou_code_metric", "^:")):
        pts = [(h["epoch"], h[key]) for h in history if key in h]
        if pts:
            axes[1].plot(*zip(*pts), style, label=key)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("IoU (test)")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("test IoU after each epoch")
    axes[1].legend(fontsize=8)
    for a in axes:
        a.xaxis.get_major_locator().set_params(integer=True)
    if len(epochs) <= 12:
        axes[1].set_xticks(epochs)
        axes[1].set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _mean_std(v):
    if isinstance(v, dict):
        return v["mean"], v.get("std", 0.0)
    return float(v), 0.0


def _row_label(row: dict) -> str:
    parts = []
    if "coverage" in row:
        parts.append(row["coverage"])
    if "T" in row:
        parts.append(f"T={row['T']}" + (" att" if row.get("attention") else " no att"))
    if "num_direct" in row:
        parts.append(f"{row['num_direct']} direct")
    return ", ".join(parts) or "model"


def plot_iou_by_depth(rows, *, label=None, title: str = "IoU by reasoning depth"):
    """IoU (the paper's metric restricted to cells at each depth) against reasoning depth.

    ``rows``: one metrics dict (with ``iou_by_depth``), a list of them, or a results dict with a
    ``rows`` list (``lbie.reproduce``); values may be floats or ``{"mean", "std"}``.  ``label``
    maps a row to its legend entry (default: coverage, T, attention, num_direct when present)."""
    if isinstance(rows, dict):
        rows = rows["rows"] if "rows" in rows else [rows]
    label = label or _row_label
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        items = sorted(row["iou_by_depth"].items(), key=lambda kv: int(kv[0]))
        d = np.array([int(k) for k, _ in items])
        m, s = np.array([_mean_std(v) for _, v in items]).T
        ax.errorbar(np.where(d < 0, -1, d), m, yerr=s, marker="o", capsize=3, label=label(row))
    ax.set_xlabel("reasoning depth (relational hops; -1 = undetermined)")
    ax.set_ylabel("IoU (paper metric)")
    ax.set_ylim(0, 1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def table2_frame(result: dict, *, metrics: Sequence[str] | None = None):
    """The paper's Table 2 next to ours, as a pandas DataFrame: one row per configuration
    (coverage, T, attention, num_direct) with ``paper`` and, for each metric, ``<metric>`` (mean
    over seeds) and ``<metric>_std``; ``seeds`` counts the runs.  ``result`` is the dict written by
    :func:`lbie.reproduce.reproduce_cosal_table2` (its ``rows``)."""
    import pandas as pd

    rows = result["rows"] if isinstance(result, dict) else result
    keys = ("coverage", "T", "attention", "num_direct")
    if metrics is None:
        metrics = [k for k in rows[0] if isinstance(rows[0][k], dict) and "mean" in rows[0][k]
                   and k != "train_seconds"] if rows else []
    records = []
    for row in rows:
        rec = {k: row[k] for k in keys if k in row}
        rec["paper"] = row.get("paper", np.nan)
        for m in metrics:
            mean, std = _mean_std(row[m]) if m in row else (np.nan, np.nan)
            rec[m], rec[f"{m}_std"] = mean, std
        if metrics and isinstance(row.get(metrics[0]), dict):
            rec["seeds"] = row[metrics[0]].get("seeds", 1)
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    if "seeds" in frame:  # a count: an integer column, even when some rows have no runs yet
        frame["seeds"] = frame["seeds"].astype("Int64")
    if "paper" in frame and "iou" in frame:
        frame["iou - paper"] = frame["iou"] - frame["paper"]
    return frame


def gate_study_frame(result: dict):
    """The termination-gate study (:func:`lbie.reproduce.reproduce_cosal_gates`) as a DataFrame: per
    setting, IoU overall, on direct cells (depth 0) and on relational cells (mean over depths >= 1),
    and the share of regions stopping at each step, over all regions and for direct / relational cells."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        depth = {int(d): v["mean"] for d, v in row["iou_by_depth"].items()}
        share = row["stop_step_share"]
        rel = [v for d, v in share["by_depth"].items() if int(d) >= 1]
        rec = {"setting": row["name"], "iou": row["iou"]["mean"], "iou direct": depth.get(0, np.nan),
               "iou relational": np.mean([v for d, v in depth.items() if d >= 1])}
        for t, p in enumerate(share["all"]):
            rec[f"stop {t + 1}"] = p
        direct = share["by_depth"].get("0", [np.nan] * len(share["all"]))
        relational = np.mean(rel, 0) if rel else [np.nan] * len(share["all"])
        # mean stopping step (1-based) of direct and of relational cells' regions
        steps = np.arange(1, len(share["all"]) + 1)
        rec["mean stop, direct"] = float(np.dot(direct, steps))
        rec["mean stop, relational"] = float(np.dot(relational, steps))
        rec["train min"] = row["train_seconds"]["mean"] / 60
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("setting")


def plot_table2(result: dict, *, metric: str = "iou"):
    """LBIE Table 2, paper vs ours, as grouped bars: one panel per number of direct sentences, one
    group per model (T, attention), bars for the paper and for our runs in each coverage mode
    (mean over seeds, error bars = std).  ``result`` is the dict written by
    :func:`lbie.reproduce.reproduce_cosal_table2`; configurations not run yet have no bar."""
    from .reproduce import PAPER_TABLE2

    rows = result["rows"]
    models = list(PAPER_TABLE2)
    coverages = [c for c in ("released", "full") if any(r["coverage"] == c for r in rows)]
    series = [("paper", "0.55")] + [(f"ours, {c}", col) for c, col in zip(coverages, ("tab:orange", "tab:green"))]
    width = 0.8 / len(series)
    x = np.arange(len(models))
    fig, axes = plt.subplots(1, 3, figsize=(COLUMN_WIDTH, 3.9), sharey=True)
    for ax, d in zip(axes, (4, 6, 8)):
        for k, (name, colour) in enumerate(series):
            vals, errs = [], []
            for T, att in models:
                if name == "paper":
                    vals.append(PAPER_TABLE2[T, att][d])
                    errs.append(0.0)
                    continue
                cov = name.split(", ")[1]
                row = next((r for r in rows if (r["coverage"], r["T"], r["attention"], r["num_direct"])
                            == (cov, T, att, d)), None)
                m, e = _mean_std(row[metric]) if row is not None and metric in row else (np.nan, 0.0)
                vals.append(m)
                errs.append(e)
            pos = x + (k - (len(series) - 1) / 2) * width
            ax.bar(pos, vals, width, yerr=errs, capsize=2, color=colour, label=name, edgecolor="0.3", lw=0.5)
            for px, v, e in zip(pos, vals, errs):  # each value above the end of its error bar
                if np.isfinite(v):
                    ax.text(px, v + e + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=8, rotation=90)
        ax.set_xticks(x, [f"T={T}\n{'attention' if att else 'no attention'}" for T, att in models], fontsize=8)
        ax.set_xlabel("model")
        ax.set_title(f"{d} direct descriptions", fontsize=9.5)
        ax.set_ylim(0, 1.3)
        ax.axhline(1, color="k", lw=0.6, ls=":")
    axes[0].set_ylabel(f"{metric} (test)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.93),
               ncol=len(series), fontsize=8, frameon=False)
    complete = "" if result.get("complete", True) else " — INCOMPLETE run"
    fig.suptitle(f"LBIE Table 2 on CoSaL: paper vs ours ({metric}; error bars: std over seeds){complete}")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def plot_iou_ceiling(rows: Sequence[dict], keys: Sequence[str] | None = None, *,
                     title: str = "how far below 1 the caption alone keeps IoU"):
    """Grouped bars: x = number of direct sentences, one bar per key of ``rows`` (dicts with
    ``num_direct`` and numeric values, NaN = not available), the value written on each bar."""
    keys = list(keys or [k for k in rows[0] if k != "num_direct"])
    directs = [r["num_direct"] for r in rows]
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(min(COLUMN_WIDTH, 2.2 + 1.1 * len(keys) * len(directs) / 2), 4.4))
    colours = plt.get_cmap("tab10").colors
    for k, key in enumerate(keys):
        vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        pos = np.arange(len(rows)) + (k - (len(keys) - 1) / 2) * width
        ax.bar(pos, np.nan_to_num(vals), width, label=key, color=colours[k % 10], edgecolor="0.3", lw=0.5)
        for px, v in zip(pos, vals):
            ax.text(px, (0 if np.isnan(v) else v) + 0.015, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center",
                    va="bottom", fontsize=8, rotation=90)
    ax.set_xticks(np.arange(len(rows)), [str(d) for d in directs])
    ax.set_xlabel("number of direct sentences")
    ax.set_ylabel("share / IoU")
    ax.set_ylim(0, 1.2)
    ax.axhline(1, color="k", lw=0.6, ls=":")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_title(title, fontsize=9.5)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- reasoning analysis
def region_cells(M: int, N: int) -> np.ndarray:
    """(M, N): the grid cell (0-8, row-major) that each region of an M x N feature map lies in."""
    return (np.arange(M)[:, None] * 3 // M) * 3 + np.arange(N)[None, :] * 3 // N


def _region_depth(data: CoSaL, M: int, N: int, idx=slice(None)) -> np.ndarray:
    return data.depth[idx][:, region_cells(M, N)]  # (n, M, N)


def _depth_name(d: int) -> str:
    return "undetermined" if d < 0 else ("direct (depth 0)" if d == 0 else f"depth {d}")


def plot_stop_maps(data: CoSaL, indices: Iterable[int], stop_prob):
    """The most likely stopping step of every region over the target image, for several images
    (paper Fig. 5 style).  ``stop_prob``: (N, T, M, N) for the whole data set or one per index.
    The small grey label in each cell's corner is its reasoning depth (D = direct, – =
    undetermined)."""
    indices = [int(i) for i in indices]
    p = _np(stop_prob)
    if len(p) == len(indices) and len(p) != len(data):
        p = dict(zip(indices, p))
    T, M, N = p[indices[0]].shape
    cmap = plt.get_cmap("viridis", T)
    cols = len(indices) if len(indices) <= 3 else 2 if len(indices) == 4 else 3
    rows = -(-len(indices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(min(COLUMN_WIDTH, 2.4 * cols + 1.0), 2.5 * rows + 0.6),
                             squeeze=False)
    for ax in axes.flat[len(indices):]:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        best = p[i].argmax(0) + 1
        ax.imshow(data.targets(i), extent=(0, N, M, 0), interpolation="nearest")
        im = ax.imshow(best, extent=(0, N, M, 0), cmap=cmap, vmin=0.5, vmax=T + 0.5, alpha=0.45,
                       interpolation="nearest")
        for r in range(M):
            for c in range(N):
                ax.text(c + 0.5, r + 0.5, str(best[r, c]), ha="center", va="center", fontsize=8, fontweight="bold")
        for k in range(9):
            r, c = divmod(k, 3)
            d = int(data.depth[i, k])
            ax.text(c * N / 3 + 0.08, r * M / 3 + 0.08, "D" if d == 0 else ("–" if d < 0 else str(d)),
                    ha="left", va="top", fontsize=8, color="0.25",
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        for k in range(1, 3):
            ax.axhline(k * M / 3, color="k", lw=1.2)
            ax.axvline(k * N / 3, color="k", lw=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"image {i}", fontsize=9)
    cb = fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.03, ticks=range(1, T + 1))
    cb.set_label("most likely stopping step")
    fig.suptitle("stopping step of each region\n(corner label: the cell's reasoning depth, D = direct)",
                 fontsize=10)
    return fig


def plot_stop_step_histogram(stop_prob, data: CoSaL):
    """Share of regions whose most likely stopping step is t, separately for the regions of cells
    at each reasoning depth.  ``stop_prob``: (N, T, M, N) for the whole data set ``data``."""
    p = _np(stop_prob)
    n, T, M, N = p.shape
    best = p.argmax(1) + 1  # (n, M, N)
    depth = _region_depth(data, M, N)
    groups = [d for d in np.unique(depth)]
    width = 0.8 / len(groups)
    colours = plt.get_cmap("viridis", max(len(groups), 2))
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.4))
    steps = np.arange(1, T + 1)
    for k, d in enumerate(groups):
        sel = best[depth == d]
        share = np.bincount(sel - 1, minlength=T) / max(sel.size, 1)
        ax.bar(steps + (k - (len(groups) - 1) / 2) * width, share, width, color="0.6" if d < 0 else colours(k),
               label=f"{_depth_name(int(d))}: mean step {sel.mean():.2f} ({sel.size:,} regions)")
    ax.set_xticks(steps)
    ax.set_xlabel("most likely stopping step t")
    ax.set_ylabel("share of the group's regions")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, title="region's cell", title_fontsize=8.5, loc="upper center",
              bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    ax.set_title(f"when regions stop, by the reasoning depth of their cell ({n:,} images)")
    fig.tight_layout()
    return fig


def attention_by_kind(attention, data: CoSaL) -> dict:
    """Where the attention of each step goes, averaged over images and regions, for the regions of
    directly described, relationally described and undetermined cells.

    ``attention``: (n, T, M*N, S) for the whole data set.  Returns ``{"direct_mass": {group: (T,)},
    "own_mass": {group: (T,)}, "chance_direct": S_direct / S, "chance_own": 1 / S}``:
    ``direct_mass`` is the weight on direct sentences, ``own_mass`` the weight on the sentence(s)
    that describe the region's own cell."""
    att = _np(attention)
    n, T, R, S = att.shape
    M = N = int(round(np.sqrt(R)))
    cells = region_cells(M, N).ravel()  # (R,)
    depth = data.depth[:, cells]  # (n, R)
    direct_mass = (att * (data.kind == 0)[:, None, None, :]).sum(-1)  # (n, T, R)
    own = data.target[:, None, :] == cells[None, :, None]  # (n, R, S): sentence j describes region's cell
    own_mass = (att * own[:, None]).sum(-1)  # (n, T, R)
    out = {"direct_mass": {}, "own_mass": {}, "chance_direct": float((data.kind == 0).mean()), "chance_own": 1 / S}
    for name, sel in (("direct cells", depth == 0), ("relational cells", depth > 0), ("undetermined cells", depth < 0)):
        if sel.any():
            w = sel[:, None, :]
            out["direct_mass"][name] = (direct_mass * w).sum((0, 2)) / w.sum()
            out["own_mass"][name] = (own_mass * w).sum((0, 2)) / w.sum()
    return out


def plot_attention_by_kind(stats: dict):
    """Two panels from :func:`attention_by_kind`: per step, the attention weight on direct
    sentences and on the sentence describing the region's own cell, by kind of cell; dotted
    lines are the values of uniform attention."""
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.5), sharey=True)
    styles = {"direct cells": ("tab:blue", "o-"), "relational cells": ("tab:orange", "s-"),
              "undetermined cells": ("0.5", "^-")}
    for ax, key, chance, title in ((axes[0], "direct_mass", stats["chance_direct"], "weight on direct sentences"),
                                   (axes[1], "own_mass", stats["chance_own"],
                                    "weight on the sentence\ndescribing the region's cell")):
        for name, v in stats[key].items():
            colour, style = styles[name]
            ax.plot(np.arange(1, len(v) + 1), v, style, color=colour, label=f"regions of {name}")
        ax.axhline(chance, color="k", ls=":", lw=1, label=f"uniform attention ({chance:.2f})")
        ax.set_xlabel("fusion step t")
        ax.set_title(title, fontsize=9.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("mean attention weight")
    axes[0].legend(fontsize=8)
    fig.suptitle("what the regions read at each step (mean over the test set)")
    fig.tight_layout()
    return fig


def plot_shapes(n_samples: int = 4, *, cell: int = 16, seed: int = 0):
    """The nine CoSaL shapes (rows) in ``n_samples`` random jitter draws each (columns), one
    ``cell`` x ``cell`` grid cell per drawing, as the generator renders them."""
    from .cosal import render_shape

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


# =========================================================================== TIM-GAN (CSS-2D)
# The figures of the TIM-GAN chapters: CSS-2D triples side by side (paper Fig. 6 style), word
# attention above the words and spatial masks (Fig. 5a), routing gates and their t-SNE (Fig. 5b),
# loss terms, and the results table.
EDIT_TYPES = ("add", "remove", "change-color", "change-size", "change-shape")
EDIT_TYPE_COLOR = {"add": "tab:green", "remove": "tab:red", "change-color": "tab:purple",
                   "change-size": "tab:orange", "change-shape": "tab:blue"}
MASK_CMAP = "magma"
HEAD_COLOR = {"where": "tab:blue", "how": "tab:orange"}
LOSS_NAMES = {"gan": "adversarial (G)", "img": "image L1", "feat": "feature L1 (GT-mask weighted)", "mask": "mask L1",
              "gate": "gate diversity", "disc": "discriminator", "l1": "L1"}


def edit_types(data) -> np.ndarray:
    """The instruction type of every triple of a :class:`lbie.CSSData`: its kind, and for
    ``change`` its attribute: ``"add"``, ``"remove"``, ``"change-color"``, ``"change-size"`` or
    ``"change-shape"``."""
    kind, attr = np.asarray(data.kind).astype(str), np.asarray(data.attribute).astype(str)
    return np.where(kind == "change", np.char.add("change-", attr), kind)


def _ordered(labels) -> list[str]:
    """The distinct labels: the edit types first, in :data:`EDIT_TYPES` order, then the rest sorted."""
    present = set(np.asarray(labels).astype(str).tolist())
    return [t for t in EDIT_TYPES if t in present] + sorted(present - set(EDIT_TYPES))


def _label_colours(names: Sequence[str]) -> dict:
    """A colour per label: the edit types' own, the other tab10 colours for any other label."""
    from matplotlib.colors import to_rgb

    taken = {to_rgb(c) for c in EDIT_TYPE_COLOR.values()}
    others = iter(c for c in plt.get_cmap("tab10").colors if to_rgb(c) not in taken)
    return {n: EDIT_TYPE_COLOR.get(n) or next(others, "0.4") for n in names}


def _per_index(values, indices: list[int], n: int) -> dict | None:
    """{index: value} from ``values`` given for the whole data set (n rows) or one per index."""
    if values is None:
        return None
    if len(values) == len(indices) and len(values) != n:
        return dict(zip(indices, values))
    return {i: values[i] for i in indices}


def _mask_panel(ax, mask, image=None, title=None):
    """A mask in [0, 1] at any resolution, over ``image`` when given; returns the AxesImage."""
    extent = None
    if image is not None:
        _image(ax, image)
        H, W = np.asarray(image).shape[:2]
        extent = (-0.5, W - 0.5, H - 0.5, -0.5)
    im = ax.imshow(_np(mask), cmap=MASK_CMAP, vmin=0, vmax=1, interpolation="nearest",
                   alpha=0.6 if image is not None else None, extent=extent)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def _text_panel(ax, text: str, label: str | None = None, colour="k", width: int = 26):
    import textwrap

    ax.axis("off")
    if label:
        ax.text(0.0, 0.95, label, color=colour, fontsize=8, fontweight="bold", va="top", transform=ax.transAxes)
    ax.text(0.0, 0.78 if label else 0.97, textwrap.fill(f"“{text}”", width), fontsize=8.5, va="top", ha="left",
            transform=ax.transAxes)


def show_css_examples(data, indices: Iterable[int], edits=None, masks=None, *, title: str | None = None):
    """One row per triple (paper Fig. 6 style): source, instruction (with its type), output (if
    ``edits``: uint8 (N, H, W, 3)), target, and masks.  ``masks`` is an array (N, h, w) in
    [0, 1], or a dict of named ones (e.g. predicted and ground truth), drawn over the source;
    by default the data's pixel edit mask.  ``edits`` and masks may be given for the whole data
    set or one per index."""
    indices = [int(i) for i in indices]
    edits = _per_index(edits, indices, len(data))
    if masks is None:
        masks = {"edit mask (data)": data.mask}
    elif not isinstance(masks, dict):
        masks = {"mask": masks}
    masks = {k: _per_index(v, indices, len(data)) for k, v in masks.items()}
    types = edit_types(data)
    cols = ["source", "instruction"] + (["output"] if edits is not None else []) + ["target"] + list(masks)
    fig, axes = plt.subplots(len(indices), len(cols),
                             figsize=_figsize(1.2 * len(cols) + 0.9, 1.35 * len(indices) + 0.5),
                             gridspec_kw=dict(width_ratios=[1, 1.6] + [1] * (len(cols) - 2)), squeeze=False)
    for row, i in enumerate(indices):
        top = row == 0
        panels = axes[row]
        _image(panels[0], data.source[i], "source" if top else None)
        panels[0].set_ylabel(f"#{i}", fontsize=8)
        _text_panel(panels[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"))
        k = 2
        if edits is not None:
            _image(panels[k], _np(edits[i]).astype(np.uint8), "output" if top else None)
            k += 1
        _image(panels[k], data.target[i], "target" if top else None)
        for name, m in masks.items():
            k += 1
            _mask_panel(panels[k], m[i], data.source[i], name if top else None)
        if top:
            panels[1].set_title("instruction", fontsize=9)
    fig.suptitle(title or f"CSS-2D triples ({len(data)} in this split)")
    fig.tight_layout()
    return fig


def plot_css_renderer(size: int = 64):
    """The CSS-2D renderer: every shape at both sizes (top) and the eight colours with their RGB
    values (bottom), each object centred on a ``size`` x ``size`` canvas."""
    from .css import COLOR_RGB as CSS_RGB, COLORS as CSS_COLORS, SHAPES as CSS_SHAPES, SIZES, render_css

    fig = plt.figure(figsize=(COLUMN_WIDTH, 3.2))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    axes = top.subplots(1, len(CSS_SHAPES) * len(SIZES))
    for ax, (shape, size_name) in zip(axes, [(s, z) for s in CSS_SHAPES for z in SIZES]):
        _image(ax, render_css([{"shape": shape, "color": "red", "size": size_name, "pos": (0.5, 0.5)}], size),
               f"{size_name}\n{shape}")
    top.suptitle(f"shapes and sizes ({size} px canvas; the circle is a true disc)", fontsize=10)
    axes = bottom.subplots(1, len(CSS_COLORS))
    for ax, name, rgb in zip(axes, CSS_COLORS, CSS_RGB):
        ax.imshow(np.broadcast_to(rgb, (4, 4, 3)))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("\n".join(str(int(v)) for v in rgb), fontsize=8)
    bottom.suptitle("the eight colours (TIRG's RGB values)", fontsize=10)
    return fig


def plot_css_statistics(splits: dict):
    """Four panels over named splits (``{"train": data, "test": data}``): instruction types,
    objects per source scene, edited pixels per triple, words per instruction."""
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 5.8))
    axes = axes.ravel()
    names = list(splits)
    width = 0.8 / len(names)
    for k, (name, d) in enumerate(splits.items()):
        offset = (k - (len(names) - 1) / 2) * width
        types = edit_types(d)
        axes[0].bar(np.arange(len(EDIT_TYPES)) + offset, [(types == t).mean() for t in EDIT_TYPES], width,
                    label=f"{name} ({len(d):,})")
        n_obj = (np.asarray(d.source_cells) >= 0).sum(1)
        axes[1].bar(np.arange(1, 10) + offset, np.bincount(n_obj, minlength=10)[1:] / len(d), width, label=name)
        area = np.asarray(d.mask).reshape(len(d), -1).mean(1) * 100
        axes[2].hist(area, bins=np.linspace(0, 8, 33), alpha=0.6, density=True, label=name)
        words = np.array([len(s.split()) for s in d.instruction])
        axes[3].bar(np.arange(words.max() + 1) + offset, np.bincount(words) / len(d), width, label=name)
    axes[0].set_xticks(np.arange(len(EDIT_TYPES)), EDIT_TYPES, rotation=25, ha="right", fontsize=8)
    axes[0].set_ylabel("share of triples")
    axes[0].set_title("instruction types")
    axes[1].set_xlabel("objects in the source scene")
    axes[1].set_ylabel("share of triples")
    axes[1].set_title("scene size")
    axes[2].set_xlabel("edited pixels (% of the image)")
    axes[2].set_ylabel("density")
    axes[2].set_title("size of the edit mask")
    axes[3].set_xlabel("words per instruction")
    axes[3].set_ylabel("share of triples")
    axes[3].set_title("instruction length")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("CSS-2D splits")
    fig.tight_layout()
    return fig


def _draw_word_row(ax, words, weights, y: float, colour, threshold: float, scale: float):
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


def plot_word_attention(tokens, where_weights, how_weights, *, threshold: float = 0.2, title: str | None = None):
    """The two attention heads' word weights, drawn above the words (paper Fig. 5a): for each
    instruction a *where* row and a *how* row; bars and words above ``threshold`` are coloured
    (the paper highlights weights > 0.2); bar heights are relative to the instruction's largest
    weight (or ``threshold`` if larger).  ``tokens`` is one instruction's word pieces or a list of
    them; the weights match (one value per word piece, or a list of such)."""
    if tokens and isinstance(tokens[0], str):
        tokens, where_weights, how_weights = [tokens], [where_weights], [how_weights]
    fig, axes = plt.subplots(len(tokens), 1, figsize=(COLUMN_WIDTH, 1.9 * len(tokens)), squeeze=False)
    right = 5.0
    for ax, words, ww, wh in zip(axes[:, 0], tokens, where_weights, how_weights):
        ww, wh = _np(ww)[:len(words)], _np(wh)[:len(words)]
        scale = max(ww.max(), wh.max(), threshold)
        for y, head, w in ((0.0, "how", wh), (1.6, "where", ww)):
            right = max(right, _draw_word_row(ax, words, w, y, HEAD_COLOR[head], threshold, scale))
            ax.text(-0.1, y + 0.5, head, ha="right", va="center", fontsize=9, color=HEAD_COLOR[head],
                    fontweight="bold")
        ax.set_ylim(-0.05, 3.15)
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_xlim(-0.9, right)
    fig.suptitle(title or f"word attention of the two heads (coloured: weight > {threshold})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_masks(masks: dict, *, image=None, title: str = "spatial masks"):
    """One row of named masks (h, w) in [0, 1] with a shared colour bar; with ``image`` the image
    comes first and every mask is drawn over it."""
    import textwrap

    n = len(masks) + (image is not None)
    fig, axes = plt.subplots(1, n, figsize=(min(COLUMN_WIDTH, 2.7 * n + 0.8), 2.6), squeeze=False)
    axes = list(axes[0])
    if image is not None:
        _image(axes.pop(0), image, "image")
    for ax, (name, m) in zip(axes, masks.items()):
        im = _mask_panel(ax, m, image, textwrap.fill(name, 20))
        if image is None:
            h, w = _np(m).shape
            ax.set_xlabel(f"{w} feature columns", fontsize=8)
            ax.set_ylabel(f"{h} feature rows", fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02).set_label("mask value")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_gates(alpha, *, labels: Sequence[str] | None = None, title: str = "routing gates α"):
    """The routing gates of one or several edits as bars: one panel per layer, one bar per block
    (grouped by edit).  ``alpha``: (layers, blocks) or (n, layers, blocks); ``labels`` names the n."""
    a = _np(alpha)
    a = a[None] if a.ndim == 2 else a
    n, layers, blocks = a.shape
    labels = list(labels) if labels is not None else [f"edit {k}" for k in range(n)]
    fig, axes = plt.subplots(1, layers, figsize=_figsize(3.2 * layers + 0.4 * n, 3.2), sharey=True, squeeze=False)
    width = 0.8 / n
    for i, ax in enumerate(axes[0]):
        for k in range(n):
            pos = np.arange(blocks) + (k - (n - 1) / 2) * width
            ax.bar(pos, a[k, i], width, label=labels[k])
            for px, v in zip(pos, a[k, i]):
                ax.text(px, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8, rotation=90 if n > 2 else 0)
        ax.set_xticks(np.arange(blocks), [f"block {j + 1}" for j in range(blocks)])
        ax.set_title(f"layer {i + 1}", fontsize=10)
        ax.set_ylim(0, 1.1)
        ax.axhline(1 / blocks, color="k", ls=":", lw=0.8)
    axes[0, 0].set_ylabel("α (dotted: uniform 1/m)")
    if n > 1:
        axes[0, -1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_routing_tsne(embedding, labels, *, title: str = "t-SNE of the routing gates α"):
    """Scatter plot(s) of 2-D embeddings coloured by instruction type (paper Fig. 5b).
    ``embedding``: (N, 2), or a dict of named (N, 2) arrays (one panel each); ``labels``: (N,)."""
    embedding = embedding if isinstance(embedding, dict) else {"": embedding}
    labels = np.asarray(labels).astype(str)
    names = _ordered(labels)
    colours = _label_colours(names)
    fig, axes = plt.subplots(1, len(embedding), figsize=_figsize(3.7 * len(embedding), 4.5), squeeze=False)
    for ax, (panel, xy) in zip(axes[0], embedding.items()):
        xy = _np(xy)
        for name in names:
            sel = labels == name
            ax.scatter(xy[sel, 0], xy[sel, 1], s=9, alpha=0.75, color=colours[name], label=f"{name} ({sel.sum()})")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_title(panel, fontsize=10)
    ncol = min(len(names), 5)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", fontsize=8, markerscale=2, ncol=ncol,
               title="instruction type", title_fontsize=8.5, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.35 + 0.2 * -(-len(names) // ncol)) / fig.get_figheight(), 1, 1))
    return fig


def gate_usage(alpha, labels):
    """Mean routing gates per instruction type, as a pandas DataFrame: one row per type (with its
    count ``n``), one column per (layer, block) named ``"L1 B2"`` etc.  ``alpha``: (N, layers, blocks)."""
    import pandas as pd

    a = _np(alpha)
    labels = np.asarray(labels).astype(str)
    names = _ordered(labels)
    cols = [f"L{i + 1} B{j + 1}" for i in range(a.shape[1]) for j in range(a.shape[2])]
    frame = pd.DataFrame([a[labels == t].reshape(-1, len(cols)).mean(0) for t in names], index=names, columns=cols)
    frame.insert(0, "n", [int((labels == t).sum()) for t in names])
    return frame


def plot_gate_usage(alpha, labels, *, title: str = "which blocks each instruction type uses"):
    """Heat maps of :func:`gate_usage`: one per layer, rows = instruction types, columns = blocks,
    the mean α written in each cell."""
    a = _np(alpha)
    usage = gate_usage(a, labels)
    layers, blocks = a.shape[1:]
    means = usage.drop(columns="n").to_numpy().reshape(len(usage), layers, blocks)
    w, h = _figsize(2.2 + 1.2 * blocks * layers, 0.55 * len(usage) + 1.8)
    # constrained layout fills the figure, and the saved image adds 0.1 in on each side
    fig, axes = plt.subplots(1, layers, figsize=(w - 0.2, h), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes[0]):
        im = ax.imshow(means[:, i], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for r in range(len(usage)):
            for c in range(blocks):
                ax.text(c, r, f"{means[r, i, c]:.2f}", ha="center", va="center", fontsize=8,
                        color="k" if means[r, i, c] > 0.6 else "w")
        ax.set_xticks(np.arange(blocks), [f"block {j + 1}" for j in range(blocks)], fontsize=8)
        ax.set_yticks(np.arange(len(usage)), [f"{t} ({n})" for t, n in zip(usage.index, usage["n"])] if i == 0
                      else [], fontsize=8)
        ax.set_title(f"layer {i + 1}", fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02).set_label("mean α")
    fig.suptitle(title, fontsize=10)
    return fig


def _loss_curves(history: list) -> dict:
    """{term: (steps, values)} from the logged ``parts_curve`` of every epoch; the epoch means of
    the total loss when no curve was logged (epochs shorter than the logging interval)."""
    curves: dict = {}
    for h in history:
        for step, parts in h.get("parts_curve", []):
            for k, v in parts.items():
                curves.setdefault(k, ([], []))
                curves[k][0].append(step)
                curves[k][1].append(v)
    if not curves:
        curves["total (epoch means)"] = ([h["step"] for h in history], [h["train_loss"] for h in history])
    return curves


def plot_loss_terms(history: list, *, ae_history: list | None = None, weights: dict | None = None,
                    title: str = "TIM-GAN training"):
    """Loss curves against the training step (running means logged in ``history[i]["parts_curve"]``):
    with ``ae_history`` first a panel with the autoencoder pretraining's terms, then one panel
    per TIM-GAN loss term, then the test L1 after each epoch.  ``weights`` (e.g. the run's config,
    with ``w_img`` ...) adds each term's weight in the total to its title."""
    terms = _loss_curves(history)
    n = len(terms) + bool(ae_history) + any("test_l1" in h for h in history)
    import textwrap

    cols = 2 if n == 4 else min(3, n)
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=_figsize(2.5 * cols, 2.4 * -(-n // cols)), squeeze=False)
    panels = iter(axes.flat)
    if ae_history:
        ax = next(panels)
        for k, (x, y) in _loss_curves(ae_history).items():
            ax.plot(x, y, ".-" if len(x) < 30 else "-", label=k)
        ax.set_title("stage 1: autoencoder", fontsize=9)
        ax.legend(fontsize=8)
    for k, (x, y) in terms.items():
        ax = next(panels)
        ax.plot(x, y, ".-" if len(x) < 30 else "-", color="tab:blue")
        w = (weights or {}).get(f"w_{k}")
        ax.set_title(textwrap.fill(f"{k}: {LOSS_NAMES.get(k, k)}" + (f" (× {w:g})" if w is not None else ""), 30),
                     fontsize=9)
    for ax in axes.flat[:n]:
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
    if any("test_l1" in h for h in history):
        ax = next(panels)
        ax.plot([h["epoch"] for h in history if "test_l1" in h], [h["test_l1"] for h in history if "test_l1" in h],
                "o-", color="tab:green")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean |output − target|")
        ax.set_title("test L1 after each epoch", fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def timgan_frame(result: dict):
    """The TIM-GAN results (the dict of ``results/timgan_css.json``) as a pandas DataFrame: one
    row per method with RS@1, RS@5 (mean, std over seeds), FID, the paper's numbers (Clevr
    column of Tables 1-2), pixel L1, RS@1 by instruction kind (means), training minutes and the
    number of seeds."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        paper = row.get("paper") or {}
        rec = {"method": row["method"]}
        for key in ("rs1", "rs5", "fid"):
            mean, std = _mean_std(row[key]) if row.get(key) else (np.nan, np.nan)
            rec[key], rec[f"{key}_std"], rec[f"paper {key}"] = mean, std, paper.get(key, np.nan)
        rec["l1"] = _mean_std(row["l1"])[0] if "l1" in row else np.nan
        for kind, scores in row.get("by_kind", {}).items():
            rec[f"rs1 {kind}"] = _mean_std(scores["rs1"])[0]
        rec["train min"] = _mean_std(row["train_seconds"])[0] / 60 if "train_seconds" in row else np.nan
        rec["seeds"] = row["rs1"].get("seeds", 1) if isinstance(row.get("rs1"), dict) else 1
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("method")


# --------------------------------------------------------------------------- retrieval with edited images
TARGET_COLOR = "tab:green"


def _difference_note(gallery_id: int, target_id: int, width: int) -> str:
    """How a CSS-2D gallery scene differs from the target scene ("= target" if it is the target),
    wrapped to ``width`` characters; empty for ids that are not exact grid-scene ids."""
    import textwrap

    from .css import id_to_cells, scene_differences

    if gallery_id == target_id:
        return "= target"
    try:
        diff = scene_differences(id_to_cells(gallery_id), id_to_cells(target_id))
    except ValueError:
        return ""
    more = f" (+{len(diff) - 1} more)" if len(diff) > 1 else ""
    return textwrap.fill(diff[0] + more, width) if diff else ""


def _neighbour_panels(axes, result, q: int, index, *, width: int, top: bool):
    """The nearest gallery scenes of query ``q``, best first, with their cosine similarity and how
    each differs from the target (the target itself framed in :data:`TARGET_COLOR`)."""
    images = index.gallery_images(result.rows[q, :len(axes)])
    for j, ax in enumerate(axes):
        hit = result.ids[q, j] == result.target_id[q]
        _image(ax, images[j], f"top {j + 1}" if top else None)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(TARGET_COLOR if hit else "0.75")
            spine.set_linewidth(3 if hit else 1)
        note = _difference_note(int(result.ids[q, j]), int(result.target_id[q]), width)
        ax.set_xlabel(f"cos {result.similarity[q, j]:.3f}" + (f"\n{note}" if note else ""), fontsize=8,
                      color=TARGET_COLOR if hit else "k")


def plot_retrieval_queries(data, i: int, results: dict, index, *, queries: dict, mask=None, k: int = 5,
                           title: str | None = None):
    """One test triple of a :class:`lbie.CSSData` as a retrieval query, method by method (rows):
    the query (``queries[name]``: an image, or None for a feature that has no picture) and its ``k``
    nearest gallery scenes (``results[name]``: a :class:`lbie.retrieval.RetrievalResult` of the whole
    split; ``index``: its :class:`lbie.RetrievalIndex`), each labelled with its cosine similarity and
    how it differs from the target; the target is framed green.  The top row shows the source, the
    instruction, the target and, with ``mask`` ((h, w) in [0, 1]), the predicted where-mask."""
    types = edit_types(data)
    fig = plt.figure(figsize=_figsize(1.35 * (k + 1), 1.6 + 2.1 * len(results)), layout="constrained")
    head, body = fig.subfigures(2, 1, height_ratios=[1.6, 2.1 * len(results)])
    top = head.subplots(1, 4 if mask is not None else 3, gridspec_kw=dict(width_ratios=[1, 2.2, 1, 1][:4 if mask
                                                                                                 is not None else 3]))
    _image(top[0], data.source[i], "source")
    _text_panel(top[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"), width=30)
    top[1].set_title("instruction", fontsize=9)
    _image(top[2], data.target[i], "target")
    for spine in top[2].spines.values():
        spine.set_visible(True), spine.set_color(TARGET_COLOR), spine.set_linewidth(3)
    if mask is not None:
        _mask_panel(top[3], mask, data.source[i], "predicted where-mask")
    axes = body.subplots(len(results), k + 1, squeeze=False)
    for row, (name, result) in enumerate(results.items()):
        import textwrap

        query, ax, rank = queries.get(name), axes[row, 0], int(result.target_rank[i])
        if query is None:
            ax.axis("off")
            ax.text(0.5, 0.5, "source + instruction\ncomposed into\none feature vector\n(no image)", ha="center",
                    va="center", fontsize=8, transform=ax.transAxes)
        else:
            _image(ax, _np(query).astype(np.uint8))
        ax.set_title(textwrap.fill(name, 18) + (f"\ntarget at rank {rank}" if rank else "\ntarget not in gallery"),
                     fontsize=8.5, fontweight="bold")
        _neighbour_panels(axes[row, 1:], result, i, index, width=19, top=False)
    fig.suptitle(title or f"test triple #{i} as a retrieval query ({len(index)} gallery scenes, source excluded)")
    return fig


def show_retrieval_failures(data, indices: Iterable[int], edits, result, index, *, masks=None, k: int = 3,
                            title: str | None = None):
    """Edits whose retrieval fails, one row each: source, instruction, the edit (the query), the
    predicted where-mask over the source (``masks``: (N, h, w), optional), the target, and the edit's
    ``k`` nearest gallery scenes (``result``: the edits' :class:`lbie.retrieval.RetrievalResult`), each
    with its cosine similarity and how it differs from the target -- which says what the edit got wrong."""
    indices = [int(i) for i in indices]
    types = edit_types(data)
    cols = ["source", "instruction", "edit (query)"] + (["predicted mask"] if masks is not None else []) + ["target"]
    fig, axes = plt.subplots(len(indices), len(cols) + k, squeeze=False,
                             figsize=_figsize(1.15 * (len(cols) + k) + 0.6, 2.1 * len(indices) + 0.5),
                             gridspec_kw=dict(width_ratios=[1, 1.5] + [1] * (len(cols) - 2 + k)), layout="constrained")
    for row, i in enumerate(indices):
        top, panels = row == 0, axes[row]
        _image(panels[0], data.source[i], "source" if top else None)
        rank = int(result.target_rank[i])
        panels[0].set_ylabel(f"#{i}\ntarget rank {rank}", fontsize=8)
        _text_panel(panels[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"), width=18)
        if top:
            panels[1].set_title("instruction", fontsize=9)
        _image(panels[2], _np(edits[i]).astype(np.uint8), "edit (query)" if top else None)
        c = 3
        if masks is not None:
            _mask_panel(panels[c], masks[i], data.source[i], "predicted mask" if top else None)
            c += 1
        _image(panels[c], data.target[i], "target" if top else None)
        _neighbour_panels(panels[c + 1:], result, i, index, width=15, top=top)
    fig.suptitle(title or "edits that do not retrieve their target: what they retrieve instead")
    return fig


# --------------------------------------------------------------------------- Colourisation
LOSS_NAMES["mismatch"] = "discriminator: real image, wrong caption"


def _flower_consistency(rgb, data, indices):
    from .flowers import caption_consistency

    return caption_consistency(rgb, data.parts[indices], data.named_petal_colors[indices])[0]


def plot_lab_channels(rgb, *, title: str = "one image in CIE-Lab"):
    """An sRGB image (H, W, 3) uint8 and its L, a and b channels, each with its colour bar."""
    from .flowers import rgb_to_lab

    lab = rgb_to_lab(_np(rgb))
    # constrained layout fills the figure, and the saved image adds 0.1 in on each side
    fig, axes = plt.subplots(1, 4, figsize=(COLUMN_WIDTH - 0.2, 2.5), layout="constrained")
    _image(axes[0], _np(rgb), "sRGB image")
    for ax, k, name, cmap, lim in zip(axes[1:], range(3), ("L: lightness\n(the input)", "a: green −\n/ red +",
                                                            "b: blue −\n/ yellow +"),
                                      ("gray", "PiYG_r", "cividis"), ((0, 100), (-80, 80), (-80, 80))):
        im = ax.imshow(lab[..., k], cmap=cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return fig


def show_colorizations(data, indices: Iterable[int], outputs: dict, *, title: str | None = None):
    """The paper's Fig. 6 layout, one column per test flower: the original, the grey input, then one row per
    entry of ``outputs`` ({name: uint8 (N, H, W, 3)} for the whole data set or one per index), each panel
    marked ✓ / ✗ by the consistency check (– when the caption names no petal colour); captions at the bottom."""
    from .flowers import rgb_to_lab

    indices = [int(i) for i in indices]
    outputs = {k: (v if len(v) == len(indices) and len(v) != len(data) else _np(v)[indices]) for k, v in outputs.items()}
    named = data.named_petal_colors[indices]
    rows = 2 + len(outputs)
    width = min(COLUMN_WIDTH, 1.9 * len(indices))
    cell = width / len(indices)  # inches per flower
    fig, axes = plt.subplots(rows + 1, len(indices), figsize=(width, cell * (rows + 1.2) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1] * rows + [1.2]})
    grey = rgb_to_lab(data.images[indices])[..., 0]
    for j, i in enumerate(indices):
        _image(axes[0, j], data.images[i])
        _image(axes[1, j], grey[j][..., None].repeat(3, -1) / 100)
        for r, (name, rgb) in enumerate(outputs.items()):
            ok = _flower_consistency(rgb[j:j + 1], data, [i])[0]
            _image(axes[2 + r, j], rgb[j], ("✓" if ok else "✗") if named[j] else "–")
            axes[2 + r, j].title.set_color("tab:green" if ok else "tab:red" if named[j] else "k")
        _text_panel(axes[rows, j], data.texts[i], width=max(12, int(cell * 72 / 5.3)))
    for r, name in enumerate(["original", "input L"] + list(outputs)):
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title or "colourisations of test flowers (✓ / ✗: petal colour matches the caption)")
    fig.tight_layout()
    return fig


def plot_recolorings(rows: dict, colours: Sequence[str], *, consistent: dict | None = None,
                     title: str = "one grey image, recoloured by different captions"):
    """The paper's Fig. 7 layout: ``rows`` {name: (original uint8 (H, W, 3), recolourings uint8 (K, H, W, 3))},
    one column per colour of ``colours`` (the caption "the flower is <colour> in color"); ``consistent``
    {name: (K,) bool} marks each recolouring ✓ / ✗."""
    from .flowers import rgb_to_lab

    names = list(rows)
    width = min(COLUMN_WIDTH, 1.7 * (2 + len(colours)))
    cell = width / (2 + len(colours))  # inches per image
    fig, axes = plt.subplots(len(names), 2 + len(colours), figsize=(width, (cell + 0.45) * len(names) + 0.4),
                             squeeze=False)
    for r, name in enumerate(names):
        original, recoloured = rows[name]
        _image(axes[r, 0], original, "original" if r == 0 else None)
        grey = rgb_to_lab(np.asarray(original))[..., :1] / 100  # the model's input: the lightness L
        _image(axes[r, 1], grey.repeat(3, -1), "grey input L" if r == 0 else None)
        axes[r, 0].set_ylabel(name, fontsize=9)
        for k, colour in enumerate(colours):
            ok = None if consistent is None else bool(np.asarray(consistent[name])[k])
            mark = "" if ok is None else (" ✓" if ok else " ✗")
            _image(axes[r, 2 + k], recoloured[k], f"“{colour}”{mark}")
            if ok is not None:
                axes[r, 2 + k].title.set_color("tab:green" if ok else "tab:red")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_caption_attention(image, words: Sequence[str], attention, *, top: int = 4,
                           title: str = "where each word is attended"):
    """The colouriser's word attention for one image: ``attention`` (regions, words) from
    ``Colorizer(..., return_attention=True)``; the image, the mean weight of every word, and the map of
    the ``top`` most attended words over the image (regions upsampled to pixels)."""
    att = _np(attention)[:, :len(words)]
    side = int(round(np.sqrt(att.shape[0])))
    order = np.argsort(-att.mean(0))[:top]
    cols = max(len(order), 3)
    fig = plt.figure(figsize=(COLUMN_WIDTH, 2.3 + 2.0 * (len(order) > 0) + 0.8))
    grid = fig.add_gridspec(2 if len(order) else 1, cols, height_ratios=[1.25, 1] if len(order) else None)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1:])] + [fig.add_subplot(grid[1, k])
                                                                          for k in range(len(order))]
    _image(axes[0], image, "input")
    axes[1].bar(range(len(words)), att.mean(0), color=["tab:orange" if j in order else "0.6" for j in range(len(words))])
    axes[1].set_xticks(range(len(words)), words, rotation=60, fontsize=8, ha="right")
    axes[1].set_ylabel("mean attention\nover regions")
    axes[1].set_title("attention per word", fontsize=9)
    for ax, j in zip(axes[2:], order):
        _mask_panel(ax, att[:, j].reshape(side, side) / max(att[:, j].max(), 1e-8), image=image,
                    title=f"“{words[j]}” (max {att[:, j].max():.2f})")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def colorization_frame(result: dict):
    """The colourisation results (``results/colorization.json``) as a pandas DataFrame: one row per method with
    consistency (mean, std over seeds), the paper's human consistency and quality ratings (Table 4), FID,
    colourfulness and ab L1."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        paper, q = row.get("paper") or {}, row["realism"]
        rec = {"method": row["method"]}
        rec["consistency"], rec["consistency_std"] = _mean_std(row["consistency"])
        rec["paper consistency"] = paper.get("consistency") if paper.get("consistency") is not None else np.nan
        for key in ("fid", "colorfulness", "ab_l1"):
            rec[key] = _mean_std(q[key])[0] if q.get(key) else np.nan
        rec["paper quality"] = paper.get("quality", np.nan)
        rec["seeds"] = row["consistency"].get("seeds", 1)
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("method")


# =========================================================================== Segmentation
# The figures of the language-based segmentation chapter (LBIE §4.2, Table 3 analog): referring
# expressions with their masks and predictions, attention over the words per fusion step, training
# curves and metrics by expression kind of several methods, and Table 3, paper vs ours.
def show_referring_examples(data, indices: Iterable[int], predictions: dict | None = None, *,
                            title: str | None = None):
    """One row per expression of a :class:`lbie.referring.ReferringData`: the scene, the expression (with
    its kind), the ground-truth mask and each named predicted mask (``{"LBIE": (N, H, W) bool, ...}``,
    for the whole data set or one per index) drawn over the scene, with the expression's IoU."""
    import textwrap

    indices = [int(i) for i in indices]
    predictions = {k: _per_index(v, indices, len(data)) for k, v in (predictions or {}).items()}
    cols = ["scene", "expression", "ground truth"] + list(predictions)
    fig, axes = plt.subplots(len(indices), len(cols),
                             figsize=_figsize(1.25 * len(cols) + 1.2, 1.6 * len(indices) + 0.6),
                             gridspec_kw=dict(width_ratios=[1, 1.5] + [1] * (len(cols) - 2)), squeeze=False)
    for row, i in enumerate(indices):
        panels, gt = axes[row], np.asarray(data.masks[i], bool)
        _image(panels[0], data.images[i], "scene" if row == 0 else None)
        panels[0].set_ylabel(f"#{i}", fontsize=8)
        _text_panel(panels[1], str(data.texts[i]), str(data.kind[i]), width=24)
        _mask_panel(panels[2], gt, data.images[i], "ground truth" if row == 0 else None)
        for ax, (name, pred) in zip(panels[3:], predictions.items()):
            p = np.asarray(_np(pred[i]), bool)
            iou = (p & gt).sum() / max((p | gt).sum(), 1) if (p | gt).any() else 1.0
            _mask_panel(ax, p, data.images[i], textwrap.fill(name, 16) if row == 0 else None)
            ax.set_xlabel(f"IoU {iou:.2f}", fontsize=8)
    axes[0, 1].set_title("expression", fontsize=9)
    fig.suptitle(title or f"referring expressions ({len(data)} in this split)")
    fig.tight_layout()
    return fig


def plot_expression_attention(data, indices: Iterable[int], attention, *, language: str = "words",
                              threshold: float = 0.2, title: str | None = None):
    """What the referred object reads at each fusion step: for each expression, the scene with its mask
    and, for every step, the attention over the expression's words (or sentences) averaged over the
    regions the ground-truth mask covers (:func:`lbie.segmentation_experiment.region_attention`).
    ``attention``: (N, T, M*N, L) for the whole data set or one per index; the padding positions' total
    weight is printed next to each step; bar heights are relative to the largest weight (or ``threshold``)."""
    from .segmentation_experiment import language_labels, region_attention

    indices = [int(i) for i in indices]
    att = _per_index(_np(attention), indices, len(data))
    T = att[indices[0]].shape[0]
    fig, axes = plt.subplots(len(indices), 2, figsize=(COLUMN_WIDTH, (0.6 * T + 0.6) * len(indices) + 0.6),
                             gridspec_kw=dict(width_ratios=[1, 6]), squeeze=False)
    for (ax_img, ax), i in zip(axes, indices):
        _mask_panel(ax_img, data.masks[i], data.images[i])
        ax_img.set_ylabel(f"#{i} {data.kind[i]}", fontsize=8)
        labels = language_labels(data, i, language)
        keep = [j for j, w in enumerate(labels) if w]
        weights = region_attention(att[i][None], np.asarray(data.masks[i])[None])[0]  # (T, L)
        shown = weights[:, keep]
        right = 5.0
        for t in range(T):
            y = 1.4 * (T - 1 - t)
            right = max(right, _draw_word_row(ax, [labels[j] for j in keep], shown[t], y, "tab:blue", threshold,
                                              max(shown.max(), threshold)))
            ax.text(-0.1, y + 0.5, f"step {t + 1}\npadding {1 - shown[t].sum():.2f}", ha="right", va="center",
                    fontsize=8)
        ax.set_xlim(-1.6, right)
        ax.set_ylim(-0.05, 1.4 * T)
        ax.axis("off")
    fig.suptitle(title or f"attention of the referred object's regions over the {language}, per fusion step "
                          f"(blue: weight > {threshold})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_segmentation_curves(histories: dict, *, title: str = "training"):
    """Training of several methods (``{"LBIE": history, ...}``, records of :func:`lbie.train.fit`): the
    loss against the step (running mean), and the test overall IoU and precision@0.5 after each epoch."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 4.2))
    for k, (name, history) in enumerate(histories.items()):
        colour = plt.get_cmap("tab10").colors[k]
        curve = [pt for h in history for pt in h.get("loss_curve") or []]
        if curve:
            axes[0].plot(*zip(*curve), "-", lw=1.2, color=colour, label=name)
        axes[0].plot([h["step"] for h in history], [h["train_loss"] for h in history], "o", color=colour,
                     label=None if curve else name)
        for key, style in (("overall_iou", "o-"), ("precision@0.5", "s--")):
            pts = [(h["epoch"], h[key]) for h in history if key in h]
            if pts:
                axes[1].plot(*zip(*pts), style, color=colour, label=f"{name}: {key}")
    axes[0].set_xlabel("training step (batches; dots: epoch means)")
    axes[0].set_ylabel("weighted cross-entropy")
    axes[0].set_title("training loss")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test score")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("test overall IoU and precision@0.5\nafter each epoch")
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    handles = [Line2D([], [], color=plt.get_cmap("tab10").colors[k], lw=1.5, label=name)
               for k, name in enumerate(histories)]
    handles += [Line2D([], [], color="0.3", marker="o", ls="-", label="overall IoU (right)"),
                Line2D([], [], color="0.3", marker="s", ls="--", label="precision@0.5 (right)")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.25 + 0.2 * -(-len(handles) // 2)) / fig.get_figheight(), 1, 1))
    return fig


def plot_metrics_by_kind(metrics: dict, *, key: str = "overall_iou", title: str | None = None):
    """Grouped bars of ``key`` by expression kind (and over all expressions) for several methods:
    ``{"LBIE": metrics, ...}`` with metrics as :func:`lbie.segmentation_experiment.evaluate_segmentation`
    returns them (values may also be ``{"mean", "std"}``, drawn with error bars)."""
    from .referring import KINDS

    kinds = [k for k in KINDS if any(k in m["by_kind"] for m in metrics.values())] + ["all"]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(min(COLUMN_WIDTH, 1.3 * len(kinds) + 2), 4.0))
    for k, (name, m) in enumerate(metrics.items()):
        vals = [_mean_std(m[key] if kind == "all" else m["by_kind"].get(kind, {}).get(key, np.nan)) for kind in kinds]
        pos = np.arange(len(kinds)) + (k - (len(metrics) - 1) / 2) * width
        ax.bar(pos, [v for v, _ in vals], width, yerr=[e for _, e in vals], capsize=3, label=name)
        for px, (v, e) in zip(pos, vals):  # each value above the end of its error bar
            ax.text(px, v + e + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=8,
                    rotation=90 if len(metrics) > 1 else 0)
    ax.set_xticks(np.arange(len(kinds)), kinds)
    ax.set_xlabel("expression kind")
    ax.set_ylabel(f"{key} (test)")
    ax.set_ylim(0, 1.25)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=min(len(metrics), 3), frameon=False)
    ax.set_title(title or f"{key} by expression kind")
    fig.tight_layout()
    return fig


def table3_frame(result: dict):
    """LBIE Table 3, paper (ReferIt) vs ours, as a pandas DataFrame in %: one row per method and source,
    columns precision@0.5..0.9, overall IoU and mean IoU (not reported by the paper), with ``std`` columns
    over seeds for ours.  ``result`` is the dict of ``results/segmentation.json``."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        for source, v in (("ours", row), ("paper (ReferIt)", row.get("paper"))):
            if not v:
                continue
            rec = {"method": row.get("label", row["method"]), "source": source}
            cells = {**{f"P@{t}": p for t, p in v["precision"].items()}, "overall IoU": v["overall_iou"],
                     "mean IoU": v.get("mean_iou")}
            for name, value in cells.items():
                mean, std = _mean_std(value) if value is not None else (np.nan, np.nan)
                rec[name], rec[f"{name} std"] = 100 * mean, (100 * std if source == "ours" else np.nan)
            records.append(rec)
    return pd.DataFrame.from_records(records).set_index(["method", "source"])


def plot_table3(result: dict):
    """Table 3 as grouped bars: for precision@0.5..0.9 and overall IoU, the paper's two models on ReferIt
    and ours on the generated data (mean over seeds, error bars: std)."""
    rows = result["rows"]
    keys = [f"P@{t}" for t in rows[0]["precision"]] + ["overall IoU"]
    get = lambda v: [v["precision"][k[2:]] for k in keys[:-1]] + [v["overall_iou"]]  # noqa: E731
    series = [(f"paper: {r.get('label', r['method'])}", get(r["paper"]), "//") for r in rows if r.get("paper")]
    series += [(f"ours: {r.get('label', r['method'])}", get(r), None) for r in rows]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.4))
    for k, (name, vals, hatch) in enumerate(series):
        m, e = np.array([_mean_std(v) for v in vals]).T
        pos = np.arange(len(keys)) + (k - (len(series) - 1) / 2) * width
        ax.bar(pos, 100 * m, width, yerr=None if hatch else 100 * e, capsize=2, label=name, hatch=hatch,
               edgecolor="0.3", lw=0.5, color=plt.get_cmap("tab10").colors[k % len(rows)], alpha=0.55 if hatch else 1)
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set_xlabel("metric (Hu et al.'s protocol)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    complete = "" if result.get("complete", True) else " — INCOMPLETE run"
    ax.set_title(f"LBIE Table 3: paper (ReferIt) vs ours (generated expressions, preset "
                 f"{result.get('provenance', {}).get('preset')}){complete}", fontsize=9.5)
    fig.tight_layout()
    return fig

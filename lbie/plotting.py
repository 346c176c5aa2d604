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
    fig, axes = plt.subplots(len(indices), n_img + 1, figsize=(2.0 * n_img + 4.4, 2.1 * len(indices)),
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
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))

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
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=C,
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
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
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
    fig.suptitle(f"CoSaL class balance ({len(data)} images, {data.num_direct} direct, coverage={data.coverage!r}; "
                 f"{fg:.1%} of pixels are foreground)")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def plot_coverage(rows: Sequence[dict], keys: Sequence[str] | None = None):
    """Bar charts of coverage statistics: ``rows`` are dicts with ``coverage``, ``num_direct`` and
    numeric statistics (one panel per statistic in ``keys``; default every other key)."""
    keys = list(keys or [k for k in rows[0] if k not in ("coverage", "num_direct")])
    coverages = list(dict.fromkeys(r["coverage"] for r in rows))
    directs = sorted({r["num_direct"] for r in rows})
    fig, axes = plt.subplots(1, len(keys), figsize=(3.8 * len(keys), 3.4), squeeze=False)
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
    """A row of named 2-D maps (e.g. gate means per region), each with its colour bar."""
    fig, axes = plt.subplots(1, len(maps), figsize=(2.9 * len(maps), 2.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], maps.items()):
        im = ax.imshow(_np(m), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("region column")
        ax.set_ylabel("region row")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention_steps(data: CoSaL, i: int, attention, *, stop_prob=None):
    """Which sentence each region attends most at each step (paper Fig. 5 style).

    ``attention``: (T, M*N, S) weights of image ``i``.  Top row: per step, the M x N regions over
    the target image, coloured and numbered by their arg-max sentence (regions drawn faded after
    their most likely stopping step when ``stop_prob`` (T, M, N) is given).  Bottom row: the full
    region x sentence weights."""
    att = _np(attention)
    T, R, S = att.shape
    M = N = int(round(np.sqrt(R)))
    stop_step = _np(stop_prob).argmax(0) if stop_prob is not None else np.full((M, N), T - 1)
    fig, axes = plt.subplots(2, T, figsize=(3.3 * T + 2.2, 7.2), squeeze=False,
                             gridspec_kw=dict(height_ratios=[1, 1.25]))
    labels = sentence_labels(data, i)
    for t in range(T):
        ax = axes[0, t]
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
        ax.set_title(f"step t={t + 1}: arg-max sentence", fontsize=9)

        ax = axes[1, t]
        im = ax.imshow(att[t], aspect="auto", cmap="magma", vmin=0, vmax=float(att.max()), interpolation="nearest")
        ax.set_xticks(np.arange(S), [f"{j}{KIND_LETTER[data.kind[i, j]]}" for j in range(S)], fontsize=7)
        ax.set_xlabel("sentence")
        ax.set_ylabel("region (row-major)" if t == 0 else "")
        ax.set_title(f"step t={t + 1}: weights β", fontsize=9)
    fig.subplots_adjust(left=0.05, right=0.9, top=0.9, bottom=0.14, hspace=0.3, wspace=0.35)
    fig.colorbar(im, cax=fig.add_axes([0.915, 0.14, 0.012, 0.36]), label="attention weight")
    fig.text(0.01, 0.005, "   ".join(labels[:5]) + "\n" + "   ".join(labels[5:]), fontsize=7.5,
             family="monospace", va="bottom")
    fig.suptitle(f"attention over sentences, image {i}" +
                 (" (faded: after the region's most likely stopping step)" if stop_prob is not None else ""))
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    shown = best[0] if B == 1 else best.mean(0)
    im = ax.imshow(shown, cmap="viridis", vmin=1, vmax=max(T, 2), interpolation="nearest")
    for r in range(M):
        for c in range(N):
            ax.text(c, r, f"{shown[r, c]:.0f}" if B == 1 else f"{shown[r, c]:.1f}", ha="center", va="center",
                    fontsize=7, color="w" if shown[r, c] < (1 + T) / 2 else "k")
    ax.set_xlabel("region column")
    ax.set_ylabel("region row")
    ax.set_title("most likely stopping step" + ("" if B == 1 else f" (mean over {B} images)"), fontsize=10)
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
    ax.set_title("stopping distribution over regions", fontsize=10)
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
    fig, axes = plt.subplots(1, len(taus), figsize=(3.2 * len(taus), 3.4), sharey=True, squeeze=False)
    x = np.arange(1, K + 1)
    for ax, tau in zip(axes[0], taus):
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
    axes[0, 0].set_ylabel("probability / sample value")
    axes[0, 0].legend(fontsize=7, loc="upper left")
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
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
    ax.legend(fontsize=7, loc="best")
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
    if "paper" in frame and "iou" in frame:
        frame["iou - paper"] = frame["iou"] - frame["paper"]
    return frame


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
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9), sharey=True)
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
            ax.bar(pos, vals, width, yerr=errs, capsize=3, color=colour, label=name, edgecolor="0.3", lw=0.5)
            for px, v in zip(pos, vals):
                if np.isfinite(v):
                    ax.text(px, v + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=6.5, rotation=90)
        ax.set_xticks(x, [f"T={T}\n{'attention' if att else 'no attention'}" for T, att in models], fontsize=8)
        ax.set_xlabel("model")
        ax.set_title(f"{d} direct descriptions", fontsize=10)
        ax.set_ylim(0, 1.18)
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
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(keys) * len(directs) / 2, 4))
    colours = plt.get_cmap("tab10").colors
    for k, key in enumerate(keys):
        vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        pos = np.arange(len(rows)) + (k - (len(keys) - 1) / 2) * width
        ax.bar(pos, np.nan_to_num(vals), width, label=key, color=colours[k % 10], edgecolor="0.3", lw=0.5)
        for px, v in zip(pos, vals):
            ax.text(px, (0 if np.isnan(v) else v) + 0.015, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center",
                    va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(np.arange(len(rows)), [str(d) for d in directs])
    ax.set_xlabel("number of direct sentences")
    ax.set_ylabel("share / IoU")
    ax.set_ylim(0, 1.2)
    ax.axhline(1, color="k", lw=0.6, ls=":")
    ax.legend(fontsize=7.5, loc="upper left", ncol=2)
    ax.set_title(title, fontsize=10)
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
    fig, axes = plt.subplots(1, len(indices), figsize=(2.7 * len(indices) + 1.2, 3.2), squeeze=False)
    for ax, i in zip(axes[0], indices):
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
                    ha="left", va="top", fontsize=6.5, color="0.25",
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        for k in range(1, 3):
            ax.axhline(k * M / 3, color="k", lw=1.2)
            ax.axvline(k * N / 3, color="k", lw=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"image {i}", fontsize=9)
    cb = fig.colorbar(im, ax=list(axes[0]), fraction=0.02, pad=0.02, ticks=range(1, T + 1))
    cb.set_label("most likely stopping step")
    fig.suptitle("stopping step of each region (corner label: the cell's reasoning depth, D = direct)",
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
    fig, ax = plt.subplots(figsize=(8, 3.9))
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
    ax.legend(fontsize=7.5, title="region's cell", title_fontsize=8)
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    styles = {"direct cells": ("tab:blue", "o-"), "relational cells": ("tab:orange", "s-"),
              "undetermined cells": ("0.5", "^-")}
    for ax, key, chance, title in ((axes[0], "direct_mass", stats["chance_direct"], "weight on direct sentences"),
                                   (axes[1], "own_mass", stats["chance_own"],
                                    "weight on the sentence describing the region's cell")):
        for name, v in stats[key].items():
            colour, style = styles[name]
            ax.plot(np.arange(1, len(v) + 1), v, style, color=colour, label=f"regions of {name}")
        ax.axhline(chance, color="k", ls=":", lw=1, label=f"uniform attention ({chance:.2f})")
        ax.set_xlabel("fusion step t")
        ax.set_title(title, fontsize=10)
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

"""Figures of the recurrent attentive fusion (LBIE §3; chapters 2 and 4): feature maps, the attention
over sentences at each step (paper Fig. 5), the termination gates and their Gumbel-softmax relaxation, and
where and when the regions stop, by the reasoning depth of their cell."""
from __future__ import annotations

from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches

from ..data.cosal import CoSaL
from .cosal import KIND_COLOR, SENTENCE_CMAP, sentence_labels
from .style import COLUMN_WIDTH, column_figsize, plottable


def plot_feature_maps(maps: dict, *, title: str = "feature maps", cmap: str = "viridis", vmin=None, vmax=None):
    """Named 2-D maps (e.g. gate means per region), each with its colour bar: one row of up to three
    maps, two rows for more."""
    cols = len(maps) if len(maps) <= 3 else -(-len(maps) // 2)
    rows = -(-len(maps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=column_figsize(2.5 * cols, 2.3 * rows + 0.3), squeeze=False)
    for ax, (name, m) in zip(axes.flat, maps.items()):
        im = ax.imshow(plottable(m), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
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
    att = plottable(attention)
    T, R, S = att.shape
    M = N = int(round(np.sqrt(R)))
    stop_step = plottable(stop_prob).argmax(0) if stop_prob is not None else np.full((M, N), T - 1)
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
    p = plottable(stop_prob)
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

    p = torch.as_tensor(plottable(probs), dtype=torch.float64)
    K = len(p)
    gen = torch.Generator().manual_seed(seed)
    cols = 2 if len(taus) == 4 else min(len(taus), 3)
    rows = -(-len(taus) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=column_figsize(3.7 * cols, 2.7 * rows + 0.4), sharey=True,
                             squeeze=False)
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
    p = plottable(stop_prob)
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
    p = plottable(stop_prob)
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
    att = plottable(attention)
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

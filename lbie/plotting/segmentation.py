"""Figures of the language-based segmentation (LBIE §4.2, Table 3 analog; chapter 5): referring expressions
with their masks and predictions, attention over the words per fusion step, training curves and metrics by
expression kind of several methods, and Table 3, paper vs ours."""
from __future__ import annotations

from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np

from .style import (COLUMN_WIDTH, column_figsize, draw_word_row, image_panel, mask_panel, mean_std_pair, per_index,
                    plottable, text_panel)


def show_referring_examples(data, indices: Iterable[int], predictions: dict | None = None, *,
                            title: str | None = None):
    """One row per expression of a :class:`lbie.data.referring.ReferringData`: the scene, the expression (with
    its kind), the ground-truth mask and each named predicted mask (``{"LBIE": (N, H, W) bool, ...}``,
    for the whole data set or one per index) drawn over the scene, with the expression's IoU."""
    import textwrap

    indices = [int(i) for i in indices]
    predictions = {k: per_index(v, indices, len(data)) for k, v in (predictions or {}).items()}
    cols = ["scene", "expression", "ground truth"] + list(predictions)
    fig, axes = plt.subplots(len(indices), len(cols),
                             figsize=column_figsize(1.25 * len(cols) + 1.2, 1.6 * len(indices) + 0.6),
                             gridspec_kw=dict(width_ratios=[1, 1.5] + [1] * (len(cols) - 2)), squeeze=False)
    for row, i in enumerate(indices):
        panels, gt = axes[row], np.asarray(data.masks[i], bool)
        image_panel(panels[0], data.images[i], "scene" if row == 0 else None)
        panels[0].set_ylabel(f"#{i}", fontsize=8)
        text_panel(panels[1], str(data.texts[i]), str(data.kind[i]), width=24)
        mask_panel(panels[2], gt, data.images[i], "ground truth" if row == 0 else None)
        for ax, (name, pred) in zip(panels[3:], predictions.items()):
            p = np.asarray(plottable(pred[i]), bool)
            iou = (p & gt).sum() / max((p | gt).sum(), 1) if (p | gt).any() else 1.0
            mask_panel(ax, p, data.images[i], textwrap.fill(name, 16) if row == 0 else None)
            ax.set_xlabel(f"IoU {iou:.2f}", fontsize=8)
    axes[0, 1].set_title("expression", fontsize=9)
    fig.suptitle(title or f"referring expressions ({len(data)} in this split)")
    fig.tight_layout()
    return fig


def plot_expression_attention(data, indices: Iterable[int], attention, *, language: str = "words",
                              threshold: float = 0.2, title: str | None = None):
    """What the referred object reads at each fusion step: for each expression, the scene with its mask
    and, for every step, the attention over the expression's words (or sentences) averaged over the
    regions the ground-truth mask covers (:func:`lbie.experiments.segmentation.region_attention`).
    ``attention``: (N, T, M*N, L) for the whole data set or one per index; the padding positions' total
    weight is printed next to each step; bar heights are relative to the largest weight (or ``threshold``)."""
    from ..experiments.segmentation import language_labels, region_attention

    indices = [int(i) for i in indices]
    att = per_index(plottable(attention), indices, len(data))
    T = att[indices[0]].shape[0]
    fig, axes = plt.subplots(len(indices), 2, figsize=(COLUMN_WIDTH, (0.6 * T + 0.6) * len(indices) + 0.6),
                             gridspec_kw=dict(width_ratios=[1, 6]), squeeze=False)
    for (ax_img, ax), i in zip(axes, indices):
        mask_panel(ax_img, data.masks[i], data.images[i])
        ax_img.set_ylabel(f"#{i} {data.kind[i]}", fontsize=8)
        labels = language_labels(data, i, language)
        keep = [j for j, w in enumerate(labels) if w]
        weights = region_attention(att[i][None], np.asarray(data.masks[i])[None])[0]  # (T, L)
        shown = weights[:, keep]
        right = 5.0
        for t in range(T):
            y = 1.4 * (T - 1 - t)
            right = max(right, draw_word_row(ax, [labels[j] for j in keep], shown[t], y, "tab:blue", threshold,
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
    ``{"LBIE": metrics, ...}`` with metrics as :func:`lbie.experiments.segmentation.evaluate_segmentation`
    returns them (values may also be ``{"mean", "std"}``, drawn with error bars)."""
    from ..data.referring import KINDS

    kinds = [k for k in KINDS if any(k in m["by_kind"] for m in metrics.values())] + ["all"]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(min(COLUMN_WIDTH, 1.3 * len(kinds) + 2), 4.0))
    for k, (name, m) in enumerate(metrics.items()):
        vals = [mean_std_pair(m[key] if kind == "all" else m["by_kind"].get(kind, {}).get(key, np.nan))
                for kind in kinds]
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
                mean, std = mean_std_pair(value) if value is not None else (np.nan, np.nan)
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
        m, e = np.array([mean_std_pair(v) for v in vals]).T
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

"""Figures and tables of LBIE trained on CoSaL (chapters 3 and 4): training curves, IoU by reasoning depth,
Table 2 (paper vs ours), the termination-gate study and the IoU ceiling of the captions."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import COLUMN_WIDTH, mean_std_pair


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
    ``rows`` list (``lbie.experiments.reproduce``); values may be floats or ``{"mean", "std"}``.  ``label``
    maps a row to its legend entry (default: coverage, T, attention, num_direct when present)."""
    if isinstance(rows, dict):
        rows = rows["rows"] if "rows" in rows else [rows]
    label = label or _row_label
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        items = sorted(row["iou_by_depth"].items(), key=lambda kv: int(kv[0]))
        d = np.array([int(k) for k, _ in items])
        m, s = np.array([mean_std_pair(v) for _, v in items]).T
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
    (coverage, T, attention, num_direct, input_skip) with ``paper`` and, for each metric, ``<metric>`` (mean
    over seeds) and ``<metric>_std``; ``seeds`` counts the runs.  ``result`` is the dict written by
    :func:`lbie.experiments.reproduce.reproduce_cosal_table2` (its ``rows``)."""
    import pandas as pd

    rows = result["rows"] if isinstance(result, dict) else result
    keys = ("coverage", "T", "attention", "num_direct", "input_skip")  # input_skip=False: the paper's decoder
    if metrics is None:
        metrics = [k for k in rows[0] if isinstance(rows[0][k], dict) and "mean" in rows[0][k]
                   and k != "train_seconds"] if rows else []
    records = []
    for row in rows:
        rec = {k: row[k] for k in keys if k in row}
        rec["paper"] = row.get("paper", np.nan)
        for m in metrics:
            mean, std = mean_std_pair(row[m]) if m in row else (np.nan, np.nan)
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


def plot_table2(result: dict, *, metric: str = "iou"):
    """LBIE Table 2, paper vs ours, as grouped bars: one panel per number of direct sentences, one
    group per model (T, attention), bars for the paper and for our runs in each coverage mode
    (mean over seeds, error bars = std).  ``result`` is the dict written by
    :func:`lbie.experiments.reproduce.reproduce_cosal_table2`; configurations not run yet have no bar."""
    from ..experiments.reproduce import PAPER_TABLE2

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
                            == (cov, T, att, d) and r.get("input_skip", True)), None)
                m, e = mean_std_pair(row[metric]) if row is not None and metric in row else (np.nan, 0.0)
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

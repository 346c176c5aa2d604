"""Figures of TIM-GAN (chapters 8-10): word attention above the words and spatial masks (paper Fig. 5a),
routing gates and their t-SNE (Fig. 5b), the loss terms of a training run, and the results table."""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .css import EDIT_TYPES, EDIT_TYPE_COLOR, edit_types
from .style import (COLUMN_WIDTH, column_figsize, draw_word_row, image_panel, mask_panel, mean_std_pair, per_index,
                    plottable, text_panel)

HEAD_COLOR = {"where": "tab:blue", "how": "tab:orange"}
LOSS_NAMES = {"gan": "adversarial (G)", "img": "image L1", "feat": "feature L1 (GT-mask weighted)", "mask": "mask L1",
              "gate": "gate diversity", "disc": "discriminator", "l1": "L1",
              "mismatch": "discriminator: real image, wrong caption"}


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
        ww, wh = plottable(ww)[:len(words)], plottable(wh)[:len(words)]
        scale = max(ww.max(), wh.max(), threshold)
        for y, head, w in ((0.0, "how", wh), (1.6, "where", ww)):
            right = max(right, draw_word_row(ax, words, w, y, HEAD_COLOR[head], threshold, scale))
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
        image_panel(axes.pop(0), image, "image")
    for ax, (name, m) in zip(axes, masks.items()):
        im = mask_panel(ax, m, image, textwrap.fill(name, 20))
        if image is None:
            h, w = plottable(m).shape
            ax.set_xlabel(f"{w} feature columns", fontsize=8)
            ax.set_ylabel(f"{h} feature rows", fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02).set_label("mask value")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_gates(alpha, *, labels: Sequence[str] | None = None, title: str = "routing gates α"):
    """The routing gates of one or several edits as bars: one panel per layer, one bar per block
    (grouped by edit).  ``alpha``: (layers, blocks) or (n, layers, blocks); ``labels`` names the n."""
    a = plottable(alpha)
    a = a[None] if a.ndim == 2 else a
    n, layers, blocks = a.shape
    labels = list(labels) if labels is not None else [f"edit {k}" for k in range(n)]
    fig, axes = plt.subplots(1, layers, figsize=column_figsize(3.2 * layers + 0.4 * n, 3.2), sharey=True, squeeze=False)
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
    fig, axes = plt.subplots(1, len(embedding), figsize=column_figsize(3.7 * len(embedding), 4.5), squeeze=False)
    for ax, (panel, xy) in zip(axes[0], embedding.items()):
        xy = plottable(xy)
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

    a = plottable(alpha)
    labels = np.asarray(labels).astype(str)
    names = _ordered(labels)
    cols = [f"L{i + 1} B{j + 1}" for i in range(a.shape[1]) for j in range(a.shape[2])]
    frame = pd.DataFrame([a[labels == t].reshape(-1, len(cols)).mean(0) for t in names], index=names, columns=cols)
    frame.insert(0, "n", [int((labels == t).sum()) for t in names])
    return frame


def plot_gate_usage(alpha, labels, *, title: str = "which blocks each instruction type uses"):
    """Heat maps of :func:`gate_usage`: one per layer, rows = instruction types, columns = blocks,
    the mean α written in each cell."""
    a = plottable(alpha)
    usage = gate_usage(a, labels)
    layers, blocks = a.shape[1:]
    means = usage.drop(columns="n").to_numpy().reshape(len(usage), layers, blocks)
    w, h = column_figsize(2.2 + 1.2 * blocks * layers, 0.55 * len(usage) + 1.8)
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
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=column_figsize(2.5 * cols, 2.4 * -(-n // cols)),
                             squeeze=False)
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


def timgan_frame(result: dict, *, by_kind: Sequence[str] = ("rs1",), kind_std: bool = False):
    """The TIM-GAN results (the dict of ``results/timgan_css.json``) as a pandas DataFrame: one
    row per method with RS@1, RS@5 (mean, std over seeds), FID, the paper's numbers (Clevr
    column of Tables 1-2), pixel L1, the means by instruction kind of each metric in ``by_kind``
    (``"rs1"``, ``"rs5"``, ``"change_ratio"``; columns ``"<metric> <kind>"``, NaN where the file
    does not hold it; with ``kind_std`` also ``"<metric> <kind>_std"``), training minutes and the
    number of seeds."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        paper = row.get("paper") or {}
        rec = {"method": row["method"]}
        for key in ("rs1", "rs5", "fid"):
            mean, std = mean_std_pair(row[key]) if row.get(key) else (np.nan, np.nan)
            rec[key], rec[f"{key}_std"], rec[f"paper {key}"] = mean, std, paper.get(key, np.nan)
        rec["l1"] = mean_std_pair(row["l1"])[0] if "l1" in row else np.nan
        for metric in by_kind:
            for kind, scores in row.get("by_kind", {}).items():
                mean, std = mean_std_pair(scores[metric]) if scores.get(metric) else (np.nan, np.nan)
                rec[f"{metric} {kind}"] = mean
                if kind_std:
                    rec[f"{metric} {kind}_std"] = std
        rec["train min"] = mean_std_pair(row["train_seconds"])[0] / 60 if "train_seconds" in row else np.nan
        rec["seeds"] = row["rs1"].get("seeds", 1) if isinstance(row.get("rs1"), dict) else 1
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("method")


# The names the paper gives the methods of its Tables 1-2 (and the two reference rows).
METHOD_LABELS = {"timgan": "TIM-GAN", "no_where": "no f_where", "no_how": "no f_how",
                 "no_text_adaptive": "no text-adaptive", "tirg": "TIRG-GAN", "geneva": "GeNeVA", "tagan": "TA-GAN",
                 "dmgan": "DM-GAN", "source_copy": "source copy", "ground_truth": "ground truth"}


def timgan_gap_frame(result: dict, *, full: str = "timgan", others: Sequence[str] | None = None,
                     metrics: Sequence[str] = ("rs1", "rs5")):
    """The paper's claims about the full model, checked on a TIM-GAN results dict: one row per
    (method, metric) with ``ours`` = full minus method (difference of the means over seeds),
    ``ours_std`` = the two rows' seed stds combined (sqrt of the sum of squares), ``paper`` = the
    same difference in the paper's numbers, ``same_sign`` (ours has the paper's sign),
    ``separated`` (|ours| > 2 ``ours_std``; None when either row has fewer than two seeds, so that
    there is no spread to compare with) and ``seeds`` (the smaller count of the two rows).
    ``others`` defaults to the ablations and the baselines; methods or metrics the file does not
    hold are left out (a metric such as FID is None when it was not computed)."""
    import pandas as pd

    from ..models.timgan import VARIANTS
    from ..models.timgan_baselines import BASELINES

    rows = {r["method"]: r for r in result["rows"]}
    others = [m for m in VARIANTS + BASELINES if m != full] if others is None else list(others)
    records = []
    if full in rows:
        for method in (m for m in others if m in rows):
            for metric in metrics:
                a, b = rows[full].get(metric), rows[method].get(metric)
                if not a or not b:
                    continue
                (ma, sa), (mb, sb) = mean_std_pair(a), mean_std_pair(b)
                pa, pb = (rows[full].get("paper") or {}).get(metric), (rows[method].get("paper") or {}).get(metric)
                seeds = min(x.get("seeds", 1) if isinstance(x, dict) else 1 for x in (a, b))
                gap, spread = ma - mb, float(np.hypot(sa, sb))
                paper = pa - pb if pa is not None and pb is not None else np.nan
                records.append({"method": method, "metric": metric, "ours": gap, "ours_std": spread, "paper": paper,
                                "same_sign": bool(np.sign(gap) == np.sign(paper)) if np.isfinite(paper) else None,
                                "separated": bool(abs(gap) > 2 * spread) if seeds >= 2 else None, "seeds": seeds})
    columns = ["method", "metric", "ours", "ours_std", "paper", "same_sign", "separated", "seeds"]
    return pd.DataFrame.from_records(records, columns=columns)


def show_method_edits(data, indices: Iterable[int], edits: dict, *, title: str | None = None):
    """Several methods' edits of the same triples: one row per triple of ``data`` (a
    :class:`lbie.CSSData`) with its source, instruction (with its type), target and then one
    column per entry of ``edits`` (``{method: uint8 (N, H, W, 3)}``, for the whole data set or one
    per index; a method whose value is None gets a grey panel saying it has no model).  Column
    titles use :data:`METHOD_LABELS` where a method has one.  The images shrink so that the
    figure fits the book's column (:data:`COLUMN_WIDTH`) whatever the number of methods."""
    import textwrap

    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("show_method_edits needs at least one triple index")
    if not edits:
        raise ValueError("show_method_edits needs at least one method in edits")
    edits = {m: per_index(e, indices, len(data)) for m, e in edits.items()}
    types = edit_types(data)
    # a fixed layout in inches (tight_layout would shrink the images to make room for the wrapped text)
    n_img, text_w, gap, left, top, bottom = 2 + len(edits), 1.5, 0.05, 0.25, 0.68, 0.05
    img = min(0.8, (COLUMN_WIDTH - left - text_w - gap * (n_img + 1)) / n_img)
    row = max(img, 0.55)  # room for the type and three lines of instruction
    width = left + text_w + n_img * img + gap * (n_img + 1)
    height = top + len(indices) * row + (len(indices) - 1) * gap + bottom
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(len(indices), n_img + 1, width_ratios=[img, text_w] + [img] * (n_img - 1),
                            left=left / width, right=1 - gap / width, top=1 - top / height, bottom=bottom / height,
                            wspace=gap / ((width - left - gap) / (n_img + 1)), hspace=gap / row)
    titles = ["source", "instruction", "target"] + [textwrap.fill(METHOD_LABELS.get(m, m), 9) for m in edits]
    for r, i in enumerate(indices):
        panels = [fig.add_subplot(grid[r, c]) for c in range(n_img + 1)]
        image_panel(panels[0], data.source[i])
        panels[0].set_ylabel(f"#{i}", fontsize=8)
        text_panel(panels[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"), width=24,
                    fontsize=8)
        image_panel(panels[2], data.target[i])
        for ax, e in zip(panels[3:], edits.values()):
            if e is None:
                ax.set_xticks([]), ax.set_yticks([])
                ax.set_facecolor("0.92")
                ax.text(0.5, 0.5, "no\nmodel", ha="center", va="center", fontsize=8, color="0.3",
                        transform=ax.transAxes)
            else:
                image_panel(ax, plottable(e[i]).astype(np.uint8))
        if r == 0:
            for ax, t in zip(panels, titles):
                ax.set_title(t, fontsize=8, va="bottom")
    fig.suptitle(title or f"{len(edits)} methods on the same {len(indices)} test edits", y=1 - 0.08 / height,
                 va="top")
    return fig

"""Figures of the CSS-2D edit triples (chapter 7): triples side by side (TIM-GAN Fig. 6 style), the
renderer, the splits' statistics, and the instruction types every TIM-GAN figure colours by."""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import COLUMN_WIDTH, column_figsize, image_panel, mask_panel, per_index, plottable, text_panel

EDIT_TYPES = ("add", "remove", "change-color", "change-size", "change-shape")
EDIT_TYPE_COLOR = {"add": "tab:green", "remove": "tab:red", "change-color": "tab:purple",
                   "change-size": "tab:orange", "change-shape": "tab:blue"}


def edit_types(data) -> np.ndarray:
    """The instruction type of every triple of a :class:`lbie.CSSData`: its kind, and for
    ``change`` its attribute: ``"add"``, ``"remove"``, ``"change-color"``, ``"change-size"`` or
    ``"change-shape"``."""
    kind, attr = np.asarray(data.kind).astype(str), np.asarray(data.attribute).astype(str)
    return np.where(kind == "change", np.char.add("change-", attr), kind)


def show_css_examples(data, indices: Iterable[int], edits=None, masks=None, *, title: str | None = None,
                      labels: Sequence[str] | None = None, label_colors: Sequence[str] | None = None,
                      target_title: str = "target"):
    """One row per triple (paper Fig. 6 style): source, instruction (with its type), output (if
    ``edits``: uint8 (N, H, W, 3)), target, and masks.  ``masks`` is an array (N, h, w) in
    [0, 1], or a dict of named ones (e.g. predicted and ground truth), drawn over the source;
    by default the data's pixel edit mask.  ``edits`` and masks may be given for the whole data
    set or one per index; ``labels`` / ``label_colors`` (one per index) replace the instruction
    types above the instructions and their colours."""
    indices = [int(i) for i in indices]
    if any(v is not None and len(v) != len(indices) for v in (labels, label_colors)):
        raise ValueError(f"labels and label_colors need one entry per index ({len(indices)})")
    edits = per_index(edits, indices, len(data))
    if masks is None:
        masks = {"edit mask (data)": data.mask}
    elif not isinstance(masks, dict):
        masks = {"mask": masks}
    masks = {k: per_index(v, indices, len(data)) for k, v in masks.items()}
    types = edit_types(data)
    cols = ["source", "instruction"] + (["output"] if edits is not None else []) + ["target"] + list(masks)
    fig, axes = plt.subplots(len(indices), len(cols),
                             figsize=column_figsize(1.2 * len(cols) + 0.9, 1.35 * len(indices) + 0.5),
                             gridspec_kw=dict(width_ratios=[1, 1.6] + [1] * (len(cols) - 2)), squeeze=False)
    for row, i in enumerate(indices):
        top = row == 0
        panels = axes[row]
        image_panel(panels[0], data.source[i], "source" if top else None)
        panels[0].set_ylabel(f"#{i}", fontsize=8)
        label = types[i] if labels is None else labels[row]
        colour = EDIT_TYPE_COLOR.get(types[i], "k") if label_colors is None else label_colors[row]
        text_panel(panels[1], str(data.instruction[i]), label, colour)
        k = 2
        if edits is not None:
            image_panel(panels[k], plottable(edits[i]).astype(np.uint8), "output" if top else None)
            k += 1
        image_panel(panels[k], data.target[i], target_title if top else None)
        for name, m in masks.items():
            k += 1
            mask_panel(panels[k], m[i], data.source[i], name if top else None)
        if top:
            panels[1].set_title("instruction", fontsize=9)
    fig.suptitle(title or f"CSS-2D triples ({len(data)} in this split)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the title above the column titles
    return fig


def plot_css_renderer(size: int = 64):
    """The CSS-2D renderer: every shape at both sizes (top) and the eight colours with their RGB
    values (bottom), each object centred on a ``size`` x ``size`` canvas."""
    from ..data.css import COLOR_RGB as CSS_RGB, COLORS as CSS_COLORS, SHAPES as CSS_SHAPES, SIZES, render_css

    fig = plt.figure(figsize=(COLUMN_WIDTH, 3.2))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    axes = top.subplots(1, len(CSS_SHAPES) * len(SIZES))
    for ax, (shape, size_name) in zip(axes, [(s, z) for s in CSS_SHAPES for z in SIZES]):
        image_panel(ax, render_css([{"shape": shape, "color": "red", "size": size_name, "pos": (0.5, 0.5)}], size),
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

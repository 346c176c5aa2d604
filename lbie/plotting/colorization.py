"""Figures of the language-based colourisation (LBIE §4.3, Figs. 6-7; chapter 6): an image in CIE-Lab,
colourisations of test flowers, one grey image recoloured by several captions, the word attention, and
the results table."""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import COLUMN_WIDTH, image_panel, mask_panel, mean_std_pair, plottable, text_panel


def _flower_consistency(rgb, data, indices):
    from ..data.flowers import caption_consistency

    return caption_consistency(rgb, data.parts[indices], data.named_petal_colors[indices])[0]


def plot_lab_channels(rgb, *, title: str = "one image in CIE-Lab"):
    """An sRGB image (H, W, 3) uint8 and its L, a and b channels, each with its colour bar."""
    from ..data.flowers import rgb_to_lab

    lab = rgb_to_lab(plottable(rgb))
    # constrained layout fills the figure, and the saved image adds 0.1 in on each side
    fig, axes = plt.subplots(1, 4, figsize=(COLUMN_WIDTH - 0.2, 2.5), layout="constrained")
    image_panel(axes[0], plottable(rgb), "sRGB image")
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
    from ..data.flowers import rgb_to_lab

    indices = [int(i) for i in indices]
    outputs = {k: (v if len(v) == len(indices) and len(v) != len(data) else plottable(v)[indices])
               for k, v in outputs.items()}
    named = data.named_petal_colors[indices]
    rows = 2 + len(outputs)
    width = min(COLUMN_WIDTH, 1.9 * len(indices))
    cell = width / len(indices)  # inches per flower
    fig, axes = plt.subplots(rows + 1, len(indices), figsize=(width, cell * (rows + 1.2) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1] * rows + [1.2]})
    grey = rgb_to_lab(data.images[indices])[..., 0]
    for j, i in enumerate(indices):
        image_panel(axes[0, j], data.images[i])
        image_panel(axes[1, j], grey[j][..., None].repeat(3, -1) / 100)
        for r, (name, rgb) in enumerate(outputs.items()):
            ok = _flower_consistency(rgb[j:j + 1], data, [i])[0]
            image_panel(axes[2 + r, j], rgb[j], ("✓" if ok else "✗") if named[j] else "–")
            axes[2 + r, j].title.set_color("tab:green" if ok else "tab:red" if named[j] else "k")
        text_panel(axes[rows, j], data.texts[i], width=max(12, int(cell * 72 / 5.3)))
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
    from ..data.flowers import rgb_to_lab

    names = list(rows)
    width = min(COLUMN_WIDTH, 1.7 * (2 + len(colours)))
    cell = width / (2 + len(colours))  # inches per image
    fig, axes = plt.subplots(len(names), 2 + len(colours), figsize=(width, (cell + 0.45) * len(names) + 0.4),
                             squeeze=False)
    for r, name in enumerate(names):
        original, recoloured = rows[name]
        image_panel(axes[r, 0], original, "original" if r == 0 else None)
        grey = rgb_to_lab(np.asarray(original))[..., :1] / 100  # the model's input: the lightness L
        image_panel(axes[r, 1], grey.repeat(3, -1), "grey input L" if r == 0 else None)
        axes[r, 0].set_ylabel(name, fontsize=9)
        for k, colour in enumerate(colours):
            ok = None if consistent is None else bool(np.asarray(consistent[name])[k])
            mark = "" if ok is None else (" ✓" if ok else " ✗")
            image_panel(axes[r, 2 + k], recoloured[k], f"“{colour}”{mark}")
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
    att = plottable(attention)[:, :len(words)]
    side = int(round(np.sqrt(att.shape[0])))
    order = np.argsort(-att.mean(0))[:top]
    cols = max(len(order), 3)
    fig = plt.figure(figsize=(COLUMN_WIDTH, 2.3 + 2.0 * (len(order) > 0) + 0.8))
    grid = fig.add_gridspec(2 if len(order) else 1, cols, height_ratios=[1.25, 1] if len(order) else None)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1:])] + [fig.add_subplot(grid[1, k])
                                                                          for k in range(len(order))]
    image_panel(axes[0], image, "input")
    axes[1].bar(range(len(words)), att.mean(0), color=["tab:orange" if j in order else "0.6" for j in range(len(words))])
    axes[1].set_xticks(range(len(words)), words, rotation=60, fontsize=8, ha="right")
    axes[1].set_ylabel("mean attention\nover regions")
    axes[1].set_title("attention per word", fontsize=9)
    for ax, j in zip(axes[2:], order):
        mask_panel(ax, att[:, j].reshape(side, side) / max(att[:, j].max(), 1e-8), image=image,
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
        rec["consistency"], rec["consistency_std"] = mean_std_pair(row["consistency"])
        rec["paper consistency"] = paper.get("consistency") if paper.get("consistency") is not None else np.nan
        for key in ("fid", "colorfulness", "ab_l1"):
            rec[key] = mean_std_pair(q[key])[0] if q.get(key) else np.nan
        rec["paper quality"] = paper.get("quality", np.nan)
        rec["seeds"] = row["consistency"].get("seeds", 1)
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("method")

"""Figures of retrieval with edited images (chapter 12): a query's nearest gallery scenes for each kind of
query, and the failed retrievals with the edit and mask that explain them."""
from __future__ import annotations

from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np

from .css import EDIT_TYPE_COLOR, edit_types
from .style import column_figsize, image_panel, mask_panel, plottable, text_panel

TARGET_COLOR = "tab:green"


def _difference_note(gallery_id: int, target_id: int, width: int) -> str:
    """How a CSS-2D gallery scene differs from the target scene ("= target" if it is the target),
    wrapped to ``width`` characters; empty for ids that are not exact grid-scene ids."""
    import textwrap

    from ..data.css import id_to_cells, scene_differences

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
        image_panel(ax, images[j], f"top {j + 1}" if top else None)
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
    nearest gallery scenes (``results[name]``: a :class:`lbie.metrics.retrieval.RetrievalResult` of the whole
    split; ``index``: its :class:`lbie.RetrievalIndex`), each labelled with its cosine similarity and
    how it differs from the target; the target is framed green.  The top row shows the source, the
    instruction, the target and, with ``mask`` ((h, w) in [0, 1]), the predicted where-mask."""
    types = edit_types(data)
    fig = plt.figure(figsize=column_figsize(1.35 * (k + 1), 1.6 + 2.1 * len(results)), layout="constrained")
    head, body = fig.subfigures(2, 1, height_ratios=[1.6, 2.1 * len(results)])
    top = head.subplots(1, 4 if mask is not None else 3, gridspec_kw=dict(width_ratios=[1, 2.2, 1, 1][:4 if mask
                                                                                                 is not None else 3]))
    image_panel(top[0], data.source[i], "source")
    text_panel(top[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"), width=30)
    top[1].set_title("instruction", fontsize=9)
    image_panel(top[2], data.target[i], "target")
    for spine in top[2].spines.values():
        spine.set_visible(True), spine.set_color(TARGET_COLOR), spine.set_linewidth(3)
    if mask is not None:
        mask_panel(top[3], mask, data.source[i], "predicted where-mask")
    axes = body.subplots(len(results), k + 1, squeeze=False)
    for row, (name, result) in enumerate(results.items()):
        import textwrap

        query, ax, rank = queries.get(name), axes[row, 0], int(result.target_rank[i])
        if query is None:
            ax.axis("off")
            ax.text(0.5, 0.5, "source + instruction\ncomposed into\none feature vector\n(no image)", ha="center",
                    va="center", fontsize=8, transform=ax.transAxes)
        else:
            image_panel(ax, plottable(query).astype(np.uint8))
        ax.set_title(textwrap.fill(name, 18) + (f"\ntarget at rank {rank}" if rank else "\ntarget not in gallery"),
                     fontsize=8.5, fontweight="bold")
        _neighbour_panels(axes[row, 1:], result, i, index, width=19, top=False)
    fig.suptitle(title or f"test triple #{i} as a retrieval query ({len(index)} gallery scenes, source excluded)")
    return fig


def show_retrieval_failures(data, indices: Iterable[int], edits, result, index, *, masks=None, k: int = 3,
                            title: str | None = None):
    """Edits whose retrieval fails, one row each: source, instruction, the edit (the query), the
    predicted where-mask over the source (``masks``: (N, h, w), optional), the target, and the edit's
    ``k`` nearest gallery scenes (``result``: the edits' :class:`lbie.metrics.retrieval.RetrievalResult`), each
    with its cosine similarity and how it differs from the target -- which says what the edit got wrong."""
    indices = [int(i) for i in indices]
    types = edit_types(data)
    cols = ["source", "instruction", "edit (query)"] + (["predicted mask"] if masks is not None else []) + ["target"]
    fig, axes = plt.subplots(len(indices), len(cols) + k, squeeze=False,
                             figsize=column_figsize(1.15 * (len(cols) + k) + 0.6, 2.1 * len(indices) + 0.5),
                             gridspec_kw=dict(width_ratios=[1, 1.5] + [1] * (len(cols) - 2 + k)), layout="constrained")
    for row, i in enumerate(indices):
        top, panels = row == 0, axes[row]
        image_panel(panels[0], data.source[i], "source" if top else None)
        rank = int(result.target_rank[i])
        panels[0].set_ylabel(f"#{i}\ntarget rank {rank}", fontsize=8)
        text_panel(panels[1], str(data.instruction[i]), types[i], EDIT_TYPE_COLOR.get(types[i], "k"), width=18)
        if top:
            panels[1].set_title("instruction", fontsize=9)
        image_panel(panels[2], plottable(edits[i]).astype(np.uint8), "edit (query)" if top else None)
        c = 3
        if masks is not None:
            mask_panel(panels[c], masks[i], data.source[i], "predicted mask" if top else None)
            c += 1
        image_panel(panels[c], data.target[i], "target" if top else None)
        _neighbour_panels(panels[c + 1:], result, i, index, width=15, top=top)
    fig.suptitle(title or "edits that do not retrieve their target: what they retrieve instead")
    return fig

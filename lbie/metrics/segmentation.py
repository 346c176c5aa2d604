"""Referring-segmentation metrics (DESIGN §4.3; LBIE paper Table 3; Hu et al. 2016's protocol).

Per expression, I = |pred ∩ gt| and U = |pred ∪ gt| (pixels):

* **overall IoU** = ΣI / ΣU over all expressions (Hu et al.'s "overall IoU"; large regions weigh more);
* **precision@t** = share of expressions with I / U ≥ t, for t in 0.5, 0.6, 0.7, 0.8, 0.9;
* **mean IoU** = the plain average of the per-expression I / U -- *not* a number the paper reports, kept
  separate so the two are never confused.

Empty unions (an empty prediction for an empty ground truth) count as a perfect IoU of 1 for that expression
(it passes every threshold) and add nothing to ΣI or ΣU.  Hu et al.'s code would divide 0 / 0 there; ReferIt
never has empty ground truth, so their numbers are unaffected.  ``overall_iou`` is NaN when ΣU = 0.
"""
from __future__ import annotations

import numpy as np

from ..utils import to_numpy

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


class ReferringIoU:
    """Accumulates per-expression intersections and unions over batches (masks may differ in size
    between calls, e.g. real images at their native resolutions)."""

    def __init__(self, thresholds=THRESHOLDS):
        self.thresholds = tuple(float(t) for t in thresholds)
        self.inter: list[np.ndarray] = []
        self.union: list[np.ndarray] = []

    def update(self, pred_masks, gt_masks):
        """pred_masks, gt_masks: (N, H, W) bool-like arrays/tensors, or equal-length lists of (H_i, W_i) masks."""
        if isinstance(pred_masks, (list, tuple)) or isinstance(gt_masks, (list, tuple)):
            if len(pred_masks) != len(gt_masks):
                raise ValueError(f"{len(pred_masks)} predictions but {len(gt_masks)} ground-truth masks")
            for p, g in zip(pred_masks, gt_masks):
                self.update(to_numpy(p)[None], to_numpy(g)[None])
            return self
        p, g = to_numpy(pred_masks).astype(bool), to_numpy(gt_masks).astype(bool)
        if p.shape != g.shape or p.ndim != 3:
            raise ValueError(f"pred and gt must both be (N, H, W); got {p.shape} and {g.shape}")
        self.inter.append((p & g).sum((1, 2)))
        self.union.append((p | g).sum((1, 2)))
        return self

    def per_expression(self) -> np.ndarray:
        """(N,) IoU of each expression so far; 1.0 where the union is empty."""
        i = np.concatenate(self.inter) if self.inter else np.zeros(0, np.int64)
        u = np.concatenate(self.union) if self.union else np.zeros(0, np.int64)
        return np.where(u > 0, i / np.maximum(u, 1), 1.0)

    def compute(self) -> dict:
        iou = self.per_expression()
        cum_i = int(sum(int(x.sum()) for x in self.inter))
        cum_u = int(sum(int(x.sum()) for x in self.union))
        out = {"overall_iou": cum_i / cum_u if cum_u else float("nan"),
               "mean_iou": float(iou.mean()) if iou.size else float("nan")}
        for t in self.thresholds:
            out[f"precision@{t:g}"] = float((iou >= t).mean()) if iou.size else float("nan")
        out.update(n=int(iou.size), cum_I=cum_i, cum_U=cum_u)
        return out


def referring_iou_stats(pred_masks, gt_masks, thresholds=THRESHOLDS) -> dict:
    """``{"overall_iou", "mean_iou", "precision@0.5", ..., "precision@0.9", "n", "cum_I", "cum_U"}`` of
    predicted vs ground-truth masks ((N, H, W) arrays/tensors or lists of per-expression masks)."""
    return ReferringIoU(thresholds).update(pred_masks, gt_masks).compute()

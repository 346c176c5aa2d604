"""The CoSaL IoUs (DESIGN §4.3).

CoSaL has two IoU definitions, both accumulated over a whole test set:

* :class:`CoSaLShapeIoU` — the paper's (§4.1): ten classes, the nine *shapes* plus the
  background.  For shape k the ground truth is the set of its pixels (painted its colour c_k)
  and the prediction is the set of pixels of k's cell predicted as colour c_k; IoU_k =
  ΣI / ΣU over the test set; the reported number is the mean of the ten.
* :class:`ColorIoU` — the released code's ``tf.metrics.mean_iou``: a confusion matrix over the
  colour classes plus background, mean over classes of I / U.

Both accept an optional pixel mask (e.g. only the cells the caption determines).
"""
from __future__ import annotations

import numpy as np

from ..data.cosal import cell_map
from ..utils import to_numpy


class CoSaLShapeIoU:
    """The paper's CoSaL metric: mean IoU over the 9 shapes + background (see module doc)."""

    num_classes = 10

    def __init__(self):
        self.inter = np.zeros(self.num_classes)
        self.union = np.zeros(self.num_classes)

    def update(self, pred, labels, cell_shape, cell_color, mask=None):
        """pred, labels: (N, H, W) colour labels (0 = background); cell_shape, cell_color: (N, 9);
        mask: optional (N, H, W) bool of pixels to count."""
        pred, labels = to_numpy(pred), to_numpy(labels)
        H = labels.shape[-1]
        shape = cell_map(to_numpy(cell_shape), H)  # the shape whose cell each pixel lies in
        colour = cell_map(to_numpy(cell_color), H) + 1  # that shape's colour label
        keep = np.ones_like(labels, dtype=bool) if mask is None else to_numpy(mask).astype(bool)
        gt_fg, pred_c = labels > 0, pred == colour
        # Background: class 0.  Shape k: class k+1.
        self.inter[0] += np.sum(keep & (labels == 0) & (pred == 0))
        self.union[0] += np.sum(keep & ((labels == 0) | (pred == 0)))
        cls = shape + 1  # never 0, so these counts leave the background entry alone
        self.inter += np.bincount(cls[keep & gt_fg & (pred == labels)], minlength=10)
        self.union += np.bincount(cls[keep & (gt_fg | pred_c)], minlength=10)
        return self

    def per_class(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.union > 0, self.inter / np.maximum(self.union, 1), np.nan)

    def compute(self) -> float:
        return float(np.nanmean(self.per_class()))


class ColorIoU:
    """Mean IoU over colour classes + background from a confusion matrix (released code)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, labels, mask=None):
        pred, labels = to_numpy(pred).astype(np.int64), to_numpy(labels).astype(np.int64)
        if mask is not None:
            m = to_numpy(mask).astype(bool)
            pred, labels = pred[m], labels[m]
        idx = labels.ravel() * self.num_classes + pred.ravel()
        self.confusion += np.bincount(idx, minlength=self.num_classes ** 2).reshape(self.num_classes, -1)
        return self

    def per_class(self) -> np.ndarray:
        inter = np.diag(self.confusion).astype(float)
        union = self.confusion.sum(0) + self.confusion.sum(1) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / np.maximum(union, 1), np.nan)

    def compute(self) -> float:
        return float(np.nanmean(self.per_class()))


def relational_iou(iou_by_depth: dict) -> float:
    """The IoU on relational cells: the mean of an ``iou_by_depth`` mapping (depth, as an int or its string, to
    IoU; :func:`lbie.experiments.cosal.evaluate_predictions`) over the depths >= 1, each depth weighted alike."""
    values = [v for d, v in iou_by_depth.items() if int(d) >= 1]
    if not values:
        raise ValueError(f"no relational depth (>= 1) in iou_by_depth: {sorted(iou_by_depth)}")
    return float(np.mean(values))

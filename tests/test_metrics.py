"""Metrics on hand-computed cases (DESIGN §4.3).

The toy image is 6x6 (img_size 6 → 2x2 cells).  Cell k holds shape 8 - k; every cell is colour
0 (label 1) except cell 4, colour 2 (label 3).  Each shape is the top-left pixel of its cell, so
there are 9 foreground and 27 background pixels.  The prediction is perfect except:

* cell 0 (shape 8): its shape pixel (0, 0) is predicted label 2 (wrong colour);
* cell 4 (shape 4): background pixel (2, 3) is predicted label 3 (the cell's colour);
* cell 8 (shape 0): background pixel (5, 5) is predicted label 2 (not the cell's colour).

Paper (shape) IoU, by hand:
  background: gt bg 27, predicted bg 25 (all inside gt bg) → 25/27
  shape 8: I 0, U 1 → 0;  shape 4: I 1, U 2 → 1/2;  shape 0: I 1, U 1 (pixel (5, 5) is not the
  cell's colour) → 1;  the six other shapes → 1.   Mean = (25/27 + 0 + 1/2 + 7) / 10.
Colour-confusion IoU (4 classes), by hand:
  class 0: 25/27;  class 1: gt 8, pred 7 ⊂ gt → 7/8;  class 2: gt 0, pred 2 → 0;
  class 3: gt {(2,2)}, pred {(2,2), (2,3)} → 1/2.   Mean = (25/27 + 7/8 + 0 + 1/2) / 4.
"""
import numpy as np
import pytest
import torch

from lbie import ColorIoU, CoSaLShapeIoU, mean_std
from lbie.data.cosal import cell_map


def toy():
    cell_shape = np.array([[8, 7, 6, 5, 4, 3, 2, 1, 0]])
    cell_color = np.array([[0, 0, 0, 0, 2, 0, 0, 0, 0]])
    labels = np.zeros((1, 6, 6), np.uint8)
    for k in range(9):
        labels[0, 2 * (k // 3), 2 * (k % 3)] = cell_color[0, k] + 1
    pred = labels.copy()
    pred[0, 0, 0] = 2
    pred[0, 2, 3] = 3
    pred[0, 5, 5] = 2
    return pred, labels, cell_shape, cell_color


def test_toy_construction():
    pred, labels, _, _ = toy()
    assert (labels > 0).sum() == 9 and (labels == 3).sum() == 1 and labels[0, 2, 2] == 3
    assert (pred != labels).sum() == 3


def test_shape_iou_by_hand():
    pred, labels, cs, cc = toy()
    m = CoSaLShapeIoU().update(pred, labels, cs, cc)
    expect = np.ones(10)
    expect[0] = 25 / 27
    expect[8 + 1] = 0.0  # shape 8
    expect[4 + 1] = 0.5  # shape 4
    np.testing.assert_allclose(m.per_class(), expect)
    assert m.compute() == pytest.approx((25 / 27 + 0.5 + 7) / 10)
    np.testing.assert_array_equal(m.inter, [25, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(m.union, [27, 1, 1, 1, 1, 2, 1, 1, 1, 1])


def test_color_iou_by_hand():
    pred, labels, _, _ = toy()
    m = ColorIoU(4).update(pred, labels)
    np.testing.assert_allclose(m.per_class(), [25 / 27, 7 / 8, 0.0, 0.5])
    assert m.compute() == pytest.approx((25 / 27 + 7 / 8 + 0 + 0.5) / 4)
    assert m.confusion.sum() == 36
    assert m.confusion[1, 2] == 1 and m.confusion[0, 3] == 1 and m.confusion[0, 2] == 1


def test_masks_restrict_counting():
    pred, labels, cs, cc = toy()
    mask = np.zeros((1, 6, 6), bool)
    mask[0, :2] = True  # the top row of cells: shapes 8, 7, 6
    m = CoSaLShapeIoU().update(pred, labels, cs, cc, mask)
    pc = m.per_class()
    assert pc[0] == 1.0 and pc[9] == 0.0 and pc[8] == 1.0 and pc[7] == 1.0
    assert np.isnan(pc[1:7]).all()  # shapes outside the mask are not counted at all
    assert m.compute() == pytest.approx(0.75)
    c = ColorIoU(4).update(pred, labels, mask)
    pcc = c.per_class()
    np.testing.assert_allclose(pcc[:3], [1.0, 2 / 3, 0.0])
    assert np.isnan(pcc[3])
    assert c.compute() == pytest.approx(5 / 9)
    # a mask built from per-cell flags (like "determined") via cell_map
    det = np.array([[True, True, True, False, False, False, False, False, False]])
    m2 = CoSaLShapeIoU().update(pred, labels, cs, cc, cell_map(det, 6))
    np.testing.assert_array_equal(m2.inter, m.inter)
    np.testing.assert_array_equal(m2.union, m.union)


def test_perfect_prediction_gives_one():
    _, labels, cs, cc = toy()
    assert CoSaLShapeIoU().update(labels, labels, cs, cc).compute() == 1.0
    assert ColorIoU(4).update(labels, labels).compute() == 1.0


def test_wrong_colour_everywhere_gives_background_only():
    _, labels, cs, cc = toy()
    pred = np.where(labels > 0, np.where(labels == 1, 2, 1), 0)  # right pixels, all colours wrong
    m = CoSaLShapeIoU().update(pred, labels, cs, cc)
    assert m.per_class()[0] == 1.0 and (m.per_class()[1:] == 0).all()
    assert m.compute() == pytest.approx(0.1)


def test_accumulates_over_the_test_set_and_accepts_tensors():
    pred, labels, cs, cc = toy()
    perfect = labels.copy()
    acc = CoSaLShapeIoU().update(pred, labels, cs, cc).update(torch.from_numpy(perfect), torch.from_numpy(labels),
                                                               torch.from_numpy(cs), torch.from_numpy(cc))
    # ΣI / ΣU over both images: shape 8 → 1/2, shape 4 → 2/3, background → 52/54
    pc = acc.per_class()
    assert pc[9] == pytest.approx(0.5) and pc[5] == pytest.approx(2 / 3) and pc[0] == pytest.approx(52 / 54)
    both = CoSaLShapeIoU().update(np.concatenate([pred, perfect]), np.concatenate([labels, labels]),
                                  np.concatenate([cs, cs]), np.concatenate([cc, cc]))
    np.testing.assert_allclose(acc.per_class(), both.per_class())
    c = ColorIoU(4).update(pred, labels).update(torch.from_numpy(perfect), torch.from_numpy(labels))
    np.testing.assert_allclose(c.per_class(), [52 / 54, 15 / 16, 0.0, 2 / 3])


def test_mean_std():
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "seeds": 1}
    r = mean_std([1.0, 2.0, 3.0, 6.0])
    assert r["mean"] == pytest.approx(3.0) and r["seeds"] == 4
    assert r["std"] == pytest.approx(np.sqrt((4 + 1 + 0 + 9) / 4))  # population std
    assert all(type(v) in (float, int) for v in r.values())


def test_relational_iou_is_the_mean_over_depths_from_one():
    from lbie.metrics.cosal_iou import relational_iou

    assert relational_iou({"-1": 0.1, "0": 0.9, "1": 0.5, "2": 0.7}) == pytest.approx(0.6)
    assert relational_iou({0: 1.0, 3: 0.4}) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no relational depth"):
        relational_iou({"-1": 0.2, "0": 0.9})

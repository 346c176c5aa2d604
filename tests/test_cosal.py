"""CoSaL generator invariants (DESIGN §4.1)."""
import numpy as np
import pytest

import lbie
import lbie.data.cosal as cosal
from lbie.data.cosal import COLOR_RGB, COLORS, SHAPES, VOCAB, generate_cosal, labels_to_rgb, load_cosal

MODES = ("full", "released")
NUM_DIRECT = (1, 4, 6, 8)
N = 192
REL_OFFSET = {"below": (1, 0), "above": (-1, 0), "right": (0, 1), "left": (0, -1)}  # target - reference


@pytest.fixture(scope="module")
def datasets():
    return {(cov, d): generate_cosal(N, num_direct=d, coverage=cov, seed=11 + d)
            for cov in MODES for d in NUM_DIRECT}


@pytest.fixture(params=[(c, d) for c in MODES for d in NUM_DIRECT], ids=lambda p: f"{p[0]}-d{p[1]}")
def data(request, datasets):
    return datasets[request.param]


def _cell_of(cell_shape_row, shape_id):
    (idx,) = np.nonzero(cell_shape_row == shape_id)
    assert idx.size == 1
    return int(idx[0])


# --------------------------------------------------------------------------- caption
def test_sentence_count_order_and_direct_form(data):
    d = data.num_direct
    assert data.tokens.shape == (N, 9, 3)
    assert (data.kind[:, :d] == 0).all() and (data.kind[:, d:] == 1).all()
    for i in range(N):
        sents = data.sentences(i)
        assert len(sents) == 9
        n_direct = 0
        for j, (a, b, c) in enumerate(data.tokens[i]):
            words = (VOCAB[a], VOCAB[b], VOCAB[c])
            if j < d:
                n_direct += 1
                shape, is_, colour = words
                assert is_ == "is" and shape in SHAPES and colour in COLORS
                cell = _cell_of(data.cell_shape[i], SHAPES.index(shape))
                assert cell == data.target[i, j] == data.ref[i, j]
                assert COLORS.index(colour) == data.cell_color[i, cell]
                assert sents[j] == f"{shape} is {colour}"
            else:
                colour, rel, shape = words
                assert "is" not in words
                assert colour in COLORS and rel in REL_OFFSET and shape in SHAPES
        assert n_direct == d
    # direct cells are distinct
    direct = np.sort(data.target[:, :d], axis=1)
    assert (np.diff(direct, axis=1) > 0).all()


def test_relational_geometry_and_colour(data):
    d = data.num_direct
    for i in range(N):
        for j in range(d, 9):
            colour, rel, shape = (VOCAB[t] for t in data.tokens[i, j])
            ref = _cell_of(data.cell_shape[i], SHAPES.index(shape))  # re-derived from the image
            assert ref == data.ref[i, j]
            tgt = int(data.target[i, j])
            dr, dc = REL_OFFSET[rel]
            assert (tgt // 3, tgt % 3) == (ref // 3 + dr, ref % 3 + dc), (i, j, rel, ref, tgt)
            assert COLORS.index(colour) == data.cell_color[i, tgt]


def test_relational_chain_known_before_use(data):
    d = data.num_direct
    for i in range(N):
        direct = [int(c) for c in data.target[i, :d]]
        known = set(direct) if data.coverage == "full" else {direct[0]}
        for j in range(d, 9):
            ref, tgt = int(data.ref[i, j]), int(data.target[i, j])
            assert ref in known, (i, j)
            assert tgt not in known, (i, j)
            known.add(tgt)


def test_coverage_and_determined(data):
    d = data.num_direct
    described = np.zeros((N, 9), bool)
    described[np.arange(N)[:, None], data.target] = True
    np.testing.assert_array_equal(data.determined, described)
    if data.coverage == "full":
        assert data.determined.all()
        np.testing.assert_array_equal(np.sort(data.target, axis=1), np.tile(np.arange(9), (N, 1)))
    elif d == 1:  # one direct cell: both modes coincide, so every cell is still determined
        assert data.determined.all()


def test_depth(data):
    d = data.num_direct
    assert ((data.depth == -1) == ~data.determined).all()
    assert (data.depth >= -1).all()
    for i in range(N):
        direct = {int(c) for c in data.target[i, :d]}
        for c in direct:
            assert data.depth[i, c] == 0
        for j in range(d, 9):
            tgt, ref = int(data.target[i, j]), int(data.ref[i, j])
            expect = 0 if tgt in direct else data.depth[i, ref] + 1
            assert data.depth[i, tgt] == expect, (i, j)
        for c in range(9):
            if data.determined[i, c] and c not in direct:
                assert data.depth[i, c] >= 1


def test_num_direct_one_modes_coincide():
    a = generate_cosal(64, num_direct=1, coverage="full", seed=3)
    b = generate_cosal(64, num_direct=1, coverage="released", seed=3)
    for k in cosal._ARRAYS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_released_misses_cells_full_does_not():
    rel = generate_cosal(500, num_direct=4, coverage="released", seed=5)
    full = generate_cosal(500, num_direct=4, coverage="full", seed=5)
    assert rel.determined.sum(1).min() < 9
    assert full.determined.all()
    # released mode describes some direct cell a second time (as a relational target)
    twice = [np.intersect1d(rel.target[i, :4], rel.target[i, 4:]).size > 0 for i in range(500)]
    assert any(twice)


def test_without_undetermined_skips_only_shape_pixels_of_undetermined_cells():
    from lbie.experiments.cosal import images_from_labels, without_undetermined
    from lbie.models.lbie import IGNORE_LABEL

    rel = generate_cosal(200, num_direct=4, coverage="released", seed=5)
    kept = without_undetermined(rel)
    skipped = kept.labels == IGNORE_LABEL
    undetermined = rel.cell_map(~rel.determined)
    np.testing.assert_array_equal(skipped, undetermined & (rel.labels > 0))
    np.testing.assert_array_equal(kept.labels[~skipped], rel.labels[~skipped])
    assert skipped.any() and rel.labels.max() < IGNORE_LABEL
    # the input still shows every shape: the silhouettes are those of the original labels
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(images_from_labels(torch.from_numpy(kept.labels).long()).numpy(),
                                  images_from_labels(torch.from_numpy(rel.labels).long()).numpy())
    full = generate_cosal(50, num_direct=4, coverage="full", seed=5)
    np.testing.assert_array_equal(without_undetermined(full).labels, full.labels)


# Measured on the released generator (CoSaL/make_data.py of Jianbo-Lab/LBIE, run under Python 3
# with OpenCV 5.0), 10,000 images per setting, on 2026-12-01: share of images with all nine cells
# determined 1.9% / 1.8% / 12.6%, mean determined cells 7.13 / 7.14 / 8.13, share of foreground
# pixels in determined cells 0.79 / 0.79 / 0.90 for 4 / 6 / 8 direct sentences.
@pytest.mark.parametrize("num_direct,all9,cells,fg_share", [(4, (0.005, 0.04), 7.13, 0.79),
                                                           (6, (0.005, 0.04), 7.14, 0.79),
                                                           (8, (0.08, 0.16), 8.13, 0.90)])
def test_released_statistics_match_released_generator(num_direct, all9, cells, fg_share):
    data = generate_cosal(3000, num_direct=num_direct, coverage="released", seed=2024)
    n_det = data.determined.sum(1)
    frac_all = (n_det == 9).mean()
    assert all9[0] <= frac_all <= all9[1], frac_all
    assert abs(n_det.mean() - cells) < 0.15, n_det.mean()
    fg = data.labels > 0
    share = (fg & data.cell_map(data.determined).astype(bool)).sum() / fg.sum()
    assert abs(share - fg_share) < 0.05, share


# --------------------------------------------------------------------------- images
def test_images_targets_and_inputs(data):
    lab = data.labels
    assert lab.shape == (N, 48, 48) and lab.dtype == np.uint8
    assert lab.max() <= data.num_colors
    tgt = data.targets()
    np.testing.assert_array_equal(tgt, labels_to_rgb(lab))
    fg = lab > 0
    np.testing.assert_array_equal(tgt[~fg], np.full(((~fg).sum(), 3), 255, np.uint8))
    np.testing.assert_array_equal(tgt[fg], COLOR_RGB[lab[fg].astype(int) - 1])
    inp = data.inputs()
    assert inp.shape == (N, 48, 48, 3) and inp.dtype == np.uint8
    black = (inp == 0).all(-1)
    white = (inp == 255).all(-1)
    np.testing.assert_array_equal(black, fg)
    np.testing.assert_array_equal(white, ~fg)


def test_labels_to_rgb_palette():
    lab = np.arange(7, dtype=np.uint8)[None]
    rgb = labels_to_rgb(lab)[0]
    assert tuple(rgb[0]) == (255, 255, 255)
    assert [tuple(int(v) for v in c) for c in rgb[1:]] == [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 0, 0),
                                                          (128, 128, 128), (255, 255, 0)]


def test_each_shape_once_and_cells_consistent(data):
    np.testing.assert_array_equal(np.sort(data.cell_shape, axis=1), np.tile(np.arange(9), (N, 1)))
    assert ((data.cell_color >= 0) & (data.cell_color < data.num_colors)).all()
    cells = data.labels.reshape(N, 3, 16, 3, 16).transpose(0, 1, 3, 2, 4).reshape(N, 9, 16, 16)
    for i in range(N):
        for k in range(9):
            vals = set(np.unique(cells[i, k]).tolist())
            assert vals == {0, int(data.cell_color[i, k]) + 1}, (i, k, vals)
            # the shape lies strictly inside its cell: the cell's outer ring is background
            c = cells[i, k]
            assert not c[0].any() and not c[-1].any() and not c[:, 0].any() and not c[:, -1].any()
            assert (c > 0).sum() >= 10


def test_shape_geometry_statistics():
    data = generate_cosal(600, num_direct=4, seed=9)
    cells = data.labels.reshape(-1, 3, 16, 3, 16).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 16, 16) > 0
    yy = (np.arange(16) + 0.5)[:, None] * np.ones(16)[None]
    area, cy = {}, {}
    for k, name in enumerate(SHAPES):
        m = cells[data.cell_shape == k]  # (600, 16, 16) masks of shape k
        area[name] = m.sum((1, 2)).mean()
        cy[name] = ((m * yy).sum((1, 2)) / m.sum((1, 2))).mean()
    assert 0.35 < area["half fat ellipse"] / area["fat ellipse"] < 0.65
    assert 0.35 < area["half thin ellipse"] / area["thin ellipse"] < 0.65
    assert area["circle"] > area["fat ellipse"] and area["rectangle"] > area["fat ellipse"]
    assert cy["triangle"] > 8.3 > 7.7 > cy["reverse triangle"]  # apex up: mass low; apex down: mass high
    assert cy["half fat ellipse"] > 8.5 and cy["half thin ellipse"] > 8.5  # lower half arcs
    assert abs(cy["circle"] - 8) < 0.3 and abs(cy["diamond"] - 8) < 0.3


# Measured on the released generator (CoSaL/make_data.py of Jianbo-Lab/LBIE, run under Python 3
# with OpenCV 5.0), 10,000 images, on 2026-12-01: mean shape area (px) and mean bounding box
# (width, height in px) at 48 px, and the mean foreground pixels per image.
RELEASED_AREA = {"rectangle": 113.1, "half fat ellipse": 26.0, "fat ellipse": 41.0, "triangle": 42.4,
                 "reverse triangle": 42.4, "thin ellipse": 41.0, "half thin ellipse": 24.0, "diamond": 41.9,
                 "circle": 85.0}
RELEASED_BOX = {"rectangle": (10.63, 10.61), "half fat ellipse": (11, 3), "fat ellipse": (11, 5),
                "triangle": (8.18, 9.25), "reverse triangle": (8.19, 9.26), "thin ellipse": (5, 11),
                "half thin ellipse": (5, 6), "diamond": (9.00, 9.00), "circle": (11.26, 11.26)}
RELEASED_FOREGROUND = 457


@pytest.fixture(scope="module")
def shape_masks():
    data = generate_cosal(10_000, num_direct=4, coverage="released", seed=0)
    cells = data.labels.reshape(-1, 3, 16, 3, 16).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 16, 16) > 0
    return data, {name: cells[data.cell_shape == k] for k, name in enumerate(SHAPES)}


@pytest.mark.parametrize("name", SHAPES)
def test_shape_area_and_box_match_released_generator(shape_masks, name):
    m = shape_masks[1][name]
    area = m.sum((1, 2))
    assert abs(area.mean() / RELEASED_AREA[name] - 1) < 0.01, area.mean()
    rows, cols = m.any(2), m.any(1)
    height = 16 - rows.argmax(1) - rows[:, ::-1].argmax(1)
    width = 16 - cols.argmax(1) - cols[:, ::-1].argmax(1)
    w, h = RELEASED_BOX[name]
    assert abs(width.mean() / w - 1) < 0.01 and abs(height.mean() / h - 1) < 0.01, (width.mean(), height.mean())
    if "ellipse" in name:  # integer centre and axes: always the same raster, shifted
        assert area.std() == 0


def test_foreground_per_image_matches_released_generator(shape_masks):
    fg = (shape_masks[0].labels > 0).sum((1, 2)).mean()
    assert abs(fg / RELEASED_FOREGROUND - 1) < 0.01, fg


def test_raster_table_matches_direct_drawing(monkeypatch):
    """The cached table and drawing each occurring raster give the same masks."""
    for k in range(9):
        a = cosal.render_shape(k, 500, 16, np.random.default_rng(k))
        monkeypatch.setattr(cosal, "_MAX_TABLE", 0)
        cosal.raster_table.cache_clear()
        b = cosal.render_shape(k, 500, 16, np.random.default_rng(k))
        monkeypatch.undo()
        cosal.raster_table.cache_clear()
        assert a.dtype == b.dtype == bool and a.shape == (500, 16, 16)
        np.testing.assert_array_equal(a, b)


def test_six_colours():
    d = generate_cosal(300, num_colors=6, seed=1)
    assert set(np.unique(d.cell_color).tolist()) == set(range(6))
    assert d.num_classes == 7 and d.labels.max() == 6


# --------------------------------------------------------------------------- determinism, caching
def test_same_seed_identical_different_seed_differs():
    a = generate_cosal(64, num_direct=6, coverage="released", seed=42)
    b = generate_cosal(64, num_direct=6, coverage="released", seed=42)
    c = generate_cosal(64, num_direct=6, coverage="released", seed=43)
    for k in cosal._ARRAYS:
        assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k
    assert a.labels.tobytes() != c.labels.tobytes()
    assert a.tokens.tobytes() != c.tokens.tobytes()


def _assert_same(a, b):
    for k in cosal._ARRAYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        np.testing.assert_array_equal(x, y)
    assert (a.num_colors, a.num_direct, a.coverage) == (b.num_colors, b.num_direct, b.coverage)


def test_load_cosal_cache_roundtrip(fresh_cache, monkeypatch):
    a = load_cosal("train", 64, num_direct=6, coverage="released", seed=1)
    files = list((fresh_cache / "cosal").glob("*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(cosal, "generate_cosal", lambda *a, **k: pytest.fail("regenerated despite cache"))
    b = load_cosal("train", 64, num_direct=6, coverage="released", seed=1)
    _assert_same(a, b)
    # train and test splits differ, and the uncached path gives the same data
    monkeypatch.undo()
    t = load_cosal("test", 64, num_direct=6, coverage="released", seed=1, cache=False)
    assert t.labels.tobytes() != a.labels.tobytes()
    _assert_same(a, load_cosal("train", 64, num_direct=6, coverage="released", seed=1, cache=False))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_load_cosal_regenerates_corrupt_cache(fresh_cache, damage):
    a = load_cosal("test", 64, num_direct=4, seed=2)
    (path,) = (fresh_cache / "cosal").glob("*.npz")
    raw = path.read_bytes()
    path.write_bytes({"garbage": b"not an npz file at all" * 20, "truncated": raw[: len(raw) // 2],
                      "empty": b""}[damage])
    b = load_cosal("test", 64, num_direct=4, seed=2)
    _assert_same(a, b)
    with np.load(path) as z:  # the damaged entry was replaced by a valid one
        np.testing.assert_array_equal(z["labels"], a.labels)


@pytest.mark.parametrize("kwargs,word", [(dict(coverage="x"), "coverage"), (dict(num_direct=0), "num_direct"),
                                         (dict(num_direct=10), "num_direct"), (dict(num_colors=7), "num_colors"),
                                         (dict(num_colors=0), "num_colors"), (dict(img_size=50), "img_size")])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        generate_cosal(4, **kwargs)
    if "img_size" not in kwargs:
        with pytest.raises(ValueError, match=word):
            load_cosal("train", 4, cache=False, **kwargs)


def test_bad_split():
    with pytest.raises(ValueError, match="split.*'val'|'val'"):
        load_cosal("val", 4)


def test_coverage_stats_and_caption_oracle():
    full = lbie.generate_cosal(300, num_direct=4, coverage="full", seed=3)
    stats = lbie.coverage_stats(full)
    assert stats == {"all_cells_determined": 1.0, "mean_determined_cells": 9.0, "foreground_in_determined": 1.0}
    assert lbie.evaluate_predictions(lbie.caption_oracle(full), full)["iou"] == 1.0

    released = lbie.generate_cosal(300, num_direct=4, coverage="released", seed=3)
    stats = lbie.coverage_stats(released)
    assert stats["all_cells_determined"] < 0.1 and 6.5 < stats["mean_determined_cells"] < 7.7
    oracle = lbie.caption_oracle(released, seed=1)
    assert np.array_equal(oracle > 0, released.labels > 0)  # shapes drawn exactly
    m = lbie.evaluate_predictions(oracle, released)
    assert m["iou_determined"] == 1.0 and 0.7 < m["iou"] < 0.97


def test_stop_step_share_by_depth_and_over_relational_cells():
    from lbie.experiments.cosal import stop_step_share

    rel = generate_cosal(40, num_direct=4, coverage="released", seed=2)
    regions = cosal.cell_map(rel.depth, 6)  # the depth of each region's cell on a 6 x 6 map
    stops = np.where(regions >= 1, 3, 0).astype(np.uint8)  # relational cells stop at step 4, the others at step 1
    share = stop_step_share(stops, rel, 4)
    assert share["relational"] == [0.0, 0.0, 0.0, 1.0] and share["by_depth"]["0"] == [1.0, 0.0, 0.0, 0.0]
    assert share["all"][3] == pytest.approx((regions >= 1).mean())

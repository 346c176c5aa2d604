"""Referring segmentation: generator invariants (checked by an independent interpreter of the expressions),
the ReferIt reader on a fixture in Hu et al.'s layout, and the metrics on hand-computed cases (DESIGN §4.3)."""
import json
import re

import numpy as np
import pytest
import scipy.io
import torch

import lbie.data.referring as ref
from lbie.data.css import COLORS, POSITIONS, SHAPES, SIZES, CSSScene, render_css
from lbie.data.referring import (KINDS, MAX_WORDS, VOCAB, generate_referring, load_referit, load_referring)
from lbie.metrics.segmentation import ReferringIoU, referring_iou_stats

N = 600
NOUN = {"square": "rectangle", "rectangle": "rectangle", "circle": "circle", "triangle": "triangle"}
NUMBER = {w: i for i, w in enumerate(ref.NUMBERS)}


@pytest.fixture(scope="module")
def data():
    return generate_referring(N, seed=3)


# --------------------------------------------------------------------------- an independent interpreter
def _objects(cells):
    return {k: (SHAPES[c // 16], COLORS[c // 2 % 8], SIZES[c % 2]) for k, c in enumerate(map(int, cells)) if c >= 0}


def _np_match(phrase, objs):
    """Cells matching a noun phrase like 'large red circles' / 'object'."""
    words = phrase.split()
    *mods, noun = words
    noun = noun[:-1] if noun.endswith("s") and noun[:-1] in list(NOUN) + ["object", "shape"] else noun
    assert noun in list(NOUN) + ["object", "shape"] and all(m in SIZES + COLORS for m in mods), phrase
    return {k for k, (sh, co, sz) in objs.items()
            if (noun not in NOUN or NOUN[noun] == sh) and all(m in (co, sz) for m in mods)}


def _related(rel, k, a):
    (r, c), (ra, ca) = divmod(k, 3), divmod(a, 3)
    return {"left": r == ra and c < ca, "right": r == ra and c > ca, "above": c == ca and r < ra,
            "below": c == ca and r > ra}[rel]


_REL = {"to the left of": "left", "left of": "left", "to the right of": "right", "right of": "right",
        "above": "above", "below": "below", "under": "below"}


def interpret(text, cells):
    """The set of cells an expression denotes; asserts every count and singular reference it states."""
    objs = _objects(cells)
    if ". " in text:
        first, second = text.split(". ")
        verb, rest = second.split(" ", 1)
        assert verb in ref.VERBS and rest.startswith("the "), text
        rest = rest[4:]
        if first.startswith("look at the "):
            line = ref.LINES.index(first[len("look at the "):])
            pool = {k: v for k, v in objs.items() if (k // 3 if line < 3 else k % 3) == line % 3}
            return _np_match(rest, pool)
        m = re.fullmatch(r"there are (\w+) (.+)", first)
        group = _np_match(m.group(2), objs)
        assert len(group) == NUMBER[m.group(1)] >= 2, text
        pool = {k: objs[k] for k in group}
        if rest.endswith(" one") and rest[:-4] in ref.EXTREMES:
            key = {"leftmost": lambda k: k % 3, "rightmost": lambda k: -(k % 3), "topmost": lambda k: k // 3,
                   "bottommost": lambda k: -(k // 3)}[rest[:-4]]
            best = min(map(key, group))
            return {k for k in group if key(k) == best}
        return _np_match(rest[:-4] + " object" if rest.endswith(" one") else rest, pool)
    if text.startswith("all the "):
        return _np_match(text[len("all the "):], objs)
    m = re.fullmatch(r"the (\w+) (.+)", text)
    if m and m.group(1) in NUMBER:
        found = _np_match(m.group(2), objs)
        assert len(found) == NUMBER[m.group(1)], text
        return found
    m = re.fullmatch(rf"the (.+) (?:in|at) the ({'|'.join(POSITIONS)})", text)
    if m:
        return _np_match(m.group(1), {k: v for k, v in objs.items() if k == POSITIONS.index(m.group(2))})
    m = re.fullmatch(rf"the (.+?) ({'|'.join(_REL)}) the (.+)", text)
    if m:
        anchor = _np_match(m.group(3), objs)
        assert len(anchor) == 1, text
        a = next(iter(anchor))
        return {k for k in _np_match(m.group(1), objs) if _related(_REL[m.group(2)], k, a)}
    return _np_match(text[len("the "):], objs)


# --------------------------------------------------------------------------- generator invariants
def test_shapes_and_types(data):
    assert data.images.shape == (N, 64, 64, 3) and data.images.dtype == np.uint8 and len(data) == N
    assert data.masks.shape == (N, 64, 64) and data.masks.dtype == bool
    assert data.tokens.shape == (N, ref.MAX_SENTENCES, MAX_WORDS) and data.cells.shape == data.referred.shape == (N, 9)
    assert set(data.kind) == set(KINDS)
    counts = (data.cells >= 0).sum(1)
    assert counts.min() >= 3 and counts.max() <= 6


def test_expressions_denote_exactly_the_referred_objects(data):
    for i in range(N):
        found = interpret(data.texts[i], data.cells[i])
        assert found == set(np.flatnonzero(data.referred[i])), (data.texts[i], _objects(data.cells[i]))
        assert data.referred[i][data.cells[i] < 0].sum() == 0
        n_ref = data.referred[i].sum()
        assert (n_ref >= 2) if data.kind[i] == "plural" else (n_ref == 1), data.texts[i]
        assert n_ref < (data.cells[i] >= 0).sum()  # there is always a distractor


def test_mask_covers_exactly_the_referred_objects(data):
    for i in range(0, N, 5):
        objs = CSSScene.from_cells(np.where(data.referred[i], data.cells[i], -1)).objects
        assert (data.masks[i] == (render_css(objs, 64) != 255).any(-1)).all()
        scene = CSSScene.from_cells(data.cells[i])
        assert (render_css(scene.objects, 64) == data.images[i]).all()


def test_tokens_spell_the_texts(data):
    for i in range(N):
        sents = [" ".join(VOCAB[t] for t in data.tokens[i, j, :data.lengths[i, j]]) for j in range(2)]
        assert ". ".join(s for s in sents if s) == data.texts[i]
        assert (data.tokens[i, np.arange(MAX_WORDS)[None] >= data.lengths[i][:, None]] == 0).all()
    assert (data.lengths[:, 1] > 0).tolist() == [k == "two_sentence" for k in data.kind]
    with pytest.raises(ValueError, match="vocabulary"):
        ref.encode_texts(["the blue banana"], ref.TOKEN, 2, 12)


def test_phrasings_vary(data):
    texts = list(data.texts)
    for word in ("left of", "right of", "above", "below", "under", "all the", "look at the", "there are",
                 " in the ", " at the ", "leftmost"):
        assert any(word in t for t in texts), word
    assert {t.split(". ")[1].split()[0] for t in texts if ". " in t} == set(ref.VERBS)
    assert max(len(t.split()) for t in texts) > 8


def test_seeded_and_size_independent(data):
    again = generate_referring(N, seed=3)
    assert again.masks.tobytes() == data.masks.tobytes() and list(again.texts) == list(data.texts)
    assert list(generate_referring(N, seed=4).texts) != list(data.texts)
    big = generate_referring(50, seed=3, size=96)
    assert big.images.shape == (50, 96, 96, 3)
    small = generate_referring(50, seed=3)
    assert list(big.texts) == list(small.texts) and (big.referred == small.referred).all()


def test_kinds_and_bad_params():
    d = generate_referring(60, seed=1, kinds=("relation",), min_objects=2, max_objects=3)
    assert set(d.kind) == {"relation"}
    for kwargs, msg in [(dict(kinds=("rotate",)), "kinds"), (dict(min_objects=1), "min_objects"),
                        (dict(min_objects=5, max_objects=4), "min_objects"), (dict(size=8), "size")]:
        with pytest.raises(ValueError, match=msg):
            generate_referring(4, **kwargs)
    with pytest.raises(ValueError, match="split"):
        load_referring("val", 4)


def test_load_referring_splits_and_cache(fresh_cache):
    tr, te = load_referring("train", 40), load_referring("test", 40)
    assert list(tr.texts) != list(te.texts)
    files = list((fresh_cache / "referring").glob("*.npz"))
    assert len(files) == 2
    again = load_referring("train", 40, size=96)
    assert list(again.texts) == list(tr.texts) and again.masks.shape == (40, 96, 96)
    assert len(list((fresh_cache / "referring").glob("*.npz"))) == 2
    assert (load_referring("train", 40, cache=False).masks == tr.masks).all()
    for f in files:
        f.write_bytes(b"garbage")  # a damaged cache is regenerated, not trusted
    assert list(load_referring("train", 40).texts) == list(tr.texts)


# --------------------------------------------------------------------------- metrics
def _masks(*pixel_sets, shape=(2, 3)):
    out = np.zeros((len(pixel_sets),) + shape, bool)
    for i, px in enumerate(pixel_sets):
        for p in px:
            out[i].flat[p] = True
    return out


def test_metrics_hand_computed():
    gt = _masks({0, 1, 2, 3}, {0, 1}, {3, 4, 5})
    pred = _masks({0, 1}, {0, 1, 2}, set())  # I/U = 2/4, 2/3, 0/3
    s = referring_iou_stats(pred, gt)
    assert s["overall_iou"] == pytest.approx(4 / 10) and s["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 3)
    assert [s[f"precision@{t}"] for t in (0.5, 0.6, 0.7, 0.8, 0.9)] == pytest.approx([2 / 3, 1 / 3, 0, 0, 0])
    assert (s["n"], s["cum_I"], s["cum_U"]) == (3, 4, 10)
    # empty union: a perfect (empty) prediction of an empty mask -- IoU 1, nothing added to the sums
    e = referring_iou_stats(np.concatenate([pred, _masks(set())]), np.concatenate([gt, _masks(set())]))
    assert e["overall_iou"] == pytest.approx(0.4) and e["precision@0.9"] == pytest.approx(1 / 4)
    assert e["mean_iou"] == pytest.approx((0.5 + 2 / 3 + 1) / 4)
    assert np.isnan(referring_iou_stats(_masks(set()), _masks(set()))["overall_iou"])


def test_metrics_batches_lists_and_tensors():
    rng = np.random.default_rng(0)
    pred, gt = rng.random((7, 5, 6)) < 0.5, rng.random((7, 5, 6)) < 0.4
    whole = referring_iou_stats(pred, gt)
    acc = ReferringIoU().update(pred[:3], gt[:3]).update(torch.from_numpy(pred[3:]), torch.from_numpy(gt[3:]))
    assert acc.compute() == whole
    ragged = [np.ones((2, 2), bool), np.zeros((3, 1), bool)]
    r = referring_iou_stats(ragged, [np.eye(2, dtype=bool), np.ones((3, 1), bool)])
    assert r["overall_iou"] == pytest.approx(2 / 7) and r["precision@0.5"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="N, H, W"):
        referring_iou_stats(pred, gt[:, :4])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        referring_iou_stats(ragged, ragged[:1])


# --------------------------------------------------------------------------- ReferIt (Hu et al.)
def _write_referit(root, split="test"):
    """Hu et al.'s layout: exp-referit/data/*.json + vocabulary, referit-dataset/{images,mask}/."""
    from PIL import Image

    data, images, masks = root / "data", root / "referit-dataset" / "images", root / "referit-dataset" / "mask"
    for d in (data, images, masks):
        d.mkdir(parents=True)
    queries = {"8756_1": ["the sky", "blue sky, top"], "8756_2": ["man on left."], "12_3": ["Red car"]}
    (data / f"referit_query_{split}.json").write_text(json.dumps(queries, separators=(",\n", ":\n")))
    (data / "referit_imcrop.json").write_text(json.dumps({"8756.jpg": ["8756_2", "8756_1", "8756_4"],
                                                          "12.jpg": ["12_3"]}))
    (data / "referit_bbox.json").write_text(json.dumps({"8756_1": [0, 0, 15, 3], "8756_2": [1, 4, 4, 9],
                                                        "12_3": [2, 2, 5, 5], "8756_4": [0, 0, 1, 1]}))
    (data / "vocabulary_referit.txt").write_text("\n".join(["<pad>", "<go>", "<eos>", "<unk>", "the", "sky", "man",
                                                           "on", "left", ",", "top", "red", "car"]) + "\n")
    rng = np.random.default_rng(0)
    shapes = {"8756": (12, 16), "12": (10, 8)}
    for name, hw in shapes.items():
        Image.fromarray(rng.integers(0, 256, hw + (3,), dtype=np.uint8)).save(images / f"{name}.jpg")
    segs = {}
    for key in queries:
        hw = shapes[key.split("_")[0]]
        seg = np.ones(hw, np.uint8)
        seg[rng.random(hw) < 0.3] = 0  # segimg_t == 0 marks the region
        scipy.io.savemat(str(masks / f"{key}.mat"), {"segimg_t": seg})
        segs[key] = seg == 0
    return segs


def test_referit_round_trip(tmp_path):
    segs = _write_referit(tmp_path)
    d = load_referit(tmp_path, "test")
    assert list(d.texts) == ["the sky", "blue sky, top", "man on left.", "Red car"] and len(d) == 4
    assert list(d.image_names) == ["8756.jpg", "12.jpg"] and list(d.ann_ids) == ["8756_1", "8756_2", "12_3"]
    assert list(d.query_ann) == [0, 0, 1, 2] and list(d.ann_image) == [0, 0, 1]
    for q, key in enumerate(["8756_1", "8756_1", "8756_2", "12_3"]):
        assert (d.mask(q) == segs[key]).all() and d.image(q).shape == segs[key].shape + (3,)
    assert d.bboxes.tolist() == [[0, 0, 15, 3], [1, 4, 4, 9], [2, 2, 5, 5]]
    # Hu et al.'s tokens: lower case, split at non-word runs, final '.' dropped, <unk>, front-padded to 20.
    # As in their code, a delimiter run is kept unstripped: ", " is not the vocabulary's "," but <unk>.
    v = {w: i for i, w in enumerate(["<pad>", "<go>", "<eos>", "<unk>", "the", "sky", "man", "on", "left", ",",
                                     "top", "red", "car"])}
    assert d.tokens.shape == (4, 20)
    assert d.tokens[1, -4:].tolist() == [3, v["sky"], 3, v["top"]] and (d.tokens[1, :-4] == 0).all()
    assert d.tokens[2, -3:].tolist() == [v["man"], v["on"], v["left"]] and d.tokens[3, -2:].tolist() == [11, 12]
    small = load_referit(tmp_path, "test", size=32, max_images=1)
    assert small.images.shape == (1, 32, 32, 3) and small.masks.shape == (2, 32, 32) and len(small) == 3
    assert not small.masks[:, :4].any() and not small.images[0, :4].any()  # 12x16 -> 24x32, centred, zero-padded
    (tmp_path / "data" / "vocabulary_referit.txt").unlink()
    (tmp_path / "data" / "referit_bbox.json").unlink()
    plain = load_referit(tmp_path, "test")
    assert plain.tokens is None and plain.bboxes is None and len(plain) == 4


def _corrupt(name, payload):
    return lambda root: (root / name).write_bytes(payload)


@pytest.mark.parametrize("breakage, error, message", [
    (lambda r: (r / "data" / "referit_query_test.json").unlink(), FileNotFoundError, r"referit_query_test.json"),
    (_corrupt("data/referit_query_test.json", b"{not json"), ValueError, r"referit_query_test.json: not valid JSON"),
    (_corrupt("data/referit_query_test.json", b'{"8756-1": ["sky"]}'), ValueError,
     r"referit_query_test.json: key '8756-1'"),
    (_corrupt("data/referit_query_test.json", b'{"8756_1": "sky"}'), ValueError,
     r"referit_query_test.json: entry '8756_1' must be a list"),
    (_corrupt("data/referit_imcrop.json", b'{"8756.jpg": ["8756_1", "8756_2"]}'), ValueError,
     r"referit_imcrop.json: lacks key '12.jpg'"),
    (_corrupt("data/referit_bbox.json", b'{"8756_1": [0, 0, 1, 1]}'), ValueError,
     r"referit_bbox.json: lacks key '8756_2'"),
    (_corrupt("data/referit_bbox.json", b'{"8756_1": [0, 0, 1], "8756_2": [0], "12_3": []}'), ValueError,
     r"referit_bbox.json: boxes must be four"),
    (lambda r: (r / "referit-dataset" / "mask" / "8756_2.mat").unlink(), FileNotFoundError, r"mask/8756_2.mat"),
    (_corrupt("referit-dataset/mask/8756_2.mat", b"MATLAB garbage"), ValueError, r"8756_2.mat: not a readable"),
    (lambda r: scipy.io.savemat(str(r / "referit-dataset" / "mask" / "12_3.mat"), {"mask": np.zeros((10, 8))}),
     ValueError, r"12_3.mat: lacks the 'segimg_t'"),
    (lambda r: scipy.io.savemat(str(r / "referit-dataset" / "mask" / "12_3.mat"), {"segimg_t": np.zeros((8, 8))}),
     ValueError, r"12_3.mat: mask shape \(8, 8\) differs"),
    (_corrupt("referit-dataset/images/12.jpg", b"\xff\xd8 not a jpeg"), ValueError, r"12.jpg: unreadable image"),
    (lambda r: (r / "referit-dataset" / "images" / "8756.jpg").unlink(), FileNotFoundError, r"images/8756.jpg"),
])
def test_referit_malformed(tmp_path, breakage, error, message):
    _write_referit(tmp_path)
    breakage(tmp_path)
    with pytest.raises(error, match=message):
        load_referit(tmp_path, "test")


def test_referit_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_referit(tmp_path, "dev")

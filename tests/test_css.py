"""CSS-2D generator invariants and the three real-format readers on hand-written fixtures (DESIGN §5.2)."""
import builtins
import os
import pickle
import re

import numpy as np
import pytest
from numpy.lib import format as npy_format

import lbie.data.css as css
from lbie.data.css import (COLOR_RGB, COLORS, GRID, POSITIONS, SHAPES, SIZES, CSSObject, CSSScene, generate_css,
                           load_css, render_cells, render_css)
from lbie.data.edit_formats import (RefusedGlobalError, _load_pickled_npy, load_codraw_h5, load_timgan_folders,
                                    load_tirg_css_npy)

N = 400
WORD_SHAPE = {"square": "rectangle", "rectangle": "rectangle", "circle": "circle", "triangle": "triangle"}


@pytest.fixture(scope="module")
def data():
    return generate_css(N, seed=3)


def _objects(cells):
    """{cell: (shape, color, size)} of a row of cell codes."""
    return {k: (SHAPES[c // 16], COLORS[c // 2 % 8], SIZES[c % 2]) for k, c in enumerate(map(int, cells)) if c >= 0}


def _matches(ref, objs):
    """Cells of the objects a referring expression can denote."""
    words = ref.split()
    pos = next((k for k, p in sorted(enumerate(POSITIONS), key=lambda kp: -len(kp[1]))
                if ref.endswith(" the " + p)), None)
    head = ref[:ref.rindex(" the ")] if pos is not None else ref
    want = {"size": {w for w in head.split() if w in SIZES}, "color": {w for w in head.split() if w in COLORS},
            "shape": {WORD_SHAPE[w] for w in head.split() if w in WORD_SHAPE}}
    assert words[0] == "the" and all(len(v) <= 1 for v in want.values()), ref
    return {k for k, (sh, co, sz) in objs.items()
            if (pos is None or k == pos) and want["shape"] <= {sh} and want["color"] <= {co} and want["size"] <= {sz}}


# --------------------------------------------------------------------------- rendering
def _tirg_pixels(shape, y, x, s):
    """TIRG's pixel set, written out from its rules: bounds truncated with int(); the triangle's row r runs
    between x + (r - y + s) / 2 and its mirror image about x; the diamond's row r starts at x + |r - y| - s
    and ends at its mirror image (each expression in TIRG's order of evaluation)."""
    if shape == "rectangle":
        return {(r, c) for r in range(int(y - s), int(y + s)) for c in range(int(x - s), int(x + s))}
    out = set()
    if shape == "triangle":
        for r in range(int(y - s), int(y + s)):
            a = x + (r - y + s) / 2
            b = 2 * x - a
            out |= {(r, c) for c in range(int(min(a, b)), int(max(a, b)))}
    else:
        for r in range(int(y - s), int(y + s) + 1):
            a = x + (abs(r - y) - s)
            out |= {(r, c) for c in range(int(a), int(2 * x - a))}
    return out


def _pixels(img):
    return set(zip(*map(list, np.nonzero((img != 255).any(-1)))))


@pytest.mark.parametrize("size", [64, 128])
def test_render_matches_tirg_rules(size):
    areas = {}
    for shape, circle in (("rectangle", "disc"), ("triangle", "disc"), ("circle", "diamond")):
        for size_name, half in zip(SIZES, css.HALF_SIZE):
            for y in GRID:
                for x in GRID:
                    want = _tirg_pixels(shape, y * size, x * size, half * size / 64)
                    got = _pixels(render_css([CSSObject(shape, "red", size_name, (y, x))], size, circle=circle))
                    assert got == want, (shape, size_name, y, x)
                    areas.setdefault((shape, size_name), []).append(len(got))
    k = (size / 64) ** 2
    assert areas["rectangle", "small"] == [64 * k] * 9 and areas["rectangle", "large"] == [256 * k] * 9
    assert areas["circle", "small"] == [32 * k] * 9 and areas["circle", "large"] == [128 * k] * 9  # 2 s^2
    if size == 64:  # TIRG's mean triangle areas
        assert round(np.mean(areas["triangle", "small"]), 1) == 25.6
        assert round(np.mean(areas["triangle", "large"]), 1) == 114.7


def test_render_geometry_and_colours():
    big = render_css([{"shape": "rectangle", "color": "red", "size": "large", "pos": (0.5, 0.5)}], 64)
    assert big.shape == (64, 64, 3) and big.dtype == np.uint8
    red = (big == COLOR_RGB[1]).all(-1)
    assert red.sum() == 16 * 16 and (big[~red] == 255).all()  # a filled 2s x 2s square on white
    ys, xs = np.nonzero(red)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (24, 39, 24, 39)
    corner = (render_css([CSSObject("rectangle", "red", "large", (GRID[0], GRID[2]))], 64) != 255).any(-1)
    ys, xs = np.nonzero(corner)  # y = 10.67, x = 53.33: int() truncation puts rows 2..17, columns 45..60
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (2, 17, 45, 60)
    small = render_css([CSSObject("rectangle", "red", "small", (0.5, 0.5))], 128)
    assert (small == COLOR_RGB[1]).all(-1).sum() == 16 * 16  # half-size scales with the canvas
    disc = (render_css([CSSObject("circle", "blue", "large", (0.5, 0.5))], 64) != 255).any(-1)
    assert abs(disc.sum() - np.pi * 64) < 12  # a true disc, not TIRG's diamond (area 2 s^2 = 128)
    assert disc[32, 24] and disc[26, 26] and not disc[24, 24]  # (26, 26) lies outside a diamond
    diamond = (render_css([CSSObject("circle", "blue", "large", (0.5, 0.5))], 64, circle="diamond") != 255).any(-1)
    assert diamond.sum() == 128 and not diamond[26, 26] and not (diamond & ~disc).any()
    tri = (render_css([CSSObject("triangle", "green", "large", (0.5, 0.5))], 64) != 255).any(-1)
    rows = np.nonzero(tri.any(1))[0]
    assert list(rows) == list(range(25, 40)) and list(tri.sum(1)[rows]) == list(range(1, 16))  # apex up


def test_disc_sits_in_the_square():
    for y in GRID:
        for x in GRID:
            for size_name in SIZES:
                sq, disc = (_pixels(render_css([CSSObject(sh, "red", size_name, (y, x))], 64))
                            for sh in ("rectangle", "circle"))
                assert disc < sq and 0.78 < len(disc) / len(sq) < 0.84  # ~ pi / 4


def _overlapping():
    """A large red square and a small blue triangle lying inside it."""
    return CSSObject("rectangle", "red", "large", (0.5, 0.5)), CSSObject("triangle", "blue", "small", (0.45, 0.55))


def test_list_order(tmp_path):
    a, b = _overlapping()
    overlap = _pixels(render_css([a], 64)) & _pixels(render_css([b], 64))
    assert overlap and overlap == _pixels(render_css([b], 64))
    for first, last in ((a, b), (b, a)):  # the later object is on top
        img = render_css([first, last], 64)
        assert all((img[p] == COLOR_RGB[COLORS.index(last.color)]).all() for p in overlap)
    assert CSSScene((a, b)).identity == CSSScene((b, a)).identity  # the identity ignores the order
    np.save(tmp_path / "t.npy", {"train": {"objects_img": [[vars(a), vars(b)], [vars(b), vars(a)]], "mods": []}},
            allow_pickle=True)
    p = load_tirg_css_npy(tmp_path / "t.npy")  # TIRG's object lists are drawn in their order too
    assert (p.images[0] == render_css([a, b])).all() and (p.images[1] == render_css([b, a])).all()
    assert (p.images[0] != p.images[1]).any() and p.image_id[0] == p.image_id[1]


@pytest.mark.parametrize("shape, size_name, pos, circle", [
    ("rectangle", "large", (0.1, 0.5), "disc"),    # rows -1..14 in TIRG's rules
    ("triangle", "small", (0.5, 0.97), "disc"),
    ("circle", "large", (0.97, 0.3), "diamond"),
    ("circle", "small", (0.3, 0.02), "disc"),
    ("rectangle", "small", (1.2, -0.4), "disc"),
])
def test_off_canvas_rejected(shape, size_name, pos, circle):
    with pytest.raises(ValueError, match=re.escape(f"{size_name} red {shape} at pos {pos}") + ".*outside"):
        render_css([CSSObject(shape, "red", size_name, pos)], 64, circle=circle)


def test_objects_touching_the_border_fit(tmp_path):
    for shape in SHAPES:
        for pos in ((8 / 64, 8 / 64), (56 / 64, 56 / 64)):
            px = np.array(sorted(_pixels(render_css([CSSObject(shape, "red", "large", pos)], 64, circle="diamond"))))
            assert px.min() >= 0 and px.max() <= 63
    assert (render_css([CSSObject("rectangle", "red", "large", (8 / 64, 8 / 64))]) != 255).all(-1)[0, 0]
    low = _pixels(render_css([CSSObject("rectangle", "red", "large", (7.5 / 64, 0.5))]))  # int(-0.5) = 0, as TIRG
    assert {r for r, _ in low} == set(range(15))
    np.save(tmp_path / "edge.npy", {"train": {"objects_img": [[{"shape": "circle", "color": "red", "size": "large",
                                                                 "pos": [0.5, 1.0]}]], "mods": []}}, allow_pickle=True)
    with pytest.raises(ValueError, match=r"edge.npy: train objects_img\[0\]: large red circle at pos .*outside"):
        load_tirg_css_npy(tmp_path / "edge.npy")


def test_render_cells_matches_render_css(data):
    for i in range(0, N, 7):
        for which in ("source", "target"):
            scene = data.scene(i, which)
            assert (render_css(scene.objects, 64) == getattr(data, which)[i]).all()
            assert scene == CSSScene(tuple(reversed(scene.objects)))  # canonical order
    assert (render_cells(data.source_cells[:5], 96) == generate_css(N, seed=3, size=96).source[:5]).all()
    diamonds = generate_css(N, seed=3, circle="diamond")
    assert (diamonds.target_cells == data.target_cells).all()  # the circle style changes only pixels
    for i in range(0, N, 7):
        scene = diamonds.scene(i, "target")
        assert (scene.render(64, circle="diamond") == diamonds.target[i]).all()
        assert (render_cells(diamonds.target_cells[i:i + 1], 64, circle="diamond")[0] == diamonds.target[i]).all()
    has_circle = ((data.target_cells >= 16) & (data.target_cells < 32)).any(1)
    assert has_circle.any() and ((diamonds.target != data.target).any((1, 2, 3)) == has_circle).all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown color"):
        render_css([{"shape": "circle", "color": "pink", "size": "small", "pos": (0.5, 0.5)}])
    with pytest.raises(ValueError, match="size"):
        render_css([], 8)
    with pytest.raises(ValueError, match="circle style 'round'"):
        render_css([], 64, circle="round")
    with pytest.raises(ValueError, match="circle style"):
        generate_css(4, circle="square")
    with pytest.raises(ValueError, match="pos must be two finite numbers"):
        render_css([{"shape": "circle", "color": "red", "size": "small", "pos": (0.5, 0.5, 0.5)}])
    with pytest.raises(ValueError, match="kinds"):
        generate_css(4, kinds=("add", "rotate"))
    with pytest.raises(ValueError, match="max_objects"):
        generate_css(4, max_objects=1)
    with pytest.raises(ValueError, match="split"):
        load_css("val", 4)


# --------------------------------------------------------------------------- generator invariants
def test_shapes_and_types(data):
    assert data.source.shape == data.target.shape == (N, 64, 64, 3) and data.source.dtype == np.uint8
    assert data.mask.shape == (N, 64, 64) and len(data) == N
    assert set(data.kind) == {"add", "remove", "change"}
    assert set(data.attribute[data.kind == "change"]) == {"color", "size", "shape"}


def test_pixel_alignment(data):
    outside = ~data.mask[..., None]
    assert (np.where(outside, data.source, 0) == np.where(outside, data.target, 0)).all()
    assert ((data.source != data.target).any(-1) & ~data.mask).sum() == 0
    assert (data.source != data.target).any((1, 2, 3)).all()  # every edit is visible
    # the mask never spills outside the edited object's grid cell
    for i in range(N):
        r, c = divmod(int(data.edited[i]), 3)
        box = np.zeros((64, 64), bool)
        box[r * 64 // 3:-(-(r + 1) * 64 // 3), c * 64 // 3:-(-(c + 1) * 64 // 3)] = True
        assert not (data.mask[i] & ~box).any()


def test_mask_covers_edited_object(data):
    for i in range(0, N, 3):
        k = int(data.edited[i])
        for which in ("source", "target"):
            obj = [o for o in data.scene(i, which).objects if o.pos == (GRID[k // 3], GRID[k % 3])]
            pixels = (render_css(obj, 64) != 255).any(-1)
            assert len(obj) == (data.kind[i] != ("add" if which == "source" else "remove"))
            assert not (pixels & ~data.mask[i]).any()
        assert data.mask[i].sum() <= 2 * 16 * 16


def test_kind_matches_object_lists(data):
    for i in range(N):
        s, t, k = _objects(data.source_cells[i]), _objects(data.target_cells[i]), int(data.edited[i])
        assert 1 <= len(s) <= 5 and 1 <= len(t) <= 5
        others = {c: v for c, v in s.items() if c != k}
        assert others == {c: v for c, v in t.items() if c != k}  # untouched objects stay put
        kind, text = data.kind[i], data.instruction[i]
        if kind == "add":
            assert k not in s and k in t and len(t) == len(s) + 1
            sh, co, sz = t[k]
            assert f"{sz} {co} " in text and text.endswith("the " + POSITIONS[k])
            assert any(w in text.split() and WORD_SHAPE[w] == sh for w in WORD_SHAPE)
        elif kind == "remove":
            assert k in s and k not in t and len(t) == len(s) - 1
        else:
            diff = [a for a, x, y in zip(("shape", "color", "size"), s[k], t[k]) if x != y]
            assert diff == [data.attribute[i]]
            new = dict(zip(("shape", "color", "size"), t[k]))[diff[0]]
            last = text.split()[-1]
            assert (WORD_SHAPE.get(last) if diff[0] == "shape" else last) == new, text
        if kind != "add":
            assert data.reference[i] in text
            assert _matches(data.reference[i], s) == {k}, (text, s)  # unambiguous in the source scene


def test_identities(data):
    for i in range(0, N, 11):
        assert data.identity(i) == data.scene(i).identity
    same = data.source_cells[:, None] == data.source_cells[None]
    assert ((data.source_id[:, None] == data.source_id[None]) == same.all(-1)).all()
    assert (data.source_id != data.target_id).all()
    assert CSSScene.from_cells(data.source_cells[0]).stable_id == data.scene(0).stable_id


def test_phrasings_vary(data):
    for kind in ("add", "remove", "change"):
        verbs = {t.split()[0] for t in data.instruction[data.kind == kind]}
        assert len(verbs) >= 4, (kind, verbs)
    refs = data.reference[data.kind != "add"]
    assert any(" in the " in r or " at the " in r for r in refs)
    assert any(" in the " not in r and " at the " not in r for r in refs)


def test_seeded(data):
    again = generate_css(N, seed=3)
    for name in ("source", "target", "mask", "source_cells", "target_cells", "edited", "source_id"):
        assert getattr(again, name).tobytes() == getattr(data, name).tobytes()
    assert list(again.instruction) == list(data.instruction)
    other = generate_css(N, seed=4)
    assert list(other.instruction) != list(data.instruction)
    big = generate_css(N, seed=3, size=128)  # scenes and texts do not depend on the render size
    assert (big.source_cells == data.source_cells).all() and list(big.instruction) == list(data.instruction)
    assert big.source.shape == (N, 128, 128, 3)


def test_max_objects_and_kinds():
    d = generate_css(200, seed=1, max_objects=9, kinds=("add",))
    assert set(d.kind) == {"add"}
    counts = (d.target_cells >= 0).sum(1)
    assert counts.max() == 9 and counts.min() >= 2
    d = generate_css(50, seed=1, max_objects=1, kinds=("change",))
    assert ((d.source_cells >= 0).sum(1) == 1).all()


def test_load_css_splits_and_cache(fresh_cache):
    tr, te = load_css("train", 60), load_css("test", 60)
    assert list(tr.instruction) != list(te.instruction)
    files = list((fresh_cache / "css").glob("*.npz"))
    assert len(files) == 2
    again = load_css("train", 60, size=128)
    assert list(again.instruction) == list(tr.instruction) and again.source.shape[1] == 128
    assert len(list((fresh_cache / "css").glob("*.npz"))) == 2  # size is not part of the cache key
    assert (load_css("train", 60, cache=False).source == tr.source).all()
    diamonds = load_css("train", 60, circle="diamond")  # the circle style is applied on load, like the size
    assert len(list((fresh_cache / "css").glob("*.npz"))) == 2
    assert (diamonds.source == render_cells(tr.source_cells, 64, circle="diamond")).all()
    assert (diamonds.source_cells == tr.source_cells).all()
    files[0].write_bytes(b"garbage")  # a damaged cache is regenerated, not trusted
    assert len(load_css("train", 60)) == 60 and len(load_css("test", 60)) == 60


# --------------------------------------------------------------------------- TIRG .npy
def _tirg_dict():
    objs = [[{"shape": "rectangle", "color": "red", "size": "large", "pos": [0.25, 0.25]}],
            [{"shape": "rectangle", "color": "red", "size": "large", "pos": [0.25, 0.25]},
             {"shape": "circle", "color": "cyan", "size": "small", "pos": np.array([0.7, 0.6])}],
            [{"shape": "triangle", "color": "gray", "size": "small", "pos": (0.5, 0.5)}]]
    mods = [{"from": [0], "to": [1], "to_str": "add small cyan circle to bottom-center"},
            {"from": [1, 2], "to": [0, 0], "to_str": "whatever"}]
    return {"train": {"objects_img": objs, "mods": mods, "labels": [5, 6, 7]}, "test": {"objects_img": [], "mods": []}}


def test_tirg_round_trip(tmp_path):
    path = tmp_path / "css_toy_dataset_novel2_small.dup.npy"
    np.save(path, _tirg_dict(), allow_pickle=True)
    p = load_tirg_css_npy(path, "train")
    assert len(p) == 3 and list(p.src) == [0, 1, 2] and list(p.tgt) == [1, 0, 0]
    assert list(p.instruction) == ["add small cyan circle to bottom-center", "whatever", "whatever"]
    for i, objs in enumerate(_tirg_dict()["train"]["objects_img"]):
        assert (p.images[i] == render_css(objs, 64)).all()
    assert (p.target[0] == COLOR_RGB[COLORS.index("cyan")]).all(-1).sum() > 0
    assert len(set(p.image_id)) == 3 and list(p.meta["labels"]) == [5, 6, 7]
    assert load_tirg_css_npy(path, "train", size=128).images.shape == (3, 128, 128, 3)


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["train"].pop("mods"), "lacks key 'mods'"),
    (lambda d: d["train"]["objects_img"][2][0].update(color="pink"), r"objects_img\[2\].*unknown color"),
    (lambda d: d["train"]["objects_img"][0][0].pop("pos"), r"objects_img\[0\].*pos"),
    (lambda d: d["train"]["mods"][1].update(to=[0]), r"mods\[1\].*equal length"),
    (lambda d: d["train"]["mods"][0].update(to=[3]), r"mods\[0\].*out of range"),
    (lambda d: d["train"]["mods"][0].pop("to_str"), r"mods\[0\]"),
    (lambda d: d.pop("train"), "no split 'train'"),
])
def test_tirg_malformed(tmp_path, breakage, message):
    d = _tirg_dict()
    breakage(d)
    path = tmp_path / "bad.npy"
    np.save(path, d, allow_pickle=True)
    with pytest.raises(ValueError, match=f"bad.npy: .*{message}"):
        load_tirg_css_npy(path, "train")


def test_tirg_not_a_dict_or_missing(tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="arr.npy"):
        load_tirg_css_npy(path)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="junk.npy"):
        load_tirg_css_npy(tmp_path / "junk.npy")
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        load_tirg_css_npy(tmp_path / "nope.npy")


class _Payload:
    """Pickles as a call of ``func(*args)``: what a crafted .npy would run on a plain ``np.load``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make", [
    lambda pwned: _Payload(os.system, f"touch {pwned}"),
    lambda pwned: _Payload(builtins.exec, f"open({str(pwned)!r}, 'w').close()"),
    lambda pwned: _Payload(builtins.eval, f"__import__('os').system('touch {pwned}')"),
])
def test_tirg_refuses_code_in_the_pickle(tmp_path, make):
    pwned = tmp_path / "pwned"
    payload = make(pwned)
    d = _tirg_dict()
    d["train"]["mods"].append({"from": [0], "to": [1], "to_str": payload})
    path = tmp_path / "evil.npy"
    np.save(path, d, allow_pickle=True)
    with pytest.raises(RefusedGlobalError) as e:
        load_tirg_css_npy(path, "train")
    message = str(e.value)
    assert "evil.npy" in message and f"{payload.func.__module__}.{payload.func.__name__}" in message
    assert isinstance(e.value, ValueError) and "refused" in message
    assert not pwned.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_tirg_python2_style_pickles_load(tmp_path, protocol):
    """TIRG's file was written by Python 2 (protocol 2, ``__builtin__`` names); sets, numpy scalars and
    arrays inside the dict are admitted, whatever the protocol."""
    d = _tirg_dict()
    d["train"]["labels"] = np.array([5, 6, 7])
    d["train"]["objects_img"][0][0]["pos"] = [np.float64(0.25), np.float32(0.25)]
    d["extra"] = {"set": {1, 2}, "frozen": frozenset("ab"), "complex": 1j, "bytes": b"x", "flag": np.bool_(True)}
    path = tmp_path / "py2.npy"
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        arr = np.empty((), dtype=object)
        arr[()] = d
        pickle.dump(arr, f, protocol=protocol)
    p = load_tirg_css_npy(path, "train")
    assert list(p.src) == [0, 1, 2] and list(p.meta["labels"]) == [5, 6, 7]
    for i, objs in enumerate(_tirg_dict()["train"]["objects_img"]):
        assert (p.images[i] == render_css(objs, 64)).all()
    assert _load_pickled_npy(path)["extra"] == d["extra"]


# --------------------------------------------------------------------------- TIM-GAN folders
def _write_timgan(root, n=3, phase="train"):
    from PIL import Image

    d = generate_css(n, seed=9)
    (root / f"{phase}_A").mkdir(parents=True)
    (root / f"{phase}_B").mkdir()
    for i in range(n):
        Image.fromarray(d.source[i]).save(root / f"{phase}_A" / f"{i}.png")
        Image.fromarray(d.target[i]).save(root / f"{phase}_B" / f"{i}.png")
    (root / f"{phase}_A" / "notes.txt").write_text("ignored: not an image")
    np.save(root / f"{phase}_text.npy", np.array(d.instruction))
    return d


def test_timgan_round_trip(tmp_path):
    d = _write_timgan(tmp_path)
    p = load_timgan_folders(tmp_path, "train")
    assert len(p) == 3 and (p.source == d.source).all() and (p.target == d.target).all()
    assert list(p.instruction) == list(d.instruction)
    by_order = load_timgan_folders(tmp_path, "train", pair_by="order", text_index="order")
    assert list(by_order.instruction) == list(d.instruction)
    np.save(tmp_path / "train_text.npy", np.char.encode(np.array(d.instruction)))  # bytes strings decode too
    assert list(load_timgan_folders(tmp_path).instruction) == list(d.instruction)


def test_timgan_clevr_names(tmp_path):
    from PIL import Image

    img = np.full((8, 8, 3), 255, np.uint8)
    for phase_dir in ("test_A", "test_B"):
        (tmp_path / phase_dir).mkdir()
        for k in (1, 2):
            Image.fromarray(img).save(tmp_path / phase_dir / f"CLEVR_{k:06d}_tail.png")  # 6 digits, 9 chars after
    np.save(tmp_path / "test_text.npy", np.array(["first", "second"]))
    p = load_timgan_folders(tmp_path, "test", text_index="clevr")
    assert list(p.instruction) == ["first", "second"]


@pytest.mark.parametrize("breakage, error, message", [
    (lambda r: (r / "train_B" / "2.png").unlink(), ValueError, r"different files.*'2.png'"),
    (lambda r: (r / "train_text.npy").unlink(), FileNotFoundError, "train_text.npy"),
    (lambda r: (r / "train_B" / "1.png").write_bytes(b"\x89PNG broken"), ValueError, r"1.png: unreadable image"),
    (lambda r: np.save(r / "train_text.npy", np.array(["only one", "two"])), ValueError,
     r"train_text.npy: has 2 entries but train_A/2.png needs entry 2"),
    (lambda r: np.save(r / "train_text.npy", np.zeros((3, 2))), ValueError, "train_text.npy: expected a 1-D string"),
    (lambda r: [(r / d / "x.png").write_bytes((r / "train_A" / "0.png").read_bytes()) for d in ("train_A", "train_B")],
     ValueError,
     r"x.png: cannot read a text index"),
])
def test_timgan_malformed(tmp_path, breakage, error, message):
    _write_timgan(tmp_path)
    breakage(tmp_path)
    with pytest.raises(error, match=message):
        load_timgan_folders(tmp_path, "train")


def test_timgan_size_mismatch_and_missing_folder(tmp_path):
    from PIL import Image

    _write_timgan(tmp_path)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "train_B" / "1.png")
    with pytest.raises(ValueError, match=r"train_B/1.png: image shape"):
        load_timgan_folders(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_A"):
        load_timgan_folders(tmp_path, "test")


# --------------------------------------------------------------------------- GeNeVA CoDraw .h5
def _write_codraw(path, h5py, lengths=(2, 3), drop=None):
    rng = np.random.default_rng(0)
    scenes = []
    with h5py.File(path, "w") as f:
        bg = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        f.create_dataset("background", data=bg)
        for i, t in enumerate(lengths):
            g = f.create_group(str(i))
            imgs = rng.integers(0, 256, (t, 128, 128, 3), dtype=np.uint8)
            utt = [f"<teller> scene {i} turn {j} <drawer> ok" for j in range(t)]
            g.create_dataset("images", data=imgs)
            g.create_dataset("utterences", data=np.bytes_(utt), dtype=h5py.special_dtype(vlen=str))
            g.create_dataset("objects", data=rng.integers(0, 2, (t, 58)))
            g.create_dataset("coords", data=rng.integers(0, 128, (t, 58, 3)))
            g.create_dataset("scene_id", data=100 + i)
            if drop is not None and drop[0] == i:
                del g[drop[1]]
            scenes.append((imgs, utt))
    return bg, scenes


def test_codraw_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "codraw_val.h5"
    bg, scenes = _write_codraw(path, h5py)
    p = load_codraw_h5(path)
    assert len(p) == 5 and p.images.shape == (6, 128, 128, 3)
    assert (p.source[0] == bg[..., ::-1]).all() and (p.source[2] == bg[..., ::-1]).all()  # BGR -> RGB
    for n, (imgs, utt) in enumerate(scenes):
        first = 2 * n  # pair index of the scene's first turn
        for t in range(len(utt)):
            assert (p.target[first + t] == imgs[t][..., ::-1]).all()
            if t:
                assert (p.source[first + t] == imgs[t - 1][..., ::-1]).all()
            assert p.instruction[first + t] == utt[t]
    assert list(p.meta["scene_id"]) == [100, 100, 101, 101, 101] and list(p.meta["turn"]) == [0, 1, 0, 1, 2]
    assert p.meta["objects"].shape == (5, 58) and p.meta["coords"].shape == (5, 58, 3)


@pytest.mark.parametrize("drop, message", [((1, "utterences"), "scene group '1' lacks 'utterences'"),
                                           ((0, "images"), "scene group '0' lacks 'images'")])
def test_codraw_malformed(tmp_path, drop, message):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "codraw_bad.h5"
    _write_codraw(path, h5py, drop=drop)
    with pytest.raises(ValueError, match=f"codraw_bad.h5: {message}"):
        load_codraw_h5(path)


def test_codraw_malformed_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "codraw_bad.h5"
    _write_codraw(path, h5py)
    with h5py.File(path, "a") as f:
        del f["0"]["utterences"]
        f["0"].create_dataset("utterences", data=np.bytes_(["just one"]), dtype=h5py.special_dtype(vlen=str))
    with pytest.raises(ValueError, match=r"codraw_bad.h5: scene '0': 2 images but 1 utterences"):
        load_codraw_h5(path)
    with h5py.File(path, "a") as f:
        del f["background"]
    with pytest.raises(ValueError, match="codraw_bad.h5: lacks the 'background'"):
        load_codraw_h5(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5: not a readable HDF5"):
        load_codraw_h5(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError, match="none.h5"):
        load_codraw_h5(tmp_path / "none.h5")


def test_codraw_without_h5py(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ImportError, match="pip install h5py"):
        load_codraw_h5(tmp_path / "x.h5")


def test_module_constants():
    assert len(COLORS) == 8 and COLOR_RGB.shape == (8, 3) and tuple(COLOR_RGB[1]) == (244, 35, 35)
    assert GRID == (1 / 6, 0.5, 5 / 6) and len(POSITIONS) == 9
    assert re.fullmatch(r"[a-z ]+", " ".join(POSITIONS))
    assert css.HALF_SIZE == (4.0, 8.0)


def test_cell_codes_and_references():
    from lbie.data.css import cell_attributes, cell_code, reference

    assert all(cell_code(**cell_attributes(c)) == c for c in range(48))
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        cell_code("hexagon", "red", "small")
    data = generate_css(300, seed=2)
    for cells in data.source_cells:  # the deterministic reference singles out its object
        objects = {int(k): cell_attributes(int(cells[k])) for k in np.flatnonzero(cells >= 0)}
        for k in objects:
            ref = reference(cells, k)
            if " in the " in ref:  # twins (same shape, colour and size): named by position
                assert ref.endswith(f" in the {POSITIONS[k]}")
                continue
            words = ref.split()
            matches = [j for j, o in objects.items()
                       if all(WORD_SHAPE[w] == o["shape"] if w in WORD_SHAPE else w in (o["size"], o["color"])
                              for w in words[1:] if w != "object")]
            assert matches == [k], (reference(cells, k), objects)
    cells = np.full(9, -1)
    cells[[0, 1]] = [cell_code("circle", "red", "small"), cell_code("circle", "red", "small")]
    assert reference(cells, 1) == "the circle in the top center"  # no attribute set is unique
    with pytest.raises(ValueError, match="holds no object"):
        reference(cells, 5)

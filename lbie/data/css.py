"""CSS-2D: seeded (source image, instruction, target image) triples, plus the real formats (DESIGN §5.2).

The generator follows the 2D renderer of TIRG's CSS data set (google/tirg ``datasets.py``,
``CSSDataset.get_img``): a white canvas (64 px by default; the paper preset uses 128), objects of shape
rectangle / circle / triangle, size small (half-size 4 px at 64) or large (8 px), one of eight named colours
(:data:`COLOR_RGB`), centred at a normalised ``(y, x)`` position (pixel = position * size, as TIRG).
Choices made here:

* Generated objects sit on a 3x3 grid of normalised positions ``(2i + 1) / 6`` (the cell centres), at most
  one per cell, so position references are unambiguous and objects never overlap.
* Squares and triangles are TIRG's pixel for pixel at 64 px.  With centre ``(y, x)`` in pixels and half-size
  ``s``, bounds are truncated toward zero (Python's ``int``): the square fills rows ``int(y-s)`` to
  ``int(y+s) - 1`` and columns ``int(x-s)`` to ``int(x+s) - 1``; the triangle (apex up) fills the same rows,
  row ``r`` spanning the columns from ``int`` of the smaller to ``int`` of the larger of
  ``x +- (r - y + s) / 2``, so its rows widen by about 1 px per row (mean area over the grid: 25.6 px small,
  114.7 px large, against 64 and 256 for the square).  At another canvas size the same rules run on that
  canvas with ``y, x`` = position * size and ``s`` scaled by size / 64 (not an upsampling of the 64 px
  picture): at 128 px the square is exactly 4 times the area, the triangle keeps its proportions.
* The "circle" is a **true disc** of radius s by default (``circle="disc"``), evaluated at pixel centres and
  centred in the square drawn at the same position, so a shape change keeps the object's footprint.
  ``circle="diamond"`` draws TIRG's diamond instead: rows ``int(y-s)`` to ``int(y+s)``, row ``r`` spanning
  ``int(x0)`` to ``int(2x - x0) - 1`` with ``x0 = x + |r - y| - s``.
* Objects are drawn in the order given, later ones on top, as TIRG (overlaps only occur in hand-made or
  TIRG scenes).  A :class:`CSSScene` is kept in canonical order, which is its identity.
* An object with a pixel off the canvas raises ``ValueError``.  TIRG does not clip consistently: numpy
  slicing silently crops the bottom/right edge, a negative start wraps around or empties a row, and a row
  below the canvas raises ``IndexError``.
* Instructions are of three kinds -- ``add`` (full attributes and a grid position), ``remove`` and ``change``
  (colour, size or shape) -- each with several phrasings.  The object to remove/change is named by a minimal
  set of attributes that singles it out in the source scene, or by its position (always unique).
* Untouched objects are drawn from the same templates in source and target, so the pair is pixel-aligned
  (DESIGN §5.2: TIRG's own renders were not).  A scene's identity is its canonical object list; generated
  scenes also get an exact integer id (the nine cell codes in base 49).

Readers for the real formats (TIRG's CSS ``.npy``, TIM-GAN's folders, GeNeVA's CoDraw ``.h5``) are in
:mod:`lbie.data.edit_formats`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..utils import cached_arrays

SHAPES = ("rectangle", "circle", "triangle")
CIRCLES = ("disc", "diamond")  # how a "circle" is drawn: a true disc, or TIRG's diamond
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
COLOR_RGB = np.array([(87, 87, 87), (244, 35, 35), (42, 75, 215), (29, 205, 20), (129, 74, 25),
                      (129, 38, 192), (41, 208, 208), (255, 238, 51)], dtype=np.uint8)  # TIRG's values
SIZES = ("small", "large")
HALF_SIZE = (4.0, 8.0)  # px on a 64 px canvas (TIRG: s = 4, doubled for large)
GRID = tuple((2 * i + 1) / 6 for i in range(3))  # normalised row/column centres of the 3x3 grid
POSITIONS = ("top left", "top center", "top right", "center left", "center", "center right",
             "bottom left", "bottom center", "bottom right")  # cell k = row k // 3, column k % 3
KINDS = ("add", "remove", "change")
ATTRIBUTES = ("color", "size", "shape")
SHAPE_WORDS = {"rectangle": ("square", "rectangle"), "circle": ("circle",), "triangle": ("triangle",)}
_ADD = ("add a {obj} to the {pos}", "put a {obj} in the {pos}", "place a {obj} at the {pos}",
        "draw a {obj} in the {pos}", "insert a {obj} into the {pos}")
_REMOVE = ("remove {ref}", "delete {ref}", "take away {ref}", "get rid of {ref}", "erase {ref}")
_CHANGE = {"color": ("make {ref} {new}", "change {ref} to {new}", "paint {ref} {new}", "recolor {ref} {new}",
                     "turn {ref} {new}"),
           "size": ("make {ref} {new}", "change {ref} to {new}", "resize {ref} to {new}", "turn {ref} {new}"),
           "shape": ("turn {ref} into a {new}", "change {ref} to a {new}", "make {ref} a {new}",
                     "reshape {ref} into a {new}")}
SUBSETS = ((), ("shape",), ("color",), ("size",), ("color", "shape"), ("size", "shape"), ("size", "color"),
            ("size", "color", "shape"))  # referring-expression attribute sets, shortest first
_EMPTY = 48  # cell code of an empty cell in the template bank; object codes are shape*16 + color*2 + size
DATA_VERSION = 2  # bump when the generator's output changes: invalidates caches and the runs trained on it


# --------------------------------------------------------------------------- scenes and rendering
def cell_attributes(code: int) -> dict:
    """``{"shape", "color", "size"}`` of a cell code (the inverse of :func:`cell_code`)."""
    return {"shape": SHAPES[code // 16], "color": COLORS[code // 2 % 8], "size": SIZES[code % 2]}


def cell_code(shape: str, color: str, size: str) -> int:
    """The cell code of an object, ``shape * 16 + color * 2 + size`` (indices into :data:`SHAPES`,
    :data:`COLORS`, :data:`SIZES`), as stored in :attr:`CSSData.source_cells`; ``ValueError`` on unknown values."""
    for key, value, valid in (("shape", shape, SHAPES), ("color", color, COLORS), ("size", size, SIZES)):
        if value not in valid:
            raise ValueError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")
    return SHAPES.index(shape) * 16 + COLORS.index(color) * 2 + SIZES.index(size)


def _pick(rng, options):
    return options[rng.integers(len(options))]


@dataclass(frozen=True)
class CSSObject:
    shape: str
    color: str
    size: str
    pos: tuple[float, float]  # normalised (y, x), TIRG's convention

    @classmethod
    def from_dict(cls, d) -> "CSSObject":
        """From TIRG's ``{shape, color, size, pos}`` dict; ``ValueError`` on unknown values."""
        for key, valid in (("shape", SHAPES), ("color", COLORS), ("size", SIZES)):
            if key not in d:
                raise ValueError(f"object lacks key {key!r}")
            if d[key] not in valid:
                raise ValueError(f"unknown {key} {d[key]!r}; valid: {', '.join(valid)}")
        pos = np.asarray(d.get("pos", ()), dtype=float).ravel()
        if pos.shape != (2,) or not np.isfinite(pos).all():
            raise ValueError(f"pos must be two finite numbers (y, x), got {d.get('pos')!r}")
        return cls(str(d["shape"]), str(d["color"]), str(d["size"]), (float(pos[0]), float(pos[1])))

    @property
    def key(self) -> tuple:
        return (round(self.pos[0], 4), round(self.pos[1], 4), self.shape, self.color, self.size)


@dataclass(frozen=True)
class CSSScene:
    """A scene: its objects in canonical order (by position, then attributes)."""
    objects: tuple[CSSObject, ...]

    def __post_init__(self):
        object.__setattr__(self, "objects", tuple(sorted(self.objects, key=lambda o: o.key)))

    @classmethod
    def from_cells(cls, cells) -> "CSSScene":
        """From nine cell codes (-1 = empty), as stored in :class:`CSSData`."""
        return cls(tuple(CSSObject(**cell_attributes(c), pos=(GRID[k // 3], GRID[k % 3]))
                         for k, c in enumerate(int(c) for c in cells) if c >= 0))

    @property
    def identity(self) -> tuple:
        """The canonical, hashable object list."""
        return tuple(o.key for o in self.objects)

    @property
    def stable_id(self) -> int:
        """A 63-bit id from a stable hash of :attr:`identity` (same on every machine and run)."""
        digest = hashlib.blake2b(repr(self.identity).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1

    def render(self, size: int = 64, circle: str = "disc") -> np.ndarray:
        """The scene drawn in canonical order (for a given drawing order, call :func:`render_css`)."""
        return render_css(self.objects, size, circle)


def _trunc(v) -> np.ndarray:
    """Truncation toward zero, as Python's ``int()`` (TIRG's rounding; it differs from floor below 0)."""
    return np.trunc(v).astype(np.int64)


def _footprint(shape: str, y: float, x: float, s: float, circle: str) -> tuple[int, int, np.ndarray]:
    """An object's pixels as (top row, left column, bool box); the box may extend past the canvas.

    The arithmetic repeats TIRG's floating-point expressions term by term: truncation is discontinuous, so an
    algebraically equal rewrite can move a pixel where a column bound lands on an integer."""
    top, bottom, left, right = (int(v) for v in _trunc([y - s, y + s, x - s, x + s]))
    if shape == "circle" and circle == "disc":  # inscribed in the square drawn at the same position
        cy, cx = (top + bottom) / 2, (left + right) / 2
        r = np.arange(top - 1, bottom + 2)[:, None] + 0.5
        c = np.arange(left - 1, right + 2)[None, :] + 0.5
        return top - 1, left - 1, (r - cy) ** 2 + (c - cx) ** 2 < s * s
    if shape == "rectangle":
        rows = np.arange(top, bottom)
        lo, hi = np.full(len(rows), left), np.full(len(rows), right)
    elif shape == "triangle":  # apex up; the half-width grows by 1/2 px per row
        rows = np.arange(top, bottom)
        x0 = x + (rows - y + s) / 2
        x1 = 2 * x - x0
        lo, hi = _trunc(np.minimum(x0, x1)), _trunc(np.maximum(x0, x1))
    elif shape == "circle":  # TIRG's diamond: one row more than the square, no reordering of the bounds
        rows = np.arange(top, bottom + 1)
        x0 = x + (np.abs(rows - y) - s)
        lo, hi = _trunc(x0), _trunc(2 * x - x0)
    else:
        raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPES)}")
    c0 = int(lo.min())
    cols = np.arange(c0, max(int(hi.max()), c0))
    return int(rows[0]), c0, (cols >= lo[:, None]) & (cols < hi[:, None])


def check_circle(circle: str) -> None:
    if circle not in CIRCLES:
        raise ValueError(f"unknown circle style {circle!r}; valid: {', '.join(CIRCLES)}")


def _mask(o: CSSObject, size: int, circle: str = "disc") -> np.ndarray:
    """(size, size) bool mask of one object; ``ValueError`` if any of its pixels falls off the canvas."""
    s = HALF_SIZE[SIZES.index(o.size)] * size / 64
    top, left, box = _footprint(o.shape, o.pos[0] * size, o.pos[1] * size, s, circle)
    rr, cc = np.nonzero(box)
    rr, cc = rr + top, cc + left
    if rr.size and (min(rr.min(), cc.min()) < 0 or max(rr.max(), cc.max()) >= size):
        raise ValueError(f"{o.size} {o.color} {o.shape} at pos {o.pos} falls outside the {size} px canvas "
                         f"(rows {rr.min()}..{rr.max()}, columns {cc.min()}..{cc.max()})")
    m = np.zeros((size, size), dtype=bool)
    m[rr, cc] = True
    return m


def check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"render size must be an integer >= 16, got {size!r}")


def render_css(objects, size: int = 64, circle: str = "disc") -> np.ndarray:
    """Render objects (:class:`CSSObject` or TIRG dicts) on a white canvas, (size, size, 3) uint8.

    Objects are drawn in the order given, later ones on top (as TIRG).  ``circle``: ``"disc"`` or TIRG's
    ``"diamond"``.  ``ValueError`` for an object that does not fit on the canvas."""
    check_size(size)
    check_circle(circle)
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    for o in objects:
        o = o if isinstance(o, CSSObject) else CSSObject.from_dict(o)
        img[_mask(o, size, circle)] = COLOR_RGB[COLORS.index(o.color)]
    return img


def _cell_box(k: int, size: int) -> tuple[slice, slice]:
    """Pixel rows/columns of grid cell k (every object drawn in a cell lies inside it: 8/64 < 1/6)."""
    r, c = divmod(k, 3)
    return (slice(r * size // 3, -(-(r + 1) * size // 3)), slice(c * size // 3, -(-(c + 1) * size // 3)))


@lru_cache(maxsize=8)
def _templates(size: int, circle: str = "disc") -> tuple:
    """Per cell k, masks (49 codes, h, w) of every object over the cell's box; code 48 is the empty cell."""
    bank = []
    for k in range(9):
        ys, xs = _cell_box(k, size)
        t = np.zeros((_EMPTY + 1, size, size), dtype=bool)
        for code in range(_EMPTY):
            t[code] = _mask(CSSObject(**cell_attributes(code), pos=(GRID[k // 3], GRID[k % 3])), size, circle)
        box = t[:, ys, xs].copy()
        assert box.sum() == t.sum(), "object leaves its grid cell"
        box.flags.writeable = False
        bank.append(box)
    return tuple(bank)


def palette_labels(cells: np.ndarray, size: int, circle: str = "disc") -> np.ndarray:
    """Palette labels (N, size, size) uint8 of grid scenes: 0 = white, 1 + colour index."""
    check_circle(circle)
    cells = np.asarray(cells)
    out = np.zeros((len(cells), size, size), dtype=np.uint8)
    for k, box in enumerate(_templates(int(size), circle)):  # objects of different cells never overlap
        code = np.where(cells[:, k] < 0, _EMPTY, cells[:, k])
        ys, xs = _cell_box(k, size)
        out[:, ys, xs] = np.where(box[code], (code // 2 % 8 + 1).astype(np.uint8)[:, None, None], out[:, ys, xs])
    return out


PALETTE = np.concatenate([np.full((1, 3), 255, np.uint8), COLOR_RGB])


def render_cells(cells: np.ndarray, size: int = 64, circle: str = "disc") -> np.ndarray:
    """Vectorised rendering of grid scenes: cell codes (N, 9) -> (N, size, size, 3) uint8 (= render_css)."""
    check_size(size)
    return PALETTE[palette_labels(cells, size, circle)]


def cells_to_id(cells: np.ndarray) -> np.ndarray:
    """Exact int64 identity of grid scenes: the nine codes + 1 as base-49 digits."""
    return ((np.asarray(cells, dtype=np.int64) + 1) * 49 ** np.arange(9, dtype=np.int64)).sum(-1)


def id_to_cells(ids) -> np.ndarray:
    """The nine cell codes (..., 9) int8 of exact grid-scene ids (the inverse of :func:`cells_to_id`)."""
    ids = np.asarray(ids, dtype=np.int64)
    if (ids < 0).any():
        raise ValueError("scene ids of grid scenes are non-negative")
    return (ids[..., None] // 49 ** np.arange(9, dtype=np.int64) % 49 - 1).astype(np.int8)


def _name(code: int) -> str:
    a = cell_attributes(code)
    return f"{a['size']} {a['color']} {a['shape']}"


def scene_differences(cells, reference) -> list[str]:
    """How the grid scene ``cells`` differs from ``reference`` (nine codes each), one phrase a cell:
    ``"extra small red circle, top left"``, ``"no large blue square, center"`` or ``"center: gray, not
    blue"`` (only the attributes that differ).  Empty when the scenes are equal."""
    out = []
    for k, (c, r) in enumerate(zip(np.asarray(cells).astype(int), np.asarray(reference).astype(int))):
        if c == r:
            continue
        if r < 0:
            out.append(f"extra {_name(c)}, {POSITIONS[k]}")
        elif c < 0:
            out.append(f"no {_name(r)}, {POSITIONS[k]}")
        else:
            a, b = cell_attributes(c), cell_attributes(r)
            out.append(f"{POSITIONS[k]}: " + " ".join(a[x] for x in ATTRIBUTES if a[x] != b[x])
                       + ", not " + " ".join(b[x] for x in ATTRIBUTES if a[x] != b[x]))
    return out


# --------------------------------------------------------------------------- generator
@dataclass
class CSSData:
    """Generated CSS-2D triples.  Cell codes: -1 empty, else shape*16 + color*2 + size (cell k: row k//3).

    source, target: (N, H, W, 3) uint8, pixel-aligned    mask: (N, H, W) bool edit region
    instruction, reference, kind, attribute: (N,) str     edited: (N,) the edited object's cell
    source_cells, target_cells: (N, 9) int8               source_id, target_id: (N,) int64 exact ids
    """
    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    instruction: np.ndarray
    reference: np.ndarray
    kind: np.ndarray
    attribute: np.ndarray
    edited: np.ndarray
    source_cells: np.ndarray
    target_cells: np.ndarray
    source_id: np.ndarray
    target_id: np.ndarray

    def __len__(self) -> int:
        return len(self.instruction)

    def scene(self, i: int, which: str = "source") -> CSSScene:
        if which not in ("source", "target"):
            raise ValueError(f"which must be 'source' or 'target', got {which!r}")
        return CSSScene.from_cells(getattr(self, f"{which}_cells")[i])

    def identity(self, i: int, which: str = "source") -> tuple:
        return self.scene(i, which).identity


_SAMPLED = ("instruction", "reference", "kind", "attribute", "edited", "source_cells", "target_cells")


def _unique_subsets(cells, k) -> tuple[dict, list]:
    """The attributes of the object in cell k and the attribute sets (shortest first) that single it out."""
    me = cell_attributes(int(cells[k]))
    others = [cell_attributes(int(c)) for j, c in enumerate(cells) if c >= 0 and j != k]
    return me, [sub for sub in SUBSETS if all(any(o[a] != me[a] for a in sub) for o in others)]


def _phrase(me: dict, sub, noun: str) -> str:
    return "the " + " ".join([me[a] for a in ("size", "color") if a in sub] + [noun])


def _describe(rng, cells, k) -> str:
    """A referring expression for the object in cell k, unambiguous among the scene's objects."""
    me, unique = _unique_subsets(cells, k)
    use_pos = not unique or rng.random() < 0.4
    sub = _pick(rng, SUBSETS[:4]) if use_pos else _pick(rng, [s for s in unique if len(s) == len(unique[0])])
    noun = _pick(rng, SHAPE_WORDS[me["shape"]] if "shape" in sub else ("object", "shape"))
    return _phrase(me, sub, noun) + (f" {_pick(rng, ('in', 'at'))} the {POSITIONS[k]}" if use_pos else "")


def reference(cells, k: int) -> str:
    """A referring expression the generator can produce for the object in cell k of the scene ``cells``
    (nine codes), chosen deterministically: the first of the shortest attribute sets that single it out
    ("the red object", "the square", "the small red square"), else its shape and position."""
    if not 0 <= k < 9 or int(cells[k]) < 0:
        raise ValueError(f"cell {k} holds no object")
    me, unique = _unique_subsets(cells, k)
    if not unique:
        return f"{_phrase(me, ('shape',), SHAPE_WORDS[me['shape']][0])} in the {POSITIONS[k]}"
    return _phrase(me, unique[0], SHAPE_WORDS[me["shape"]][0] if "shape" in unique[0] else "object")


def _sample(n: int, seed, max_objects: int, kinds: tuple) -> dict:
    """Scenes, edits and texts (no pixels): everything :func:`load_css` caches."""
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    kind = np.array(kinds)[rng.integers(len(kinds), size=n)]
    lo = np.where(kind == "remove", 2, 1)
    hi = np.where(kind == "add", max_objects - 1, max_objects)
    count = rng.integers(lo, hi + 1)
    order = np.argsort(rng.random((n, 9)), axis=1)  # random cell order; the first `count` are occupied
    codes = rng.integers(3, size=(n, 9)) * 16 + rng.integers(8, size=(n, 9)) * 2 + rng.integers(2, size=(n, 9))
    occupied = np.zeros((n, 9), dtype=bool)
    occupied[rows[:, None], order] = np.arange(9) < count[:, None]
    src = np.where(occupied, codes, -1)
    edited = np.where(kind == "add", order[rows, np.minimum(count, 8)], order[rows, 0])
    old = src[rows, edited]
    attr_i = rng.integers(3, size=n)  # colour, size, shape
    delta = rng.integers(1, np.array([8, 2, 3])[attr_i])
    sh, co, sz = old // 16, old // 2 % 8, old % 2
    changed = np.select([attr_i == 0, attr_i == 1], [sh * 16 + (co + delta) % 8 * 2 + sz, old - sz + 1 - sz],
                        (sh + delta) % 3 * 16 + co * 2 + sz)
    new = np.select([kind == "add", kind == "remove"], [codes[rows, edited], -1], changed)
    tgt = src.copy()
    tgt[rows, edited] = new
    attribute = np.where(kind == "change", np.array(ATTRIBUTES)[attr_i], "")

    texts, refs = [], []
    for i in range(n):
        k, kind_i, attr = int(edited[i]), str(kind[i]), str(attribute[i])
        new_attrs = cell_attributes(int(new[i]))
        refs.append("" if kind_i == "add" else _describe(rng, src[i], k))
        if kind_i == "add":
            obj = f"{new_attrs['size']} {new_attrs['color']} {_pick(rng, SHAPE_WORDS[new_attrs['shape']])}"
            texts.append(_pick(rng, _ADD).format(obj=obj, pos=POSITIONS[k]))
        elif kind_i == "remove":
            texts.append(_pick(rng, _REMOVE).format(ref=refs[-1]))
        else:
            value = _pick(rng, SHAPE_WORDS[new_attrs["shape"]]) if attr == "shape" else new_attrs[attr]
            texts.append(_pick(rng, _CHANGE[attr]).format(ref=refs[-1], new=value))
    return dict(instruction=np.array(texts, dtype=str), reference=np.array(refs, dtype=str), kind=kind.astype(str),
                attribute=attribute.astype(str), edited=edited.astype(np.int64),
                source_cells=src.astype(np.int8), target_cells=tgt.astype(np.int8))


def _assemble(sampled: dict, size: int, circle: str) -> CSSData:
    src, tgt, k = sampled["source_cells"], sampled["target_cells"], sampled["edited"]
    ls, lt = palette_labels(src, size, circle), palette_labels(tgt, size, circle)
    mask = ls != lt
    bank, rows = _templates(int(size), circle), np.arange(len(k))
    code = lambda c: np.where(c < 0, _EMPTY, c)  # noqa: E731
    for cell in np.unique(k):  # add the edited object's own pixels in source and target
        i = rows[k == cell]
        ys, xs = _cell_box(int(cell), size)
        mask[i, ys, xs] |= bank[cell][code(src[i, cell])] | bank[cell][code(tgt[i, cell])]
    return CSSData(source=PALETTE[ls], target=PALETTE[lt], mask=mask, **sampled,
                   source_id=cells_to_id(src), target_id=cells_to_id(tgt))


def _check_params(max_objects: int, kinds) -> tuple:
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad:
        raise ValueError(f"unknown or no instruction kinds {bad or kinds!r}; valid: {', '.join(KINDS)}")
    if not 1 <= max_objects <= 9:
        raise ValueError(f"max_objects must be in 1..9 (one object per grid cell), got {max_objects}")
    if max_objects < 2 and ({"add", "remove"} & set(kinds)):
        raise ValueError("add/remove need max_objects >= 2 (every scene holds 1..max_objects objects)")
    return kinds


def generate_css(n: int, *, seed: int = 0, size: int = 64, max_objects: int = 5, kinds=KINDS,
                 circle: str = "disc") -> CSSData:
    """``n`` CSS-2D triples, deterministic in ``seed``.  Source and target each hold 1..max_objects objects.

    The scenes and texts depend on neither ``size`` nor ``circle``: only the pixels do."""
    kinds = _check_params(max_objects, kinds)
    check_size(size)
    check_circle(circle)
    return _assemble(_sample(n, seed, max_objects, kinds), size, circle)


def load_css(split: str, n: int, *, seed: int = 0, size: int = 64, max_objects: int = 5, kinds=KINDS,
             circle: str = "disc", cache: bool = True) -> CSSData:
    """The ``train`` or ``test`` split (different seeds).  Scenes and texts are cached on disk by their
    parameters; pixels are re-rendered on load with the requested ``size`` and ``circle`` (fast, and the cache
    stays small), so neither is part of the cache key and a cache can never serve the wrong pixels."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    kinds = _check_params(max_objects, kinds)
    check_size(size)
    check_circle(circle)
    split_seed = np.random.SeedSequence([seed, ("train", "test").index(split), max_objects]).generate_state(1)[0]
    if not cache:
        return _assemble(_sample(n, split_seed, max_objects, kinds), size, circle)
    params = dict(split=split, n=n, seed=seed, max_objects=max_objects, kinds=kinds, version=DATA_VERSION)
    sampled = cached_arrays("css", f"{split}-{n}-m{max_objects}", params,
                            lambda: _sample(n, split_seed, max_objects, kinds), _SAMPLED)
    return _assemble(sampled, size, circle)

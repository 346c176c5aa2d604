"""CoSaL: Colorizing Shapes with Artificial Language (LBIE paper §4.1, DESIGN §4.1).

Each 48x48 image is a 3x3 grid of 16 px cells; the nine shapes each appear exactly once,
permuted over the cells, and each is filled with one of ``num_colors`` colours.  The input is
the black silhouette image, the target the coloured one, and the caption nine 3-token
sentences: ``num_direct`` direct ones ("circle is red") then relational ones ("red below
circle": the cell one row below the circle's cell is red).

Two coverage modes (DESIGN §4.1):

* ``"full"`` — what the paper states: every direct cell seeds the known set, so the
  relational sentences complete a spanning forest and every cell is determined.
* ``"released"`` — what the released generator does: only the *first* direct cell seeds
  the chain, so other direct cells may be described twice and some cells stay undetermined.

Pixels are the released generator's: every coordinate is drawn as a fraction of the cell size
and truncated to a whole pixel (``int(uniform(lo, hi) * s)``), ellipses have the integer axes
``(s // 3, s // 6)`` (fat) or ``(s // 6, s // 3)`` (thin), the circle an integer radius, and
shapes are filled with OpenCV's ``rectangle``, ``fillConvexPoly``, ``ellipse`` and ``circle``
(boundary pixels included).  Mean areas at 48 px: rectangle 113, half fat ellipse 26, fat ellipse
41, triangles 42, thin ellipse 41, half thin ellipse 24, diamond 42, circle 85 px (the ellipses
always the same); about 457 foreground pixels per image.

The truncated coordinates take only a few values, so every distinct raster of a shape is drawn
once (:func:`raster_table`) and images are assembled by table look-up; everything is vectorised
over images with numpy, and data sets are cached on disk keyed by their parameters.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils import cached_arrays

SHAPES = ("rectangle", "half fat ellipse", "fat ellipse", "triangle", "reverse triangle",
          "thin ellipse", "half thin ellipse", "diamond", "circle")
COLORS = ("blue", "light green", "red", "black", "grey", "yellow")
COLOR_RGB = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 0, 0), (128, 128, 128), (255, 255, 0)],
                     dtype=np.uint8)
RELATIONS = ("above", "below", "left", "right")
# The released code's 20-token vocabulary, in its order: shapes, colours, "is", relations.
VOCAB = SHAPES + COLORS + ("is",) + RELATIONS
TOKEN = {w: i for i, w in enumerate(VOCAB)}
IS, ABOVE, BELOW, LEFT, RIGHT = (TOKEN[w] for w in ("is",) + RELATIONS)
COVERAGES = ("full", "released")
DATA_VERSION = 2  # bump when the generator's output changes: invalidates caches and the runs trained on it


def _edges() -> np.ndarray:
    """All (target, reference, relation-token) triples of 4-neighbouring cells.

    "<colour> below <shape>" = the cell one row *below* the shape's cell has <colour>.
    """
    out = []
    for t in range(9):
        r, c = divmod(t, 3)
        for dr, dc, rel in ((1, 0, BELOW), (-1, 0, ABOVE), (0, 1, RIGHT), (0, -1, LEFT)):
            rr, cc = r - dr, c - dc  # the reference cell
            if 0 <= rr < 3 and 0 <= cc < 3:
                out.append((t, 3 * rr + cc, rel))
    return np.array(out, dtype=np.int64)


EDGES = _edges()  # (24, 3)


# --------------------------------------------------------------------------- rendering
# Jitter range (lo, hi) of each coordinate of each shape, as fractions of the cell size s, in the
# order the coordinates are drawn here (x before y).  As in the released generator, a coordinate
# is truncated to a whole pixel, int(uniform(lo, hi) * s), and the shape is filled with OpenCV.
_JITTER = {
    "rectangle": ((.1, .3), (.1, .3), (.7, .9), (.7, .9)),  # top-left x, y; bottom-right x, y
    "half fat ellipse": ((.45, .55), (.45, .55)),  # centre x, y
    "fat ellipse": ((.45, .55), (.45, .55)),
    "triangle": ((.2, .4), (.7, .8), (.7, .8), (.7, .8), (.4, .6), (.2, .3)),  # base left, base right, apex
    "reverse triangle": ((.2, .4), (.2, .3), (.7, .8), (.2, .3), (.4, .6), (.7, .8)),
    "thin ellipse": ((.45, .55), (.45, .55)),
    "half thin ellipse": ((.45, .55), (.45, .55)),
    "diamond": ((.2, .3), (.45, .55), (.45, .55), (.2, .3), (.7, .8), (.45, .55), (.45, .55), (.7, .8)),
    "circle": ((.45, .55), (.45, .55), (.3, .4)),  # centre x, y; radius
}  # diamond vertices: left, top, right, bottom
_MAX_TABLE = 1 << 14  # larger jitter grids (big cells) render only the rasters that occur


def _draw(name: str, v, cell: int) -> np.ndarray:
    """One raster (cell, cell) bool of shape ``name`` at the integer coordinates ``v``."""
    img = np.zeros((cell, cell), np.uint8)
    v = [int(a) for a in v]
    if name == "rectangle":
        cv2.rectangle(img, (v[0], v[1]), (v[2], v[3]), 1, thickness=-1)
    elif "ellipse" in name:
        axes = (cell // 3, cell // 6) if "fat" in name else (cell // 6, cell // 3)
        # the "half" ellipses are arcs from 0 to 180 degrees: the lower half (y grows downwards)
        cv2.ellipse(img, (v[0], v[1]), axes, 0, 0, 180 if name.startswith("half") else 360, 1, thickness=-1)
    elif name == "circle":
        cv2.circle(img, (v[0], v[1]), v[2], 1, thickness=-1)
    else:  # triangles and the diamond: convex polygons
        cv2.fillConvexPoly(img, np.array(v, np.int32).reshape(-1, 2), 1)
    return img.astype(bool)


def _grid(name: str, cell: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Smallest value and number of values of each integer coordinate of shape ``name``."""
    lo = np.array([int(a * cell) for a, _ in _JITTER[name]])
    hi = np.array([int(b * cell) for _, b in _JITTER[name]])
    return lo, tuple(int(k) for k in hi - lo + 1)


@functools.lru_cache(maxsize=None)
def raster_table(shape: int, cell: int) -> np.ndarray | None:
    """Every distinct raster of one shape type: (K, cell, cell) bool, indexed by the coordinates
    in mixed radix over :func:`_grid` (None if the grid exceeds ``_MAX_TABLE``)."""
    name = SHAPES[shape]
    lo, sizes = _grid(name, cell)
    if np.prod(sizes) > _MAX_TABLE:
        return None
    combos = np.indices(sizes).reshape(len(sizes), -1).T + lo
    table = np.stack([_draw(name, v, cell) for v in combos])
    table.flags.writeable = False
    return table


def render_shape(shape: int, n: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Masks (n, cell, cell) bool of one shape type with the released code's jitter and pixels:
    coordinates truncated to whole pixels, filled with OpenCV (looked up in :func:`raster_table`)."""
    name = SHAPES[shape]
    v = np.stack([np.floor(rng.uniform(a, b, size=n) * cell) for a, b in _JITTER[name]], 1).astype(np.int64)
    lo, sizes = _grid(name, cell)
    table = raster_table(shape, cell)
    if table is not None:
        return table[np.ravel_multi_index((v - lo).T, sizes)]
    uniq, inv = np.unique(v, axis=0, return_inverse=True)
    return np.stack([_draw(name, u, cell) for u in uniq])[inv.ravel()]


# --------------------------------------------------------------------------- data set
def cell_map(values, img_size: int) -> np.ndarray:
    """Per-cell values (N, 9) → per-pixel (N, H, W) on the 3x3 grid."""
    s = img_size // 3
    return np.asarray(values).reshape(-1, 3, 3).repeat(s, 1).repeat(s, 2)


@dataclass
class CoSaL:
    """A CoSaL data set.  Images are stored as a label map; inputs and targets are derived.

    labels:     (N, H, W) uint8, 0 = background, k+1 = colour k
    cell_shape: (N, 9) shape id in each cell (cell k at row k//3, column k%3)
    cell_color: (N, 9) colour id in each cell
    tokens:     (N, 9, 3) token ids of the nine sentences (direct ones first)
    kind:       (N, 9) 0 = direct, 1 = relational sentence
    target:     (N, 9) the cell each sentence describes
    ref:        (N, 9) the cell a relational sentence refers to (= target for direct ones)
    determined: (N, 9) bool, whether the caption determines the cell's colour
    depth:      (N, 9) relational hops from the nearest directly described cell (-1: undetermined)
    """

    labels: np.ndarray
    cell_shape: np.ndarray
    cell_color: np.ndarray
    tokens: np.ndarray
    kind: np.ndarray
    target: np.ndarray
    ref: np.ndarray
    determined: np.ndarray
    depth: np.ndarray
    num_colors: int
    num_direct: int
    coverage: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return self.num_colors + 1

    @property
    def img_size(self) -> int:
        return self.labels.shape[-1]

    def inputs(self, idx=slice(None)) -> np.ndarray:
        """Black silhouettes on white, (n, H, W, 3) uint8."""
        return np.where((self.labels[idx] > 0)[..., None], 0, 255).astype(np.uint8).repeat(3, -1)

    def targets(self, idx=slice(None)) -> np.ndarray:
        """The coloured target images, (n, H, W, 3) uint8."""
        return labels_to_rgb(self.labels[idx])

    def cell_map(self, values: np.ndarray) -> np.ndarray:
        """Broadcast per-cell values (N, 9) to pixels (N, H, W)."""
        return cell_map(values, self.img_size)

    def sentences(self, i: int) -> list[str]:
        """The readable caption of image ``i``."""
        return [" ".join(VOCAB[t] for t in sent) for sent in self.tokens[i]]

    def subset(self, idx) -> "CoSaL":
        arrays = {name: getattr(self, name)[idx] for name in _ARRAYS}
        return CoSaL(**arrays, num_colors=self.num_colors, num_direct=self.num_direct, coverage=self.coverage)


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Label map (…, H, W) → RGB (…, H, W, 3) uint8 with a white background."""
    palette = np.concatenate([np.full((1, 3), 255, np.uint8), COLOR_RGB])
    return palette[np.asarray(labels)]


def generate_cosal(n: int, *, num_direct: int = 4, num_colors: int = 3, coverage: str = "full",
                   seed: int = 0, img_size: int = 48) -> CoSaL:
    """Generate ``n`` CoSaL images with their captions (deterministic in ``seed``)."""
    if coverage not in COVERAGES:
        raise ValueError(f"unknown coverage {coverage!r}; valid: {', '.join(COVERAGES)}")
    if not 1 <= num_direct <= 9:
        raise ValueError(f"num_direct must be in 1..9, got {num_direct}")
    if not 1 <= num_colors <= len(COLORS):
        raise ValueError(f"num_colors must be in 1..{len(COLORS)}, got {num_colors}")
    if img_size % 3:
        raise ValueError(f"img_size must be a multiple of 3, got {img_size}")
    rng = np.random.default_rng(seed)
    s = img_size // 3
    rows = np.arange(n)

    # Images: a random permutation of the nine shapes over the cells, colours i.i.d.
    cell_shape = rng.permuted(np.tile(np.arange(9), (n, 1)), axis=1)
    cell_color = rng.integers(num_colors, size=(n, 9))
    cells = np.zeros((n, 9, s, s), dtype=np.uint8)
    cell_of_shape = np.argsort(cell_shape, axis=1)  # (n, 9): cell holding shape k
    for k in range(9):
        masks = render_shape(k, n, s, rng)
        c = cell_of_shape[:, k]
        cells[rows, c] = masks * (cell_color[rows, c] + 1)[:, None, None].astype(np.uint8)
    labels = cells.reshape(n, 3, 3, s, s).transpose(0, 1, 3, 2, 4).reshape(n, img_size, img_size)

    # Caption: the direct cells first, in random order.
    direct = np.argsort(rng.random((n, 9)), axis=1)[:, :num_direct]
    known = np.zeros((n, 9), dtype=bool)
    if coverage == "full":
        known[rows[:, None], direct] = True
    else:  # the released code seeds the relational chain with the first direct cell only
        known[rows, direct[:, 0]] = True
    n_rel = 9 - num_direct
    rel_target = np.zeros((n, n_rel), dtype=np.int64)
    rel_ref = np.zeros((n, n_rel), dtype=np.int64)
    rel_tok = np.zeros((n, n_rel), dtype=np.int64)
    for j in range(n_rel):  # grow the chain: pick uniformly among edges known → unknown
        valid = known[:, EDGES[:, 1]] & ~known[:, EDGES[:, 0]]  # (n, 24)
        e = np.argmax(np.where(valid, rng.random(valid.shape), -1.0), axis=1)
        rel_target[:, j], rel_ref[:, j], rel_tok[:, j] = EDGES[e].T
        known[rows, rel_target[:, j]] = True

    target = np.concatenate([direct, rel_target], axis=1)
    ref = np.concatenate([direct, rel_ref], axis=1)
    kind = np.concatenate([np.zeros((n, num_direct), np.int64), np.ones((n, n_rel), np.int64)], axis=1)
    colour_tok = len(SHAPES) + np.take_along_axis(cell_color, target, axis=1)
    shape_direct = np.take_along_axis(cell_shape, direct, axis=1)
    shape_ref = np.take_along_axis(cell_shape, rel_ref, axis=1)
    tokens = np.concatenate([
        np.stack([shape_direct, np.full_like(shape_direct, IS), colour_tok[:, :num_direct]], -1),
        np.stack([colour_tok[:, num_direct:], rel_tok, shape_ref], -1),
    ], axis=1)

    determined = np.zeros((n, 9), dtype=bool)
    determined[rows[:, None], target] = True
    depth = np.full((n, 9), -1, dtype=np.int64)
    depth[rows[:, None], direct] = 0
    for j in range(n_rel):  # references are always described before they are used
        t, r = rel_target[:, j], rel_ref[:, j]
        d = depth[rows, r] + 1
        cur = depth[rows, t]
        depth[rows, t] = np.where(cur < 0, d, np.minimum(cur, d))

    return CoSaL(labels=labels, cell_shape=cell_shape, cell_color=cell_color, tokens=tokens, kind=kind,
                 target=target, ref=ref, determined=determined, depth=depth,
                 num_colors=num_colors, num_direct=num_direct, coverage=coverage)


_ARRAYS = ("labels", "cell_shape", "cell_color", "tokens", "kind", "target", "ref", "determined", "depth")


def load_cosal(split: str, n: int, *, num_direct: int = 4, num_colors: int = 3, coverage: str = "full",
               seed: int = 0, img_size: int = 48, cache: bool = True) -> CoSaL:
    """The ``train`` or ``test`` split (different seeds), cached on disk by its parameters."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    if coverage not in COVERAGES:
        raise ValueError(f"unknown coverage {coverage!r}; valid: {', '.join(COVERAGES)}")
    params = dict(split=split, n=n, num_direct=num_direct, num_colors=num_colors, coverage=coverage,
                  seed=seed, img_size=img_size, version=DATA_VERSION)
    split_seed = [seed, {"train": 0, "test": 1}[split], num_direct, num_colors, COVERAGES.index(coverage)]
    make = lambda: generate_cosal(n, num_direct=num_direct, num_colors=num_colors, coverage=coverage,  # noqa: E731
                                  seed=np.random.SeedSequence(split_seed).generate_state(1)[0], img_size=img_size)
    if not cache:
        return make()
    arrays = cached_arrays("cosal", f"{split}-{n}-d{num_direct}-c{num_colors}-{coverage}", params,
                           lambda: {k: v for k, v in vars(make()).items() if k in _ARRAYS}, _ARRAYS)
    return CoSaL(**arrays, num_colors=num_colors, num_direct=num_direct, coverage=coverage)


def coverage_stats(data: CoSaL) -> dict:
    """How much of each image the caption determines: share of images with all nine cells
    determined, mean number of determined cells, share of foreground pixels in determined cells."""
    fg = data.labels > 0
    det = data.cell_map(data.determined)
    return {"all_cells_determined": float(data.determined.all(1).mean()),
            "mean_determined_cells": float(data.determined.sum(1).mean()),
            "foreground_in_determined": float((fg & det).sum() / max(fg.sum(), 1))}

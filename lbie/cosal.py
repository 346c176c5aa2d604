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

Everything is vectorised over images with numpy; data sets are cached on disk keyed by
their parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import cell_map
from .utils import cached_arrays

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
_VERSION = 1  # bump when the generator's output changes, to invalidate caches


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
def _u(rng, n, lo, hi):
    return rng.uniform(lo, hi, size=n)


def _convex(px, py, verts):
    """Inside-test of convex polygons. px, py: (P,), verts: (n, V, 2) as fractions → (n, P)."""
    x0, y0 = verts[..., 0][:, :, None], verts[..., 1][:, :, None]  # (n, V, 1)
    x1, y1 = np.roll(x0, -1, axis=1), np.roll(y0, -1, axis=1)
    cross = (x1 - x0) * (py[None, None] - y0) - (y1 - y0) * (px[None, None] - x0)  # (n, V, P)
    return np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)


def _ellipse(px, py, cx, cy, ax, ay, lower_half=False):
    inside = ((px[None] - cx[:, None]) / ax) ** 2 + ((py[None] - cy[:, None]) / ay) ** 2 <= 1.0
    if lower_half:  # the released code draws arcs 0-180 degrees: the lower half (y grows down)
        inside &= py[None] >= cy[:, None]
    return inside


def render_shape(shape: int, n: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Masks (n, cell, cell) of one shape type with the released code's jitter (fractions of
    the cell size), evaluated at pixel centres."""
    coords = (np.arange(cell) + 0.5) / cell
    py, px = (a.ravel() for a in np.meshgrid(coords, coords, indexing="ij"))
    name = SHAPES[shape]
    if name == "rectangle":
        x0, y0, x1, y1 = _u(rng, n, .1, .3), _u(rng, n, .1, .3), _u(rng, n, .7, .9), _u(rng, n, .7, .9)
        m = ((px[None] >= x0[:, None]) & (px[None] <= x1[:, None]) &
             (py[None] >= y0[:, None]) & (py[None] <= y1[:, None]))
    elif "ellipse" in name:
        cx, cy = _u(rng, n, .45, .55), _u(rng, n, .45, .55)
        ax, ay = (1 / 3, 1 / 6) if "fat" in name else (1 / 6, 1 / 3)
        m = _ellipse(px, py, cx, cy, ax, ay, lower_half=name.startswith("half"))
    elif name == "circle":
        cx, cy, rad = _u(rng, n, .45, .55), _u(rng, n, .45, .55), _u(rng, n, .3, .4)
        m = _ellipse(px, py, cx, cy, rad[:, None], rad[:, None])
    elif name == "triangle":  # apex up
        v = [(_u(rng, n, .2, .4), _u(rng, n, .7, .8)), (_u(rng, n, .7, .8), _u(rng, n, .7, .8)),
             (_u(rng, n, .4, .6), _u(rng, n, .2, .3))]
        m = _convex(px, py, np.stack([np.stack(p, -1) for p in v], 1))
    elif name == "reverse triangle":  # apex down
        v = [(_u(rng, n, .2, .4), _u(rng, n, .2, .3)), (_u(rng, n, .7, .8), _u(rng, n, .2, .3)),
             (_u(rng, n, .4, .6), _u(rng, n, .7, .8))]
        m = _convex(px, py, np.stack([np.stack(p, -1) for p in v], 1))
    elif name == "diamond":  # left, top, right, bottom
        v = [(_u(rng, n, .2, .3), _u(rng, n, .45, .55)), (_u(rng, n, .45, .55), _u(rng, n, .2, .3)),
             (_u(rng, n, .7, .8), _u(rng, n, .45, .55)), (_u(rng, n, .45, .55), _u(rng, n, .7, .8))]
        m = _convex(px, py, np.stack([np.stack(p, -1) for p in v], 1))
    else:  # pragma: no cover - SHAPES is fixed
        raise AssertionError(name)
    return m.reshape(n, cell, cell)


# --------------------------------------------------------------------------- data set
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
                  seed=seed, img_size=img_size, version=_VERSION)
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

"""Language-based segmentation data: seeded referring-expression scenes, and Hu et al.'s ReferIt release.

**Synthetic** (DESIGN §4.3; the LBIE paper's ReferIt task at toy scale).  Scenes are CSS-2D grid scenes
(:mod:`lbie.data.css`: rectangles, circles, triangles; eight colours; two sizes; at most one object per cell of the
3x3 grid), drawn with a small per-scene palette so that distractors share attributes with the target.  Each
scene gets one referring expression and the exact mask of the object(s) it picks out.  Expression kinds:

* ``attribute`` -- attributes only, unambiguous in the scene: "the large red circle";
* ``position`` -- attributes (possibly none) + grid position: "the circle in the top left";
* ``relation`` -- "the circle left of the red square".  *A left of B* means same row, smaller column;
  *above* means same column, smaller row (the line of sight on the grid).  The anchor is unambiguous by its
  attributes, and exactly one object fits the head noun phrase and the relation;
* ``plural`` -- every object with some attributes, with a true count or "all": "the two blue objects";
* ``two_sentence`` -- "there are three circles. pick the leftmost one." or "look at the top row. find the
  red object." (the second sentence resolves the first).

Texts are lower-case words from :data:`VOCAB`; sentences are separated by ". ".  The token form pads each
expression to ``MAX_SENTENCES`` sentences of ``MAX_WORDS`` ids (0 = ``<pad>``, at the end).

**Real**: :func:`load_referit` reads the release of Hu et al. (ECCV 2016, ``ronghanghu/text_objseg``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils import cached_arrays
from .css import COLORS, PALETTE, POSITIONS, SHAPE_WORDS, SHAPES, SIZES, SUBSETS, check_size, palette_labels
from .files import bad_file, read_image

KINDS = ("attribute", "position", "relation", "plural", "two_sentence")
RELATIONS = {"left": ("left of", "to the left of"), "right": ("right of", "to the right of"),
             "above": ("above",), "below": ("below", "under")}
LINES = ("top row", "middle row", "bottom row", "left column", "center column", "right column")
EXTREMES = ("leftmost", "rightmost", "topmost", "bottommost")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VERBS = ("pick", "select", "find")
_NOUNS = ("square", "rectangle", "circle", "triangle", "object", "shape")
VOCAB = (("<pad>", "the", "in", "at", "of", "to", "all", "there", "are", "look", "row", "column", "one",
          "top", "middle", "center", "bottom", "left", "right", "above", "below", "under") + VERBS + EXTREMES
         + NUMBERS[2:] + SIZES + COLORS + _NOUNS + tuple(w + "s" for w in _NOUNS))
TOKEN = {w: i for i, w in enumerate(VOCAB)}
MAX_SENTENCES, MAX_WORDS = 2, 12
_ATTR = {"shape": 0, "color": 1, "size": 2}
DATA_VERSION = 2  # bump when the generator's output changes (2: CSS-2D shapes as TIRG draws them): invalidates caches and runs


def encode_texts(texts, vocab: dict, max_sentences: int, max_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (N, S, L) padded with 0 at the end, and lengths (N, S); sentences split at '. '."""
    tokens = np.zeros((len(texts), max_sentences, max_words), dtype=np.int64)
    lengths = np.zeros((len(texts), max_sentences), dtype=np.int64)
    for i, text in enumerate(texts):
        sents = [s.split() for s in str(text).rstrip(".").split(". ")]
        if len(sents) > max_sentences or max(map(len, sents)) > max_words:
            raise ValueError(f"text {text!r} exceeds {max_sentences} sentences of {max_words} words")
        for j, words in enumerate(sents):
            unknown = [w for w in words if w not in vocab]
            if unknown:
                raise ValueError(f"text {text!r}: words {unknown} are not in the vocabulary")
            tokens[i, j, :len(words)] = [vocab[w] for w in words]
            lengths[i, j] = len(words)
    return tokens, lengths


# --------------------------------------------------------------------------- scenes and expressions
def _pick(rng, options):
    return options[rng.integers(len(options))]


def _scenes(rng, n: int, lo: int, hi: int) -> np.ndarray:
    """Cell codes (n, 9), -1 empty; lo..hi objects; colours from a per-scene palette of 2-4 colours."""
    rows = np.arange(n)
    occupied = np.zeros((n, 9), dtype=bool)
    occupied[rows[:, None], np.argsort(rng.random((n, 9)), 1)] = np.arange(9) < rng.integers(lo, hi + 1, n)[:, None]
    palette = np.argsort(rng.random((n, 8)), 1)
    color = palette[rows[:, None], rng.integers(0, rng.integers(2, 5, n)[:, None], (n, 9))]
    codes = rng.integers(3, size=(n, 9)) * 16 + color * 2 + rng.integers(2, size=(n, 9))
    return np.where(occupied, codes, -1)


def _phrase(rng, a, sub, plural=False) -> str:
    """Noun phrase for attributes a = (shape, color, size) naming the attributes in ``sub``."""
    words = ([SIZES[a[2]]] if "size" in sub else []) + ([COLORS[a[1]]] if "color" in sub else [])
    noun = _pick(rng, SHAPE_WORDS[SHAPES[a[0]]] if "shape" in sub else ("object", "shape"))
    return " ".join(words + [noun + "s" * plural])


class _Scene:
    def __init__(self, cells):
        self.cells = np.flatnonzero(cells >= 0)
        c = cells[self.cells]
        self.attrs = np.stack([c // 16, c // 2 % 8, c % 2], 1)  # (m, 3) shape, colour, size
        self.row, self.col = self.cells // 3, self.cells % 3
        eq = self.attrs[:, None] == self.attrs[None]  # (m, m, 3)
        self.same = {s: eq[..., [_ATTR[a] for a in s]].all(-1) for s in SUBSETS}  # pairs agreeing on s

    def match(self, sub, i, among=None) -> np.ndarray:
        """bool (m,): objects sharing object i's attributes in ``sub`` (restricted to ``among``)."""
        return self.same[sub][i] if among is None else self.same[sub][i] & among

    def unique_subsets(self, i, among=None) -> list:
        return [s for s in SUBSETS if self.match(s, i, among).sum() == 1]

    def rel(self, r: str, a: int) -> np.ndarray:
        """bool (m,): objects standing in relation r to object a."""
        same_row, same_col = self.row == self.row[a], self.col == self.col[a]
        return {"left": same_row & (self.col < self.col[a]), "right": same_row & (self.col > self.col[a]),
                "above": same_col & (self.row < self.row[a]), "below": same_col & (self.row > self.row[a])}[r]


def _short(rng, subsets):
    """A minimal subset most of the time, else one attribute more (over-specified, as people do)."""
    m = len(subsets[0])
    return _pick(rng, [s for s in subsets if len(s) == m] if rng.random() < 0.7 else
                 [s for s in subsets if len(s) <= m + 1])


def _attribute(rng, sc: _Scene):
    for i in rng.permutation(len(sc.cells)):
        uniq = [s for s in sc.unique_subsets(i) if s]
        if uniq:
            return "the " + _phrase(rng, sc.attrs[i], _short(rng, uniq)), [i]
    return None


def _position(rng, sc: _Scene):
    i = rng.integers(len(sc.cells))
    sub = _pick(rng, SUBSETS[:4] if rng.random() < 0.7 else SUBSETS)
    return f"the {_phrase(rng, sc.attrs[i], sub)} {_pick(rng, ('in', 'at'))} the {POSITIONS[sc.cells[i]]}", [i]


def _relation(rng, sc: _Scene):
    m = len(sc.cells)
    for a in rng.permutation(m):
        anchor = [s for s in sc.unique_subsets(a) if s]
        if not anchor:
            continue
        for r in rng.permutation(list(RELATIONS)):
            inrel = sc.rel(r, a)
            for t in rng.permutation(np.flatnonzero(inrel)):
                head = sc.unique_subsets(t, among=inrel)
                if head:
                    return (f"the {_phrase(rng, sc.attrs[t], _short(rng, head))} {_pick(rng, RELATIONS[r])} "
                            f"the {_phrase(rng, sc.attrs[a], _short(rng, anchor))}"), [t]
    return None


def _groups(sc: _Scene):
    """(subset, object index, member mask) of every attribute set shared by 2+ but not all objects."""
    return [(s, i, g) for i in range(len(sc.cells)) for s in SUBSETS[1:]
            if 2 <= (g := sc.match(s, i)).sum() < len(sc.cells)]


def _plural(rng, sc: _Scene):
    groups = _groups(sc)
    if not groups:
        return None
    s, i, g = _pick(rng, groups)
    lead = f"the {NUMBERS[g.sum()]}" if rng.random() < 0.6 else "all the"
    return f"{lead} {_phrase(rng, sc.attrs[i], s, plural=True)}", list(np.flatnonzero(g))


def _two_sentence(rng, sc: _Scene):
    verb = _pick(rng, VERBS)
    for variant in rng.permutation(2):
        if variant == 0:  # count a group, then single out one member
            groups = _groups(sc)
            for k in rng.permutation(len(groups)):
                s, i, g = groups[k]
                first = f"there are {NUMBERS[g.sum()]} {_phrase(rng, sc.attrs[i], s, plural=True)}"
                for t in rng.permutation(np.flatnonzero(g)):
                    cues = [f"the {words[sc.attrs[t, _ATTR[a]]]} one" for a, words in (("size", SIZES),
                            ("color", COLORS)) if a not in s and sc.match((a,), t, g).sum() == 1]
                    if "shape" not in s and sc.match(("shape",), t, g).sum() == 1:
                        cues.append("the " + _pick(rng, SHAPE_WORDS[SHAPES[sc.attrs[t, 0]]]))
                    cues += [f"the {word} one" for word, key in zip(EXTREMES, (sc.col, -sc.col, sc.row, -sc.row))
                             if not (key[g] < key[t]).any() and (key[g] == key[t]).sum() == 1]
                    if cues:
                        return f"{first}. {verb} {_pick(rng, cues)}", [t]
        else:  # restrict to a row or column, then describe within it
            for line in rng.permutation(6):
                inline = (sc.row == line) if line < 3 else (sc.col == line - 3)
                for t in rng.permutation(np.flatnonzero(inline)):
                    if uniq := sc.unique_subsets(t, among=inline):
                        sub = _short(rng, uniq)
                        return f"look at the {LINES[line]}. {verb} the {_phrase(rng, sc.attrs[t], sub)}", [t]
    return None


_BUILDERS = {"attribute": _attribute, "position": _position, "relation": _relation, "plural": _plural,
             "two_sentence": _two_sentence}


# --------------------------------------------------------------------------- data set
@dataclass
class ReferringData:
    """Synthetic referring segmentation.  Cell codes as :class:`lbie.data.css.CSSData` (-1 empty; cell k: row k//3).

    images: (N, H, W, 3) uint8          masks: (N, H, W) bool, exactly the referred objects' pixels
    texts: (N,) str plain expressions   tokens: (N, MAX_SENTENCES, MAX_WORDS) int64 ids into VOCAB, 0-padded
    lengths: (N, MAX_SENTENCES) words per sentence (0 = no such sentence)
    cells: (N, 9) int8 the scene        referred: (N, 9) bool the cells the expression picks out
    kind: (N,) str one of KINDS
    """
    images: np.ndarray
    masks: np.ndarray
    texts: np.ndarray
    tokens: np.ndarray
    lengths: np.ndarray
    cells: np.ndarray
    referred: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


_SAMPLED = ("texts", "kind", "cells", "referred")


def _sample(n: int, seed, min_objects: int, max_objects: int, kinds: tuple) -> dict:
    """Scenes, expressions and referred cells (no pixels): everything :func:`load_referring` caches."""
    rng = np.random.default_rng(seed)
    cells = _scenes(rng, n, min_objects, max_objects)
    want = rng.integers(len(kinds), size=n)
    texts, kind = [], []
    referred = np.zeros((n, 9), dtype=bool)
    for i in range(n):
        while True:  # the wanted kind, else another one the scene allows, else a new scene (rare)
            order = [kinds[want[i]]] + [kinds[j] for j in rng.permutation(len(kinds)) if j != want[i]]
            sc = _Scene(cells[i])
            for k in order:
                if (out := _BUILDERS[k](rng, sc)) is not None:
                    break
            if out is not None:
                break
            cells[i] = _scenes(rng, 1, min_objects, max_objects)[0]
        texts.append(out[0])
        kind.append(k)
        referred[i, sc.cells[out[1]]] = True
    return dict(texts=np.array(texts, dtype=str), kind=np.array(kind, dtype=str), cells=cells.astype(np.int8),
                referred=referred)


def _assemble(sampled: dict, size: int) -> ReferringData:
    cells, referred = sampled["cells"], sampled["referred"]
    tokens, lengths = encode_texts(sampled["texts"], TOKEN, MAX_SENTENCES, MAX_WORDS)
    labels = palette_labels(cells, size)
    images = np.stack([PALETTE[:, j][labels] for j in range(3)], -1)  # = PALETTE[labels], ~3x faster
    return ReferringData(images=images, masks=palette_labels(np.where(referred, cells, -1), size) > 0, tokens=tokens,
                         lengths=lengths, **sampled)


def _check_params(min_objects: int, max_objects: int, kinds) -> tuple:
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad:
        raise ValueError(f"unknown or no expression kinds {bad or kinds!r}; valid: {', '.join(KINDS)}")
    if not 2 <= min_objects <= max_objects <= 9:
        raise ValueError(f"need 2 <= min_objects <= max_objects <= 9 (one object per grid cell), "
                         f"got {min_objects}, {max_objects}")
    if set(kinds) <= {"plural"} and max_objects < 3:
        raise ValueError("plural expressions need max_objects >= 3 (a group of 2+ and a distractor)")
    return kinds


def generate_referring(n: int, *, seed: int = 0, size: int = 64, min_objects: int = 3, max_objects: int = 6,
                       kinds=KINDS) -> ReferringData:
    """``n`` scenes with one referring expression each, deterministic in ``seed`` (texts do not depend on size)."""
    kinds = _check_params(min_objects, max_objects, kinds)
    check_size(size)
    return _assemble(_sample(n, seed, min_objects, max_objects, kinds), size)


def load_referring(split: str, n: int, *, seed: int = 0, size: int = 64, min_objects: int = 3, max_objects: int = 6,
                   kinds=KINDS, cache: bool = True) -> ReferringData:
    """The ``train`` or ``test`` split (different seeds); scenes and texts cached on disk, pixels re-rendered."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    kinds = _check_params(min_objects, max_objects, kinds)
    check_size(size)
    split_seed = np.random.SeedSequence([seed, ("train", "test").index(split), min_objects, max_objects,
                                         *(KINDS.index(k) for k in kinds)]).generate_state(1)[0]
    if not cache:
        return _assemble(_sample(n, split_seed, min_objects, max_objects, kinds), size)
    params = dict(split=split, n=n, seed=seed, min_objects=min_objects, max_objects=max_objects, kinds=kinds,
                  version=DATA_VERSION)
    sampled = cached_arrays("referring", f"{split}-{n}-o{min_objects}{max_objects}", params,
                            lambda: _sample(n, split_seed, min_objects, max_objects, kinds), _SAMPLED)
    return _assemble(sampled, size)


# --------------------------------------------------------------------------- ReferIt (Hu et al. 2016)
REFERIT_SPLITS = ("train", "val", "trainval", "test", "all")
_ANN = re.compile(r"^(\d+)_(\d+)$")


def _image_of(ann: str) -> str:
    """'8756_3' -> '8756.jpg' (as Hu et al.: ``name.split('_', 1)[0] + '.jpg'``)."""
    return ann.split("_", 1)[0] + ".jpg"


@dataclass
class ReferItData:
    """Hu et al.'s ReferIt release, one row per query (expression); masks are per annotated region.

    texts: (Q,) str       query_ann: (Q,) index into the annotations     tokens: (Q, 20) ids or None
    ann_ids: (A,) str '<image id>_<region>'   ann_image: (A,) index into images   bboxes: (A, 4) or None
    masks: list of (H, W) bool per annotation (``segimg_t == 0``)   images: list of (H, W, 3) uint8
    image_names: (N,) str, e.g. '8756.jpg'   (with ``size``: images (N, S, S, 3), masks (A, S, S), resized and
    zero-padded, aspect kept, as Hu et al. feed their network)
    """
    texts: np.ndarray
    query_ann: np.ndarray
    ann_ids: np.ndarray
    ann_image: np.ndarray
    masks: list
    images: list
    image_names: np.ndarray
    bboxes: np.ndarray | None = None
    tokens: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def mask(self, q: int) -> np.ndarray:
        return self.masks[self.query_ann[q]]

    def image(self, q: int) -> np.ndarray:
        return self.images[self.ann_image[self.query_ann[q]]]


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file ({what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_file(path, f"not valid JSON ({e})") from None


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of an image file; FileNotFoundError/ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image")
    return read_image(path)


def resize_and_pad(arr: np.ndarray, size: int) -> np.ndarray:
    """Scale the longer side to ``size`` (bilinear for images, nearest for masks), zero-pad to a centred square."""
    from PIL import Image

    h, w = arr.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    mask = arr.dtype == bool
    im = Image.fromarray(arr.astype(np.uint8) * (255 if mask else 1))
    out = np.asarray(im.resize((nw, nh), Image.NEAREST if mask else Image.BILINEAR))
    pad = np.zeros((size, size) + arr.shape[2:], dtype=out.dtype)
    y, x = (size - nh) // 2, (size - nw) // 2
    pad[y:y + nh, x:x + nw] = out
    return pad > 127 if mask else pad


def load_referit(root, split: str = "test", *, size: int | None = None, max_images: int | None = None) -> ReferItData:
    """Hu et al.'s ReferIt layout (``ronghanghu/text_objseg``), ``root`` = their ``exp-referit/`` folder:

    * ``data/referit_query_{split}.json``: {"<image id>_<region>": [query, ...]} (required);
    * ``data/referit_imcrop.json``: {"<image id>.jpg": ["<image id>_<region>", ...]} (checked if present);
    * ``data/referit_bbox.json``: {"<image id>_<region>": [x0, y0, x1, y1]} inclusive pixels (read if present);
    * ``data/vocabulary_referit.txt``: one word per line (if present, queries are tokenised as Hu et al.:
      lower case, split at runs of non-word characters (kept as tokens, unstripped, so ", " is ``<unk>``),
      final '.' dropped, ``<unk>`` for unknown words, truncated/front-padded with ``<pad>`` to 20);
    * ``referit-dataset/images/<image id>.jpg`` and ``referit-dataset/mask/<image id>_<region>.mat`` (MATLAB
      ``segimg_t``; the region is where it equals 0).

    Images are in order of first appearance in the query file; ``max_images`` keeps the first ones."""
    if split not in REFERIT_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(REFERIT_SPLITS)}")
    import scipy.io

    root = Path(root)
    qpath = root / "data" / f"referit_query_{split}.json"
    queries = _read_json(qpath, "ReferIt queries")
    if not isinstance(queries, dict) or not queries:
        raise bad_file(qpath, "expected a non-empty object mapping '<image id>_<region>' to lists of queries")
    for key, qs in queries.items():
        if not _ANN.match(key):
            raise bad_file(qpath, f"key {key!r} is not '<image id>_<region>'")
        if not isinstance(qs, list) or not all(isinstance(q, str) for q in qs):
            raise bad_file(qpath, f"entry {key!r} must be a list of strings")
    names = list(dict.fromkeys(map(_image_of, queries)))[:max_images]
    index = {name: i for i, name in enumerate(names)}
    anns = [k for k in queries if _image_of(k) in index]
    extra = {}
    for fname, what in (("referit_imcrop.json", "crops per image"), ("referit_bbox.json", "boxes")):
        path = root / "data" / fname
        if path.exists():
            extra[fname] = (path, _read_json(path, f"ReferIt {what}"))
            if not isinstance(extra[fname][1], dict):
                raise bad_file(path, "expected a JSON object")
    if "referit_imcrop.json" in extra:
        path, imcrop = extra["referit_imcrop.json"]
        for k in anns:
            if (name := _image_of(k)) not in imcrop or k not in imcrop[name]:
                raise bad_file(path, f"lacks key {name!r}" if name not in imcrop else f"{name!r} does not list {k!r}")
    bboxes = None
    if "referit_bbox.json" in extra:
        path, boxes = extra["referit_bbox.json"]
        missing = [k for k in anns if k not in boxes]
        if missing:
            raise bad_file(path, f"lacks key {missing[0]!r}")
        try:
            bboxes = np.array([boxes[k] for k in anns], dtype=np.int64).reshape(len(anns), 4)
        except (ValueError, TypeError) as e:
            raise bad_file(path, f"boxes must be four integers [x0, y0, x1, y1] ({e})") from None
    images = [read_rgb(root / "referit-dataset" / "images" / name) for name in names]
    masks = []
    for k in anns:
        mpath = root / "referit-dataset" / "mask" / f"{k}.mat"
        if not mpath.is_file():
            raise FileNotFoundError(f"{mpath}: no such file (ReferIt mask of {k})")
        try:
            seg = scipy.io.loadmat(str(mpath))["segimg_t"]
        except KeyError:
            raise bad_file(mpath, "lacks the 'segimg_t' array") from None
        except Exception as e:
            raise bad_file(mpath, f"not a readable MATLAB file ({type(e).__name__}: {e})") from e
        img = images[index[_image_of(k)]]
        if seg.shape != img.shape[:2]:
            raise bad_file(mpath, f"mask shape {seg.shape} differs from its image's {img.shape[:2]}")
        masks.append(seg == 0)
    if size is not None:
        check_size(size)
        images = np.stack([resize_and_pad(im, size) for im in images])
        masks = np.stack([resize_and_pad(m, size) for m in masks])
    texts = [q for k in anns for q in queries[k]]
    tokens = None
    vpath = root / "data" / "vocabulary_referit.txt"
    if vpath.exists():
        vocab = {w.strip(): i for i, w in enumerate(vpath.read_text().splitlines())}
        if not {"<pad>", "<unk>"} <= vocab.keys():
            raise bad_file(vpath, "lacks the '<pad>' or '<unk>' entry")
        tokens = np.array([_hu_tokens(q, vocab) for q in texts], dtype=np.int64).reshape(len(texts), 20)
    return ReferItData(texts=np.array(texts, dtype=str),
                       query_ann=np.array([j for j, k in enumerate(anns) for _ in queries[k]], dtype=np.int64),
                       ann_ids=np.array(anns, dtype=str),
                       ann_image=np.array([index[_image_of(k)] for k in anns], dtype=np.int64),
                       masks=masks, images=images, image_names=np.array(names, dtype=str), bboxes=bboxes,
                       tokens=tokens)


def _hu_tokens(query: str, vocab: dict, T: int = 20) -> list:
    words = [w.lower() for w in re.split(r"(\W+)", query.strip()) if w.strip()]
    if words and words[-1] == ".":
        words = words[:-1]
    ids = [vocab.get(w, vocab["<unk>"]) for w in words][:T]
    return [vocab["<pad>"]] * (T - len(ids)) + ids

"""Language-based colourisation data: seeded flower images with colour captions, CIE-Lab, and Oxford-102.

**Synthetic flowers** (DESIGN §4.3; the paper's §4.3 at toy scale).  Each image (64 px by default) is a flower
on a two-colour gradient background: a polar "rose" of 4-9 petals, r(θ) = R (g + (1 - g) |cos(k(θ - φ)/2)|^p)
(gap g and sharpness p vary the petal shape), a disc centre, a curved stem down to the bottom edge and one or
two elliptical leaves.  Part labels: :data:`PARTS`.  Every part gets a named colour (:data:`COLORS`) with
per-image RGB jitter; petals are shaded along their length.  Captions name the colours of a random subset of
the parts (petals most often) with several templates, including Fig. 7's "the flower is <colour> in color".

Petal shades: the colouriser sees only L*, so the petal lightness must not give the colour away.  Each flower
draws a base L* for its petal colour (:func:`_petal_lightness`) and the petals get that colour's shade there
(:func:`_petal_tones`): the colour's hue :data:`PETAL_HUE` at 90% of the sRGB gamut's largest chroma (pink:
C* / (L* + 16) = 0.45), white its own faint tint.  Each colour has a dark-to-light range
(:data:`PETAL_LIGHTNESS`, as wide as the colour names allow: orange and yellow turn brown when dark, red and
purple pink when light), and the colours share bands (:data:`PETAL_BANDS`): half of the chromatic flowers
draw L* 53-61, which all six reach, and a quarter of the orange, yellow, blue and pink ones L* 77-85, next to
white (85-97), so white is not the only light colour.  A 1-D classifier of the colour from the mean petal L*
does little better than chance (tests).  The per-image jitter of chromatic petals keeps only a (halved) hue
part; their lightness is the drawn one.

**Colour space**: sRGB (D65) <-> CIE-Lab by ``kornia.color``, for numpy arrays and torch tensors in any channel
position (:func:`rgb_to_lab`, :func:`lab_to_rgb`).  The colouriser sees L and predicts ab.

**Consistency** (the offline analogue of the paper's human rating, Table 4): a pixel's colour name comes from
hue bins in CIE-LCh (:data:`HUE_BINS`), with three refinements -- chroma C* < 12 is achromatic (white if L* >= 70,
black if L* < 30, else gray); a red or purple hue with low saturation C* / (L* + 16) < 0.7 is pink (this ratio
is unchanged by shading; 0.7, not 0.8, lets bright reds reach the lightness of dark oranges and yellows); an
orange or yellow hue with L* < 42 is brown.  An image is consistent when the most common name over its petal
pixels equals the colour named in the caption.

**Real data**: :func:`load_oxford102` reads Oxford-102 (``jpg/image_XXXXX.jpg``) with Reed et al.'s captions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import kornia.color
import numpy as np
import torch

from ..utils import cached_arrays, to_numpy
from .files import bad_file
from .referring import encode_texts, read_rgb

PARTS = ("background", "petals", "center", "leaves", "stem")
COLORS = ("white", "red", "orange", "yellow", "blue", "purple", "pink", "green", "brown", "black", "gray")
COLOR_RGB = np.array([(245, 245, 240), (205, 25, 35), (245, 135, 20), (245, 215, 40), (45, 85, 215), (140, 40, 160),
                      (240, 135, 185), (50, 150, 50), (110, 65, 30), (25, 25, 25), (128, 128, 128)], dtype=np.uint8)
FIG7_COLORS = ("white", "red", "orange", "yellow", "blue", "purple")  # the paper's Fig. 7 recolourings
PALETTES = {"petals": ("white", "red", "orange", "yellow", "blue", "purple", "pink"),  # uniform choice; repeats weigh
            "center": ("yellow", "orange", "brown", "black", "white", "green", "red"),
            "leaves": ("green", "green", "green", "yellow", "brown"), "stem": ("green", "green", "brown")}
_BACKGROUNDS = np.array([(35, 70, 35), (70, 95, 50), (60, 60, 60), (190, 190, 185), (40, 50, 75), (95, 80, 60)])
HUE_BINS = ((0, 45, "red"), (45, 75, "orange"), (75, 110, "yellow"), (110, 200, "green"), (200, 310, "blue"),
            (310, 345, "purple"), (345, 360, "red"))  # CIE-LCh hue angle h_ab in degrees
ACHROMATIC_C, WHITE_L, BLACK_L, PINK_SAT, BROWN_L = 12.0, 70.0, 30.0, 0.7, 42.0
_PHRASE = {"petals": "{} petals", "center": "a {} center", "leaves": "{} leaves", "stem": "a {} stem"}
_CLAUSE = {"petals": "the petals are {}", "center": "the center is {}", "leaves": "the leaves are {}",
           "stem": "the stem is {}"}
_PART_WORDS = {"petals": ("petals", "petal"), "center": ("center", "centre", "middle", "stamen", "stamens", "stigma",
               "stigmas", "pistil", "pistils", "anther", "anthers"), "leaves": ("leaves", "leaf"), "stem": ("stem",)}
VOCAB = (("<pad>", ",", "this", "the", "a", "an", "flower", "has", "with", "and", "is", "are", "in", "color", "that")
         + PARTS[1:] + COLORS)
TOKEN = {w: i for i, w in enumerate(VOCAB)}
MAX_WORDS = 20
_SHADES = 16  # petal shade levels
_ACHROMATIC = np.isin(COLORS, ("white", "black", "gray"))
DATA_VERSION = 2  # bump when the generator's output changes, to invalidate caches
# (kept at 2 when the Lab conversion moved to kornia.color: its rounded constants move 0.05% of the rendered
# pixels by 1/255, and the published colourisation models' consistency is unchanged, their ab L1 within 3e-4)
# petal shades (module doc): each flower draws a base lightness L* for its petal colour
PETAL_HUE = {"red": 33.0, "orange": 60.0, "yellow": 92.0, "blue": 280.0, "purple": 325.0, "pink": 355.0}  # h_ab
PETAL_LIGHTNESS = {"red": (15, 61), "orange": (53, 85), "yellow": (53, 92), "blue": (15, 85), "purple": (15, 68),
                   "pink": (32, 85), "white": (85, 97)}  # base L* range of each petal colour's shades, dark to light
PETAL_BANDS = (((53, 61), 0.5), ((77, 85), 0.25))  # shared L* bands: share of the colours reaching one drawn from it
_VIVID, _PINK_RATIO = 0.9, 0.45  # chroma of the shades: share of the sRGB gamut's largest; pink: C* / (L* + 16)
_PETAL_JITTER = 0.5  # chromatic petals: scale of the hue part of the RGB jitter (they keep no brightness part)
_HUE_JITTER_ONLY = np.isin(COLORS, tuple(PETAL_HUE))


# --------------------------------------------------------------------------- CIE-Lab
def _convert(fn, x, axis):
    """Apply the kornia.color conversion ``fn`` (tensors (*, 3, H, W)) to the channels on ``axis`` of a numpy
    array (computed in float64) or a torch tensor (in its float dtype); uint8 input is read as value / 255."""
    if isinstance(x, torch.Tensor):
        t = x.float() / 255 if x.dtype == torch.uint8 else x
    else:
        x = np.asarray(x)
        t = torch.from_numpy(np.ascontiguousarray(x / 255.0 if x.dtype == np.uint8 else x, dtype=np.float64))
    c = t.movedim(axis, 0)
    out = fn(c.reshape(3, -1, 1)).reshape(c.shape).movedim(0, axis)
    return out if isinstance(x, torch.Tensor) else out.numpy()


def rgb_to_lab(rgb, axis: int = -1):
    """sRGB (uint8, or float in [0, 1]) -> CIE-Lab (L in [0, 100], D65 white); numpy array or torch tensor
    (float64 for numpy, the tensor's float dtype for torch), channels on ``axis``."""
    return _convert(kornia.color.rgb_to_lab, rgb, axis)


def lab_to_rgb(lab, axis: int = -1):
    """CIE-Lab -> sRGB float in [0, 1] (out-of-gamut colours clipped); numpy array or torch tensor."""
    return _convert(kornia.color.lab_to_rgb, lab, axis)


def classify_colors(lab) -> np.ndarray:
    """Colour-name index into :data:`COLORS` of Lab values (..., 3), by the hue bins and rules in the module doc."""
    lab = to_numpy(lab).astype(np.float64)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    C, h = np.hypot(a, b), np.degrees(np.arctan2(b, a)) % 360
    edges = np.array([e for _, e, _ in HUE_BINS[:-1]])
    name = np.array([COLORS.index(n) for *_, n in HUE_BINS])[np.searchsorted(edges, h, side="right")]
    red_purple = (name == COLORS.index("red")) | (name == COLORS.index("purple"))
    name = np.where(red_purple & (C / (L + 16) < PINK_SAT), COLORS.index("pink"), name)
    orange_yellow = (name == COLORS.index("orange")) | (name == COLORS.index("yellow"))
    name = np.where(orange_yellow & (L < BROWN_L), COLORS.index("brown"), name)
    grey = np.where(L >= WHITE_L, COLORS.index("white"), np.where(L < BLACK_L, COLORS.index("black"),
                                                                  COLORS.index("gray")))
    return np.where(C < ACHROMATIC_C, grey, name)


def _color_index(c) -> int:
    if c is None or isinstance(c, str) and c == "":
        return -1
    if isinstance(c, str):
        if c not in COLORS:
            raise ValueError(f"unknown colour {c!r}; valid: {', '.join(COLORS)}")
        return COLORS.index(c)
    return int(c) if c >= 0 else -1


def caption_consistency(rgb_images, part_labels, named_petal_colours) -> tuple[np.ndarray, float]:
    """Per image: does the most common colour name over the petal pixels (``part_labels == 1``) equal the petal
    colour the caption names?  Returns (consistent (N,) bool, share over the images with a named colour).

    ``named_petal_colours``: colour names (or indices into COLORS); "" / None / -1 = the caption names none --
    such images are False and left out of the share (NaN if no image names one)."""
    rgb, parts = to_numpy(rgb_images), to_numpy(part_labels)
    named = np.array([_color_index(c) for c in named_petal_colours], dtype=np.int64)
    if rgb.shape[:-1] != parts.shape or len(rgb) != len(named):
        raise ValueError(f"images {rgb.shape}, label maps {parts.shape} and {len(named)} named colours do not match")
    img, ys, xs = np.nonzero(parts == PARTS.index("petals"))  # only the petal pixels are converted
    names = classify_colors(rgb_to_lab(rgb[img, ys, xs]))
    votes = np.bincount(img * len(COLORS) + names, minlength=len(named) * len(COLORS)).reshape(len(named), -1)
    ok = (named >= 0) & (votes.sum(1) > 0) & (votes.argmax(1) == named)
    has = named >= 0
    return ok, float(ok[has].mean()) if has.any() else float("nan")


def caption_colors(text: str) -> dict:
    """{part: colour} named in a caption, by clauses (split at "and", "with", commas): a clause's colour goes to
    the part it mentions; "flower" alone means the petals ("the flower is white in color")."""
    out = {}
    for clause in re.split(r",|\band\b|\bwith\b", text.lower()):
        words = re.findall(r"[a-z]+", clause)
        colour = next((w for w in words if w in COLORS), None)
        part = next((p for p, ws in _PART_WORDS.items() if any(w in ws for w in words)),
                    "petals" if "flower" in words else None)
        if colour and part and part not in out:
            out[part] = colour
    return out


# --------------------------------------------------------------------------- synthetic flowers
def _max_chroma(L: np.ndarray, h: float, steps: int = 30) -> np.ndarray:
    """The largest CIE-Lab chroma inside the sRGB gamut at lightnesses ``L`` and hue ``h`` (degrees), by bisection."""
    lo, hi = np.zeros(np.shape(L)), np.full(np.shape(L), 200.0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lab = np.stack([L, mid * np.cos(np.radians(h)), mid * np.sin(np.radians(h))], -1)
        inside = np.abs(rgb_to_lab(lab_to_rgb(lab)) - lab).max(-1) < 1e-3  # lab_to_rgb clips what is outside
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return lo


def _petal_tones() -> np.ndarray:
    """(len(COLORS), 101, 3) float sRGB in 0..255: each petal colour's shade at base lightness L* = 0, 1, .., 100.
    Chromatic colours keep their hue :data:`PETAL_HUE` at a fixed share of the sRGB gamut's largest chroma there
    (pink: a fixed saturation C* / (L* + 16), capped likewise); white keeps the a*, b* of its :data:`COLOR_RGB`
    (a faint warm tint); colours without a :data:`PETAL_LIGHTNESS` range are their :data:`COLOR_RGB` at every L*."""
    tones = np.repeat(COLOR_RGB[:, None].astype(np.float64), 101, 1)
    L = np.arange(101, dtype=np.float64)
    for name in PETAL_LIGHTNESS:
        if name in PETAL_HUE:
            h = PETAL_HUE[name]
            C = _VIVID * _max_chroma(L, h)
            if name == "pink":
                C = np.minimum(C, _PINK_RATIO * (L + 16))
            ab = np.stack([C * np.cos(np.radians(h)), C * np.sin(np.radians(h))], -1)
        else:
            ab = np.broadcast_to(rgb_to_lab(COLOR_RGB[COLORS.index(name)])[1:], (len(L), 2))
        tones[COLORS.index(name)] = 255 * lab_to_rgb(np.concatenate([L[:, None], ab], -1))
    return tones


_PETAL_TONES = _petal_tones()


@dataclass
class FlowerData:
    """Generated flowers.  Part order of ``colors``/``named``: petals, center, leaves, stem (= PARTS[1:]).

    images: (N, H, W, 3) uint8       parts: (N, H, W) uint8 index into PARTS
    colors: (N, 4) index into COLORS of each part's colour      named: (N, 4) bool, the caption names the part
    texts: (N,) str captions         tokens: (N, 1, MAX_WORDS) ids into VOCAB (0-padded), lengths: (N, 1)
    petal_count: (N,) int            petal_lightness: (N,) float32 base L* of the petals' shade (module doc)
    """
    images: np.ndarray
    parts: np.ndarray
    colors: np.ndarray
    named: np.ndarray
    texts: np.ndarray
    tokens: np.ndarray
    lengths: np.ndarray
    petal_count: np.ndarray
    petal_lightness: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def lab(self, idx=slice(None)) -> np.ndarray:
        """(n, H, W, 3) float32 Lab of the images: [..., :1] is the colouriser's input L, [..., 1:] the target ab."""
        return rgb_to_lab(self.images[idx]).astype(np.float32)

    @property
    def named_petal_colors(self) -> np.ndarray:
        """(N,) the petal colour named in each caption, "" where the caption does not name it."""
        return np.where(self.named[:, 0], np.array(COLORS)[self.colors[:, 0]], "")


def _u(rng, n, lo, hi, shape=()):
    return rng.uniform(lo, hi, size=(n,) + shape).astype(np.float32)


def _join(phrases) -> str:
    text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def _caption(rng, colours: dict) -> str:
    """A caption naming exactly the parts in ``colours`` ({part: colour name}, insertion order kept)."""
    parts = list(colours)
    options = [lambda: "this flower has " + _join([_PHRASE[p].format(colours[p]) for p in parts]),
               lambda: "a flower with " + _join([_PHRASE[p].format(colours[p]) for p in parts]),
               lambda: _join([_CLAUSE[p].format(colours[p]) for p in parts])]
    if parts[0] == "petals":
        rest = [_PHRASE[p].format(colours[p]) for p in parts[1:]]
        options.append(lambda: f"this flower has petals that are {colours['petals']}"
                       + (" with " + _join(rest) if rest else ""))
        if len(parts) == 1:
            options += [lambda w=w: f"{w} flower is {colours['petals']} in color" for w in ("the", "this")]
            options.append(lambda: _join([f"a {colours['petals']} flower"]))
    return options[rng.integers(len(options))]()


def _sample(n: int, seed) -> dict:
    """Shape, colour and caption parameters of ``n`` flowers (no pixels): everything :func:`load_flowers` caches."""
    rng = np.random.default_rng(seed)
    p = dict(cx=_u(rng, n, .38, .62), cy=_u(rng, n, .3, .45), radius=_u(rng, n, .2, .32), gap=_u(rng, n, .15, .6),
             sharp=_u(rng, n, .5, 3.0), phase=_u(rng, n, 0, 2 * np.pi), core=_u(rng, n, .2, .38),
             width=_u(rng, n, .025, .045), bend=_u(rng, n, -.8, .8), shade=_u(rng, n, -1, 1),
             petal_count=rng.integers(4, 10, size=n), n_leaves=rng.integers(1, 3, size=n),
             leaf_at=_u(rng, n, .35, .8, (2,)), leaf_len=_u(rng, n, .1, .16, (2,)), leaf_width=_u(rng, n, .3, .5, (2,)),
             leaf_tilt=_u(rng, n, .3, .9, (2,)), leaf_side=np.stack([s := rng.choice([-1, 1], n), -s], 1),
             background=rng.integers(len(_BACKGROUNDS), size=(n, 2)),
             jitter=(rng.integers(-12, 13, size=(n, 6, 1)) + rng.integers(-10, 11, size=(n, 6, 3))).astype(np.int16),
             tint=rng.integers(-3, 4, size=(n, 6, 3)).astype(np.int16))
    colors = np.stack([np.array([COLORS.index(c) for c in PALETTES[part]])[rng.integers(len(PALETTES[part]), size=n)]
                       for part in PARTS[1:]], 1)
    named = rng.random((n, 4)) < np.array([.85, .5, .4, .3])
    named[~named.any(1), 0] = True
    texts = []
    for i in range(n):
        order = [0] + list(1 + rng.permutation(3))  # petals first, the others in random order
        texts.append(_caption(rng, {PARTS[1 + j]: COLORS[colors[i, j]] for j in order if named[i, j]}))
    return dict(p, colors=colors, named=named, texts=np.array(texts, dtype=str),
                petal_lightness=_petal_lightness(rng, colors[:, 0]))


def _petal_lightness(rng, colours: np.ndarray) -> np.ndarray:
    """Base L* of each flower's petal colour (``colours``: indices into COLORS; module doc): a chromatic colour
    draws uniformly from each band of :data:`PETAL_BANDS` inside its :data:`PETAL_LIGHTNESS` range with the band's
    probability, else (and white always) uniformly over its own range; NaN for colours without a range."""
    lo, hi = (np.array([PETAL_LIGHTNESS.get(c, (np.nan, np.nan))[k] for c in COLORS])[colours] for k in (0, 1))
    pick, u = rng.random(len(colours)), rng.random(len(colours))
    chromatic, left = np.isin(colours, [COLORS.index(c) for c in PETAL_HUE]), np.ones(len(colours))
    a, b = lo.copy(), hi.copy()  # the interval each flower draws from
    for (b0, b1), share in PETAL_BANDS:  # pick in [left - share, left): this band
        reach = chromatic & (lo <= b0) & (b1 <= hi)
        take = reach & (left - share <= pick) & (pick < left)
        a, b, left = np.where(take, b0, a), np.where(take, b1, b), left - share * reach
    return (a + u * (b - a)).astype(np.float32)


def _render(p: dict, size: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, size, size, 3) uint8 and part labels (N, size, size) uint8 of sampled flowers."""
    n = len(p["cx"])
    images = np.empty((n, size, size, 3), np.uint8)
    parts = np.empty((n, size, size), np.uint8)
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = c[None, None, :], c[None, :, None]
    rows = np.arange(size, dtype=np.int16)[None, :, None]
    for s in range(0, n, chunk):
        q = {k: v[s:s + chunk] for k, v in p.items() if v.dtype.kind in "fiu"}
        e = {k: v[:, None, None].astype(np.float32) for k, v in q.items() if v.ndim == 1}  # (m, 1, 1)
        dx, dy = x - e["cx"], y - e["cy"]  # (m, 1, W), (m, H, 1)
        rho, theta = np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)  # (m, H, W)
        k2 = e["petal_count"] / 2
        edge = (e["radius"] * e["gap"] + e["radius"] * (1 - e["gap"])
                * np.abs(np.cos(theta * k2 - e["phase"] * k2)) ** e["sharp"])  # the rose r(θ)
        label = np.zeros(rho.shape, np.uint8)
        label[(y > e["cy"]) & (np.abs(x - (e["cx"] + e["bend"] * (y - e["cy"]) ** 2)) < e["width"] / 2)] = 4
        for j in range(2):  # an ellipse attached to the stem, pointing outwards and up
            at, a, w, tilt, side = (q[k][:, j, None, None].astype(np.float32) for k in ("leaf_at", "leaf_len",
                                                                                      "leaf_width", "leaf_tilt",
                                                                                      "leaf_side"))
            ly = e["cy"] + at * (1 - e["cy"])
            ux, uy = side * np.cos(tilt), -np.sin(tilt)  # unit major axis
            ox = x - (e["cx"] + e["bend"] * (ly - e["cy"]) ** 2 + ux * a)
            oy = y - (ly + uy * a)
            b = a * w  # semi-minor axis; the ellipse as a quadratic form in (ox, oy)
            quad = ox * ox * (ux * ux / a ** 2 + uy * uy / b ** 2) + oy * oy * (uy * uy / a ** 2 + ux * ux / b ** 2)
            label[quad + (2 * ux * uy * (1 / a ** 2 - 1 / b ** 2) * ox) * oy < (j < e["n_leaves"])] = 3
        label[rho < edge] = 1
        label[rho < e["radius"] * e["core"]] = 2
        # colours via a per-image palette: [unused, center, leaves, stem, petals at _SHADES shade levels (0.8 at
        # one end of the petal to 1.0 at the other; direction and strength per image), background rows]
        # jitter: chromatic colours per channel (brightness +-12, hue +-10; chromatic petals only the hue part,
        # deviations from the channel mean scaled by _PETAL_JITTER, as their lightness is drawn); achromatic
        # ones only a faint tint
        jitter = np.where(_ACHROMATIC[q["colors"]][..., None], q["tint"][:, :4], q["jitter"][:, :4]).astype(float)
        hue_only = _HUE_JITTER_ONLY[q["colors"][:, 0], None]
        jitter[:, 0] = np.where(hue_only, _PETAL_JITTER * (jitter[:, 0] - jitter[:, 0].mean(-1, keepdims=True)),
                                jitter[:, 0])
        base = COLOR_RGB[q["colors"]].astype(float)  # (m, 4, 3); the petals: their colour's shade (_PETAL_TONES)
        base[:, 0] = _PETAL_TONES[q["colors"][:, 0], np.rint(np.nan_to_num(q["petal_lightness"])).astype(int)]
        fill = np.clip(base + jitter, 0, 255)
        bg = np.clip(_BACKGROUNDS[q["background"]] + q["jitter"][:, 4:], 0, 255)  # (m, 2, 3)
        pal = np.concatenate([np.zeros_like(fill[:, :1]), fill[:, 1:],
                              fill[:, :1] * np.linspace(0.8, 1.0, _SHADES)[None, :, None],
                              bg[:, :1] * (1 - c[None, :, None]) + bg[:, 1:] * c[None, :, None]], 1)
        level = np.rint(np.minimum(rho / edge, 1) * (e["shade"] * (_SHADES - 1))
                        + (0.5 - 0.5 * e["shade"]) * (_SHADES - 1)).astype(np.int16)
        idx = np.where(label == 0, 4 + _SHADES + rows, np.where(label == 1, 4 + level, label.astype(np.int16) - 1))
        # gather: palette colours packed as uint32 (R, G, B, 0), one np.take per chunk (several times faster
        # than fancy indexing of the (m, P, 3) palette)
        packed = np.concatenate([np.rint(pal), np.zeros_like(pal[..., :1])], 2).astype(np.uint8).view(np.uint32)
        flat = idx + (np.arange(len(idx)) * pal.shape[1])[:, None, None]
        images[s:s + chunk] = np.take(packed.ravel(), flat).view(np.uint8).reshape(flat.shape + (4,))[..., :3]
        parts[s:s + chunk] = label
    return images, parts


def _assemble(p: dict, size: int) -> FlowerData:
    images, parts = _render(p, size)
    tokens, lengths = encode_texts(np.char.replace(p["texts"], ",", " ,"), TOKEN, 1, MAX_WORDS)
    return FlowerData(images=images, parts=parts, colors=p["colors"].astype(np.int64), named=p["named"],
                      texts=p["texts"], tokens=tokens, lengths=lengths, petal_count=p["petal_count"].astype(np.int64),
                      petal_lightness=p["petal_lightness"])


def generate_flowers(n: int, *, seed: int = 0, size: int = 64) -> FlowerData:
    """``n`` flowers with captions, deterministic in ``seed`` (the shapes and texts do not depend on ``size``)."""
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    return _assemble(_sample(n, seed), size)


def load_flowers(split: str, n: int, *, seed: int = 0, size: int = 64, cache: bool = True) -> FlowerData:
    """The ``train`` or ``test`` split (different seeds); parameters and captions cached, pixels re-rendered."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    split_seed = np.random.SeedSequence([seed, ("train", "test").index(split), 102]).generate_state(1)[0]
    if not cache:
        return _assemble(_sample(n, split_seed), size)
    p = cached_arrays("flowers", f"{split}-{n}", dict(split=split, n=n, seed=seed, version=DATA_VERSION),
                      lambda: _sample(n, split_seed))
    return _assemble(p, size)


# --------------------------------------------------------------------------- Oxford-102 with Reed et al.'s captions
OXFORD_SPLITS = ("train", "val", "trainval", "test", "all")


@dataclass
class Oxford102:
    """Oxford-102 images with Reed et al.'s captions.  images: (N, S, S, 3) uint8 (a list of native-size arrays
    with ``size=None``); captions: (N, C) str; labels: (N,) class 1..102; names: (N,) e.g. 'image_06734'."""
    images: np.ndarray | list
    captions: np.ndarray
    labels: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def load_oxford102(root, split: str = "test", *, size: int | None = 64, captions_per_image: int | None = 10,
                   max_images: int | None = None, image_dir: str = "jpg", caption_dir: str = "text_c10") -> Oxford102:
    """Oxford-102 flowers (``root/jpg/image_XXXXX.jpg`` from ``102flowers.tgz``) with Reed et al.'s
    ``cvpr2016_flowers`` captions (``root/text_c10/class_XXXXX/image_XXXXX.txt``, one caption a line, ten per
    image) and class split lists (``root/{train,val,trainval,test}classes.txt``, ``allclasses.txt``: one
    ``class_XXXXX`` a line; the LBIE paper's 82 / 20 classes are trainval / test).

    Images are those with a caption file in the split's class folders, sorted by name; if Oxford's
    ``imagelabels.mat`` is in ``root`` too, every image it puts in those classes must have a caption file.
    Images are resized to ``size`` x ``size`` (bilinear, aspect not kept, as Reed et al.)."""
    if split not in OXFORD_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(OXFORD_SPLITS)}")
    import scipy.io
    from PIL import Image

    root = Path(root)
    lst = root / f"{'all' if split == 'all' else split}classes.txt"
    if not lst.is_file():
        raise FileNotFoundError(f"{lst}: no such file (class list of split {split!r})")
    classes = [ln.strip() for ln in lst.read_text().splitlines() if ln.strip()]
    bad = [c for c in classes if not re.fullmatch(r"class_\d{5}", c)]
    if not classes or bad:
        raise bad_file(lst, f"expected lines 'class_XXXXX', got {bad[:3] or 'nothing'}")
    expected = None
    if (lpath := root / "imagelabels.mat").exists():
        try:
            labels = np.asarray(scipy.io.loadmat(str(lpath))["labels"]).ravel()
        except Exception as e:
            raise bad_file(lpath, f"not a MATLAB file with 'labels' ({type(e).__name__}: {e})") from e
        expected = {f"image_{i + 1:05d}" for i, lab in enumerate(labels) if f"class_{int(lab):05d}" in classes}
    files = []
    for cls in classes:
        folder = root / caption_dir / cls
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (captions of {cls})")
        files += [(f, int(cls[6:])) for f in sorted(folder.glob("image_*.txt"))]
    if expected is not None and (missing := sorted(expected - {f.stem for f, _ in files})):
        cls = int(labels[int(missing[0][6:]) - 1])
        raise FileNotFoundError(f"{root / caption_dir / f'class_{cls:05d}' / (missing[0] + '.txt')}: no such file "
                                f"(caption of an image imagelabels.mat puts in split {split!r})")
    if not files:
        raise bad_file(root / caption_dir, f"holds no caption files for split {split!r}")
    files = sorted(files, key=lambda fc: fc[0].stem)[:max_images]
    images, captions = [], []
    for f, _ in files:
        try:
            lines = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as e:
            raise bad_file(f, f"not UTF-8 text ({e})") from None
        if not lines or (captions_per_image and len(lines) != captions_per_image):
            raise bad_file(f, f"has {len(lines)} captions, expected {captions_per_image or 'at least 1'}")
        captions.append(lines)
        img = read_rgb(root / image_dir / f"{f.stem}.jpg")
        images.append(img if size is None else np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR)))
    if len({len(c) for c in captions}) > 1:  # only with captions_per_image=None: pad to a rectangle
        width = max(map(len, captions))
        captions = [c + [""] * (width - len(c)) for c in captions]
    return Oxford102(images=images if size is None else np.stack(images), captions=np.array(captions, dtype=str),
                     labels=np.array([c for _, c in files], dtype=np.int64),
                     names=np.array([f.stem for f, _ in files], dtype=str))

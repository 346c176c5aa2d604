"""Readers for the real edit data sets, each returning :class:`EditPairs` (DESIGN §5.2).

TIRG's CSS ``css_toy_dataset_novel2_small.dup.npy`` (scenes rendered through :func:`lbie.data.css.render_css`),
TIM-GAN's processed folders (``{phase}_A/``, ``{phase}_B/``, ``{phase}_text.npy``) and GeNeVA's CoDraw
``codraw_{train,val,test}.h5`` (turned into (image_{t-1}, utterance_t, image_t) pairs).  Malformed files
raise ``FileNotFoundError``/``ValueError`` naming the file and the problem.

TIRG's file is a pickle inside a ``.npy``; it is read through :class:`RestrictedUnpickler`, which builds
only Python containers and scalars and numpy arrays, so a crafted file cannot run code when loaded.
"""
from __future__ import annotations

import _codecs
import _compat_pickle
import builtins
import importlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .css import CSSObject, CSSScene, check_circle, check_size, render_css
from .files import bad_file, read_image

IMG_EXTENSIONS = ('.jpg', '.JPG', '.jpeg', '.JPEG', '.png', '.PNG', '.ppm', '.PPM', '.bmp', '.BMP', '.tiff')


@dataclass
class EditPairs:
    """Edit triples from a real data set: an image pool and (source, instruction, target) index pairs.

    images: (M, H, W, 3) uint8 RGB;  src, tgt: (P,) indices into images;  instruction: (P,) str;
    image_id: (M,) int64 identity (-1 if the format has none);  meta: per-pair extras of the format."""
    images: np.ndarray
    src: np.ndarray
    tgt: np.ndarray
    instruction: np.ndarray
    image_id: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instruction)

    @property
    def source(self) -> np.ndarray:
        return self.images[self.src]

    @property
    def target(self) -> np.ndarray:
        return self.images[self.tgt]


def _need_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file ({what})")
    return path


def _numpy_global(name: str):
    """``numpy._core.multiarray.<name>`` (numpy >= 2), else ``numpy.core.multiarray.<name>``."""
    try:
        module = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1.x
        module = importlib.import_module("numpy.core.multiarray")
    return getattr(module, name)


_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex",
             "bool")
# (module, name) -> how to get the object, after Python 2 names (__builtin__, ...) are mapped to Python 3 ones.
# _codecs.encode is how a protocol-2 pickle written by Python 3 stores bytes
# (numpy's own array pickles contain one); it only turns a str into bytes.
_ALLOWED_GLOBALS = {
    **{("builtins", n): (lambda n=n: getattr(builtins, n)) for n in _BUILTINS},
    ("_codecs", "encode"): lambda: _codecs.encode,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    **{(mod, n): (lambda n=n: _numpy_global(n))
       for mod in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")},
}


class RefusedGlobalError(ValueError, pickle.UnpicklingError):
    """A pickle payload referenced a global that :class:`RestrictedUnpickler` does not admit."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only what TIRG's CSS file holds: Python containers and scalars, numpy arrays,
    dtypes and scalars.  Any other global (``os.system``, ``builtins.eval``, a class, ...) raises
    :class:`RefusedGlobalError` naming the global and ``path`` before anything is called."""

    def __init__(self, file, *, path, **kwargs):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module: str, name: str):
        # Python 2 names (TIRG's file was written by Python 2), mapped as pickle.Unpickler.find_class does
        key = _compat_pickle.NAME_MAPPING.get((module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        make = _ALLOWED_GLOBALS.get(key)
        if make is None:
            raise RefusedGlobalError(
                f"{self.path}: refused to unpickle the global {module}.{name}; a TIRG CSS file holds only Python "
                f"containers, numbers, strings and numpy arrays, so this file was not loaded (it may be malicious)")
        return make()


def _load_pickled_npy(path: Path):
    """The object pickled in a ``.npy`` (what ``np.save(path, obj, allow_pickle=True)`` wrote), read with
    :class:`RestrictedUnpickler`; a 0-d object array gives its item."""
    try:
        with open(path, "rb") as fp:
            version = npy_format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):  # 3.0 only differs by a utf-8 header, equal for an object dtype
                shape, _, dtype = npy_format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            if not dtype.hasobject:
                raise ValueError(f"holds a {dtype} array of shape {shape}, not a pickled object")
            obj = RestrictedUnpickler(fp, path=path, encoding="latin1").load()
    except RefusedGlobalError:
        raise
    except Exception as e:
        raise bad_file(path, f"not a pickled dict saved with numpy ({type(e).__name__}: {e})") from e
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.size == 1:
        return obj.item()
    if isinstance(obj, np.ndarray):
        raise bad_file(path, f"holds an object array of shape {obj.shape}, expected a pickled dict of splits")
    return obj


def load_tirg_css_npy(path, split: str = "train", *, size: int = 64, circle: str = "disc") -> EditPairs:
    """TIRG's ``css_toy_dataset_novel2_small.dup.npy``: a pickled dict, ``data[split]`` holding
    ``objects_img`` (one list of ``{shape, color, size, pos}`` dicts per image) and ``mods`` (dicts with
    ``from`` and ``to``, equal-length image-index lists, and the text ``to_str``); optional ``labels``.
    Images are rendered with :func:`render_css` (objects in list order; ``circle="diamond"`` for TIRG's
    circles); ``image_id`` is the scene's :attr:`CSSScene.stable_id`.  The pickle is read with
    :class:`RestrictedUnpickler`: a payload naming any other global raises :class:`RefusedGlobalError`
    (a ``ValueError``) before it can run."""
    path = _need_file(Path(path), "TIRG CSS .npy")
    check_size(size)
    check_circle(circle)
    data = _load_pickled_npy(path)
    if not isinstance(data, dict):
        raise bad_file(path, f"holds a {type(data).__name__}, expected a dict of splits")
    if split not in data:
        raise bad_file(path, f"no split {split!r} (has {', '.join(map(str, data))})")
    d = data[split]
    for key in ("objects_img", "mods"):
        if not isinstance(d, dict) or key not in d:
            raise bad_file(path, f"split {split!r} lacks key {key!r}")
    scenes, images = [], []
    for i, objs in enumerate(d["objects_img"]):
        try:
            objs = tuple(CSSObject.from_dict(o) for o in objs)
            images.append(render_css(objs, size, circle))
            scenes.append(CSSScene(objs))
        except (TypeError, ValueError, AttributeError) as e:
            raise bad_file(path, f"{split} objects_img[{i}]: {e}") from e
    if not scenes:
        raise bad_file(path, f"split {split!r} has no images")
    src, tgt, text = [], [], []
    for j, mod in enumerate(d["mods"]):
        if not isinstance(mod, dict) or any(k not in mod for k in ("from", "to", "to_str")):
            raise bad_file(path, f"{split} mods[{j}] must be a dict with 'from', 'to' and 'to_str'")
        f, t = np.asarray(mod["from"]).ravel(), np.asarray(mod["to"]).ravel()
        if f.shape != t.shape or f.dtype.kind not in "iu" or t.dtype.kind not in "iu":
            raise bad_file(path, f"{split} mods[{j}]: 'from' and 'to' must be integer lists of equal length")
        if f.size and (min(f.min(), t.min()) < 0 or max(f.max(), t.max()) >= len(scenes)):
            raise bad_file(path, f"{split} mods[{j}]: image index out of range 0..{len(scenes) - 1}")
        src += f.tolist()
        tgt += t.tolist()
        text += [str(mod["to_str"])] * f.size
    meta = {"labels": np.asarray(d["labels"])} if "labels" in d else {}
    return EditPairs(images=np.stack(images), src=np.array(src, dtype=np.int64),
                     tgt=np.array(tgt, dtype=np.int64), instruction=np.array(text, dtype=str),
                     image_id=np.array([s.stable_id for s in scenes], dtype=np.int64), meta=meta)


def load_timgan_folders(root, phase: str = "train", *, pair_by: str = "name", text_index: str = "stem") -> EditPairs:
    """TIM-GAN's processed layout (google/tim-gan ``dataset/aligned_dataset.py``): sources in
    ``{phase}_A/``, targets in ``{phase}_B/``, instructions in ``{phase}_text.npy`` (a 1-D string array).

    ``pair_by="name"`` pairs files of the same name (the lists must match); ``"order"`` pairs the sorted
    lists by position, as TIM-GAN does.  The text of a pair is ``texts[i]`` with i from the source file name:
    ``"stem"`` = int(stem) (TIM-GAN, CoDraw), ``"clevr"`` = int(name[-15:-9]) - 1 (TIM-GAN, Clevr), or
    ``"order"`` = the pair's position."""
    if pair_by not in ("name", "order") or text_index not in ("stem", "clevr", "order"):
        raise ValueError(f"pair_by must be name|order and text_index stem|clevr|order, got {pair_by!r}, {text_index!r}")
    root = Path(root)
    dirs = [root / f"{phase}_A", root / f"{phase}_B"]
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such folder (TIM-GAN {phase} images)")
    text_path = _need_file(root / f"{phase}_text.npy", "TIM-GAN instructions")
    names_a, names_b = (sorted(f for f in os.listdir(d) if f.endswith(IMG_EXTENSIONS)) for d in dirs)
    if not names_a:
        raise bad_file(dirs[0], "holds no images")
    if pair_by == "name" and names_a != names_b:
        only_a, only_b = sorted(set(names_a) - set(names_b))[:3], sorted(set(names_b) - set(names_a))[:3]
        raise bad_file(root, f"{dirs[0].name}/ and {dirs[1].name}/ hold different files: "
                         f"only in A {only_a}, only in B {only_b}")
    if len(names_a) != len(names_b):
        raise bad_file(root, f"{dirs[0].name}/ has {len(names_a)} images but {dirs[1].name}/ has {len(names_b)}")
    try:
        texts = np.load(text_path, allow_pickle=False)
    except Exception as e:
        raise bad_file(text_path, f"unreadable ({type(e).__name__}: {e})") from e
    if texts.ndim != 1 or texts.dtype.kind not in "US":
        raise bad_file(text_path, f"expected a 1-D string array, got shape {texts.shape} dtype {texts.dtype}")
    idx = []
    for i, name in enumerate(names_a):
        try:
            j = {"stem": lambda: int(Path(name).stem), "clevr": lambda: int(name[-15:-9]) - 1,
                 "order": lambda: i}[text_index]()
        except ValueError as e:
            raise bad_file(dirs[0] / name, f"cannot read a text index from the name ({text_index!r} mode)") from e
        if not 0 <= j < len(texts):
            raise bad_file(text_path, f"has {len(texts)} entries but {dirs[0].name}/{name} needs entry {j}")
        idx.append(j)
    images = []
    for d, names in zip(dirs, (names_a, names_b)):
        for name in names:
            images.append(read_image(d / name))
            if images[-1].shape != images[0].shape:
                raise bad_file(d / name, f"image shape {images[-1].shape} differs from {images[0].shape}")
    n = len(names_a)
    texts = np.char.decode(texts, "utf-8") if texts.dtype.kind == "S" else texts
    return EditPairs(images=np.stack(images), src=np.arange(n), tgt=n + np.arange(n),
                     instruction=texts[idx].astype(str), image_id=np.full(2 * n, -1, dtype=np.int64),
                     meta={"name_A": np.array(names_a), "name_B": np.array(names_b)})


def load_codraw_h5(path) -> EditPairs:
    """GeNeVA's ``codraw_{train,val,test}.h5`` (Maluuba/GeNeVA_datasets ``codraw_raw_to_hdf5.py``): a
    ``background`` image and scene groups ``"0"``, ``"1"``, ... each with ``images`` (T, H, W, 3) uint8 BGR
    (cv2), ``utterences`` (T strings), ``objects`` (T, 58), ``coords`` (T, 58, 3) and ``scene_id``.
    Turn t becomes the pair (image_{t-1}, utterance_t, image_t) with image_{-1} = the background.
    Everything is converted to RGB -- including the background, which is stored BGR too (GeNeVA's
    loader leaves it unflipped).  ``meta`` holds scene_id, turn, objects and coords of each pair's target."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError("load_codraw_h5 needs h5py, which is not installed: pip install h5py") from e
    path = _need_file(Path(path), "GeNeVA CoDraw .h5")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise bad_file(path, f"not a readable HDF5 file ({e})") from e
    with f:
        if "background" not in f:
            raise bad_file(path, "lacks the 'background' dataset")
        bg = np.asarray(f["background"][()])
        if bg.ndim != 3 or bg.shape[2] != 3 or bg.dtype != np.uint8:
            raise bad_file(path, f"'background' must be (H, W, 3) uint8, got {bg.shape} {bg.dtype}")
        keys = [k for k in f.keys() if k != "background"]
        if not keys:
            raise bad_file(path, "holds no scene groups")
        if not all(k.isdigit() and isinstance(f[k], h5py.Group) for k in keys):
            raise bad_file(path, f"scene entries must be groups named 0, 1, ...; got {sorted(keys)[:5]}")
        images, src, tgt, text = [bg[..., ::-1]], [], [], []
        meta = {"scene_id": [], "turn": [], "objects": [], "coords": []}
        for key in sorted(keys, key=int):
            g = f[key]
            for req in ("images", "utterences", "objects", "scene_id"):
                if req not in g:
                    raise bad_file(path, f"scene group {key!r} lacks {req!r}")
            imgs, utt, objs = np.asarray(g["images"][()]), np.atleast_1d(g["utterences"][()]), np.asarray(g["objects"][()])
            coords = np.asarray(g["coords"][()]) if "coords" in g else np.full((len(imgs), 0, 3), -1)
            t = len(imgs)
            if imgs.ndim != 4 or imgs.shape[1:] != bg.shape or imgs.dtype != np.uint8 or t == 0:
                raise bad_file(path, f"scene {key!r}: 'images' must be (T, {bg.shape[0]}, {bg.shape[1]}, 3) uint8, "
                                 f"got {imgs.shape} {imgs.dtype}")
            if len(utt) != t or len(objs) != t or len(coords) != t:
                raise bad_file(path, f"scene {key!r}: {t} images but {len(utt)} utterences, {len(objs)} objects, "
                                 f"{len(coords)} coords")
            first = len(images)
            images.extend(imgs[..., ::-1])
            src += [0] + list(range(first, first + t - 1))
            tgt += list(range(first, first + t))
            text += [u.decode("utf-8") if isinstance(u, bytes) else str(u) for u in utt]
            try:
                meta["scene_id"] += [int(np.asarray(g["scene_id"][()]).ravel()[0])] * t
            except (ValueError, TypeError, IndexError) as e:
                raise bad_file(path, f"scene {key!r}: 'scene_id' is not an integer") from e
            meta["turn"] += list(range(t))
            meta["objects"] += list(objs)
            meta["coords"] += list(coords)
    try:
        meta = {k: np.array(v) for k, v in meta.items()}
    except ValueError as e:
        raise bad_file(path, f"scenes disagree on the 'objects'/'coords' layout ({e})") from e
    return EditPairs(images=np.stack(images), src=np.array(src, dtype=np.int64), tgt=np.array(tgt, dtype=np.int64),
                     instruction=np.array(text, dtype=str), image_id=np.full(len(images), -1, dtype=np.int64),
                     meta=meta)

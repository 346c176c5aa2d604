"""``python -m lbie prepare <data set> --root DIR``: download a real data set, check it, say what to run next.

The book runs on generated data (DESIGN §2); the real data sets of the two papers load with the
project's readers (:func:`~lbie.data.edit_formats.load_tirg_css_npy`, :func:`~lbie.data.edit_formats.load_codraw_h5`,
:func:`~lbie.data.flowers.load_oxford102`, :func:`~lbie.data.referring.load_referit`).  For a user with internet,
:func:`prepare` fetches the files from their public locations with ``pooch``, unpacks the archives into
``root`` in the layout the reader expects, calls the reader on the result and prints the reader call
and the experiment the data set belongs to.

**Hashes.**  Every file in :data:`DATASETS` has a hash where one is published: ``sha256:...`` (Oxford's
files, in TensorFlow Datasets' checksum list; ReferIt's annotation files, computed from the
``ronghanghu/text_objseg`` commit they are pinned to) and pooch checks it.  Files served from Google
Drive or Microsoft's download centre have no published hash: their entry is ``None``, pooch does not
check them, and :func:`prepare` prints the sha256 it computed, to be recorded in the registry (or in a
``--registry`` file) so that later downloads are checked.  A file whose hash does not match is an error
naming the file.

**Mirrors.**  A JSON file given as ``registry`` (``--registry FILE``) replaces the URL and hash of
files by name: ``{"oxford102": {"102flowers.tgz": {"url": "...", "hash": "sha256:..."}}}``.

CoDraw needs one manual step: GeNeVA's ``codraw_{train,val,test}.h5`` are built by the scripts of
``Maluuba/GeNeVA_datasets`` from the ``GeNeVA-v1.zip`` that :func:`prepare` downloads (its archives are
RAR files, which neither pooch nor the standard library unpack).  ``--no-download`` then checks the
finished folder.
"""
from __future__ import annotations

import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable

_TEXT_OBJSEG = "https://raw.githubusercontent.com/ronghanghu/text_objseg/be664d66c72319363691628958727124ea38cad8"
_OXFORD = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102"
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="


class PrepareError(RuntimeError):
    """A download failed its hash, an archive is unsafe, or the unpacked data do not load."""


@dataclass(frozen=True)
class Remote:
    """One file of a data set: ``url``, its ``hash`` (``"sha256:..."``/``"md5:..."``, or None when no
    hash is published), the file name, and where it goes: an archive (``unpack`` "zip" or "tar") is
    unpacked into ``root/into`` (with ``strip``, the contents of that top-level folder are moved up
    into ``root/into``); any other file is stored as ``root/into/fname``."""
    url: str
    hash: str | None
    fname: str
    unpack: str | None = None
    into: str = "."
    strip: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A data set: what it is, its files, ``verify(root)`` (loads it with the project's reader and
    returns what it found, a file or folder, and a one-line summary), and the next steps to print
    (``{root}`` and ``{found}`` are filled in)."""
    title: str
    files: tuple[Remote, ...]
    verify: Callable[[Path], tuple[Path, str]]
    next_steps: str
    manual: str = ""  # what the user must do by hand after the download, if anything
    notes: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- verification (the readers)
def _find(root: Path, pattern: str, what: str) -> list[Path]:
    found = sorted(root.rglob(pattern))
    if not found:
        raise FileNotFoundError(f"{root}: no {pattern} found anywhere below it ({what})")
    return found


def _verify_css(root: Path) -> tuple[Path, str]:
    from .edit_formats import load_tirg_css_npy

    path = _find(root, "css_toy_dataset_novel2_small.dup.npy", "TIRG's CSS scenes")[0]
    counts = {split: len(load_tirg_css_npy(path, split)) for split in ("train", "test")}
    return path, f"{path}: {counts['train']} training and {counts['test']} test pairs"


def _verify_codraw(root: Path) -> tuple[Path, str]:
    from .edit_formats import load_codraw_h5

    files = [p for p in _find(root, "codraw_*.h5", "GeNeVA's CoDraw HDF5 files")
             if p.stem.split("_", 1)[1] in ("train", "val", "test")]
    if not files:
        raise FileNotFoundError(f"{root}: no codraw_train.h5, codraw_val.h5 or codraw_test.h5 below it")
    return files[0].parent, ", ".join(f"{p}: {len(load_codraw_h5(p))} turns" for p in files)


def _verify_oxford(root: Path) -> tuple[Path, str]:
    from .flowers import load_oxford102

    for split in ("trainval", "test"):  # checks every caption file of the split, reads two images
        load_oxford102(root, split, max_images=2, size=8)
    images = len(list((root / "jpg").glob("image_*.jpg")))
    return root, f"{root}: {images} images; the trainval and test classes load with their captions"


def _verify_referit(root: Path) -> tuple[Path, str]:
    from .referring import load_referit

    counts = {split: len(load_referit(root, split, max_images=2)) for split in ("trainval", "test")}
    images = len(list((root / "referit-dataset" / "images").glob("*.jpg")))
    return root, (f"{root}: {images} images; the {counts['trainval']} and {counts['test']} queries of the first "
                  f"two trainval and test images load with their masks")


DATASETS: dict[str, Dataset] = {
    "css": Dataset(
        "TIRG's CSS scenes (Vo et al., CVPR 2019; google/tirg)",
        (Remote(_DRIVE + "1wPqMw-HKmXUG2qTgYBiTNUnjz83hA2tY", None, "CSSDataset.zip", unpack="zip"),),
        _verify_css,
        "pairs = lbie.load_tirg_css_npy('{found}', 'test')  # TIRG's scenes drawn by the CSS-2D renderer, 64 px\n"
        "run = lbie.load_or_train_timgan()  # TIM-GAN trained on CSS-2D (the Clevr column of paper Table 1)\n"
        "edits = lbie.edit_images(run.model, run.text_encoder, pairs.source, pairs.instruction)",
        notes={"size": "about 1 GB (the 3D renders are included; the reader only needs the .npy)"}),
    "codraw": Dataset(
        "CoDraw abstract scenes as processed for GeNeVA (El-Nouby et al., ICCV 2019)",
        (Remote("https://download.microsoft.com/download/6/D/0/6D074C80-78C0-4976-AB33-880BFA571F3C/GeNeVA-v1.zip",
                None, "GeNeVA-v1.zip", unpack="zip"),),
        _verify_codraw,
        "pairs = lbie.load_codraw_h5('{found}/codraw_test.h5')  # (image_t-1, utterance_t, image_t) pairs, 128 px\n"
        "  the abstract-scene column of TIM-GAN's Table 1; the model takes any size its encoder divides",
        manual=("GeNeVA-v1/ holds RAR archives; build codraw_{{train,val,test}}.h5 with the scripts of "
                "https://github.com/Maluuba/GeNeVA_datasets (README steps 5-7: `rar x GeNeVA-v1/data.rar`, "
                "`rar x GeNeVA-v1/CoDraw_images.rar raw-data/CoDraw`, then "
                "scripts/codraw_dataset_generation/codraw_add_data_to_raw.py and codraw_raw_to_hdf5.py), put "
                "them anywhere below {root} and run `python -m lbie prepare codraw --root {root} --no-download`")),
    "oxford102": Dataset(
        "Oxford-102 flowers (Nilsback & Zisserman, 2008) with Reed et al.'s captions (CVPR 2016)",
        (Remote(f"{_OXFORD}/102flowers.tgz",
                "sha256:2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246", "102flowers.tgz",
                unpack="tar"),
         Remote(f"{_OXFORD}/imagelabels.mat",
                "sha256:4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d", "imagelabels.mat"),
         Remote(f"{_OXFORD}/setid.mat",
                "sha256:46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd", "setid.mat"),
         Remote(_DRIVE + "0B0ywwgffWnLLcms2WWJQRFNSWXM&resourcekey=0-Av8zFbeDDvNcF1sSjDR32w", None,
                "cvpr2016_flowers.tar.gz", unpack="tar", strip="cvpr2016_flowers")),
        _verify_oxford,
        "flowers = lbie.data.flowers.load_oxford102('{root}', 'test')  # LBIE's 20 test classes, 64 px\n"
        "  LBIE's colourisation experiment (paper Table 4, Figs. 6-7); the chapter trains on generated "
        "flowers (`python -m lbie reproduce flowers-synth`)"),
    "referit": Dataset(
        "ReferIt (Kazemzadeh et al., EMNLP 2014) in the release of Hu et al. (ECCV 2016; ronghanghu/text_objseg)",
        (Remote("http://www.eecs.berkeley.edu/~ronghang/projects/cvpr16_text_obj_retrieval/referitdata.tar.gz",
                None, "referitdata.tar.gz", unpack="tar", into="referit-dataset"),
         *(Remote(f"{_TEXT_OBJSEG}/exp-referit/data/{name}", f"sha256:{digest}", name, into="data") for name, digest in (
             ("referit_query_trainval.json", "6dd3ce1e90c0885ae70f76e08e3f741bd6565937ccffb5a30efad284fc3949a3"),
             ("referit_query_test.json", "8ede8ab6f4853c5402aa7a1cedf8323f6c317d94085f765684db65f51857e464"),
             ("referit_imcrop.json", "b0a737647ab0a53f28eed99f2dc113255fe3e2cd11990024fc676c121e44c2f8"),
             ("referit_bbox.json", "bec099400a491b51ac0a01108589b6e49c7ae73223b9f2ff9ed8918d3f03a25e"),
             ("vocabulary_referit.txt", "937e1422fa991ee49a4c891981ccba6983e53031b809b8a596841e2b9c445c48")))),
        _verify_referit,
        "referit = lbie.data.referring.load_referit('{root}', 'test', size=64)  # Hu et al.'s test split, 64 px\n"
        "  LBIE's language-based segmentation (paper Table 3); the chapter trains on generated scenes "
        "(`python -m lbie reproduce referit-synth`) and scores with the same metrics (lbie.metrics.segmentation)"),
}


# --------------------------------------------------------------------------- download and unpack
def _pooch():
    try:
        import pooch
    except ImportError as e:
        raise ImportError("downloading a data set needs pooch: pip install pooch") from e
    pooch.get_logger().setLevel("WARNING")  # prepare says what it does itself
    return pooch


def with_registry(datasets: dict[str, Dataset], overrides: dict) -> dict[str, Dataset]:
    """``datasets`` with the URL and hash of files replaced by name (see the module docstring)."""
    out = dict(datasets)
    for name, files in overrides.items():
        if name not in datasets:
            raise ValueError(f"registry names an unknown data set {name!r}; valid: {', '.join(datasets)}")
        known = {f.fname: f for f in datasets[name].files}
        unknown = sorted(set(files) - set(known))
        if unknown:
            raise ValueError(f"registry names unknown files of {name}: {unknown}; valid: {', '.join(known)}")
        bad = [f for f, v in files.items() if not isinstance(v, dict) or set(v) - {"url", "hash"}]
        if bad:
            raise ValueError(f"registry entries of {name} must be objects with 'url' and/or 'hash': {bad}")
        out[name] = replace(datasets[name], files=tuple(replace(f, **files.get(f.fname, {}))
                                                         for f in datasets[name].files))
    return out


def _check_members(path: Path, names: list[str]) -> None:
    """Refuse an archive whose member names or link targets are absolute or contain '..': it could
    write outside the folder (the standard library's extraction filters need Python 3.12)."""
    bad = [n for n in names if n and (PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts)]
    if bad:
        raise PrepareError(f"{path}: refusing to unpack members outside the target folder: {bad[:3]}")


def _unpack(pooch, path: Path, remote: Remote, root: Path) -> Path:
    target = root / remote.into
    if remote.unpack == "zip":
        with zipfile.ZipFile(path) as z:
            _check_members(path, z.namelist())
        processor = pooch.Unzip(extract_dir=str(target))
    elif remote.unpack == "tar":
        with tarfile.open(path) as t:
            _check_members(path, [n for m in t.getmembers() for n in (m.name, m.linkname if m.issym() or m.islnk()
                                                                      else "")])
        processor = pooch.Untar(extract_dir=str(target))
    else:
        raise ValueError(f"unknown unpack mode {remote.unpack!r}; valid: zip, tar, None")
    processor(str(path), "download", None)
    if remote.strip and (top := target / remote.strip).is_dir():
        for child in top.iterdir():
            dest = target / child.name
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            child.rename(dest)
        top.rmdir()
    return target


def fetch(remote: Remote, root: Path, *, progress: bool = True, log=print) -> Path:
    """Download ``remote`` (pooch checks its hash when it has one; otherwise the computed sha256 is
    printed), and unpack it into ``root``.  Returns the file or the folder it was unpacked into."""
    pooch = _pooch()
    archive = remote.unpack is not None
    folder = root / ("downloads" if archive else remote.into)
    log(f"{remote.fname}: from {remote.url}")
    try:
        path = Path(pooch.retrieve(remote.url, known_hash=remote.hash, fname=remote.fname, path=folder,
                                   downloader=pooch.HTTPDownloader(progressbar=progress)))
    except ValueError as e:  # pooch: "... hash of downloaded file ... does not match the known hash ..."
        raise PrepareError(f"{remote.fname} from {remote.url} does not match its recorded hash {remote.hash} "
                           f"(changed at the source, or a damaged download; delete {folder / remote.fname} to "
                           f"retry): {e}") from None
    if remote.hash is None:
        log(f"{remote.fname}: no published hash to check it against; its sha256 is "
            f"{pooch.file_hash(str(path), alg='sha256')} (record it as \"sha256:...\" in lbie.data.prepare.DATASETS or "
            f"in a --registry file to check later downloads)")
    return _unpack(pooch, path, remote, root) if archive else path


def prepare(name: str, root, *, download: bool = True, registry: dict | None = None, progress: bool = True,
            log=print) -> str:
    """Download (unless ``download=False``), unpack and verify the data set ``name`` (a key of
    :data:`DATASETS`) under ``root``; print the next steps and return the verification summary.
    ``registry``: URL/hash overrides (see the module docstring)."""
    datasets = with_registry(DATASETS, registry or {})
    if name not in datasets:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(datasets)}")
    spec, root = datasets[name], Path(root).expanduser().resolve()
    log(f"{name}: {spec.title} -> {root}" + (f" ({spec.notes['size']})" if "size" in spec.notes else ""))
    if download:
        root.mkdir(parents=True, exist_ok=True)
        for remote in spec.files:
            fetch(remote, root, progress=progress, log=log)
    elif not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (prepared data of {name}); run without --no-download")
    try:
        found, summary = spec.verify(root)
    except (FileNotFoundError, ValueError) as e:
        hint = f"\n{spec.manual.format(root=root)}" if spec.manual else ""
        raise PrepareError(f"{name} under {root} does not load with the project's reader: {e}{hint}") from e
    log(f"verified: {summary}")
    log("next:\n  " + spec.next_steps.format(root=root, found=found).replace("\n", "\n  "))
    return summary

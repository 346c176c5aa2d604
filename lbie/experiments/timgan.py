"""Training and evaluating TIM-GAN on CSS-2D (TIM-GAN §4, Tables 1-2; DESIGN §5).

Two stages, as in the released code: the autoencoder (E + G, GAN + 10 L1) is pretrained on the
training images, then TIM-GAN trains with E frozen.  Both stages train the generator and the
discriminator in one optimizer step: the discriminator's loss sees ``fake.detach()`` and the
generator's adversarial term goes through a copy of the discriminator with detached parameters,
so each network only receives its own gradient (a simultaneous instead of an alternating update;
Adam is per-parameter, so one optimizer over both equals two).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CHECKPOINTS, find_checkpoint, has_checkpoint, register_checkpoint
from ..config import config_hash, experiment_config, hashed_run_name, run_settings, same_config
from ..data.css import DATA_VERSION, SHAPES, SIZES, CSSData, load_css
from ..data.edit_inputs import check_edit_inputs
from ..metrics.retrieval import RS_VERSION, RetrievalIndex, load_or_train_retrieval_encoder, to_float, to_uint8
from ..models.text_encoder import DEFAULT_TEXT_ENCODER, TextEncoder, cached_text_encoder
from ..models.timgan import (TIMGAN, VARIANTS, AutoEncoder, PatchDiscriminator, adversarial_loss,
                             discriminator_loss, gate_diversity_loss, gt_mask)
from ..models.timgan_baselines import BASELINES, TextAdaptiveDiscriminator, build_baseline, needs_text_discriminator
from ..train import annealed, epoch_batches, fit
from ..utils import atomic_save_json, get_device, load_json, provenance, resolve_run_dir, runs_dir, seed_everything

SCALE_KEYS = ("n_train", "n_test", "size", "epochs", "ae_epochs", "retrieval_epochs", "batch_size", "lr",
              "dim", "n_down", "n_res", "head_dim", "layers", "blocks", "where_res", "ndf", "finetune_text", "amp")
MODEL_KEYS = ("dim", "n_down", "n_res", "head_dim", "layers", "blocks", "where_res")
# The released code's loss weights (tim_gan.py) and settings, except the mask loss: the released
# code uses L1 x 100 ("l1", 100.0), which drives the sigmoid mask to 0 everywhere before it learns
# to localise (L1's optimum under uncertainty is the median, 0 for a mostly-empty mask; measured
# here: predicted mask mean 3e-5 after one epoch, edits = copies of the source).  Binary
# cross-entropy x 10 keeps a gradient.  tau: Gumbel temperature [start, end] (code: fixed 1).
# w_gan: 0.1 instead of the released 1 (both stages).  CSS-2D's canvas is white, exactly +1, so the
# decoder's tanh saturates on the background and the pixel L1 gives an object that is to be added
# almost no gradient; a trained discriminator then flags every faint, half-drawn object, and with
# weight 1 the generator settled on drawing none (add's change ratio 0.01 after two epochs; with a
# fresh discriminator, 0.4 within 20 steps).  At 0.1 add reaches 0.54 after two epochs, with a lower
# pixel error than at 1 or 0 (chapter 9).  output / gan_ramp: other remedies measured there.
# lr_decay_from: the share of training after which the learning rate falls linearly to 0 (1.0: constant, as
# in the released code).  Decaying helps *change*, the instructions that need the most exact colours and
# sizes: two more epochs of the published constant-rate model, decayed to 0, lifted RS@1 from 93.7 to 95.4
# where two more at the constant rate gave 93.2 (chapter 9 compares the full runs).
# w_edit: the weight of a second pixel L1, averaged over the edit's region only (edit_region: where source and
# target differ), so that an edit weighs the same whatever its size.  The image L1 averages over all pixels, where
# a small triangle is 0.6% of them, and the edits that change the fewest pixels were the ones missed ("change the
# shape to a circle", "add a small triangle").  Not in the released loss (0 restores it); with 1, RS@1 rose from
# 94.3 to 95.1 over three seeds and *change* from 91 to 94 (chapter 9's Table 1 compares the full runs).
# how_coords: f_how reads phi_x plus a learned map of the coordinates (why: lbie.models.timgan.TIMGAN; False: the
# paper's f_how(phi_x)); the misses of the model without it were mostly small triangles drawn as squares.
DEFAULTS = dict(variant="timgan", seed=0, text_encoder=DEFAULT_TEXT_ENCODER, max_objects=5, tau=[1.0, 1.0],
                w_gan=0.1, w_img=10.0, w_feat=10.0, mask_loss="bce", w_mask=10.0, w_gate=5.0, output="tanh",
                gan_ramp=0.0, lr_decay_from=0.5, w_edit=1.0, how_coords=True)
AE_KEYS = ("n_train", "size", "ae_epochs", "batch_size", "lr", "dim", "n_down", "n_res", "ndf", "max_objects",
           "w_gan", "w_img", "output", "data_version")
METHODS = VARIANTS + BASELINES  # TIM-GAN, its ablations (paper Table 2) and the Table 1 baselines
AE_SEED = 0  # the autoencoder is trained once per data set and architecture, shared by seeds and variants


def bf16_autocast_ok(device: torch.device) -> bool:
    """bf16 autocast is used for training only where it is native and safe: CPUs whose oneDNN has fast
    bf16 kernels (AVX-512 or newer: 1.6x faster than fp32 on a Xeon with AVX512-BF16) and CUDA GPUs that
    support bf16; elsewhere training stays fp32 (on an AVX2-only CPU, one thread, bf16 autocast made a
    TIM-GAN training step 12x slower: 6.4 s against 0.53 s, ``lbie.bench.timgan_step_seconds``).
    Weights, optimiser state and evaluation are always fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_fast_bf16()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions and matrix products natively (oneDNN's own test)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a PyTorch build without the test or without oneDNN
        return False


def adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """The optimiser of both stages: Adam with the released code's betas (0.5, 0.999), in PyTorch's fused
    implementation on CPUs and CUDA GPUs (the same update; on one CPU thread it updates the ``paper``
    preset's 49 M parameters in 54 ms instead of 144 ms, the ``cpu`` preset's 1 M in 2 ms instead of 7)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=torch.device(device).type in ("cpu", "cuda"))


def timgan_config(preset: str | None = "auto", **settings) -> dict:
    """The full configuration of a TIM-GAN run: the preset's settings (each of :data:`SCALE_KEYS`
    given and not None overrides it) and :data:`DEFAULTS` updated by the other ``settings``."""
    cfg = experiment_config("timgan", preset, settings, SCALE_KEYS, DEFAULTS, "TIM-GAN", skip_none=True)
    if cfg["variant"] not in METHODS:
        raise ValueError(f"unknown TIM-GAN variant {cfg['variant']!r}; valid: {', '.join(METHODS)}")
    cfg["tau"] = [float(t) for t in cfg["tau"]]
    cfg["data_version"] = DATA_VERSION  # runs and checkpoints on other pixels are not reused
    return cfg


def run_name(cfg: dict) -> str:
    """``timgan-cpu-s0``; a run that overrides any setting of its preset gets a config hash appended."""
    return hashed_run_name(f"{cfg['variant']}-{cfg['preset']}-s{cfg['seed']}", cfg,
                           timgan_config(cfg["preset"], variant=cfg["variant"], seed=cfg["seed"]))


def css_splits(cfg: dict) -> tuple[CSSData, CSSData]:
    """The train and test triples of a configuration (the data does not depend on the run's seed:
    every method is trained and evaluated on the same data)."""
    kw = dict(size=cfg["size"], max_objects=cfg["max_objects"])
    return load_css("train", cfg["n_train"], **kw), load_css("test", cfg["n_test"], **kw)


# --------------------------------------------------------------------------- stage 1: autoencoder
def pretrain_autoencoder(cfg: dict, train: CSSData, *, device="auto", resume: bool = True) -> tuple[AutoEncoder, list]:
    """E + G trained on the training split's source images with GAN + 10 L1.  The run lives in
    ``runs/timgan/autoencoder-<preset>-<hash>``; it depends on the data and the architecture only,
    so every variant and seed starts from the same frozen encoder (seeds vary TIM-GAN's training)."""
    device = get_device(device)
    ae_cfg = {k: cfg[k] for k in AE_KEYS} | {"preset": cfg["preset"], "seed": AE_SEED}
    run_dir = runs_dir() / "timgan" / f"autoencoder-{cfg['preset']}-{config_hash(ae_cfg)}"
    seed_everything(AE_SEED)
    ae = AutoEncoder(cfg["dim"], cfg["n_down"], cfg["n_res"], cfg["output"])
    system = nn.ModuleDict({"ae": ae, "disc": PatchDiscriminator(ndf=cfg["ndf"])}).to(device,
                                                                                     memory_format=torch.channels_last)
    optimizer = adam(system.parameters(), cfg["lr"], device)
    images = torch.from_numpy(train.source)

    def train_step(idx, step):
        x = to_float(images[idx]).to(device, memory_format=torch.channels_last)
        fake = ae(x)
        l1 = (fake - x).abs().mean()
        gan = adversarial_loss(system["disc"], fake)
        d = discriminator_loss(system["disc"], x, fake)
        return cfg["w_gan"] * gan + cfg["w_img"] * l1 + d, {"gan": gan.item(), "l1": l1.item(), "disc": d.item()}

    history = fit(system, optimizer=optimizer, epochs=cfg["ae_epochs"],
                  batches=lambda e: epoch_batches(len(images), cfg["batch_size"], AE_SEED, e),
                  train_step=train_step, run_dir=run_dir, config=ae_cfg, resume=resume,
                  log_every=max(1, min(25, len(images) // cfg["batch_size"] // 4)))
    return ae.eval(), history


# --------------------------------------------------------------------------- stage 2: TIM-GAN
@dataclass
class TIMGANRun:
    model: TIMGAN
    text_encoder: TextEncoder
    history: list
    metrics: dict
    config: dict
    run_dir: Path | None
    ae_history: list | None = None


def build_model(cfg: dict, text_dim: int) -> TIMGAN:
    """The generator of a configuration (TIM-GAN, an ablation or a Table 1 baseline), in
    ``channels_last`` (a bf16 training step of the cpu preset takes 256 ms of CPU on one thread against
    368 ms in the contiguous format; the same format for training and loading keeps edits bit-identical)."""
    kw = dict(variant=cfg["variant"], output=cfg["output"], **{k: cfg[k] for k in MODEL_KEYS})
    model = build_baseline(cfg["variant"], text_dim, **kw) if cfg["variant"] in BASELINES else \
        TIMGAN(text_dim, how_coords=cfg["how_coords"], **kw)
    return model.to(memory_format=torch.channels_last)


def build_discriminator(cfg: dict, text_dim: int) -> nn.Module:
    """The PatchGAN, or for the TA-GAN baseline its text-adaptive discriminator (``disc(image, text)``)."""
    if needs_text_discriminator(cfg["variant"]):
        return TextAdaptiveDiscriminator(ndf=cfg["ndf"], text_dim=text_dim)
    return PatchDiscriminator(ndf=cfg["ndf"])


def _text_encoder(cfg: dict, device) -> TextEncoder:
    if cfg["finetune_text"]:
        return TextEncoder(cfg["text_encoder"], finetune=True).to(device)
    return cached_text_encoder(cfg["text_encoder"]).to(device)


def timgan_losses(model: TIMGAN, disc: nn.Module, x, y, text, cfg: dict, *, use_gt=None, tau: float = 1.0,
                  gan_scale: float = 1.0):
    """All loss terms of one batch (released-code weights from ``cfg``): returns (total, parts).
    The total includes the discriminator's loss (see the module docstring); ``gan_scale`` multiplies
    the generator's adversarial weight (the ramp of ``cfg["gan_ramp"]``)."""
    with torch.no_grad():
        fx, fy = model.encoder(torch.cat([x, y])).chunk(2)  # one batch: per-sample norms, same result
        m_gt = gt_mask(fx, fy)
    out = model.edit_features(fx, text, gt_mask=m_gt, use_gt=use_gt, tau=tau)
    fake = model.decoder(out.feature)
    cond = (text,) if needs_text_discriminator(model.variant) else ()
    parts = {"gan": adversarial_loss(disc, fake, *cond), "img": (fake - y).abs().mean()}
    if cfg["w_edit"]:  # the pixel L1 inside the edit region, whatever its size (see DEFAULTS)
        region = edit_region(x, y).to(fake.dtype)
        parts["edit"] = (((fake - y).abs().mean(1, keepdim=True) * region).sum((1, 2, 3))
                         / region.sum((1, 2, 3)).clamp_min(1)).mean()
    feat_dist = (out.feature - fy).abs().mean(1, keepdim=True)
    parts["feat"] = ((feat_dist * m_gt).sum((1, 2, 3)) / (m_gt.sum((1, 2, 3)) + 1e-5)).mean()
    if out.predicted_mask is not None:
        if cfg["mask_loss"] == "l1":
            parts["mask"] = (out.predicted_mask - m_gt).abs().mean()
        elif cfg["mask_loss"] == "bce":
            parts["mask"] = F.binary_cross_entropy(out.predicted_mask.clamp(1e-6, 1 - 1e-6), m_gt)
        else:
            raise ValueError(f"unknown mask_loss {cfg['mask_loss']!r}; valid: l1 (released code), bce")
    if out.alpha is not None:
        parts["gate"] = gate_diversity_loss(out.alpha, out.t_how)
    parts["disc"] = discriminator_loss(disc, y, fake, *cond)
    total = sum(cfg.get(f"w_{k}", 1.0) * (gan_scale if k == "gan" else 1.0) * v for k, v in parts.items())
    return total, {k: v.item() for k, v in parts.items()}


@torch.no_grad()
def edit_images(model: TIMGAN, text_encoder: TextEncoder, images, instructions, *, batch_size: int = 250,
                seed: int = 0, sample: bool = True, return_outputs: bool = False):
    """Apply ``instructions`` to uint8 ``images`` (N, H, W, 3); returns uint8 edits (N, H, W, 3).
    Inputs are checked by :func:`~lbie.data.edit_inputs.check_edit_inputs` (one (H, W, 3) image with one
    string is a batch of one; floats in [0, 1] are scaled to uint8; anything else ambiguous raises).

    The routing gates are sampled as in training (the released code does the same at test time),
    from a fixed seed so results are reproducible; ``sample=False`` uses the noise-free gate
    probabilities instead.  ``return_outputs`` also returns the
    :class:`~lbie.models.timgan.EditOutput` of each batch (masks, gates, word attention)."""
    device = next(model.parameters()).device
    images, instructions = check_edit_inputs(images, instructions, max_words=text_encoder.max_length - 2,
                                             count_tokens=lambda t: len(text_encoder.tokenizer.tokenize(t)))
    factor = model.encoder.factor  # fully convolutional: any size the encoder's strides divide
    if images.shape[1] % factor or images.shape[2] % factor:
        raise ValueError(f"image size {images.shape[1]}x{images.shape[2]} is not a multiple of {factor}, the "
                         f"encoder's downsampling factor; resize or pad the images (the model was trained at "
                         f"the size of its configuration)")
    # a model already in eval mode throughout is not switched: a train()/eval() pass over every submodule
    # is a fifth of a single edit's time at the cpu preset (interactive editing)
    toggle = any(m.training for m in model.modules())
    was_training = model.training
    if toggle:
        model.eval()
    out_images, outputs = [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(images), batch_size):
            x = to_float(images[i:i + batch_size]).to(device)
            out = model(x, text_encoder(list(instructions[i:i + batch_size]), with_tokens=return_outputs),
                        sample=sample)
            out_images.append(to_uint8(out.image))
            if return_outputs:
                outputs.append(out)
    if toggle:
        model.train(was_training)
    edits = np.concatenate(out_images)
    return (edits, outputs) if return_outputs else edits


@dataclass
class EditExplanation:
    """What the model did for each edit, as numpy arrays (for the chapters' figures).

    edits (N, H, W, 3) uint8; mask / predicted_mask / gt_mask (N, h, w) at feature resolution
    (predicted_mask is None for ``no_where``, gt_mask None without targets); alpha (N, layers,
    blocks) or None for ``no_how``; where_weights / how_weights: per edit, one weight per word piece
    in ``tokens`` (where_weights is None for ``no_where``)."""
    edits: np.ndarray
    mask: np.ndarray
    predicted_mask: np.ndarray | None
    gt_mask: np.ndarray | None
    alpha: np.ndarray | None
    where_weights: list[np.ndarray] | None
    how_weights: list[np.ndarray]
    tokens: list[list[str]]


@torch.no_grad()
def explain_edits(model: TIMGAN, text_encoder: TextEncoder, images, instructions, targets=None, *,
                  batch_size: int = 250, seed: int = 0, sample: bool = True) -> EditExplanation:
    """:func:`edit_images` plus the masks, routing gates and word attention of every edit."""
    edits, outs = edit_images(model, text_encoder, images, instructions, batch_size=batch_size, seed=seed,
                              sample=sample, return_outputs=True)
    cat = lambda key: None if getattr(outs[0], key) is None else torch.cat(  # noqa: E731
        [getattr(o, key) for o in outs]).float().cpu().numpy()
    gt = None
    if targets is not None:
        device = next(model.parameters()).device
        gt = torch.cat([gt_mask(model.encoder(to_float(images[i:i + batch_size]).to(device)),
                                model.encoder(to_float(targets[i:i + batch_size]).to(device)))
                        for i in range(0, len(images), batch_size)])[:, 0].cpu().numpy()
    tokens = [text_encoder.tokens(t) for t in instructions]

    def per_word(key):  # batches pad to different lengths: cut each row to its own words
        if getattr(outs[0], key) is None:
            return None
        rows = [row for o in outs for row in getattr(o, key).float().cpu().numpy()]
        return [row[:len(t)] for row, t in zip(rows, tokens)]

    mask, pred = cat("mask"), cat("predicted_mask")
    return EditExplanation(edits, mask[:, 0], None if pred is None else pred[:, 0], gt, cat("alpha"),
                           per_word("where_weights"), per_word("how_weights"), tokens)


def retrieval_encoder_name(cfg: dict) -> str:
    """The name of the shared retrieval encoder of a data configuration, ``css-<preset>-<hash>``."""
    return f"css-{cfg['preset']}-" + config_hash({k: cfg[k] for k in ("n_train", "n_test", "size", "max_objects",
                                                                        "retrieval_epochs", "data_version")})


def retrieval_index(cfg: dict, train: CSSData, test: CSSData, device="auto", publish: bool = False) -> RetrievalIndex:
    """The shared RS@N gallery of this data configuration (its encoder is trained once;
    ``publish=True`` stores it in ``checkpoints/`` so the chapters never retrain it)."""
    encoder = load_or_train_retrieval_encoder(retrieval_encoder_name(cfg), np.concatenate([train.source, train.target]),
                                              epochs=cfg["retrieval_epochs"], device=device, publish=publish)
    return RetrievalIndex(encoder, test.source, test.target, test.source_id, test.target_id)


EDIT_THRESHOLD = 30  # an edit's region: the pixels whose summed |RGB| difference, source to target, exceeds this


def edit_region(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The pixels an edit changes, (B, 1, H, W) bool, from source and target images (B, 3, H, W) in [-1, 1]:
    summed |RGB| difference above :data:`EDIT_THRESHOLD` (of 765), as :func:`edit_fidelity` defines it."""
    return (x - y).abs().sum(1, keepdim=True) * 127.5 > EDIT_THRESHOLD


def edit_fidelity(edits: np.ndarray, source: np.ndarray, target: np.ndarray, kind=None, *,
                  predicted_mask=None, gt_mask=None, threshold: int = EDIT_THRESHOLD) -> dict:
    """Where RS@N only says *whether* an edit retrieves its target, this says *what the model drew*.
    The instruction's region is the pixels where target and source differ (summed |RGB| difference >
    ``threshold``, out of 765).  Per kind of instruction (``kind``: (N,) labels; ``None``: all):

    * ``closer_to_target`` -- share of region pixels where the edit is nearer the target than the source;
    * ``change_ratio`` -- mean |edit - source| over mean |target - source| in the region
      (0: nothing changed, as a copy; 1: as much change as the instruction asks for);
    * ``outside_change`` -- mean |edit - source| outside the region, in [0, 765] (0: nothing else touched);
    * with ``predicted_mask`` and ``gt_mask`` ((N, h, w), as :func:`explain_edits` returns them):
      ``mask_in_region`` / ``mask_outside`` -- the mean predicted mask where the ground-truth mask is
      above half its maximum / elsewhere (did the where module find the place?)."""
    edits, source, target = (np.asarray(a, dtype=np.float32) for a in (edits, source, target))
    if not edits.shape == source.shape == target.shape or edits.ndim != 4:
        raise ValueError(f"edits, source and target must be equal (N, H, W, 3) arrays; got {edits.shape}, "
                         f"{source.shape}, {target.shape}")
    needed, made = np.abs(target - source).sum(-1), np.abs(edits - source).sum(-1)
    region = needed > threshold
    closer = np.abs(edits - target).sum(-1) < made
    kind = np.full(len(edits), "all") if kind is None else np.asarray(kind)
    masks = predicted_mask is not None and gt_mask is not None
    if masks:
        predicted_mask, gt_mask = np.asarray(predicted_mask, dtype=np.float32), np.asarray(gt_mask, dtype=np.float32)
        mask_region = gt_mask > 0.5 * gt_mask.reshape(len(gt_mask), -1).max(1)[:, None, None]
    mean = lambda a, where: float(a[where].mean()) if where.any() else float("nan")  # noqa: E731
    out = {}
    for k in np.unique(kind):
        sel = kind == k
        r = region[sel]
        out[str(k)] = {"closer_to_target": mean(closer[sel], r),
                       "change_ratio": float(made[sel][r].sum() / needed[sel][r].sum()) if r.any() else float("nan"),
                       "outside_change": mean(made[sel], ~r)}
        if masks:
            out[str(k)] |= {"mask_in_region": mean(predicted_mask[sel], mask_region[sel]),
                            "mask_outside": mean(predicted_mask[sel], ~mask_region[sel])}
    return out


def evaluate_edits(edits: np.ndarray, test: CSSData, index: RetrievalIndex) -> dict:
    """RS@1/RS@5 overall and by instruction kind (with the kind's :func:`edit_fidelity` change
    ratio), the stricter RS with the source kept in the gallery (``rs1_keep_source``,
    ``rs5_keep_source``), the pixel L1 to the targets (in [0, 1]) and ``rs_version`` (:data:`RS_VERSION`)."""
    scores = index.score(edits)
    hits = scores.pop("hits")
    strict = index.score(edits, keep_source=True)
    strict.pop("hits")
    fidelity = edit_fidelity(edits, test.source, test.target, test.kind)
    by_kind = {str(k): {f"rs{n}": 100.0 * float(h[test.kind == k].mean()) for n, h in hits.items()}
               | {"change_ratio": fidelity[str(k)]["change_ratio"]} for k in np.unique(test.kind)}
    l1 = float(np.abs(edits.astype(np.float32) - test.target).mean() / 255)
    return scores | {f"{k}_keep_source": v for k, v in strict.items()} | {"by_kind": by_kind, "l1": l1,
                                                                         "rs_version": RS_VERSION}


def evaluate_model(model: TIMGAN, text_encoder: TextEncoder, cfg: dict, train: CSSData, test: CSSData,
                   device="auto") -> dict:
    """:func:`evaluate_edits` of ``model``'s edits of the whole test split, against the shared retrieval index."""
    return evaluate_edits(edit_images(model, text_encoder, test.source, test.instruction), test,
                          retrieval_index(cfg, train, test, device))


def current_metrics(metrics: dict | None) -> bool:
    """Were stored ``metrics`` computed by today's :func:`evaluate_edits` (its retrieval score's version)?"""
    return bool(metrics) and metrics.get("rs_version") == RS_VERSION


EDIT_GROUP = ("kind", "attribute", "shape", "size")


def edit_groups(data: CSSData) -> "pandas.DataFrame":
    """What each edit of ``data`` asks for, one row per edit (columns :data:`EDIT_GROUP`): its kind, the
    attribute a *change* changes ("-" otherwise) and the shape and size of the object it draws (add, change)
    or erases (remove)."""
    import pandas as pd

    rows = np.arange(len(data))
    code = np.where(data.kind == "remove", data.source_cells[rows, data.edited], data.target_cells[rows, data.edited])
    return pd.DataFrame({"kind": data.kind, "attribute": np.where(data.kind == "change", data.attribute, "-"),
                         "shape": np.asarray(SHAPES)[code // 16], "size": np.asarray(SIZES)[code % 2]})


def rs1_by_edit(data: CSSData, hits) -> "pandas.DataFrame":
    """RS@1 by what an edit asks for (:func:`edit_groups`); ``hits`` (N,) says which edits of ``data``
    retrieved their target (``RetrievalIndex.score(...)["hits"][1]``).  Rows sorted from the worst RS@1."""
    hits = np.asarray(hits, bool)
    if len(hits) != len(data):
        raise ValueError(f"hits has {len(hits)} entries for {len(data)} edits")
    table = edit_groups(data).assign(hit=hits).groupby(list(EDIT_GROUP))["hit"].agg(edits="size", rs1="mean")
    return table.assign(rs1=100 * table["rs1"], missed=((1 - table["rs1"]) * table["edits"]).round().astype(int)
                        ).sort_values("rs1")


def lr_factor(progress: float, decay_from: float) -> float:
    """The learning rate's multiplier at ``progress`` in [0, 1] of training: 1 until ``decay_from``, then
    linearly down to 0 at the end (``decay_from=1``: constant)."""
    if progress <= decay_from:
        return 1.0
    return max(0.0, (1.0 - progress) / (1.0 - decay_from))


def train_timgan(*, preset: str | None = "auto", variant: str = "timgan", seed: int = 0,
                 run_dir: str | Path | None = "auto", resume: bool = True, device="auto",
                 stop_after_epoch: int | None = None, evaluate: bool = True, **settings) -> TIMGANRun:
    """Pretrain (or reuse) the autoencoder, train TIM-GAN (or an ablation), evaluate RS@N; write
    ``metrics.json``.  ``settings`` override the preset (:data:`SCALE_KEYS`) and :data:`DEFAULTS`.
    ``run_dir="auto"`` uses ``runs/timgan/<name>``; with ``resume=True`` a finished run is loaded
    and an interrupted one continues."""
    cfg = timgan_config(preset, variant=variant, seed=seed, **settings)
    run_dir = resolve_run_dir(run_dir, "timgan", run_name(cfg), cfg)
    device = get_device(device)
    t_start = time.perf_counter()
    train, test = css_splits(cfg)
    text = _text_encoder(cfg, device)
    if not cfg["finetune_text"]:
        text.precompute(np.concatenate([train.instruction, test.instruction]))

    ae, ae_history = pretrain_autoencoder(cfg, train, device=device, resume=resume)
    seed_everything(seed)
    cl = torch.channels_last
    model = build_model(cfg, text.dim).to(device)
    model.autoencoder.load_state_dict(ae.state_dict())
    model.encoder.requires_grad_(False)
    disc = build_discriminator(cfg, text.dim).to(device, memory_format=cl)
    system = nn.ModuleDict({"gen": model, "disc": disc} | ({"text": text} if cfg["finetune_text"] else {}))
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}, {"params": disc.parameters()}]
    if cfg["finetune_text"]:
        groups.append({"params": text.parameters(), "lr": cfg["lr"] / 10})
    optimizer = adam(groups, cfg["lr"], device)
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    src, tgt = torch.from_numpy(train.source), torch.from_numpy(train.target)
    steps_per_epoch = -(-len(train) // cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]

    use_bf16 = bf16_autocast_ok(device) if cfg["amp"] == "bf16" else False

    def train_step(idx, step):
        progress = step / max(total_steps - 1, 1)
        for group, lr in zip(optimizer.param_groups, base_lrs):  # a function of the step: resumable
            group["lr"] = lr * lr_factor(progress, cfg["lr_decay_from"])
        x, y = (to_float(a[idx]).to(device, memory_format=cl) for a in (src, tgt))
        # the ground-truth mask replaces the predicted one with a probability falling linearly 1 -> 0
        use_gt = torch.rand(len(idx), device=device) < 1 - progress
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            return timgan_losses(model, disc, x, y, text(list(train.instruction[idx.numpy()])), cfg,
                                 use_gt=use_gt, tau=annealed(*cfg["tau"], progress),
                                 gan_scale=min(1.0, progress / cfg["gan_ramp"]) if cfg["gan_ramp"] else 1.0)

    n_val = min(len(test), 256)

    def quick_eval():  # pixel L1 and, by kind, how much of the asked-for change was drawn
        edits = edit_images(model, text, test.source[:n_val], test.instruction[:n_val])
        fid = edit_fidelity(edits, test.source[:n_val], test.target[:n_val], test.kind[:n_val])
        return {"test_l1": float(np.abs(edits.astype(np.float32) - test.target[:n_val]).mean() / 255),
                "test_change_ratio": {k: v["change_ratio"] for k, v in fid.items() if isinstance(v, dict)}}

    history = fit(system, optimizer=optimizer, epochs=cfg["epochs"],
                  batches=lambda e: epoch_batches(len(train), cfg["batch_size"], seed, e), train_step=train_step,
                  evaluate=quick_eval, run_dir=run_dir, config=cfg, resume=resume,
                  stop_after_epoch=stop_after_epoch, log_every=max(1, min(50, steps_per_epoch // 4)))
    model.eval()
    metrics: dict = {}
    done = bool(history) and history[-1]["epoch"] == cfg["epochs"]
    if evaluate and done:
        stored = load_json(run_dir / "metrics.json") if run_dir is not None and (run_dir / "metrics.json").exists() \
            else None
        if stored is not None and current_metrics(stored["metrics"]):
            metrics = stored["metrics"]
        else:  # not evaluated yet, or by an earlier version of the retrieval score
            metrics = evaluate_model(model, text, cfg, train, test, device)
            if run_dir is not None:  # a re-evaluation keeps the training's provenance and adds its own
                prov = stored["provenance"] | {"evaluated": provenance()} if stored is not None else \
                    provenance(device=str(device), preset=cfg["preset"], seed=seed, variant=variant,
                               wall_seconds=time.perf_counter() - t_start,
                               train_seconds=sum(h["epoch_seconds"] for h in history),
                               ae_train_seconds=sum(h["epoch_seconds"] for h in ae_history))
                atomic_save_json({"experiment": "timgan-css", "config": cfg, "metrics": metrics, "history": history,
                                  "autoencoder_history": ae_history, "provenance": prov}, run_dir / "metrics.json")
    return TIMGANRun(model, text, history, metrics, cfg, run_dir, ae_history)


# --------------------------------------------------------------------------- checkpoints
def publish_timgan(run: TIMGANRun, directory: str | Path = CHECKPOINTS) -> Path:
    """Store a finished run's generator weights in ``checkpoints/`` with its sha256 and metrics."""
    return register_checkpoint(run.model.state_dict(), f"css-{run_name(run.config)}", run.config, run.metrics,
                               run.history, directory, autoencoder_history=run.ae_history)


def load_or_train_timgan(*, directory: str | Path = CHECKPOINTS, device="auto", **kwargs) -> TIMGANRun:
    """Load the published checkpoint of this configuration if there is one (sha256 checked), else
    train it with :func:`train_timgan` (same keyword arguments)."""
    preset = kwargs.pop("preset", "auto")
    cfg = timgan_config(preset, **run_settings(kwargs))
    found = find_checkpoint(f"css-{run_name(cfg)}", cfg, directory)
    if found is None:
        return train_timgan(preset=preset, device=device, **kwargs)
    state, entry = found
    device = get_device(device)
    text = _text_encoder(cfg, device)
    model = build_model(cfg, text.dim)
    model.load_state_dict(state)
    model, metrics = model.to(device).eval(), entry["metrics"]
    if not current_metrics(metrics):  # published before the retrieval score's current version
        metrics = evaluate_model(model, text, cfg, *css_splits(cfg), device)
    return TIMGANRun(model, text, entry["history"], metrics, cfg, None, entry.get("autoencoder_history"))


def timgan_model_source(*, preset: str | None = "auto", variant: str = "timgan", seed: int = 0,
                        directory: str | Path = CHECKPOINTS, **settings) -> str | None:
    """Where :func:`load_or_train_timgan` with these arguments would get its model without training:
    ``"checkpoint"`` (a published checkpoint of exactly this configuration), ``"run"`` (a finished,
    evaluated run of it under ``runs/timgan/``), or None (it would train).  Lets a chapter show the
    trained models of several methods without starting hours of training for the missing ones."""
    cfg = timgan_config(preset, variant=variant, seed=seed, **settings)
    if has_checkpoint(f"css-{run_name(cfg)}", cfg, directory):
        return "checkpoint"
    metrics = runs_dir() / "timgan" / run_name(cfg) / "metrics.json"
    if metrics.is_file() and same_config(load_json(metrics).get("config"), cfg):
        return "run"
    return None

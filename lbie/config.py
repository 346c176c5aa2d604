"""Scale presets for every experiment, in one place (DESIGN §3).

``smoke`` runs in seconds (tests, CI), ``cpu`` gives meaningful numbers in minutes on two CPU
cores, ``paper`` follows the paper's settings and is meant for a GPU.  ``"auto"`` (the default)
means ``cpu`` on every device, GPU or not: the published checkpoints are ``cpu`` runs, so a
chapter loads them instead of starting a run of hours.  The environment variable ``LBIE_PRESET``
overrides that default.  ``paper`` is only ever an explicit choice, and the first time an
experiment resolves it, :func:`paper_time_note` prints the estimated training time.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

PRESET_NAMES = ("smoke", "cpu", "paper")

# CoSaL (LBIE paper §4.1).  The paper used 50,000 training and 10,000 test images; the
# paper does not state its number of epochs or batch size (the released code defaults to
# batch 1, lr 1e-3, Adam beta1 0.5).  ``cpu``: four passes over the 50,000 training images; after
# one or two the termination gates of T = 4 send every region to the same step (chapter 4's study),
# after four the regions of relational cells run on while those of direct cells stop.
_COSAL = {
    "smoke": dict(n_train=256, n_test=128, epochs=2, batch_size=32, lr=3e-3, eval_every=1),
    "cpu": dict(n_train=50_000, n_test=10_000, epochs=4, batch_size=32, lr=3e-3, eval_every=1),
    "paper": dict(n_train=50_000, n_test=10_000, epochs=30, batch_size=32, lr=1e-3, eval_every=1),
}

# TIM-GAN on CSS-2D (DESIGN §5).  ``paper`` follows the released code: 128 px, E with 64 -> 256
# channels, 512-d text heads, 2 x 3 routing blocks, BERT fine-tuned at lr/10, batch 16, Adam 2e-4,
# 60 epochs after 30 of autoencoder pretraining.  ``cpu`` keeps the architecture at 1/8 of the width
# on 64 px images, trained with bf16 autocast (1.6x faster on a CPU with AVX512-BF16), for 16 epochs: seed 0
# scored RS@1 86.7 after 8 epochs and 93.7 after 16, its pixel error still falling at the end.
# ``amp``: None (fp32) or "bf16" (training only, and only where the CPU or GPU computes in bf16 natively;
# see lbie.experiments.timgan.bf16_autocast_ok).
_TIMGAN_ARCH = dict(n_down=2, layers=2, blocks=3)
_TIMGAN = {
    "smoke": dict(n_train=64, n_test=32, size=64, epochs=1, ae_epochs=1, retrieval_epochs=1, batch_size=16, lr=5e-4,
                  dim=4, n_res=1, head_dim=16, where_res=1, ndf=8, finetune_text=False, amp=None, **_TIMGAN_ARCH),
    "cpu": dict(n_train=20_000, n_test=2_000, size=64, epochs=16, ae_epochs=1, retrieval_epochs=3, batch_size=32,
                lr=5e-4, dim=8, n_res=1, head_dim=128, where_res=1, ndf=16, finetune_text=False, amp="bf16",
                **_TIMGAN_ARCH),
    "paper": dict(n_train=20_000, n_test=2_000, size=128, epochs=60, ae_epochs=30, retrieval_epochs=20, batch_size=16,
                  lr=2e-4, dim=64, n_res=2, head_dim=512, where_res=2, ndf=64, finetune_text=True, amp=None,
                  **_TIMGAN_ARCH),
}

# LBIE beyond CoSaL: referring segmentation on generated scenes (LBIE paper Table 3 analog)
# and text-guided colourisation of generated flowers (Table 4 analog).  Owned by
# lbie/experiments/segmentation.py and lbie/experiments/colorization.py; values to be tuned there.
# Segmentation: 64 px RGB scenes; ``channels`` are the six encoder convs (three 2x2 pools: an 8x8 region
# map), ``text_dim`` the LSTM / GRU width.  ``paper`` follows the paper's ReferIt model only in shape
# (T = 3; the paper has VGG-16 on 512 px, 1,024-unit LSTM and GRU): it is meant for a GPU.  ``cpu``: 72k
# training expressions (2,250 steps); measured 64 img/s for LBIE T = 3 and 115 img/s for concat with ONE
# thread on a machine whose two cores were busy, so a run takes ~19 / ~10 min at worst, less on two free cores.
_SEGMENTATION = {
    "smoke": dict(n_train=64, n_test=32, epochs=1, batch_size=16, lr=3e-3, eval_every=1,
                  channels=[4, 4, 8, 8, 16, 16], text_dim=16, classifier_hidden=16),
    "cpu": dict(n_train=24_000, n_test=2_000, epochs=3, batch_size=32, lr=2e-3, eval_every=1,
                channels=[16, 16, 32, 32, 64, 64], text_dim=64, classifier_hidden=32),
    "paper": dict(n_train=50_000, n_test=5_000, epochs=30, batch_size=32, lr=1e-3, eval_every=5,
                  channels=[32, 32, 64, 64, 128, 128], text_dim=256, classifier_hidden=128),
}
# Colourisation (lbie/experiments/colorization.py): ``width`` is the generator encoder's first width (x1, x2, x4),
# ``text_dim`` the bi-LSTM output (the paper: 512 units), ``ndf`` the discriminator's.  ``cpu`` trains 150,000
# image steps with bf16 autocast (~85 img/s measured with one thread beside another job: ~30 minutes a run).
# Seed 0: 10,000 flowers x 5 epochs reached a test consistency of only 0.70 and 30,000 x 3 epochs 0.84; with
# 30,000 x 5 the validation consistency was 0.91 after the third epoch.
_COLORIZATION = {
    "smoke": dict(n_train=64, n_test=32, epochs=1, batch_size=16, lr=5e-4, width=4, text_dim=8, ndf=4, amp=None),
    "cpu": dict(n_train=30_000, n_test=2_000, epochs=5, batch_size=32, lr=5e-4, width=16, text_dim=64, ndf=16,
                amp="bf16"),
    "paper": dict(n_train=50_000, n_test=5_000, epochs=30, batch_size=32, lr=2e-4, width=64, text_dim=512, ndf=64,
                  amp=None),
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {"cosal": _COSAL, "timgan": _TIMGAN, "segmentation": _SEGMENTATION,
                                                 "colorization": _COLORIZATION}

# Training cost at the ``paper`` preset: FLOPs per training example of each phase (forward and backward of
# every network a step runs: discriminators and TIM-GAN's fine-tuned text encoder included, LSTMs and the
# optimiser not), counted with torch.utils.flop_counter by ``python -m lbie.devtools flops`` for the
# default method of each experiment (LBIE, TIM-GAN).
PAPER_FLOPS = {"cosal": {"train": 2.42e7}, "segmentation": {"train": 3.63e9}, "colorization": {"train": 2.61e10},
               "timgan": {"autoencoder": 7.48e10, "train": 1.34e11, "retrieval": 5.22e8}}
# What the estimate assumes of a device: sustained FLOP/s and a fixed cost per optimiser step (launches and
# Python, which dominate small models).  GPU: a Colab T4 (8.1 TFLOP/s fp32 peak) at 30% of its peak and
# 10 ms a step (assumed).  CPU: 100 GFLOP/s and 58 ms a step, fitted to the published ``cpu`` runs on two
# cores (for the convolutional runs, the same counts at the ``cpu`` preset give their recorded times within
# 40%; CoSaL's recorded times vary 4x between runs on shared cores).
DEVICE_SPEED = {"cuda": (0.3 * 8.1e12, 0.010), "cpu": (1.0e11, 0.058)}
_ANNOUNCED: set[str] = set()


def _phases(experiment: str, cfg: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(training examples, optimiser steps) of each phase of a run with settings ``cfg``."""
    def run(n: int, epochs: int, batch: int) -> tuple[int, int]:
        return n * epochs, -(-n // batch) * epochs

    phases = {"train": run(cfg["n_train"], cfg["epochs"], cfg["batch_size"])}
    if experiment == "timgan":  # the autoencoder is pretrained first; the retrieval encoder sees sources and targets
        phases["autoencoder"] = run(cfg["n_train"], cfg["ae_epochs"], cfg["batch_size"])
        phases["retrieval"] = run(2 * cfg["n_train"], cfg["retrieval_epochs"], 64)
    return phases


def estimate_paper_seconds(experiment: str, device: str | None = None, **overrides: Any) -> float:
    """Estimated training time in seconds of one ``paper`` run of ``experiment`` on ``device`` (``"cuda"``
    or ``"cpu"``; None: cuda if available): :data:`PAPER_FLOPS` over the phases' training examples at the
    sustained rate of :data:`DEVICE_SPEED`, plus its cost per step.  Evaluation is not counted."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    flops_per_s, step_s = DEVICE_SPEED["cuda" if device == "cuda" else "cpu"]
    cfg = dict(PRESETS[experiment]["paper"], **{k: v for k, v in overrides.items() if v is not None})
    return sum(PAPER_FLOPS[experiment][phase] * examples / flops_per_s + steps * step_s
               for phase, (examples, steps) in _phases(experiment, cfg).items())


def paper_time_note(experiment: str, device: str | None = None, **overrides: Any) -> str:
    """One line: the estimated time of a ``paper`` run of ``experiment`` here, and its assumptions."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    seconds = estimate_paper_seconds(experiment, device, **overrides)
    took = (f"{seconds / 86400:.0f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} hours"
            if seconds >= 5400 else f"{seconds / 60:.0f} minutes")
    on = ("a GPU (assumed: a Colab T4, 8.1 TFLOP/s fp32 at 30%)" if device == "cuda"
          else "this CPU (assumed: 100 GFLOP/s, as measured on two cores)")
    return (f"preset 'paper' ({experiment}): training takes an estimated {took} on {on}; "
            f"preset 'cpu' (the default) loads the published checkpoints instead")


def resolve_preset(name: str | None = "auto") -> str:
    """Turn ``None`` / ``"auto"`` into a concrete preset name and validate it: ``LBIE_PRESET`` if set,
    else ``cpu`` on every device (a GPU too: ``paper`` runs take hours and must be asked for by name)."""
    if name is None or name == "auto":
        env = os.environ.get("LBIE_PRESET", "").strip()
        name = env if env and env != "auto" else "cpu"
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; valid presets are {', '.join(PRESET_NAMES)} (or 'auto')")
    return name


def get_preset(experiment: str, name: str | None = "auto", **overrides: Any) -> dict[str, Any]:
    """The settings of ``experiment`` at preset ``name``; keyword arguments that are not
    ``None`` override single values (``get_preset("cosal", "cpu", epochs=1)``)."""
    if experiment not in PRESETS:
        raise ValueError(f"unknown experiment {experiment!r}; valid experiments are {', '.join(PRESETS)}")
    name = resolve_preset(name)
    cfg = dict(PRESETS[experiment][name])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in cfg:
            raise ValueError(f"unknown setting {key!r} for {experiment}; valid settings are {', '.join(cfg)}")
        cfg[key] = value
    if name == "paper" and experiment not in _ANNOUNCED:  # before anything is trained at the paper's scale
        _ANNOUNCED.add(experiment)
        print(paper_time_note(experiment, **overrides))
    cfg["preset"] = name
    return cfg


def experiment_config(experiment: str, preset: str | None, settings: dict[str, Any], scale_keys: tuple[str, ...],
                      defaults: dict[str, Any], label: str, *, skip_none: bool = False) -> dict[str, Any]:
    """An experiment's run configuration: the preset's settings (each of ``scale_keys`` given in
    ``settings`` and not None overrides it), then ``defaults`` updated by the other ``settings`` (with
    ``skip_none``, those that are None keep their default).  Unknown settings raise a ValueError that
    names the experiment by ``label``."""
    settings = dict(settings)
    cfg = get_preset(experiment, preset, **{k: settings.pop(k, None) for k in scale_keys})
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {label} settings {unknown}; valid: {', '.join((*scale_keys, *defaults))}")
    cfg.update({**defaults, **{k: v for k, v in settings.items() if not (skip_none and v is None)}})
    # a whole number given for a setting whose default is a float is stored as a float: 2 and 2.0 (from the
    # command line, JSON or Python) name the same run and the same config hash
    return {k: float(v) if isinstance(defaults.get(k), float) and type(v) is int else v for k, v in cfg.items()}


# keyword arguments of the train_* functions that choose how to run, not what to train
RUN_OPTIONS = ("preset", "run_dir", "resume", "stop_after_epoch", "evaluate")


def run_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The settings among a load_or_train_* call's keywords (everything but :data:`RUN_OPTIONS`), for
    the experiment's config function, which rejects a misspelt one instead of dropping it."""
    return {k: v for k, v in kwargs.items() if k not in RUN_OPTIONS}


# Settings added to the code after some runs, checkpoints and results files were written, each with the value
# that reproduces the code's behaviour before it existed: a stored configuration without the key ran with that
# value (lbie.models.lbie: identity_w7, gate_on, gate_norm; lbie.models.lbie.lbie_loss: step_cost;
# lbie.models.timgan: output; lbie.experiments.timgan: gan_ramp, lr_decay_from, w_edit, how_coords;
# lbie.experiments.cosal: gate_warmup, price_in_warmup, skip_undetermined).
SETTINGS_BEFORE = {"identity_w7": False, "gate_on": "state", "gate_norm": False, "step_cost": 0.0,
                   "output": "tanh", "gan_ramp": 0.0, "lr_decay_from": 1.0, "gate_warmup": 0.0,
                   "price_in_warmup": True, "skip_undetermined": False, "w_edit": 0.0,
                   "how_coords": False}


def same_config(stored: dict[str, Any] | None, current: dict[str, Any]) -> bool:
    """Did a run stored with configuration ``stored`` (a checkpoint's, a record's) train what ``current``
    describes?  Yes if they are equal once each setting ``stored`` lacks takes its :data:`SETTINGS_BEFORE` value,
    so adding a setting at its earlier value to the code keeps every run, checkpoint and record valid."""
    if stored is None:
        return False
    return with_earlier_settings(stored, current) == current


def with_earlier_settings(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with each setting of ``current`` it lacks at its :data:`SETTINGS_BEFORE` value (the value
    the stored run ran with)."""
    return {k: SETTINGS_BEFORE[k] for k in current.keys() - stored.keys() if k in SETTINGS_BEFORE} | stored


def config_hash(cfg: dict[str, Any]) -> str:
    """8 hex digits of the sha256 of ``cfg`` as sorted JSON."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def hashed_run_name(name: str, cfg: dict[str, Any], canonical: dict[str, Any]) -> str:
    """``name``, with ``-`` and :func:`config_hash` of ``cfg`` appended when ``cfg`` differs from
    ``canonical``, the configuration that ``name`` alone describes."""
    return name if cfg == canonical else f"{name}-{config_hash(cfg)}"

"""A small training loop shared by every experiment.

* progress with ``tqdm.auto``; evaluation every ``eval_every`` epochs;
* a checkpoint written atomically at the end of every epoch (model, optimizer, RNG state,
  history); ``resume=True`` continues exactly where a killed run stopped, because each
  epoch's data order and noise depend only on the state saved at the previous epoch's end;
* a non-finite loss stops training with :class:`TrainingDiverged`, leaving the last good
  checkpoint in place; checkpoints load with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .config import same_config
from .utils import atomic_torch_save

CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or belongs to another configuration."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a damaged file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, not a zip archive, unpickling refused, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e}); "
                              f"delete it or train with resume=False") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"checkpoint {path} does not contain a model state (keys: "
                              f"{sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__})")
    return ckpt


def _progress(iterable, **kw):
    if os.environ.get("LBIE_PROGRESS", "1") == "0":
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, **kw)


def fit(model: torch.nn.Module, *, optimizer: torch.optim.Optimizer, epochs: int,
        batches: Callable[[int], Iterable], train_step: Callable[[Any, int], torch.Tensor],
        evaluate: Callable[[], dict] | None = None, run_dir: str | Path | None = None,
        config: dict | None = None, resume: bool = True, eval_every: int = 1,
        stop_after_epoch: int | None = None, log_every: int = 50) -> list[dict]:
    """Train ``model`` and return its history (one dict per epoch).

    batches(epoch) yields the epoch's batches (a deterministic function of the epoch);
    train_step(batch, global_step) returns the loss, or (loss, parts) with ``parts`` a dict of
    floats (the loss terms, logged as ``parts_curve``); evaluate() returns a dict of metrics.
    ``config`` is stored in the checkpoint; resuming with a different config is an error.
    ``stop_after_epoch`` ends the call early (used to test kill-and-resume).  Each epoch's
    record holds ``loss_curve``: [global step, mean loss of the last ``log_every`` steps] pairs.
    """
    history: list[dict] = []
    start_epoch, step = 0, 0
    ckpt_path = Path(run_dir) / CHECKPOINT if run_dir is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if config is not None and not same_config(ckpt.get("config"), config):
            diff = sorted(k for k in set(config) | set(ckpt.get("config") or {})
                          if config.get(k) != (ckpt.get("config") or {}).get(k))
            raise CheckpointError(f"checkpoint {ckpt_path} was written with a different configuration "
                                  f"(differs in: {', '.join(diff)}); use another run_dir or resume=False")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        start_epoch, step, history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])

    for epoch in range(start_epoch, epochs):
        model.train()
        t0, total, count, curve, window = time.perf_counter(), 0.0, 0, [], []
        parts_curve, parts_window = [], []
        for batch in _progress(batches(epoch), desc=f"epoch {epoch + 1}/{epochs}"):
            loss = train_step(batch, step)
            if isinstance(loss, tuple):
                loss, parts = loss
                parts_window.append(parts)
            if not torch.isfinite(loss):
                where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}{where}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count, step = total + loss.item(), count + 1, step + 1
            window.append(loss.item())
            if len(window) == log_every:
                curve.append([step, sum(window) / len(window)])
                window = []
                if parts_window:
                    parts_curve.append([step, {k: sum(p[k] for p in parts_window) / len(parts_window)
                                               for k in parts_window[0]}])
                    parts_window = []
        record = {"epoch": epoch + 1, "step": step, "train_loss": total / max(count, 1),
                  "epoch_seconds": time.perf_counter() - t0, "loss_curve": curve}
        if parts_curve:
            record["parts_curve"] = parts_curve
        if evaluate is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            model.eval()
            record.update(evaluate())
        history.append(record)
        if ckpt_path is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "epoch": epoch + 1, "step": step, "history": history,
                               "torch_rng": torch.get_rng_state(), "config": config}, ckpt_path)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return history


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Index batches of ``n`` examples in an order that depends only on ``seed`` and ``epoch`` (the
    ``batches`` argument of :func:`fit` for data held in memory)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def annealed(start: float, end: float, progress: float) -> float:
    """Exponential interpolation from ``start`` to ``end`` as ``progress`` goes 0 → 1."""
    progress = min(max(progress, 0.0), 1.0)
    return start * math.exp(progress * math.log(end / start))

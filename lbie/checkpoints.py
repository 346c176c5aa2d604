"""Published checkpoints: small weight files in ``checkpoints/`` with a registry of sha256 hashes.

Notebooks use "load if present, else train": :func:`find_checkpoint` returns the weights of a
configuration only when the registry has an entry with exactly that configuration and the file's
hash matches (``torch.load(..., weights_only=True)``).  An installed wheel ships the folder as
package data; :func:`lbie.utils.checkpoints_dir` finds it in either place.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .config import same_config
from .train import CheckpointError, load_checkpoint
from .utils import atomic_save_json, atomic_torch_save, checkpoints_dir, get_device, load_json, provenance

CHECKPOINTS = checkpoints_dir()  # the repository's checkpoints/, or the installed wheel's copy


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register_checkpoint(state: dict, name: str, config: dict, metrics: dict, history: list,
                        directory: str | Path = CHECKPOINTS, file: str | None = None, **extra) -> Path:
    """Write ``state`` to ``<directory>/<file>`` (default ``<name>.pt``) and record its sha256,
    config, metrics, history and any ``extra`` fields under ``name`` in the registry."""
    directory = Path(directory)
    path = atomic_torch_save(state, directory / (file or f"{name}.pt"))
    registry = directory / "registry.json"
    entries = load_json(registry) if registry.exists() else {}
    entries[name] = {"file": path.name, "sha256": _sha256(path), "config": config, "metrics": metrics,
                     "history": history, **extra}
    atomic_save_json(dict(sorted(entries.items())), registry)
    return path


def _entry(name: str, directory: str | Path) -> dict | None:
    registry = Path(directory) / "registry.json"
    return load_json(registry).get(name) if registry.exists() else None


def has_checkpoint(name: str, config: dict, directory: str | Path = CHECKPOINTS) -> bool:
    """True if the registry lists a checkpoint ``name`` trained with exactly ``config`` and its file
    is present (nothing is loaded, nothing printed; :func:`find_checkpoint` checks the sha256)."""
    entry = _entry(name, directory)
    return entry is not None and same_config(entry["config"], config) and (Path(directory) / entry["file"]).is_file()


def find_checkpoint(name: str, config: dict, directory: str | Path = CHECKPOINTS) -> tuple[dict, dict] | None:
    """(state dict, registry entry) of the checkpoint ``name`` if it was trained with ``config``,
    else None.  A listed file that is missing or fails its sha256 raises :class:`CheckpointError`."""
    registry = Path(directory) / "registry.json"
    entry = _entry(name, directory)
    if entry is None:
        return None
    if not same_config(entry["config"], config):
        diff = sorted(k for k in set(config) | set(entry["config"]) if config.get(k) != entry["config"].get(k))
        print(f"checkpoint {entry['file']} was trained with other settings ({', '.join(diff)}); training")
        return None
    path = Path(directory) / entry["file"]
    if not path.exists() or _sha256(path) != entry["sha256"]:
        raise CheckpointError(f"checkpoint {path} is missing or does not match the sha256 in {registry}")
    return torch.load(path, map_location="cpu", weights_only=True), entry


def load_or_train_cached(model: nn.Module, name: str, config: dict, run_dir: Path,
                         train: Callable[[Path], nn.Module], *, experiment: str, device="auto",
                         publish: bool = False, directory: str | Path = CHECKPOINTS, **record) -> nn.Module:
    """A small model trained once and reused (the shared retrieval encoder, the TIRG composer):

    1. the published checkpoint ``name`` trained with ``config`` in ``directory``, else
    2. the finished run in ``run_dir`` (its ``metrics.json`` exists; the weights are fit's
       ``checkpoint.pt`` there), else
    3. ``train(run_dir)``, which trains and returns the model; then ``metrics.json`` records the
       provenance (with the ``record`` fields and the wall time).

    ``model`` is an untrained instance that receives the weights of 1 or 2.  ``publish=True`` stores
    the weights of 2 or 3 in ``directory`` under ``name``.  Returns the model on ``device``, in eval mode."""
    device = get_device(device)
    found = find_checkpoint(name, config, directory)
    if found is not None:
        model.load_state_dict(found[0])
        return model.to(device).eval()
    done = Path(run_dir) / "metrics.json"
    if done.exists():
        model.load_state_dict(load_checkpoint(Path(run_dir) / "checkpoint.pt")["model"])
        model = model.to(device).eval()
    else:
        t0 = time.perf_counter()
        model = train(Path(run_dir)).to(device).eval()
        atomic_save_json({"experiment": experiment, "name": name, "config": config,
                          "provenance": provenance(**record, wall_seconds=time.perf_counter() - t0)}, done)
    if publish:
        register_checkpoint(model.state_dict(), name, config, load_json(done)["provenance"], [], directory)
    return model

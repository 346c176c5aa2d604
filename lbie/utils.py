"""Helpers shared by every module: device, seeding, array coercion, a process-pool map, provenance,
atomic file writes, JSON, the published folders and the caches."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .config import same_config
from .version import __version__


def get_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → cuda if available, else mps, else cpu; anything else is passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_numpy(x) -> np.ndarray:
    """A numpy array of ``x``; a tensor is detached and moved to the CPU first (its dtype kept)."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def pool_map(fn, jobs: list, n_jobs: int):
    """``map`` in ``n_jobs`` processes (in order of completion is not needed: results keep job order)."""
    if n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            yield from pool.map(fn, jobs)
    else:
        yield from map(fn, jobs)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(**extra: Any) -> dict[str, Any]:
    """Where a number came from: git commit, versions, device, time, command line."""
    info = {
        "git_commit": _git_commit(),
        "lbie_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    info.update(extra)
    return info


def _atomic_write(path: str | Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_save_json(obj: Any, path: str | Path) -> Path:
    """Write JSON so that a crash never leaves a half-written file."""
    data = (json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n").encode()
    return _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | Path, encoding: str = "utf-8") -> Path:
    """Write text so that a crash never leaves a half-written file (the old one stays until the new one is whole)."""
    data = text.encode(encoding)
    return _atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    return _atomic_write(path, lambda f: torch.save(obj, f))


def json_default(o: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays, paths."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def _published(folder: str) -> Path:
    """``<repository>/<folder>`` in a source checkout (an editable install, the book, the tests), else
    the copy that an installed wheel ships as package data, ``lbie/published/<folder>`` (pyproject.toml
    maps the repository's folder there): how a package installed on Colab finds the published files."""
    package = Path(__file__).resolve().parent
    source = package.parent / folder
    if (package.parent / "pyproject.toml").is_file() and source.is_dir():
        return source
    return package / "published" / folder


def checkpoints_dir() -> Path:
    """The published checkpoints and their sha256 registry (``checkpoints/`` of the repository)."""
    return _published("checkpoints")


def results_dir() -> Path:
    """The reproductions' results files (``results/*.json`` of the repository)."""
    return _published("results")


def runs_dir() -> Path:
    """Where training runs keep checkpoints (``LBIE_RUNS``; default ``runs/`` at the repository
    root for a source checkout, else ``./runs``) — the same folder from notebooks and the CLI."""
    if "LBIE_RUNS" in os.environ:
        return Path(os.environ["LBIE_RUNS"])
    root = Path(__file__).resolve().parent.parent
    return root / "runs" if (root / ".git").exists() else Path("runs")


def resolve_run_dir(run_dir: str | Path | None, experiment: str, name: str, config: dict | None = None) -> Path | None:
    """A training function's ``run_dir``: ``"auto"`` → ``<runs_dir()>/<experiment>/<name>``; ``None`` keeps nothing.

    A run's name stands for its configuration under the current defaults, so after the defaults
    change an ``"auto"`` folder may hold a run of another configuration: given ``config``, such a
    folder is renamed ``<name>.stale-<time>`` (nothing is deleted) and the run starts afresh.  An
    explicit ``run_dir`` is never moved: resuming it with another configuration is an error."""
    if run_dir != "auto":
        return Path(run_dir) if run_dir is not None else None
    path = runs_dir() / experiment / name
    ckpt = path / "checkpoint.pt"
    if config is not None and ckpt.exists():
        try:
            stored = torch.load(ckpt, map_location="cpu", weights_only=True).get("config")
        except Exception:  # unreadable: leave it to the training loop's clear error
            return path
        if not same_config(stored, config):
            stale = path.with_name(f"{name}.stale-{_dt.datetime.now():%Y%m%d-%H%M%S}")
            path.rename(stale)
            print(f"{path} held a run of other settings; moved it to {stale.name} and training afresh")
    return path


def cache_dir() -> Path:
    """Where generated data sets are cached (``LBIE_CACHE``, default ``~/.cache/lbie``)."""
    return Path(os.environ.get("LBIE_CACHE", Path.home() / ".cache" / "lbie"))


def cached_arrays(subdir: str, prefix: str, params: dict, make: Callable[[], dict[str, np.ndarray]],
                  keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays cached in ``cache_dir()/<subdir>/<prefix>-<hash of params>.npz``: the file's ``keys``
    (``None``: all of them), else ``make()``'s arrays, written atomically.  A truncated, garbage or
    incomplete file (missing one of ``keys``) is deleted and regenerated, never trusted."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / subdir / f"{prefix}-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in (z.files if keys is None else keys)}
        except Exception:  # BadZipFile, EOFError, KeyError, ...
            path.unlink(missing_ok=True)
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays

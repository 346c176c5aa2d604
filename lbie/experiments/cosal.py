"""Training and evaluating LBIE on CoSaL (paper §4.1, Table 2)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import CHECKPOINTS, find_checkpoint, register_checkpoint
from ..config import SETTINGS_BEFORE, experiment_config, hashed_run_name, run_settings
from ..data.cosal import DATA_VERSION, CoSaL, cell_map, load_cosal
from ..metrics.cosal_iou import ColorIoU, CoSaLShapeIoU
from ..models.lbie import IGNORE_LABEL, LBIE, lbie_loss
from ..train import annealed, fit
from ..utils import atomic_save_json, get_device, provenance, resolve_run_dir, seed_everything

MODEL_KEYS = ("steps", "attention", "termination")
DATA_KEYS = ("num_direct", "coverage", "num_colors")


def images_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """Label maps (B, H, W) → the black-silhouette input (B, 3, H, W), scaled to [-0.5, 0.5]
    like the released code (x / 255 - 0.5)."""
    return ((labels == 0).float() - 0.5)[:, None].expand(-1, 3, -1, -1)


def without_undetermined(data: CoSaL) -> CoSaL:
    """A copy of ``data`` whose shape pixels in cells no sentence determines are labelled
    :data:`~lbie.models.lbie.IGNORE_LABEL`, so the training loss skips them.  Their colour is random
    given the input (released coverage leaves about one cell in five undetermined); the silhouette input
    still shows every shape, and the background stays a target."""
    skip = data.cell_map(~data.determined) & (data.labels > 0)
    return replace(data, labels=np.where(skip, IGNORE_LABEL, data.labels).astype(np.uint8))


def iterate(data: CoSaL, batch_size: int, *, device, generator: torch.Generator | None = None):
    """Batches (images, tokens, labels) on ``device``; shuffled when a generator is given."""
    labels = torch.from_numpy(data.labels)
    tokens = torch.from_numpy(data.tokens)
    order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
    for i in range(0, len(data), batch_size):
        idx = order[i:i + batch_size]
        lab = labels[idx].to(device).long()
        yield images_from_labels(lab), tokens[idx].to(device), lab


@torch.no_grad()
def predict_cosal(model: LBIE, data: CoSaL, *, batch_size: int = 500, device="auto", with_stops: bool = False):
    """Predicted label maps (N, H, W) uint8 for a whole data set; with ``with_stops`` also each
    region's most likely stopping step (N, M, N), 0-based."""
    device = get_device(device)
    was_training = model.training
    model.eval()
    preds, stops = [], []
    for x, t, _ in iterate(data, batch_size, device=device):
        out = model(x, t)
        preds.append(out.logits.argmax(1).to(torch.uint8).cpu())
        stops.append(out.fusion.log_stop_prob.argmax(1).to(torch.uint8).cpu())
    model.train(was_training)
    pred = torch.cat(preds).numpy()
    return (pred, torch.cat(stops).numpy()) if with_stops else pred


@torch.no_grad()
def forced_step_metrics(model: LBIE, data: CoSaL, *, batch_size: int = 500) -> dict[int, dict]:
    """:func:`evaluate_predictions` when every region is forced to stop at step t, for t = 1..T: how good
    each step's output is on its own (a step the gates never chose is never trained)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds: dict[int, list] = {t: [] for t in range(1, model.steps + 1)}
    for x, tokens, _ in iterate(data, batch_size, device=device):
        V, U = model.encoder(x.contiguous(memory_format=torch.channels_last)), model.text(tokens)
        outputs = model.fusion(V, U).outputs  # (B, T, D, M, N)
        for t in preds:
            preds[t].append(model.decode(outputs[:, t - 1], x).argmax(1).to(torch.uint8).cpu())
    model.train(was_training)
    return {t: evaluate_predictions(torch.cat(p).numpy(), data) for t, p in preds.items()}


def stop_step_share(stops: np.ndarray, data: CoSaL, steps: int) -> dict:
    """Share of the regions that stop at each step (``stops`` (N, M, N) from :func:`predict_cosal`),
    over all regions, by the reasoning depth of the region's cell (0: described directly) and over the
    regions of all relational cells (depth >= 1)."""
    depth = cell_map(data.depth, stops.shape[-1])
    share = lambda sel: np.bincount(stops[sel].ravel(), minlength=steps)[:steps] / max(sel.sum(), 1)  # noqa: E731
    return {"all": share(np.ones_like(depth, bool)).tolist(),
            "by_depth": {str(d): share(depth == d).tolist() for d in np.unique(data.depth)},
            "relational": share(depth >= 1).tolist()}


def evaluate_predictions(pred: np.ndarray, data: CoSaL) -> dict:
    """Both IoUs (DESIGN §4.3) on all pixels and on the cells the caption determines, and the
    paper's IoU by reasoning depth (relational hops from the nearest direct description)."""
    H = data.img_size
    det = cell_map(data.determined, H)
    depth = cell_map(data.depth, H)
    paper = lambda mask=None: CoSaLShapeIoU().update(pred, data.labels, data.cell_shape, data.cell_color,  # noqa: E731
                                                     mask).compute()
    code = lambda mask=None: ColorIoU(data.num_classes).update(pred, data.labels, mask).compute()  # noqa: E731
    by_depth = {str(d): paper(depth == d) for d in np.unique(data.depth)}
    return {"iou": paper(), "iou_determined": paper(det), "iou_code_metric": code(),
            "iou_code_metric_determined": code(det), "iou_by_depth": by_depth}


def caption_oracle(data: CoSaL, seed: int = 0) -> np.ndarray:
    """The best a model can do from the caption: the true label map on the cells the caption
    determines and, on the others, the right shape painted a colour drawn uniformly at random
    (nothing in the caption constrains it).  Its IoU bounds any model's in expectation."""
    rng = np.random.default_rng(seed)
    guess = rng.integers(data.num_colors, size=data.determined.shape) + 1  # (N, 9)
    colour = np.where(data.determined, data.cell_color + 1, guess)
    return np.where(data.labels > 0, cell_map(colour, data.img_size), 0).astype(np.uint8)


@dataclass
class CoSaLRun:
    model: LBIE
    history: list
    metrics: dict
    config: dict
    run_dir: Path | None


# train_cosal's defaults for the settings that are not part of a run's name.  The termination gates
# (chapter 4, the gate study): gate_warmup is the share of training during which every region's stopping step
# is drawn uniformly and the gates are not used, so that every step learns to decode every region; after it the
# gates choose, and step_cost prices each step beyond the first (as adaptive computation time does), so that a
# region runs on only when reading more pays.  Without them, whether the regions of a T = 4 model stopped per
# region or all at one step depended on the seed (at 4 epochs, full coverage: seed 0 split between steps 1
# and 4, seed 1 sent every region to step 2); with them both seeds stop direct cells early and relational
# cells late.  skip_undetermined (released coverage): the loss skips the shape pixels of cells no sentence
# determines; trained on their random colours, no step of the recurrence learnt the relations (chapter 4).
# price_in_warmup=False: the price applies once the gates choose; during the warm-up it was their only
# gradient and taught every gate to stop at step 1 before the gates had chosen anything.
DEFAULTS = dict(num_direct=4, coverage="full", num_colors=3, steps=4, attention=True, termination="gumbel",
                seed=0, tau=[1.0, 0.1], fg_weight=10.0, input_skip=True, stop_bias=1.0, gate_norm=False,
                identity_w7=True, gate_on="hidden", step_cost=0.005, gate_warmup=0.5, price_in_warmup=False,
                skip_undetermined=True)


# Settings that only shape how the termination gates train (they do nothing at T = 1)
GATE_TRAINING = ("gate_warmup", "step_cost", "price_in_warmup")
SCALE_KEYS = ("epochs", "n_train", "n_test", "batch_size", "lr")


def cosal_config(preset: str | None = "auto", **settings) -> dict:
    """The full configuration of a CoSaL run: the preset's scale settings (each of
    :data:`SCALE_KEYS` that is given and not None overrides it) and :data:`DEFAULTS` updated by
    the other ``settings``."""
    cfg = experiment_config("cosal", preset, settings, SCALE_KEYS, DEFAULTS, "CoSaL")
    cfg["tau"] = list(cfg["tau"])
    if cfg["steps"] == 1:  # no stopping step to choose: the gates' training settings do nothing, and are
        # stored at the values they had before they existed, so that T = 1 runs keep their checkpoints and records
        cfg.update({k: SETTINGS_BEFORE[k] for k in GATE_TRAINING})
    if not (cfg["gate_warmup"] and cfg["step_cost"]):  # no warm-up or no price: when the price applies is moot
        cfg["price_in_warmup"] = SETTINGS_BEFORE["price_in_warmup"]
    if cfg["coverage"] == "full":  # every cell is determined: nothing to skip, stored as before the setting existed
        cfg["skip_undetermined"] = SETTINGS_BEFORE["skip_undetermined"]
    cfg["data_version"] = DATA_VERSION  # runs and checkpoints on other pixels are not reused
    return cfg


def run_name(cfg: dict) -> str:
    """``T4-att-gumbel-d4-c3-full-cpu-s0``; a run that overrides any other setting of its preset or
    of :data:`DEFAULTS` (epochs, lr, tau, ...) gets a hash of its whole config appended."""
    att = "att" if cfg["attention"] else "noatt"
    name = (f"T{cfg['steps']}-{att}-{cfg['termination']}-d{cfg['num_direct']}-c{cfg['num_colors']}-"
            f"{cfg['coverage']}-{cfg['preset']}-s{cfg['seed']}")
    named = ("steps", "attention", "termination", "num_direct", "num_colors", "coverage", "seed")
    return hashed_run_name(name, cfg, cosal_config(cfg["preset"], **{k: cfg[k] for k in named}))


def build_model(cfg: dict) -> LBIE:
    return LBIE(num_classes=cfg["num_colors"] + 1, steps=cfg["steps"], attention=cfg["attention"],
                termination=cfg["termination"], input_skip=cfg["input_skip"], stop_bias=cfg["stop_bias"],
                gate_norm=cfg["gate_norm"], identity_w7=cfg["identity_w7"], gate_on=cfg["gate_on"])


def train_cosal(*, preset: str | None = "auto", num_direct: int = 4, coverage: str = "full", num_colors: int = 3,
                steps: int = 4, attention: bool = True, termination: str = "gumbel", seed: int = 0,
                epochs: int | None = None, n_train: int | None = None, n_test: int | None = None,
                batch_size: int | None = None, lr: float | None = None, run_dir: str | Path | None = "auto",
                resume: bool = True, device="auto", tau: tuple[float, float] = (1.0, 0.1),
                fg_weight: float = 10.0, input_skip: bool = True, stop_bias: float | None = 1.0,
                gate_norm: bool = False, identity_w7: bool = True, gate_on: str = "hidden",
                step_cost: float = 0.005, gate_warmup: float = 0.5, price_in_warmup: bool = False,
                skip_undetermined: bool = True, stop_after_epoch: int | None = None) -> CoSaLRun:
    """Train LBIE on CoSaL and evaluate it on the test split; write ``metrics.json``.

    ``run_dir="auto"`` uses ``<runs_dir()>/cosal/<name>``; ``None`` keeps nothing on disk.  With
    ``resume=True`` a finished run is simply loaded and an interrupted one continues.
    """
    cfg = cosal_config(preset, epochs=epochs, n_train=n_train, n_test=n_test, batch_size=batch_size, lr=lr,
                       num_direct=num_direct, coverage=coverage, num_colors=num_colors, steps=steps,
                       attention=attention, termination=termination, seed=seed, tau=tau, fg_weight=fg_weight,
                       input_skip=input_skip, stop_bias=stop_bias, gate_norm=gate_norm,
                       identity_w7=identity_w7, gate_on=gate_on, step_cost=step_cost, gate_warmup=gate_warmup,
                       price_in_warmup=price_in_warmup, skip_undetermined=skip_undetermined)
    run_dir = resolve_run_dir(run_dir, "cosal", run_name(cfg), cfg)
    device = get_device(device)
    t_start = time.perf_counter()

    data_kw = dict(num_direct=num_direct, num_colors=num_colors, coverage=coverage, seed=seed)
    train_data = load_cosal("train", cfg["n_train"], **data_kw)
    test_data = load_cosal("test", cfg["n_test"], **data_kw)
    if cfg["skip_undetermined"]:
        train_data = without_undetermined(train_data)

    seed_everything(seed)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.5, 0.999))
    steps_per_epoch = -(-len(train_data) // cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]

    def batches(epoch):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        return iterate(train_data, cfg["batch_size"], device=device, generator=g)

    def train_step(batch, step):
        x, t, y = batch
        progress = step / max(total_steps - 1, 1)
        model.tau = annealed(tau[0], tau[1], progress)
        price = model.gate_schedule(progress, cfg["gate_warmup"], cfg["step_cost"], cfg["price_in_warmup"])
        for group in optimizer.param_groups:  # cosine decay to 0 (a function of the step: resumable)
            group["lr"] = cfg["lr"] * 0.5 * (1 + math.cos(math.pi * progress))
        return lbie_loss(model(x, t), y, fg_weight=fg_weight, step_cost=price)

    last = {}

    def evaluate():
        pred, stops = predict_cosal(model, test_data, device=device, with_stops=True)
        last["metrics"] = evaluate_predictions(pred, test_data) | {
            "stop_step_share": stop_step_share(stops, test_data, cfg["steps"])}
        return {k: last["metrics"][k] for k in ("iou", "iou_determined", "iou_code_metric", "stop_step_share")}

    history = fit(model, optimizer=optimizer, epochs=cfg["epochs"], batches=batches, train_step=train_step,
                  evaluate=evaluate, run_dir=run_dir, config=cfg, resume=resume, eval_every=cfg["eval_every"],
                  stop_after_epoch=stop_after_epoch, log_every=max(1, min(50, steps_per_epoch // 8)))
    done = bool(history) and history[-1]["epoch"] == cfg["epochs"]
    # fit evaluates the final epoch when it trains it; a run that was only loaded is evaluated here
    trained_now = done and "metrics" in last
    if not trained_now:
        evaluate()
    metrics = last["metrics"]
    if run_dir is not None and done and (trained_now or not (run_dir / "metrics.json").exists()):
        atomic_save_json({"experiment": "cosal", "config": cfg, "metrics": metrics, "history": history,
                          "provenance": provenance(device=str(device), preset=cfg["preset"], seed=seed,
                                                   wall_seconds=time.perf_counter() - t_start,
                                                   train_seconds=sum(h["epoch_seconds"] for h in history))},
                         run_dir / "metrics.json")
    return CoSaLRun(model, history, metrics, cfg, run_dir)


# --------------------------------------------------------------------------- checkpoints
def publish_checkpoint(run: CoSaLRun, directory: str | Path = CHECKPOINTS) -> Path:
    """Store a finished run's weights in ``checkpoints/`` and record its sha256 and metrics."""
    name = run_name(run.config)
    return register_checkpoint(run.model.state_dict(), name, run.config, run.metrics, run.history, directory,
                               file=f"cosal-{name}.pt")


def load_or_train_cosal(*, directory: str | Path = CHECKPOINTS, device="auto", **kwargs) -> CoSaLRun:
    """Load the published checkpoint of this configuration if there is one (its sha256 is
    checked), else train it with :func:`train_cosal` (same keyword arguments)."""
    preset = kwargs.pop("preset", "auto")
    cfg = cosal_config(preset, **run_settings(kwargs))
    found = find_checkpoint(run_name(cfg), cfg, directory)
    if found is None:
        return train_cosal(preset=preset, device=device, **kwargs)
    state, entry = found
    model = build_model(cfg)
    model.load_state_dict(state)
    return CoSaLRun(model.to(get_device(device)).eval(), entry["history"], entry["metrics"], cfg, None)

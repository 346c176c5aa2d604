"""Language-based segmentation with LBIE (paper §4.2, Table 3) on generated referring expressions.

The paper segments the ReferIt region an expression refers to and compares LBIE (T = 3, attention over
the expression) with Hu et al.'s model, which tiles the final LSTM state over the image features and
concatenates (our ``concat``: T = 1, no attention).  ReferIt cannot be downloaded here, so both are
trained on :func:`lbie.data.referring.load_referring` scenes (64 px, 3-6 objects, five expression kinds) and
scored with Hu et al.'s protocol (:mod:`lbie.metrics.segmentation`): overall IoU, precision@0.5..0.9, and the
per-expression mean IoU, labelled separately.

The model is :class:`lbie.LBIE` with two classes (background, referred) and the pixel-wise softmax
cross-entropy of :func:`lbie.lbie_loss`; for LBIE with ``global_context=True`` (a documented deviation:
its GRU also reads the expression's final LSTM state, see :data:`DEFAULTS`).  Language (``language``):

* ``"words"`` (default, the paper's ReferIt model attends over the words of the expression): every word
  is a one-token "sentence" of :class:`lbie.models.lbie.SentenceEncoder`, so its bi-LSTM embeds words and
  its second LSTM runs over the words; the sentences are joined by a separator token and front-padded,
  so the last language vector (all the ``concat`` baseline sees) is the LSTM state after the last word,
  as in Hu et al.;
* ``"sentences"``: the token form (N, 2, 12) as is, one vector per sentence (as for CoSaL).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import CHECKPOINTS, find_checkpoint, register_checkpoint
from ..config import experiment_config, hashed_run_name, resolve_preset, run_settings
from ..data.referring import DATA_VERSION, KINDS, VOCAB, ReferringData, load_referring
from ..metrics.segmentation import THRESHOLDS, referring_iou_stats
from ..metrics.summary import mean_shares, mean_std
from ..models.lbie import LBIE, TERMINATIONS, lbie_loss
from ..train import annealed, fit
from ..utils import atomic_save_json, get_device, provenance, resolve_run_dir, seed_everything
from .run_records import records_folder, recorded_runs

METHODS = {"lbie": dict(steps=3, attention=True), "concat": dict(steps=1, attention=False)}
METHOD_LABELS = {"lbie": "LBIE (T = 3, attention)", "concat": "Hu et al. concatenation (T = 1)"}
LANGUAGES = ("words", "sentences")
SEPARATOR = len(VOCAB)  # the token between two sentences in the word form (the model's vocabulary has one more)
PRECISIONS = tuple(f"{t:g}" for t in THRESHOLDS)  # "0.5", ..., "0.9"

# LBIE paper, Table 3 (ReferIt test set), as fractions (the paper prints percentages); no mean IoU there.
PAPER_TABLE3 = {
    "concat": {"overall_iou": 0.4803, "mean_iou": None,
               "precision": dict(zip(PRECISIONS, (0.3402, 0.2671, 0.1932, 0.1163, 0.0392)))},
    "lbie": {"overall_iou": 0.5009, "mean_iou": None,
             "precision": dict(zip(PRECISIONS, (0.3253, 0.2790, 0.1876, 0.1237, 0.0437)))},
}

SCALE_KEYS = ("epochs", "n_train", "n_test", "batch_size", "lr", "eval_every", "channels", "text_dim",
              "classifier_hidden")
# train_segmentation's defaults for the settings that are not in the presets.  fg_weight: referred pixels
# are ~4% of an image; weight 3 makes the arg-max call a pixel referred from p = 0.25, which favours
# IoU when the model hesitates between objects (the released CoSaL code uses 10).  mask_padding: the
# front padding of the word form gets no attention.  global_context (LBIE only): the C-GRU reads the
# expression's final LSTM state beside the attended words; stop_bias -2: the termination gates start by
# letting every region run all T steps (lbie.models.lbie.RecurrentAttentiveFusion).  With attention alone, LBIE
# fell well below concat at the cpu preset (chapter 5, section 2, "Deviation from the paper").
# identity_w7 / gate_on: as for CoSaL (chapter 4's termination-gate study), W7 starts as the identity and the
# gate reads the GRU's hidden state, so that the later steps are trained and the gates can choose.
# gate_warmup / step_cost: CoSaL's gate warm-up and price per step (lbie.experiments.cosal), off here.
DEFAULTS = dict(method="lbie", steps=None, seed=0, termination="gumbel", tau=[1.0, 0.1], fg_weight=3.0,
                input_skip=True, language="words", mask_padding=True, global_context=True, stop_bias=-2.0,
                identity_w7=True, gate_on="hidden", gate_warmup=0.0, step_cost=0.0)


def segmentation_config(preset: str | None = "auto", **settings) -> dict:
    """The full configuration of a run: the preset's :data:`SCALE_KEYS` (each given and not None
    overrides it), then :data:`DEFAULTS` updated by the other ``settings``.  ``method`` sets T and
    attention (``steps=None``: 3 for ``lbie``; ``concat`` has T = 1 by definition)."""
    cfg = experiment_config("segmentation", preset, settings, SCALE_KEYS, DEFAULTS, "segmentation")
    for key, valid in (("method", METHODS), ("language", LANGUAGES), ("termination", TERMINATIONS)):
        if cfg[key] not in valid:
            raise ValueError(f"unknown {key} {cfg[key]!r}; valid: {', '.join(valid)}")
    steps = METHODS[cfg["method"]]["steps"] if cfg["steps"] is None else int(cfg["steps"])
    if steps < 1 or (cfg["method"] == "concat" and steps != 1):
        raise ValueError(f"steps must be >= 1, and 1 for the concat baseline; got {steps} for {cfg['method']}")
    attention = METHODS[cfg["method"]]["attention"]
    cfg.update(steps=steps, attention=attention, tau=list(cfg["tau"]), channels=list(cfg["channels"]),
               global_context=bool(cfg["global_context"]) and attention, data_version=DATA_VERSION)
    return cfg


def run_name(cfg: dict) -> str:
    """``lbie-T3-cpu-s0``; any other deviation from the preset and :data:`DEFAULTS` appends a config hash."""
    return hashed_run_name(f"{cfg['method']}-T{cfg['steps']}-{cfg['preset']}-s{cfg['seed']}", cfg,
                           segmentation_config(cfg["preset"], method=cfg["method"], steps=cfg["steps"],
                                               seed=cfg["seed"]))


def build_model(cfg: dict) -> LBIE:
    return LBIE(num_classes=2, vocab_size=len(VOCAB) + 1, steps=cfg["steps"], attention=cfg["attention"],
                termination=cfg["termination"], channels=cfg["channels"], text_dim=cfg["text_dim"],
                classifier_hidden=cfg["classifier_hidden"], input_skip=cfg["input_skip"],
                mask_padding=cfg["mask_padding"], global_context=cfg["global_context"],
                stop_bias=cfg["stop_bias"], identity_w7=cfg["identity_w7"], gate_on=cfg["gate_on"])


# --------------------------------------------------------------------------- inputs
def language_tokens(data: ReferringData, language: str = "words") -> np.ndarray:
    """The model's token input: (N, 2, 12) sentences, or (N, 25, 1) words with :data:`SEPARATOR`
    between the sentences, front-padded with 0 (see the module docstring)."""
    if language == "sentences":
        return data.tokens
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    N, S, W = data.tokens.shape
    out = np.zeros((N, S * W + S - 1), dtype=np.int64)
    for i, (tok, n) in enumerate(zip(data.tokens, data.lengths)):
        seq = [w for j in range(S) if n[j] for w in ([SEPARATOR] if j else []) + tok[j, :n[j]].tolist()]
        out[i, out.shape[1] - len(seq):] = seq
    return out[:, :, None]  # (N, L, 1)


def language_labels(data: ReferringData, i: int, language: str = "words") -> list[str]:
    """A label per position of expression ``i``'s token input ("" = padding, "." = separator)."""
    words = VOCAB + (".",)
    tok = language_tokens(_subset(data, [i]), language)[0]
    if language == "words":
        return [words[t] if t else "" for t in tok[:, 0]]
    return [" ".join(words[t] for t in s if t) for s in tok]


def _subset(data: ReferringData, idx) -> ReferringData:
    return ReferringData(**{f.name: getattr(data, f.name)[idx] for f in fields(data)})


def to_images(images) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, H, W) in [-0.5, 0.5] (x / 255 - 0.5, as for CoSaL)."""
    return images.permute(0, 3, 1, 2).float() / 255 - 0.5


def iterate(data: ReferringData, batch_size: int, *, language: str = "words", device="cpu",
            generator: torch.Generator | None = None):
    """Batches (images, tokens, labels 0/1) on ``device``; shuffled when a generator is given."""
    images, masks = torch.from_numpy(data.images), torch.from_numpy(data.masks)
    tokens = torch.from_numpy(language_tokens(data, language))
    order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
    for i in range(0, len(data), batch_size):
        idx = order[i:i + batch_size]
        yield to_images(images[idx].to(device)), tokens[idx].to(device), masks[idx].to(device).long()


@torch.no_grad()
def segmentation_maps(model: LBIE, data: ReferringData, *, language: str = "words", batch_size: int = 250,
                      device=None) -> dict:
    """Over a whole data set: ``pred`` (N, H, W) bool masks, ``prob`` (N, H, W) of "referred", ``stop_prob``
    (N, T, M, N) and ``attention`` (N, T, M*N, L) over the language positions (None without attention)."""
    device = next(model.parameters()).device if device is None else get_device(device)
    was_training = model.training
    model.eval()
    out = {"prob": [], "stop_prob": [], "attention": []}
    for x, t, _ in iterate(data, batch_size, language=language, device=device):
        res = model(x, t)
        out["prob"].append(res.logits.softmax(1)[:, 1].cpu())
        out["stop_prob"].append(res.fusion.stop_prob.cpu())
        out["attention"].append(None if res.fusion.attention is None else res.fusion.attention.cpu())
    model.train(was_training)
    maps = {k: None if v[0] is None else torch.cat(v).numpy() for k, v in out.items()}
    maps["pred"] = maps["prob"] > 0.5  # the arg-max of two classes
    return maps


def predict_segmentation(model: LBIE, data: ReferringData, **kw) -> np.ndarray:
    """Predicted masks (N, H, W) bool (keywords as :func:`segmentation_maps`)."""
    return segmentation_maps(model, data, **kw)["pred"]


def evaluate_segmentation(pred, data: ReferringData) -> dict:
    """Hu et al.'s metrics (:func:`lbie.metrics.segmentation.referring_iou_stats`) of ``pred`` against the data's
    masks, and the same per expression kind under ``by_kind``."""
    pred = np.asarray(pred, dtype=bool)
    stats = referring_iou_stats(pred, data.masks)
    stats["by_kind"] = {k: referring_iou_stats(pred[data.kind == k], data.masks[data.kind == k])
                        for k in KINDS if (data.kind == k).any()}
    return stats


def region_attention(attention, masks) -> np.ndarray:
    """Attention (n, T, M*N, L) averaged over the regions of each mask (n, H, W), weighted by the share of
    each region the mask covers: (n, T, L), what the referred object reads at each step."""
    n, T, R, L = attention.shape
    M = int(math.isqrt(R))
    H = masks.shape[-1]
    w = masks.reshape(n, M, H // M, M, H // M).mean((2, 4)).reshape(n, 1, R, 1)
    return (attention * w).sum(2) / np.maximum(w.sum(2), 1e-8)


# --------------------------------------------------------------------------- training
@dataclass
class SegmentationRun:
    model: LBIE
    history: list
    metrics: dict
    config: dict
    run_dir: Path | None


def train_segmentation(*, preset: str | None = "auto", method: str = "lbie", seed: int = 0, steps: int | None = None,
                       run_dir: str | Path | None = "auto", resume: bool = True, device="auto",
                       stop_after_epoch: int | None = None, **overrides) -> SegmentationRun:
    """Train ``method`` (``"lbie"`` or ``"concat"``) on generated referring expressions, evaluate it on
    the test split and write ``metrics.json``; ``overrides`` are :data:`SCALE_KEYS` and :data:`DEFAULTS`.

    ``run_dir="auto"`` uses ``<runs_dir()>/segmentation/<name>``; ``None`` keeps nothing on disk.  With
    ``resume=True`` a finished run is loaded and an interrupted one continues.
    """
    cfg = segmentation_config(preset, method=method, seed=seed, steps=steps, **overrides)
    run_dir = resolve_run_dir(run_dir, "segmentation", run_name(cfg), cfg)
    device = get_device(device)
    t_start = time.perf_counter()
    train_data = load_referring("train", cfg["n_train"], seed=seed)
    test_data = load_referring("test", cfg["n_test"], seed=seed)

    seed_everything(seed)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.5, 0.999))
    total_steps = -(-len(train_data) // cfg["batch_size"]) * cfg["epochs"]
    language = cfg["language"]

    def batches(epoch):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        return iterate(train_data, cfg["batch_size"], language=language, device=device, generator=g)

    def train_step(batch, step):  # schedules as train_cosal: functions of the step, so resumable
        x, t, y = batch
        progress = step / max(total_steps - 1, 1)
        model.tau = annealed(cfg["tau"][0], cfg["tau"][1], progress)
        price = model.gate_schedule(progress, cfg["gate_warmup"], cfg["step_cost"])  # the price after the warm-up
        for group in optimizer.param_groups:
            group["lr"] = cfg["lr"] * 0.5 * (1 + math.cos(math.pi * progress))
        return lbie_loss(model(x, t), y, fg_weight=cfg["fg_weight"], step_cost=price)

    last = {}

    def evaluate():
        maps = segmentation_maps(model, test_data, language=language)
        steps = maps["stop_prob"].argmax(1)  # (N, M, N) each region's most likely stopping step
        share = lambda sel: (np.bincount(steps[sel].ravel(), minlength=cfg["steps"]) / steps[sel].size).tolist()  # noqa: E731
        last["metrics"] = evaluate_segmentation(maps["pred"], test_data) | {
            "stop_step_share": share(slice(None)),
            "stop_step_share_by_kind": {k: share(test_data.kind == k) for k in KINDS if (test_data.kind == k).any()}}
        return {k: last["metrics"][k] for k in ("overall_iou", "mean_iou", "precision@0.5", "precision@0.9",
                                                "stop_step_share")}

    history = fit(model, optimizer=optimizer, epochs=cfg["epochs"], batches=batches, train_step=train_step,
                  evaluate=evaluate, run_dir=run_dir, config=cfg, resume=resume, eval_every=cfg["eval_every"],
                  stop_after_epoch=stop_after_epoch, log_every=max(1, min(50, total_steps // cfg["epochs"] // 8)))
    done = bool(history) and history[-1]["epoch"] == cfg["epochs"]
    trained_now = done and "metrics" in last  # fit evaluates the last epoch it trains; a loaded run is evaluated here
    if not trained_now:
        evaluate()
    if run_dir is not None and done and (trained_now or not (run_dir / "metrics.json").exists()):
        atomic_save_json({"experiment": "segmentation", "config": cfg, "metrics": last["metrics"], "history": history,
                          "provenance": provenance(device=str(device), preset=cfg["preset"], seed=seed,
                                                   wall_seconds=time.perf_counter() - t_start,
                                                   train_seconds=sum(h["epoch_seconds"] for h in history))},
                         run_dir / "metrics.json")
    return SegmentationRun(model, history, last["metrics"], cfg, run_dir)


def publish_segmentation(run: SegmentationRun, directory: str | Path = CHECKPOINTS) -> Path:
    """Store a finished run's weights in ``checkpoints/`` under ``referring-<name>`` with its sha256 and metrics."""
    name = "referring-" + run_name(run.config)
    return register_checkpoint(run.model.state_dict(), name, run.config, run.metrics, run.history, directory)


def load_or_train_segmentation(*, directory: str | Path = CHECKPOINTS, device="auto", **kwargs) -> SegmentationRun:
    """The published checkpoint of this configuration if there is one (sha256 checked), else
    :func:`train_segmentation` with the same keyword arguments."""
    cfg = segmentation_config(kwargs.get("preset", "auto"), **run_settings(kwargs))
    found = find_checkpoint("referring-" + run_name(cfg), cfg, directory)
    if found is None:
        return train_segmentation(device=device, **kwargs)
    state, entry = found
    model = build_model(cfg)
    model.load_state_dict(state)
    return SegmentationRun(model.to(get_device(device)).eval(), entry["history"], entry["metrics"], cfg, None)


# --------------------------------------------------------------------------- reproduction (Table 3 analog)
def summarise(metrics: list[dict]) -> dict:
    """Mean ± std over runs: ``{"overall_iou", "mean_iou", "precision": {"0.5": ..., ..., "0.9": ...}}``."""
    ms = lambda key: mean_std([m[key] for m in metrics])  # noqa: E731
    return {"overall_iou": ms("overall_iou"), "mean_iou": ms("mean_iou"),
            "precision": {t: ms(f"precision@{t}") for t in PRECISIONS}}


def _segmentation_job(job: dict) -> dict:
    torch.set_num_threads(job.pop("threads"))
    run = load_or_train_segmentation(**job)  # a published checkpoint of the same configuration is not trained again
    return {"job": job, "metrics": run.metrics, "train_seconds": sum(h["epoch_seconds"] for h in run.history)}


def reproduce_referit_synth(*, preset: str | None = "auto", seeds: int = 3, jobs: int = 1,
                            out: str | Path = "results/segmentation.json", threads: int | None = None,
                            **overrides) -> dict:
    """Train LBIE and the concatenation baseline × ``seeds`` (seed by seed, so an interrupted reproduction
    already compares both) and write the Table 3 analog to ``out`` atomically after every run.  ``threads``
    per job: by default the CPU count divided by ``jobs``."""

    preset = resolve_preset(preset)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    t0 = time.perf_counter()
    device = overrides.pop("device", "auto")
    configs = {m: {k: v for k, v in segmentation_config(preset, method=m, **overrides).items() if k != "seed"}
               for m in METHODS}
    prov = provenance(preset=preset, seeds=seeds, jobs=jobs, overrides=overrides, config=configs)
    todo = [dict(preset=preset, method=m, seed=s, threads=threads, device=device, **overrides)
            for s in range(seeds) for m in METHODS]
    finished = {m: [] for m in METHODS}

    def write(complete: bool) -> dict:
        rows = []
        for method, runs in finished.items():
            if not runs:
                continue
            metrics = [r["metrics"] for r in runs]
            by_kind = {k: summarise([m["by_kind"][k] for m in metrics if k in m["by_kind"]])
                       for k in KINDS if any(k in m["by_kind"] for m in metrics)}
            rows.append({"method": method, "label": METHOD_LABELS[method], "T": configs[method]["steps"],
                         "attention": configs[method]["attention"], **summarise(metrics), "by_kind": by_kind,
                         "stop_step_share": mean_shares([{"all": m["stop_step_share"],
                                                          "by_kind": m.get("stop_step_share_by_kind", {})}
                                                         for m in metrics]),
                         "train_seconds": mean_std([r["train_seconds"] for r in runs]),
                         "paper": PAPER_TABLE3[method]})
        result = {"experiment": "referit-synth", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0,
                                 "train_seconds_total": sum(r["train_seconds"] for v in finished.values() for r in v),
                                 "test_expressions": configs["lbie"]["n_test"]},
                  "rows": rows}
        atomic_save_json(result, out)
        return result

    for _, res in recorded_runs(_segmentation_job, todo, jobs, records_folder(out, "segmentation"),
                                config_of=lambda job: segmentation_config(**job), name_of=run_name):
        finished[res["job"]["method"]].append(res)
        write(complete=False)
    return write(complete=True)


def _pct(ms) -> str:
    if ms is None:
        return "–"
    if isinstance(ms, (int, float)):
        return f"{100 * ms:.2f}"
    return f"{100 * ms['mean']:.1f} ± {100 * ms['std']:.1f}" if ms["seeds"] > 1 else f"{100 * ms['mean']:.1f}"


def render_segmentation(result: dict) -> str:
    """Markdown: the Table 3 analog, ours (mean ± std over seeds, %) above the paper's ReferIt numbers,
    then our overall IoU by expression kind."""
    prov = result.get("provenance", {})
    head = " | ".join(f"P@{t}" for t in PRECISIONS)
    lines = [f"Language-based segmentation on generated referring expressions (paper: ReferIt, LBIE Table 3), "
             f"preset `{prov.get('preset')}`, {prov.get('test_expressions')} test expressions, % (mean ± std over "
             f"seeds)" + ("" if result.get("complete", True) else " — INCOMPLETE"), "",
             f"| method | data | {head} | overall IoU | mean IoU |", "|---|---|" + "---|" * (len(PRECISIONS) + 2)]
    for r in result["rows"]:
        for source, v in (("ours, synthetic", r), ("paper, ReferIt", r.get("paper"))):
            if v:
                cells = " | ".join(_pct(v["precision"][t]) for t in PRECISIONS)
                lines.append(f"| {r.get('label', r['method'])} | {source} | {cells} | {_pct(v['overall_iou'])} | "
                             f"{_pct(v.get('mean_iou'))} |")
    kinds = [k for k in KINDS if any(k in r.get("by_kind", {}) for r in result["rows"])]
    if kinds:
        lines += ["", "Overall IoU by expression kind (ours):", "",
                  "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for r in result["rows"]:
            lines.append(f"| {r.get('label', r['method'])} | "
                         + " | ".join(_pct(r["by_kind"].get(k, {}).get("overall_iou")) for k in kinds) + " |")
    return "\n".join(lines + ["", "Mean IoU (average per-expression IoU) is not reported by the paper."])

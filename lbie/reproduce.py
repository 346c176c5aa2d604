"""Reproductions: each trains and evaluates a paper table and writes ``results/<name>.json``.

``python -m lbie reproduce cosal-table2 [--preset paper] [--seeds 3] [--jobs 2]``

Every run keeps its own checkpoint under ``runs/``, and the results file is rewritten
atomically after each finished run, so an interrupted reproduction resumes where it stopped.
"""
from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .config import resolve_preset
from .metrics import mean_std
from .utils import atomic_save_json, provenance

# LBIE paper, Table 2: CoSaL average IoU by number of direct descriptions (C = 3 colours).
PAPER_TABLE2 = {
    (1, False): {4: 0.2107, 6: 0.2499, 8: 0.3186},
    (1, True): {4: 0.4030, 6: 0.5220, 8: 0.7097},
    (4, True): {4: 0.5033, 6: 0.5313, 8: 0.7017},
}
TABLE2_METRICS = ("iou", "iou_determined", "iou_code_metric", "iou_code_metric_determined")
EXPERIMENTS = ("cosal-table2",)


def _table2_job(job: dict) -> dict:
    import torch

    from .cosal_experiment import train_cosal

    torch.set_num_threads(job.pop("threads"))
    run = train_cosal(**job)
    return {"job": job, "metrics": run.metrics,
            "train_seconds": sum(h["epoch_seconds"] for h in run.history)}


def table2_jobs(preset: str, seeds: int, coverages=("released", "full"), termination: str = "gumbel",
                **overrides) -> list[dict]:
    return [dict(preset=preset, coverage=cov, steps=T, attention=att, num_direct=d, seed=s,
                 termination=termination, **overrides)
            for cov, (T, att), d, s in itertools.product(coverages, PAPER_TABLE2, (4, 6, 8), range(seeds))]


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

    def write(complete: bool) -> dict:
        rows = []
        for cov, (T, att), d in itertools.product(coverages, PAPER_TABLE2, (4, 6, 8)):
            runs = [f for f in finished if (f["job"]["coverage"], f["job"]["steps"], f["job"]["attention"],
                                            f["job"]["num_direct"]) == (cov, T, att, d)]
            if not runs:
                continue
            row = {"coverage": cov, "T": T, "attention": att, "num_direct": d}
            for key in TABLE2_METRICS:
                row[key] = mean_std([r["metrics"][key] for r in runs])
            depths = sorted({k for r in runs for k in r["metrics"]["iou_by_depth"]}, key=int)
            row["iou_by_depth"] = {k: mean_std([r["metrics"]["iou_by_depth"][k] for r in runs
                                                if k in r["metrics"]["iou_by_depth"]]) for k in depths}
            row["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
            row["paper"] = PAPER_TABLE2[(T, att)][d]
            rows.append(row)
        # wall_seconds: this invocation (runs finished by an earlier one are only reloaded);
        # train_seconds_total: the training time of every run, wherever it happened
        result = {"experiment": "cosal-table2", "complete": complete,
                  "provenance": {**prov, "wall_seconds": time.perf_counter() - t0,
                                 "train_seconds_total": sum(f["train_seconds"] for f in finished)},
                  "rows": rows}
        atomic_save_json(result, out)
        return result

    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for res in pool.map(_table2_job, todo):
                finished.append(res)
                write(complete=False)
    else:
        for job in todo:
            finished.append(_table2_job(dict(job)))
            write(complete=False)
    return write(complete=True)


def reproduce(experiment: str, **kw) -> dict:
    if experiment == "cosal-table2":
        return reproduce_cosal_table2(**kw)
    raise ValueError(f"unknown experiment {experiment!r}; valid: {', '.join(EXPERIMENTS)}")

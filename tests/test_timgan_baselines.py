"""TIM-GAN's Table 1 baselines (lbie/models/timgan_baselines.py): interface, shapes, gradients, text use."""
import pytest
import torch

from lbie.models.text_encoder import TokenFeatures, cached_text_encoder
from lbie.models.timgan import TIMGAN, EditOutput, lsgan_loss
from lbie.models.timgan_baselines import (BASELINES, TextAdaptiveDiscriminator, build_baseline,
                                          needs_text_discriminator)

TINY = dict(dim=4, head_dim=16, n_res=1, where_res=1)


def _text(lengths=(5, 3), dim=384, seed=0, pad=0) -> TokenFeatures:
    """Fake word features (a real encoder's format: real tokens first, zero padding after);
    ``pad`` more padding columns leave the words unchanged."""
    g = torch.Generator().manual_seed(seed)
    L = max(lengths)
    mask = torch.arange(L + pad)[None] < torch.tensor(lengths)[:, None]
    feats = torch.cat([torch.randn(len(lengths), L, dim, generator=g), torch.zeros(len(lengths), pad, dim)], 1)
    return TokenFeatures(feats * mask[..., None], mask, [])


def _tiny(name, **kw):
    torch.manual_seed(0)
    return build_baseline(name, 384, **(TINY | kw))


@pytest.mark.parametrize("name", BASELINES)
def test_interface_shapes_and_range(name):
    model = _tiny(name)
    assert model.variant == name and model.encoder is model.autoencoder.encoder
    assert model.decoder is model.autoencoder.decoder
    text = _text()
    out = model(torch.rand(2, 3, 64, 64) * 2 - 1, text)
    assert isinstance(out, EditOutput)
    assert out.image.shape == (2, 3, 64, 64) and out.image.abs().max() <= 1
    assert out.feature.shape == (2, 16, 16, 16) and torch.all(out.mask == 1) and out.mask.shape == (2, 1, 16, 16)
    assert out.predicted_mask is None and out.alpha is None and out.where_weights is None
    assert out.t_how.ndim == 2 and len(out.t_how) == 2
    assert out.how_weights.shape == (2, 5) and torch.all(out.how_weights[~text.mask] == 0)
    torch.testing.assert_close(out.how_weights.sum(1), torch.ones(2))
    kw = dict(gt_mask=torch.rand(2, 1, 16, 16), use_gt=torch.tensor([True, False]), tau=0.5, sample=False)
    assert model.edit_features(model.encoder(torch.rand(2, 3, 64, 64)), text, **kw).feature.shape == (2, 16, 16, 16)


@pytest.mark.parametrize("name", BASELINES)
def test_gradients_reach_text_not_frozen_encoder(name):
    model = _tiny(name)
    model.encoder.requires_grad_(False)
    text = _text()
    text.features.requires_grad_(True)
    out = model(torch.rand(2, 3, 64, 64) * 2 - 1, text)
    ((out.image - torch.rand(2, 3, 64, 64)).abs().mean() + out.t_how.square().mean()).backward()
    assert text.features.grad[text.mask].abs().sum() > 0
    assert text.features.grad[~text.mask].abs().sum() == 0  # padding is never read
    for n, p in model.named_parameters():
        if n.startswith("autoencoder.encoder"):
            assert p.grad is None, n
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("name", BASELINES)
def test_text_changes_the_edit_and_padding_does_not(name):
    model = _tiny(name).eval()
    feat = model.encoder(torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        a, b = (model.edit_features(feat, _text(seed=s)).feature for s in (0, 1))
        padded = model.edit_features(feat, _text(seed=0, pad=3)).feature
    assert (a - b).abs().mean() > 1e-4
    torch.testing.assert_close(a, padded, atol=1e-5, rtol=1e-4)


def test_real_instructions_give_different_edits():
    enc = cached_text_encoder()
    text = enc(["add a large cyan circle to the center", "make the small red square in the top left blue"])
    swapped = enc(["make the small red square in the top left blue", "add a large cyan circle to the center"])
    for name in BASELINES:
        model = _tiny(name, dim=8).eval()
        x = torch.rand(1, 3, 64, 64).expand(2, -1, -1, -1)
        with torch.no_grad():
            out, back = model(x, text).image, model(x, swapped).image
        assert (out[0] - out[1]).abs().mean() > 1e-4, name
        torch.testing.assert_close(out, back.flip(0), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", BASELINES)
def test_bf16_autocast_forward(name):
    model = _tiny(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 64, 64), _text())
    assert torch.isfinite(out.image.float()).all()


def test_text_adaptive_discriminator():
    torch.manual_seed(0)
    disc = TextAdaptiveDiscriminator(ndf=8, text_dim=384)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    text = _text()
    text.features.requires_grad_(True)
    d = disc(x, text)
    assert d.shape == (2, 2, 6, 6)  # PatchGAN logits, text score
    score = d[:, 1]
    assert torch.all((score > 0) & (score <= 1)) and torch.all(score == score[:, :1, :1])
    other = disc(x, _text(seed=1))
    assert (other[:, 1] - score).abs().max() > 1e-4  # the score depends on the text
    torch.testing.assert_close(other[:, 0], d[:, 0])  # the patch logits do not
    (lsgan_loss(d, True) + lsgan_loss(disc(x.flip(0), text), False)).backward()
    assert text.features.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())
    with torch.no_grad():
        padded = disc(x, _text(pad=2))
    torch.testing.assert_close(padded, d.detach(), atol=1e-5, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(disc(x, text).float()).all()


def test_factory_errors_and_discriminator_choice():
    with pytest.raises(ValueError, match="tirg, geneva, tagan, dmgan"):
        build_baseline("manigan", 384)
    with pytest.raises(ValueError, match="baseline"):
        build_baseline("tirg", 384, variant="dmgan")
    with pytest.raises(ValueError, match="unknown method"):
        needs_text_discriminator("manigan")
    assert [needs_text_discriminator(n) for n in BASELINES] == [False, False, True, False]
    assert not needs_text_discriminator("timgan")


def test_same_config_builds_timgan_and_every_baseline():
    cfg = dict(dim=4, n_down=2, n_res=1, head_dim=16, layers=2, blocks=3, where_res=1)
    models = [TIMGAN(384, **cfg)] + [build_baseline(n, 384, **cfg) for n in BASELINES]
    shapes = {tuple(m.encoder(torch.rand(1, 3, 64, 64)).shape) for m in models}
    assert shapes == {(1, 16, 16, 16)}


def test_rnn_reads_real_tokens_wherever_they_are():
    """Word features with a non-word column in front (e.g. a kept [CLS]) read like the plain ones."""
    from lbie.models.timgan_baselines import rnn_over_words
    torch.manual_seed(0)
    rnn = torch.nn.GRU(384, 6, batch_first=True, bidirectional=True)
    text = _text()
    shifted = TokenFeatures(torch.cat([torch.randn(2, 1, 384), text.features], 1),
                            torch.cat([torch.zeros(2, 1, dtype=torch.bool), text.mask], 1), [])
    (out, h), (out_s, h_s) = rnn_over_words(rnn, text), rnn_over_words(rnn, shifted)
    torch.testing.assert_close(out_s[:, 1:], out)
    torch.testing.assert_close(h_s, h)
    assert torch.all(out_s[:, 0] == 0) and torch.all(out[~text.mask] == 0)

"""The LBIE model (DESIGN §4.2): shapes, stopping distribution, gradients, attention, decoder."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lbie import LBIE, RecurrentAttentiveFusion, bilinear_kernel, generate_cosal, images_from_labels, lbie_loss
from lbie.models.lbie import IGNORE_LABEL, Decoder

B, C = 3, 4
SWITCHES = list(itertools.product((1, 4), (True, False), ("gumbel", "marginal"), (True, False)))
IDS = [f"T{T}-{'att' if a else 'noatt'}-{term}-{'skip' if s else 'noskip'}" for T, a, term, s in SWITCHES]


@pytest.fixture(scope="module")
def batch():
    data = generate_cosal(B, num_direct=4, seed=0)
    labels = torch.from_numpy(data.labels).long()
    return images_from_labels(labels), torch.from_numpy(data.tokens), labels


def _model(T, att, term, skip, seed=0):
    torch.manual_seed(seed)
    return LBIE(num_classes=C, steps=T, attention=att, termination=term, input_skip=skip)


@pytest.mark.parametrize("T,att,term,skip", SWITCHES, ids=IDS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_output_shapes(batch, T, att, term, skip, mode):
    x, tok, _ = batch
    model = _model(T, att, term, skip)
    model.train(mode == "train")
    out = model(x, tok)
    assert out.logits.shape == (B, C, 48, 48)
    assert out.fusion.outputs.shape == (B, T, 16, 6, 6)
    assert out.fusion.stop_prob.shape == (B, T, 6, 6)
    if att:
        assert out.fusion.attention.shape == (B, T, 36, 9)
    else:
        assert out.fusion.attention is None
    if mode == "train" and term == "marginal" and T > 1:
        assert out.step_logits.shape == (B, T, C, 48, 48)
    else:
        assert out.step_logits is None
    assert torch.isfinite(out.logits).all()
    sp = out.fusion.stop_prob
    assert (sp >= 0).all()
    torch.testing.assert_close(sp.sum(1), torch.ones(B, 6, 6))
    pred = model.predict(x, tok)
    assert pred.shape == (B, 48, 48) and pred.dtype == torch.long
    assert pred.min() >= 0 and pred.max() < C
    assert model.training == (mode == "train")  # predict restores the mode


@pytest.mark.parametrize("T,att,term,skip", SWITCHES, ids=IDS)
def test_gradients_reach_parameters(batch, T, att, term, skip):
    x, tok, y = batch
    model = _model(T, att, term, skip)
    model.train()
    loss = lbie_loss(model(x, tok), y)
    assert torch.isfinite(loss)
    loss.backward()
    # Parameters that this configuration never uses (by design): the attention bilinear map W
    # without attention; with T = 1 the state update W7 and the termination gate feed nothing
    # (the single step's fused map is the output and the last step always stops).
    unused = set()
    if not att:
        unused.add("fusion.W.weight")
    if T == 1:
        unused |= {"fusion.out.weight", "fusion.out.bias", "fusion.stop.weight", "fusion.stop.bias"}
    no_grad = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert no_grad == unused
    for name, p in model.named_parameters():
        if name in unused:
            continue
        assert torch.isfinite(p.grad).all(), name
        if name.startswith(("encoder.", "text.", "fusion.gates", "fusion.cand")):
            assert p.grad.abs().sum() > 0, name
    if skip:
        assert model.skip.weight.grad.abs().sum() > 0
    if T > 1:  # the termination gates are trained in both modes
        assert model.fusion.stop.weight.grad.abs().sum() > 0


def test_attention_rows_sum_to_one():
    torch.manual_seed(0)
    fus = RecurrentAttentiveFusion(8, 5, steps=3, attention=True)
    out = fus(torch.randn(2, 8, 4, 5), torch.randn(2, 7, 5))
    assert out.attention.shape == (2, 3, 20, 7)
    assert (out.attention >= 0).all()
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 3, 20))
    assert out.outputs.shape == (2, 3, 8, 4, 5)
    torch.testing.assert_close(out.stop_prob.sum(1), torch.ones(2, 4, 5))
    off = RecurrentAttentiveFusion(8, 5, steps=3, attention=False)(torch.randn(2, 8, 4, 5), torch.randn(2, 7, 5))
    assert off.attention is None


def test_mask_padding_gives_padding_no_attention():
    torch.manual_seed(0)
    model = LBIE(num_classes=2, vocab_size=10, steps=2, mask_padding=True).eval()
    images = torch.rand(2, 3, 32, 32) - 0.5
    tokens = torch.randint(1, 10, (2, 6, 1))
    tokens[0, :4] = 0  # expression 0: four positions of front padding
    tokens[1] = 0  # expression 1: empty, so it attends everywhere rather than producing NaN
    out = model(images, tokens)
    att = out.fusion.attention  # (B, T, regions, S)
    assert (att[0, :, :, :4] == 0).all() and torch.allclose(att[0].sum(-1), torch.ones_like(att[0, ..., 0]))
    assert torch.isfinite(out.logits).all() and (att[1] > 0).all()
    unmasked = LBIE(num_classes=2, vocab_size=10, steps=2).eval()
    unmasked.load_state_dict(model.state_dict())
    assert (unmasked(images, tokens).fusion.attention[0, :, :, :4] > 0).all()  # the default (CoSaL) attends to all


def test_no_attention_sees_only_last_sentence():
    torch.manual_seed(0)
    fus = RecurrentAttentiveFusion(8, 5, steps=2, attention=False)
    V, U = torch.randn(1, 8, 3, 3), torch.randn(1, 4, 5)
    U2 = U.clone()
    U2[:, :-1] = torch.randn(1, 3, 5)  # change all but the last language vector
    torch.testing.assert_close(fus(V, U).outputs, fus(V, U2).outputs)
    fus_att = RecurrentAttentiveFusion(8, 5, steps=2, attention=True)
    assert not torch.allclose(fus_att(V, U).outputs, fus_att(V, U2).outputs)


def test_global_context_sees_the_whole_expression():
    torch.manual_seed(0)
    V, U = torch.randn(1, 8, 3, 3), torch.randn(1, 4, 5)
    fus = RecurrentAttentiveFusion(8, 5, steps=2, global_context=True)
    assert fus.cand_u.in_channels == 10  # attended context and last language vector side by side
    with torch.no_grad():  # cut the attended context off: only the last language vector is left
        fus.gates.weight[:, 8:13] = 0
        fus.cand_u.weight[:, :5] = 0
    others, last = U.clone(), U.clone()
    others[:, :-1] = torch.randn(1, 3, 5)
    last[:, -1] = torch.randn(1, 5)
    torch.testing.assert_close(fus(V, U).outputs, fus(V, others).outputs)
    assert not torch.allclose(fus(V, U).outputs, fus(V, last).outputs)
    with pytest.raises(ValueError, match="global_context"):
        RecurrentAttentiveFusion(8, 5, attention=False, global_context=True)


def test_stop_bias_sets_the_initial_stopping_distribution():
    V, U = torch.zeros(1, 8, 3, 3), torch.randn(1, 4, 5)
    fus = RecurrentAttentiveFusion(8, 5, steps=3, stop_bias=-30.0)
    with torch.no_grad():
        fus.stop.weight.zero_()
    stop = fus(V, U).stop_prob  # every gate ~0: all the mass on the last step
    torch.testing.assert_close(stop[:, -1], torch.ones_like(stop[:, -1]))
    fus = RecurrentAttentiveFusion(8, 5, steps=3, stop_bias=0.0)
    with torch.no_grad():
        fus.stop.weight.zero_()
    torch.testing.assert_close(fus(V, U).stop_prob[0, :, 0, 0], torch.tensor([0.5, 0.25, 0.25]))


def test_eval_uses_most_likely_stopping_step(batch):
    x, tok, _ = batch
    model = _model(4, True, "gumbel", True).eval()
    with torch.no_grad():
        out = model(x, tok)
        fus = out.fusion
        idx = fus.stop_prob.argmax(1)  # (B, 6, 6)
        O = torch.gather(fus.outputs, 1, idx[:, None, None].expand(-1, 1, 16, -1, -1))[:, 0]
        torch.testing.assert_close(out.logits, model.decode(O, x))


def test_uniform_steps_use_one_step_per_region_and_leave_the_gates_untrained(batch):
    x, tok, labels = batch
    model = _model(4, True, "gumbel", True).train()
    model.uniform_steps = True
    torch.manual_seed(3)
    out = model(x, tok)
    lbie_loss(out, labels).backward()
    assert model.fusion.stop.weight.grad is None or not model.fusion.stop.weight.grad.any()
    # the output is each region's state at a step drawn uniformly: replaying the draw gives the same logits
    torch.manual_seed(3)
    steps = torch.randint(4, out.fusion.stop_prob[:, 0].shape)
    with torch.no_grad():
        O = torch.gather(out.fusion.outputs, 1, steps[:, None, None].expand(-1, 1, 16, -1, -1))[:, 0]
        torch.testing.assert_close(out.logits, model.decode(O, x))
    assert len(steps.unique()) == 4


def test_gate_schedule_warms_up_then_prices_each_step():
    model = _model(4, True, "gumbel", True)
    # during the warm-up the gates are not used, and by default they are not priced either
    assert model.gate_schedule(0.2, 0.5, 0.01) == 0.0 and model.uniform_steps
    assert model.gate_schedule(0.2, 0.5, 0.01, price_in_warmup=True) == 0.01 and model.uniform_steps
    assert model.gate_schedule(0.5, 0.5, 0.01) == 0.01 and not model.uniform_steps
    assert model.gate_schedule(0.0, 0.0, 0.01) == 0.01 and not model.uniform_steps  # no warm-up


@pytest.mark.parametrize("s", [2, 4, 8])
def test_bilinear_kernel_is_bilinear_upsampling(s):
    up = torch.nn.ConvTranspose2d(3, 3, 2 * s, stride=s, padding=s // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(3, 2 * s))
    x = torch.randn(2, 3, 6, 7)
    with torch.no_grad():
        a = up(x)
    b = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
    assert a.shape == b.shape == (2, 3, 6 * s, 7 * s)
    torch.testing.assert_close(a[..., s:-s, s:-s], b[..., s:-s, s:-s], atol=1e-5, rtol=1e-5)
    # channels are not mixed
    w = bilinear_kernel(3, 2 * s)
    assert w[0, 1].abs().sum() == 0 and w[1, 1].sum() > 0


def test_decoder_initialised_bilinear():
    torch.manual_seed(0)
    dec = Decoder(16, C, stride=8)
    O = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        got = dec(O)
        want = F.interpolate(dec.classifier(O), scale_factor=8, mode="bilinear", align_corners=False)
    assert got.shape == (1, C, 48, 48)
    torch.testing.assert_close(got[..., 8:-8, 8:-8], want[..., 8:-8, 8:-8], atol=1e-5, rtol=1e-5)


def test_loss_is_weighted_cross_entropy(batch):
    x, tok, y = batch
    model = _model(4, True, "gumbel", True).eval()
    out = model(x, tok)
    torch.testing.assert_close(lbie_loss(out, y, fg_weight=1.0), F.cross_entropy(out.logits, y))
    w = torch.where(y > 0, 10.0, 1.0)
    ce = F.cross_entropy(out.logits, y, reduction="none")
    torch.testing.assert_close(lbie_loss(out, y), (w * ce).sum() / w.sum())


@pytest.mark.parametrize("termination", ["gumbel", "marginal"])
def test_loss_skips_ignored_pixels(batch, termination):
    """Pixels labelled IGNORE_LABEL add nothing: the loss equals that of the other pixels alone, and the
    ignored pixels' logits get no gradient."""
    x, tok, y = batch
    model = _model(4, True, termination, True).train()
    torch.manual_seed(0)
    out = model(x, tok)
    ignored = torch.zeros_like(y, dtype=torch.bool)
    ignored[:, :16] = True
    y_ignored = torch.where(ignored, IGNORE_LABEL, y)
    logits = out.logits if out.step_logits is None else out.step_logits
    logits.retain_grad()
    loss = lbie_loss(out, y_ignored)
    loss.backward(retain_graph=True)
    assert logits.grad[..., :16, :].abs().sum() == 0 and logits.grad.abs().sum() > 0
    if out.step_logits is None:
        w = torch.where(ignored, 0.0, torch.where(y > 0, 10.0, 1.0))
        ce = F.cross_entropy(out.logits, y, reduction="none")
        torch.testing.assert_close(loss, (w * ce).sum() / w.sum())


def test_marginal_loss_one_step_equals_plain():
    """With a stopping distribution concentrated on one step, the marginal loss is that step's loss."""
    data = generate_cosal(2, seed=1)
    y = torch.from_numpy(data.labels).long()
    x, tok = images_from_labels(y), torch.from_numpy(data.tokens)
    model = _model(4, True, "marginal", True).train()
    out = model(x, tok)
    sp = torch.zeros_like(out.fusion.stop_prob)
    sp[:, 2] = 1.0
    out.fusion.log_stop_prob = sp.log()
    plain = out.__class__(out.step_logits[:, 2], out.fusion)
    torch.testing.assert_close(lbie_loss(out, y), lbie_loss(plain, y), atol=1e-4, rtol=1e-4)


def test_stop_distribution_in_log_space_keeps_later_steps_trainable():
    """log β^t from log-sigmoids equals the paper's product formula, and when the gates have all
    but ruled out the later steps (β ≈ 1e-30, below any clamp) those steps still get a gradient."""
    torch.manual_seed(0)
    fusion = RecurrentAttentiveFusion(4, 3, steps=4)
    V, U = torch.randn(2, 4, 3, 3), torch.randn(2, 5, 3)
    out = fusion(V, U)
    g = torch.sigmoid(torch.stack([fusion.stop(s) for s in _states(fusion, V, U)], 1)[:, :, 0])
    expected = torch.stack([g[:, 0], (1 - g[:, 0]) * g[:, 1], (1 - g[:, 0]) * (1 - g[:, 1]) * g[:, 2],
                            (1 - g[:, 0]) * (1 - g[:, 1]) * (1 - g[:, 2])], 1)
    torch.testing.assert_close(out.stop_prob, expected)
    nn.init.constant_(fusion.stop.bias, 70.0)  # step 1 takes all the mass
    out = fusion(V, U)
    assert out.stop_prob[:, 1:].max() < 1e-25
    out.log_stop_prob[:, 1:].sum().backward()
    assert fusion.stop.weight.grad.abs().sum() > 0


def _states(fusion, V, U):
    """The states S^1..S^T of the fusion's recurrence (its forward pass, unrolled here)."""
    S, states = V, []
    for _ in range(fusion.steps):
        U_hat, _ = fusion.attend(S, U)
        z, r = torch.sigmoid(fusion.gates(torch.cat([S, U_hat], 1))).chunk(2, 1)
        h = (1 - z) * S + z * torch.relu(fusion.cand_s(r * S) + fusion.cand_u(U_hat))
        S = fusion.out(h)
        states.append(S)
    return states


@pytest.mark.parametrize("steps", [0, -1])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        LBIE(steps=steps)


def test_bad_termination():
    with pytest.raises(ValueError, match="termination"):
        LBIE(termination="softmax")

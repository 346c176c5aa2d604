"""The baselines of TIM-GAN's Table 1 (Zhang et al., ACM MM 2021, §4.1; DESIGN §5.1), simplified.

Every baseline maps the frozen encoder's feature ``phi_x = E(x)`` and the instruction to a feature
``phi_hat`` that TIM-GAN's decoder ``G`` turns into the edit, exactly as TIM-GAN does; only the
composition of image and text differs.  Each presents TIM-GAN's interface (``autoencoder``,
``encoder``, ``decoder``, ``variant``, ``edit_features``, ``forward``), so the same training loop and
configuration build and train any of them (the unused keys, e.g. ``where_res``, are ignored).

Each text vector comes from the original's own text encoder type (TIRG: LSTM, GeNeVA and TA-GAN:
bidirectional GRU, DM-GAN: bidirectional LSTM), run over the instruction's word features rather
than word embeddings (TIM-GAN's input, "the same inputs as ours").  What every original keeps out:
noise inputs and conditioning augmentation (no KL term in the loop), multi-stage generation,
attribute/object auxiliary losses.  A fusion over ``phi_x`` concatenated with a broadcast text vector
is batch- (not instance-) normalised, as in the originals: instance norm would subtract the text
(a per-channel constant) right away.  ``EditOutput.mask`` is all ones (no where-module), and
``how_weights`` are the word weights the module uses (uniform when it has no word attention).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .text_encoder import TokenFeatures
from .timgan import VARIANTS, AdaResBlock, AutoEncoder, EditOutput, FeatureEditor, ResBlock

BASELINES = ("tirg", "geneva", "tagan", "dmgan")


def rnn_over_words(rnn: nn.RNNBase, text: TokenFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``rnn`` (batch_first, one layer) over the real tokens only.  Returns the outputs at the
    tokens' own positions, zero elsewhere (B, L, H * dirs), and the final hidden state of every
    direction concatenated (B, H * dirs): forward after the last word, backward after the first."""
    order = (~text.mask).long().argsort(dim=1, stable=True)  # real tokens first, in order
    x = text.features.gather(1, order[..., None].expand_as(text.features))
    lengths = text.mask.sum(1).clamp_min(1).cpu()
    out, h = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    h = h[0] if isinstance(h, tuple) else h  # LSTM: (h, c)
    out = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
    return torch.zeros_like(out).scatter(1, order[..., None].expand_as(out), out), h.transpose(0, 1).flatten(1)


def _uniform(mask: torch.Tensor) -> torch.Tensor:
    """Equal weight on every real token (B, L)."""
    m = mask.float()
    return m / m.sum(1, keepdim=True).clamp_min(1)


def _tile(v: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """A vector (B, D) broadcast over the feature map's positions (B, D, h, w)."""
    return v[:, :, None, None].expand(-1, -1, *feat.shape[2:])


def _fuse(cin: int, cout: int) -> nn.Sequential:
    """conv3x3 + batch norm + ReLU over image feature and broadcast text (see the module docstring)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect", bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def tirg_branches(channels: int, text_dim: int) -> tuple[nn.Sequential, nn.Sequential]:
    """TIRG's gate and residual branches over ``[phi_x, t]`` (google/tirg ``TIRGLastConv``): each
    BN -> conv3x3 -> ReLU -> conv3x3, from ``channels + text_dim`` to ``channels``.  The residual's last
    conv starts at zero, so a fresh composition returns ``w_g * sigmoid(gate) * phi_x``: the image alone."""
    z = channels + text_dim
    gate, residual = (nn.Sequential(nn.BatchNorm2d(z), nn.Conv2d(z, z, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(z, channels, 3, padding=1)) for _ in range(2))
    nn.init.zeros_(residual[-1].weight), nn.init.zeros_(residual[-1].bias)
    return gate, residual


def tirg_compose(feat: torch.Tensor, t: torch.Tensor, gate: nn.Module, residual: nn.Module,
                 w: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
    """TIRG's composition (Vo et al., CVPR 2019, Eq. 1-3) of a feature map ``feat`` (B, C, h, w) and a
    text vector ``t`` (B, D): ``w[0] * sigmoid(gate(z)) * feat + w[1] * residual(z)``, z = [feat, t]
    (and ``extra`` (B, E, h, w) maps, when given: the branches were then built for D + E)."""
    z = torch.cat([feat, _tile(t, feat)] + ([extra] if extra is not None else []), 1)  # (B, C + D [+ E], h, w)
    return w[0] * torch.sigmoid(gate(z)) * feat + w[1] * residual(z)


class _Baseline(FeatureEditor):
    """TIM-GAN's E/G and interface; subclasses implement ``compose(feat, text) -> (phi_hat, t, weights)``."""
    variant = ""

    def __init__(self, variant: str, dim: int, n_down: int, n_res: int, output: str = "tanh"):
        super().__init__()
        if variant != self.variant:
            raise ValueError(f"{type(self).__name__} is the {self.variant!r} baseline, not {variant!r}")
        self.autoencoder = AutoEncoder(dim, n_down, n_res, output)
        self.channels = self.autoencoder.encoder.out_dim

    def compose(self, feat: torch.Tensor, text: TokenFeatures):
        raise NotImplementedError

    def edit_features(self, feat: torch.Tensor, text: TokenFeatures, *, gt_mask=None, use_gt=None, tau: float = 1.0,
                      sample: bool = True) -> EditOutput:
        """phi_hat from phi_x; the mask, temperature and sampling arguments of TIM-GAN are ignored."""
        feature, t, weights = self.compose(feat, text)
        return EditOutput(feature, torch.ones_like(feat[:, :1]), None, None, t, None, weights)

    def forward(self, image: torch.Tensor, text: TokenFeatures, **kw) -> EditOutput:
        out = self.edit_features(self.encoder(image), text, **kw)
        out.image = self.decoder(out.feature)
        return out


class TIRGGAN(_Baseline):
    """TIRG-GAN: TIRG's composition (Vo et al., CVPR 2019), decoded by G (TIM-GAN §4.1).

    TIRG (google/tirg, ``TIRGLastConv``: the variant that modifies the last conv feature map) computes
    ``phi_hat = w_g * sigmoid(gate(z)) * phi_x + w_r * residual(z)``, ``z`` = phi_x concatenated with
    the broadcast text vector, gate and residual each BN -> conv3x3 -> ReLU -> conv3x3, ``(w_g, w_r)``
    learned from (1, 10); the text vector is an LSTM's output after the last word, then a linear layer.
    Kept as is, except that the residual's last conv starts at zero: TIRG L2-normalises its feature
    for retrieval, G does not, and a random residual x 10 would bury phi_x at the start."""
    variant = "tirg"

    def __init__(self, text_dim: int = 384, *, dim: int = 64, n_down: int = 2, n_res: int = 2, head_dim: int = 512,
                 layers: int = 2, blocks: int = 3, where_res: int = 2, variant: str = "tirg",
                 output: str = "tanh"):
        super().__init__(variant, dim, n_down, n_res, output)
        self.lstm, self.text_fc = nn.LSTM(text_dim, head_dim, batch_first=True), nn.Linear(head_dim, head_dim)
        self.gate, self.residual = tirg_branches(self.channels, head_dim)
        self.w = nn.Parameter(torch.tensor([1.0, 10.0]))

    def compose(self, feat, text):
        t = self.text_fc(rnn_over_words(self.lstm, text)[1])  # (B, head_dim)
        return tirg_compose(feat, t, self.gate, self.residual, self.w), t, _uniform(text.mask)


class GeNeVAGAN(_Baseline):
    """GeNeVA-style, one step (El-Nouby et al., ICCV 2019; Maluuba/GeNeVA), as TIM-GAN §4.1 uses it.

    GeNeVA encodes each instruction with a bidirectional GRU (final states, layer norm), projects it,
    runs a GRU over the turns, and its generator grows a 4x4 map from noise + the condition through
    up-sampling ResBlocks with conditional batch norm, concatenating the previous image's features
    at 16x16.  Kept: the sentence encoder and projection, the condition's coarse 4x4 map (up-sampled
    to phi_x's size) concatenated with phi_x, a fusing conv, then ``layers * blocks`` ResBlocks whose
    norms take scale/shift from the condition.  Dropped: the turn GRU (one step from a zero state),
    the noise and the up-sampling (phi_hat stays at G's input size); phi_hat has no skip to phi_x."""
    variant = "geneva"

    def __init__(self, text_dim: int = 384, *, dim: int = 64, n_down: int = 2, n_res: int = 2, head_dim: int = 512,
                 layers: int = 2, blocks: int = 3, where_res: int = 2, variant: str = "geneva",
                 output: str = "tanh"):
        super().__init__(variant, dim, n_down, n_res, output)
        c = self.channels
        self.gru = nn.GRU(text_dim, head_dim // 2, batch_first=True, bidirectional=True)
        self.text = nn.Sequential(nn.LayerNorm(2 * (head_dim // 2)), nn.Linear(2 * (head_dim // 2), head_dim))
        self.seed = nn.Linear(head_dim, c * 16)  # the condition's 4x4 map
        self.fuse = _fuse(2 * c, c)
        self.res = nn.ModuleList(AdaResBlock(c) for _ in range(layers * blocks))
        self.norms = nn.Linear(head_dim, 4 * c * len(self.res))  # conditional norms; zero = plain IN
        nn.init.zeros_(self.norms.weight), nn.init.zeros_(self.norms.bias)

    def compose(self, feat, text):
        t = self.text(rnn_over_words(self.gru, text)[1])  # (B, head_dim)
        seed = nn.functional.interpolate(self.seed(t).view(len(t), -1, 4, 4), size=feat.shape[2:])  # (B, c, h, w)
        x = self.fuse(torch.cat([feat, seed], 1))  # (B, c, h, w)
        for block, params in zip(self.res, self.norms(t).chunk(len(self.res), 1)):
            x = block(x, params)
        return x, t, _uniform(text.mask)


class TAGAN(_Baseline):
    """TA-GAN-style generator (Nam et al., NeurIPS 2018; woozzu/tagan), adapted as in TIM-GAN §4.1.

    TA-GAN's generator averages a bidirectional GRU's states over the words, samples a 128-d
    condition (conditioning augmentation), concatenates it with the image encoder's features, and
    adds ``conv + BN + ReLU + 4 ResBlocks`` of that to them (``decode(e + merge)``).  TIM-GAN feeds
    it "the pre-trained features of the input image and text instruction" concatenated as the
    caption.  Kept: all of that with the condition's mean (``head_dim // 4`` = 128 at the paper's
    size; no sampling) and ``layers * blocks`` ResBlocks.  Its discriminator is
    :class:`TextAdaptiveDiscriminator` (see :func:`needs_text_discriminator`)."""
    variant = "tagan"

    def __init__(self, text_dim: int = 384, *, dim: int = 64, n_down: int = 2, n_res: int = 2, head_dim: int = 512,
                 layers: int = 2, blocks: int = 3, where_res: int = 2, variant: str = "tagan",
                 output: str = "tanh"):
        super().__init__(variant, dim, n_down, n_res, output)
        c, cond = self.channels, max(1, head_dim // 4)
        self.gru = nn.GRU(text_dim, head_dim, batch_first=True, bidirectional=True)
        self.caption = nn.Sequential(nn.Linear(head_dim + c, cond), nn.LeakyReLU(0.2, inplace=True))
        self.merge = nn.Sequential(_fuse(c + cond, c), *[ResBlock(c) for _ in range(layers * blocks)])

    def compose(self, feat, text):
        words = rnn_over_words(self.gru, text)[0].unflatten(-1, (2, -1)).mean(2)  # (B, L, head_dim): (fwd + bwd) / 2
        weights = _uniform(text.mask)
        t = self.caption(torch.cat([(weights[..., None] * words).sum(1), feat.mean((2, 3))], 1))  # (B, cond)
        return feat + self.merge(torch.cat([feat, _tile(t, feat)], 1)), t, weights


class DMGAN(_Baseline):
    """DM-GAN-style (Zhu et al., CVPR 2019; MinfengZhu/DM-GAN), adapted as in TIM-GAN §4.1: a
    text-to-image generator whose input is the image feature concatenated with the sentence vector.

    DM-GAN generates an initial map from noise + the sentence vector, then refines it by a dynamic
    memory: words are written into memory slots ``m_i = M_w(w_i) g_i + M_r(mean h) (1 - g_i)`` with
    a write gate ``g_i = sigmoid(A w_i + B mean h)``; each position reads ``o = sum_i softmax_i(h .
    key_i) value_i``; a response gate ``r = sigmoid(conv1x1([h, o]))`` gives ``h (1 - r) + r o``,
    then ResBlocks and up-sampling; words and sentence come from a bidirectional LSTM.  Kept: one
    refinement stage at phi_x's size with ``layers * blocks`` ResBlocks, the initial map a fusing conv
    over [phi_x, sentence] (no skip to phi_x: it regenerates the feature), the read logits scaled by
    1/sqrt(channels) (DM-GAN's are not; ReLU keys and features would saturate the softmax)."""
    variant = "dmgan"

    def __init__(self, text_dim: int = 384, *, dim: int = 64, n_down: int = 2, n_res: int = 2, head_dim: int = 512,
                 layers: int = 2, blocks: int = 3, where_res: int = 2, variant: str = "dmgan",
                 output: str = "tanh"):
        super().__init__(variant, dim, n_down, n_res, output)
        c, d = self.channels, 2 * (head_dim // 2)
        self.lstm = nn.LSTM(text_dim, head_dim // 2, batch_first=True, bidirectional=True)
        self.init = _fuse(c + d, c)
        self.write_w, self.write_h = nn.Linear(d, 1, bias=False), nn.Linear(c, 1, bias=False)  # A, B
        self.mem_w = nn.Sequential(nn.Linear(d, 2 * c), nn.ReLU(inplace=True))
        self.mem_r = nn.Sequential(nn.Linear(c, 2 * c), nn.ReLU(inplace=True))
        self.key, self.value = (nn.Sequential(nn.Linear(2 * c, c), nn.ReLU(inplace=True)) for _ in range(2))
        self.response = nn.Conv2d(2 * c, 1, 1)
        self.res = nn.Sequential(*[ResBlock(c) for _ in range(layers * blocks)])

    def compose(self, feat, text):
        words, t = rnn_over_words(self.lstm, text)  # (B, L, d), (B, d)
        h = self.init(torch.cat([feat, _tile(t, feat)], 1))  # (B, c, h, w)
        h_avg = h.mean((2, 3)).detach()  # (B, c), detached as in DM-GAN
        g = torch.sigmoid(self.write_w(words) + self.write_h(h_avg)[:, None])  # (B, L, 1)
        memory = self.mem_w(words) * g + self.mem_r(h_avg)[:, None] * (1 - g)  # (B, L, 2c)
        q = h.flatten(2).transpose(1, 2)  # (B, hw, c)
        logits = q @ self.key(memory).transpose(1, 2) / math.sqrt(h.shape[1])  # (B, hw, L)
        att = logits.masked_fill(~text.mask[:, None], float("-inf")).softmax(-1)
        o = (att @ self.value(memory)).transpose(1, 2).reshape(h.shape)  # (B, c, h, w)
        r = torch.sigmoid(self.response(torch.cat([h, o], 1)))  # (B, 1, h, w)
        return self.res(h * (1 - r) + r * o), t, att.mean(1)


class TextAdaptiveDiscriminator(nn.Module):
    """TA-GAN's text-adaptive discriminator (Nam et al., NeurIPS 2018), on a PatchGAN trunk.

    Output (B, 2, h, w), both channels trained toward 1 for real and 0 for fake by ``lsgan_loss``:
    channel 0 is an unconditional PatchGAN logit per patch ("is this patch real"); channel 1 is the
    word-level text-adaptive score in (0, 1], the same at every position ("do the image's features
    match the instruction's words").  The score: each word ``u_i`` (a bidirectional GRU's states
    averaged, as in TA-GAN) generates a filter and bias for each of the trunk's last ``n_levels``
    feature maps, global-average-pooled; ``s_i = sum_l beta_il sigmoid(W_l(u_i) . f_l + b_l(u_i))``
    with level weights ``beta_i = softmax(linear(u_i))``; the sentence score is ``prod_i s_i^a_i``
    with ``a = softmax_i(u_i . mean u)`` over the real words.  Dropped: TA-GAN's extra conv before
    each pooling and its mismatched-caption negatives (the training loop shows only matched text)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, text_dim: int = 384, *, n_layers: int = 3,
                 n_levels: int = 3, word_dim: int | None = None):
        super().__init__()
        word_dim = word_dim or 8 * ndf  # 512 at ndf = 64, TA-GAN's GRU size
        self.stages, c, widths = nn.ModuleList([nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2))]), \
            ndf, [ndf]
        for i in range(1, n_layers + 1):  # PatchDiscriminator's layers
            c_out = ndf * min(2 ** i, 8)
            self.stages.append(nn.Sequential(nn.Conv2d(c, c_out, 4, 2 if i < n_layers else 1, 1, bias=False),
                                             nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2)))
            c = c_out
            widths.append(c)
        self.head = nn.Conv2d(c, 1, 4, 1, 1)
        self.n_levels = min(n_levels, len(widths))
        self.gru = nn.GRU(text_dim, word_dim, batch_first=True, bidirectional=True)
        self.filters = nn.ModuleList(nn.Linear(word_dim, w + 1) for w in widths[-self.n_levels:])
        self.level_weights = nn.Linear(word_dim, self.n_levels)

    def forward(self, image: torch.Tensor, text: TokenFeatures) -> torch.Tensor:
        feats, x = [], image
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        patch = self.head(x)  # (B, 1, h, w)
        u = rnn_over_words(self.gru, text)[0].unflatten(-1, (2, -1)).mean(2)  # (B, L, D)
        m = (_uniform(text.mask)[..., None] * u).sum(1)  # (B, D)
        a = (u @ m[..., None]).squeeze(-1).masked_fill(~text.mask, float("-inf")).softmax(-1)  # (B, L)
        beta = self.level_weights(u).softmax(-1)  # (B, L, levels)
        s = 0
        for l, (f, lin) in enumerate(zip(feats[-self.n_levels:], self.filters)):
            wb = lin(u)  # (B, L, C_l + 1)
            s = s + beta[..., l] * torch.sigmoid((wb[..., :-1] * f.mean((2, 3))[:, None]).sum(-1) + wb[..., -1])
        score = (a * s.clamp(1e-7, 1).log()).sum(-1).exp()  # (B,) = prod_i s_i^a_i
        return torch.cat([patch, score[:, None, None, None].expand_as(patch).to(patch.dtype)], 1)


_CLASSES = {cls.variant: cls for cls in (TIRGGAN, GeNeVAGAN, TAGAN, DMGAN)}


def build_baseline(name: str, text_dim: int = 384, **kw) -> _Baseline:
    """The baseline ``name`` (one of :data:`BASELINES`) with TIMGAN's constructor keys ``kw``."""
    if name not in _CLASSES:
        raise ValueError(f"unknown TIM-GAN baseline {name!r}; valid: {', '.join(BASELINES)}")
    return _CLASSES[name](text_dim, **{"variant": name, **kw})


def needs_text_discriminator(name: str) -> bool:
    """True if the method ``name`` (a baseline or a TIM-GAN variant) trains against
    :class:`TextAdaptiveDiscriminator` (called ``disc(image, text)``) instead of the PatchGAN."""
    if name not in BASELINES and name not in VARIANTS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(VARIANTS + BASELINES)}")
    return name == "tagan"

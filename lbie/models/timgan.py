"""TIM-GAN: text as neural operators (Zhang et al., ACM MM 2021; DESIGN §5.1).

An edit is ``y_hat = G(phi_hat)`` with (paper Eq. 1)

    phi_hat = (1 - M) * phi_x + M * f_how(phi_x),

``phi_x = E(x)`` the frozen encoder's feature map of the source image, ``M = f_where`` a spatial
mask in [0, 1] computed from the *where* text feature (Eq. 4), and ``f_how`` a text-adaptive
routing network (Eq. 5-7): ``layers`` x ``blocks`` residual blocks whose AdaIN scale/shift come
from the *how* text feature, mixed per layer by Gumbel-softmax gates ``alpha``.  The two text
features come from two scaled dot-product attention heads over the instruction's word features
(Eq. 2-3); as in the released code the query also sees the mean image feature.

Ablations (paper Table 2): ``no_where`` (M = 1), ``no_how`` (a fixed network of the same size on
concatenated image and text features), ``no_text_adaptive`` (AdaIN scale/shift are learned
latents instead of being generated from the text).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .text_encoder import TokenFeatures

VARIANTS = ("timgan", "no_where", "no_how", "no_text_adaptive")


def _same_format(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in the memory format of ``x`` (channels_last or contiguous)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y


class ReflectionPad2d(nn.ReflectionPad2d):
    """Reflection padding in the input's dtype: autocast puts ``reflection_pad2d`` on its float32 list,
    so under bf16 autocast every padded conv input went bf16 -> float32 -> bf16 (two copies).  Padding
    only moves values, so running it in bf16 gives the same forward values (the backward then adds the
    gradients of reflected border pixels in bf16)."""

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` whose output keeps the input's memory format.

    The native instance norm returns a contiguous tensor for a channels_last input; every following
    pad, upsampling and conv (and their backward passes) then converted back.  One conversion here
    costs less: with :class:`ReflectionPad2d`, the TIM-GAN training step (bf16 autocast, channels_last,
    one thread, median CPU time) went from 329 to 292 ms at the cpu preset.  GroupNorm(c, c), the same
    function, keeps channels_last too but was 3-10x slower than the native instance norm plus the
    conversions in bf16, and a hand-written norm (``var_mean`` over (2, 3), one ``addcmul``) 1.5-3x
    slower (per layer, forward and backward, torch 2.13)."""

    def forward(self, x):
        return _same_format(super().forward(x), x)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding + conv (no bias: every conv here is followed by a normalisation)."""
    return nn.Sequential(ReflectionPad2d((k - 1) // 2), nn.Conv2d(cin, cout, k, stride, bias=False))


def _norm(c: int, affine: bool = True) -> nn.InstanceNorm2d:
    return InstanceNorm2d(c, affine=affine)


class ResBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x)))))."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), _norm(c), nn.ReLU(inplace=True), _conv(c, c, 3), _norm(c))

    def forward(self, x):
        return x + self.body(x)


class ImageEncoder(nn.Module):
    """E: 7x7 conv then ``n_down`` stride-2 4x4 convs, instance norm + ReLU; width doubles each time."""

    def __init__(self, dim: int = 64, n_down: int = 2, in_ch: int = 3):
        super().__init__()
        layers = [_conv(in_ch, dim, 7), _norm(dim), nn.ReLU(inplace=True)]
        for _ in range(n_down):
            layers += [ReflectionPad2d(1), nn.Conv2d(dim, 2 * dim, 4, 2, bias=False), _norm(2 * dim),
                       nn.ReLU(inplace=True)]
            dim *= 2
        self.net, self.out_dim, self.factor = nn.Sequential(*layers), dim, 2 ** n_down

    def forward(self, x):
        return self.net(x)


OUTPUTS = ("tanh", "tanh_margin", "clamp")
TANH_MARGIN = 1.1


class ImageDecoder(nn.Module):
    """G: residual blocks, then ``n_up`` x (nearest upsampling, 5x5 conv, IN, ReLU), 7x7 conv, and
    the output layer: ``"tanh"`` (the released code); ``"tanh_margin"``, 1.1 tanh, so that pixels at
    the ends of the range (CSS-2D's white canvas is exactly +1) sit where tanh still has a slope; or
    ``"clamp"``, the identity.  The last two are clamped to [-1, 1] at evaluation."""

    def __init__(self, dim: int, n_up: int = 2, n_res: int = 2, out_ch: int = 3, output: str = "tanh"):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"unknown decoder output {output!r}; valid: {', '.join(OUTPUTS)}")
        layers = [ResBlock(dim) for _ in range(n_res)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2), _conv(dim, dim // 2, 5), _norm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [ReflectionPad2d(3), nn.Conv2d(dim, out_ch, 7)] + ([nn.Tanh()] if output != "clamp" else [])
        self.net, self.output = nn.Sequential(*layers), output

    def forward(self, x):
        y = self.net(x)
        if self.output == "tanh_margin":
            y = TANH_MARGIN * y
        return y.clamp(-1, 1) if self.output != "tanh" and not self.training else y


class AutoEncoder(nn.Module):
    """E and G together; pretrained on images alone before TIM-GAN is trained with E frozen."""

    def __init__(self, dim: int = 64, n_down: int = 2, n_res: int = 2, output: str = "tanh"):
        super().__init__()
        self.encoder = ImageEncoder(dim, n_down)
        self.decoder = ImageDecoder(self.encoder.out_dim, n_down, n_res, output=output)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class TextAttentionHead(nn.Module):
    """Scaled dot-product attention over word features (Eq. 2-3).  The query is the projected mean
    word feature, concatenated with the mean image feature (as the released code does);
    padding and special tokens get no weight."""

    def __init__(self, text_dim: int, img_dim: int, dim: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(text_dim + img_dim, dim), nn.Linear(text_dim, dim), \
            nn.Linear(text_dim, dim)

    def forward(self, text: TokenFeatures, img_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.query(torch.cat([text.mean(), img_vec], 1))  # (B, d)
        k, v = self.key(text.features), self.value(text.features)  # (B, L, d)
        logits = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(q.shape[-1])
        weights = logits.masked_fill(~text.mask, float("-inf")).softmax(-1)
        return (weights.unsqueeze(-1) * v).sum(1), weights


def _mlp(din: int, dout: int, hidden: int, n: int = 2) -> nn.Sequential:
    layers, d = [], din
    for _ in range(n - 1):
        layers += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, dout))


def coordinates(x: torch.Tensor) -> torch.Tensor:
    """Two channels (B, 2, H, W) of x and y coordinates in [-1, 1]."""
    B, _, H, W = x.shape
    ys = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy")).unsqueeze(0).expand(B, -1, -1, -1)


class WhereModule(nn.Module):
    """M = sigmoid(W_m * (MLP(phi_where) ⊙ v)), v a conv block over the image feature plus two
    coordinate channels (Eq. 4; the coordinates as in the released code)."""

    def __init__(self, img_dim: int, text_dim: int, n_res: int = 1):
        super().__init__()
        c = img_dim + 2
        self.text_fc = _mlp(text_dim, c, c)
        self.img_conv = nn.Sequential(_conv(c, c, 3), nn.ReLU(inplace=True), _conv(c, c, 3))
        self.out = nn.Sequential(*[ResBlock(c) for _ in range(n_res)], nn.Conv2d(c, 1, 1))

    def forward(self, feat: torch.Tensor, t_where: torch.Tensor) -> torch.Tensor:
        v = self.img_conv(torch.cat([feat, coordinates(feat)], 1))
        return torch.sigmoid(self.out(self.text_fc(t_where)[:, :, None, None] * v))


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance norm: ``instance_norm(x) * gamma + beta`` with a scale and shift per sample and
    channel, ``gamma`` and ``beta`` (B, C).  One batch-norm call over the (1, B * C, H, W) view (what
    ``F.instance_norm`` does) that takes them as its per-channel weight and bias, instead of a norm, a
    multiplication and an addition (and their backward passes); the output keeps ``x``'s memory format."""
    B, C, H, W = x.shape
    y = F.batch_norm(x.reshape(1, B * C, H, W), None, None, gamma.reshape(-1), beta.reshape(-1), True, 0.0, eps)
    return _same_format(y.view(B, C, H, W), x)


class AdaResBlock(nn.Module):
    """A residual block whose two instance norms take their scale/shift from outside (AdaIN)."""

    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = _conv(c, c, 3), _conv(c, c, 3)

    def forward(self, x, params):  # params (B, 4C): gamma1, beta1, gamma2, beta2
        g1, b1, g2, b2 = params.chunk(4, 1)
        h = F.relu(adain(self.c1(x), 1 + g1, b1))
        return x + adain(self.c2(h), 1 + g2, b2)


class TextAdaptiveRouting(nn.Module):
    """f_how: ``layers`` x ``blocks`` AdaIN residual blocks; layer i outputs sum_j alpha_ij o_ij (Eq. 7).

    alpha_i = Gumbel-softmax(MLP(phi_how)_i / tau) over the blocks (Eq. 5); the gate MLP sees the
    text feature detached, as in the released code.  With ``text_adaptive=False`` the AdaIN
    parameters are learned latents, one set per block, shared by every instruction; the gates are
    then the text's only way in, so they see it undetached (else the how head would never train)."""

    def __init__(self, dim: int, text_dim: int, layers: int = 2, blocks: int = 3, text_adaptive: bool = True):
        super().__init__()
        self.layers, self.blocks, self.text_adaptive = layers, blocks, text_adaptive
        n = layers * blocks
        self.res = nn.ModuleList(AdaResBlock(dim) for _ in range(n))
        if text_adaptive:
            self.params = nn.ModuleList(_mlp(text_dim, 4 * dim, text_dim, 3) for _ in range(n))
            for m in self.params:  # start as plain instance-norm blocks (gamma = 1, beta = 0)
                nn.init.zeros_(m[-1].weight), nn.init.zeros_(m[-1].bias)
        else:
            self.latent = nn.Parameter(torch.zeros(n, 4 * dim))
        self.gates = _mlp(text_dim, n, text_dim, 3)

    def adain_params(self, t_how: torch.Tensor) -> torch.Tensor:
        """The AdaIN scale/shift of every block (B, layers * blocks, 4 * dim): the blocks' MLPs (or
        latents) evaluated together, their weights stacked into one matmul per layer."""
        if not self.text_adaptive:
            return self.latent.expand(len(t_how), -1, -1)
        linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in self.params]
        first = [ls[0] for ls in linears]  # every MLP reads the same t_how: one wide linear
        h = F.linear(t_how, torch.cat([m.weight for m in first]), torch.cat([m.bias for m in first]))
        h = h.view(len(t_how), len(first), -1).transpose(0, 1)  # (n, B, hidden)
        for depth in range(1, len(linears[0])):
            layer = [ls[depth] for ls in linears]
            w = torch.stack([m.weight for m in layer]).transpose(1, 2)  # (n, d_in, d_out)
            h = torch.baddbmm(torch.stack([m.bias for m in layer]).unsqueeze(1), F.relu(h), w)
        return h.transpose(0, 1)

    def forward(self, feat, t_how, *, tau: float = 1.0, hard: bool = False, sample: bool = True):
        logits = self.gates(t_how.detach() if self.text_adaptive else t_how).view(-1, self.layers, self.blocks)
        alpha = F.gumbel_softmax(logits, tau=tau, hard=hard) if sample else (logits / tau).softmax(-1)
        params = self.adain_params(t_how)
        x, c = feat, feat.shape[1]
        for i in range(self.layers):
            ks = range(i * self.blocks, (i + 1) * self.blocks)
            g1, b1, g2, b2 = params[:, ks.start:ks.stop].chunk(4, -1)  # (B, blocks, C) each
            # the blocks' first convs read the same x: one conv with their weights stacked, one norm
            c1 = [self.res[k].c1 for k in ks]
            h = F.relu(adain(F.conv2d(c1[0][0](x), torch.cat([m[1].weight for m in c1])), 1 + g1.flatten(1),
                             b1.flatten(1)))
            # sum_j alpha_ij o_ij as 4-d products: the product of a 5-d stack of channels_last maps with
            # alpha took most of the routing's elementwise time.  With the stacked first convs and MLPs,
            # forward + backward of this module at the cpu preset: 72 -> 56 ms of CPU (bf16, one thread)
            mixed = None
            for j, (k, hj) in enumerate(zip(ks, h.split(c, 1))):
                o = x + adain(self.res[k].c2(hj), 1 + g2[:, j], b2[:, j])
                a = alpha[:, i, j, None, None, None]
                mixed = o * a if mixed is None else torch.addcmul(mixed, o, a)
            x = mixed
        return x, alpha


class FixedHow(nn.Module):
    """The ``no_how`` ablation: a fixed network (layers x blocks residual blocks) on the image feature
    concatenated with the broadcast text feature, which first passes a 3-layer MLP.  The MLP's width
    is chosen so that the module has as many parameters as :class:`TextAdaptiveRouting` ("the same
    number of parameters", paper §4.3): what the routing spends on generating AdaIN parameters, this
    network spends on processing the text."""

    def __init__(self, dim: int, text_dim: int, layers: int = 2, blocks: int = 3):
        super().__init__()
        self.inp = nn.Conv2d(dim + text_dim, dim, 1)
        self.res = nn.Sequential(*[ResBlock(dim) for _ in range(layers * blocks)])
        with torch.device("meta"):
            budget = _count(TextAdaptiveRouting(dim, text_dim, layers, blocks)) - _count(self)
        # an MLP t -> h -> h -> t has h^2 + (2t + 2) h + t parameters: solve for h
        b = 2 * text_dim + 2
        hidden = max(1, round((-b + math.sqrt(b * b + 4 * max(budget - text_dim, 0))) / 2))
        self.text = _mlp(text_dim, text_dim, hidden, 3)

    def forward(self, feat, t_how, **_):
        t = self.text(t_how)[:, :, None, None].expand(-1, -1, *feat.shape[2:])
        return self.res(self.inp(torch.cat([feat, t], 1))), None


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class EditOutput:
    """One forward pass: the edited feature/image and everything the losses and chapters use."""
    feature: torch.Tensor  # phi_hat (B, C, h, w)
    mask: torch.Tensor  # M (B, 1, h, w) actually used (predicted, ground truth, or ones)
    predicted_mask: torch.Tensor | None  # the where-module's M (None for no_where)
    alpha: torch.Tensor | None  # routing gates (B, layers, blocks); None for no_how
    t_how: torch.Tensor  # the how head's text feature (B, head_dim)
    where_weights: torch.Tensor | None  # word attention of the where head (B, L); None for no_where
    how_weights: torch.Tensor  # word attention of the how head (B, L)
    image: torch.Tensor | None = None  # G(phi_hat) (B, 3, H, W) in [-1, 1]


class FeatureEditor(nn.Module):
    """A generator that edits in the feature space of a frozen autoencoder (TIM-GAN and the Table 1
    baselines): ``self.autoencoder`` holds E and G."""
    autoencoder: AutoEncoder

    @property
    def encoder(self) -> ImageEncoder:
        return self.autoencoder.encoder

    @property
    def decoder(self) -> ImageDecoder:
        return self.autoencoder.decoder


class TIMGAN(FeatureEditor):
    """The generator side of TIM-GAN: encoder, text heads, where/how modules, decoder.

    ``variant`` is one of :data:`VARIANTS`.  ``text_dim`` is the word-feature size of the text
    encoder; ``dim``/``n_down`` set the autoencoder (paper: 64 and 2, so 256 channels at 1/4)."""

    def __init__(self, text_dim: int = 384, *, dim: int = 64, n_down: int = 2, n_res: int = 2, head_dim: int = 512,
                 layers: int = 2, blocks: int = 3, where_res: int = 2, variant: str = "timgan",
                 output: str = "tanh", how_coords: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown TIM-GAN variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.variant = variant
        self.autoencoder = AutoEncoder(dim, n_down, n_res, output)
        c = self.autoencoder.encoder.out_dim
        has_where = variant != "no_where"
        self.where_head = TextAttentionHead(text_dim, c, head_dim) if has_where else None
        self.how_head = TextAttentionHead(text_dim, c, head_dim)
        self.where = WhereModule(c, head_dim, where_res) if has_where else None
        self.how = (FixedHow(c, head_dim, layers, blocks) if variant == "no_how" else
                    TextAdaptiveRouting(c, head_dim, layers, blocks, text_adaptive=variant != "no_text_adaptive"))
        # how_coords: the how module reads phi_x plus a learned map of the two coordinate channels (a 1x1 conv,
        # zero at the start: the paper's f_how(phi_x)).  On a blank canvas phi_x is the same at every position,
        # so without it f_how draws the same feature over the whole mask and an added object takes the mask's
        # shape; at the cpu preset a small object covers 2 x 2 feature cells.
        self.how_pos = nn.Conv2d(2, c, 1) if how_coords else None
        if self.how_pos is not None:
            nn.init.zeros_(self.how_pos.weight), nn.init.zeros_(self.how_pos.bias)

    def how_input(self, feat: torch.Tensor) -> torch.Tensor:
        """What f_how reads: phi_x, plus the learned coordinate map with ``how_coords``."""
        return feat if self.how_pos is None else feat + self.how_pos(coordinates(feat))

    def edit_features(self, feat: torch.Tensor, text: TokenFeatures, *, gt_mask: torch.Tensor | None = None,
                      use_gt: torch.Tensor | None = None, tau: float = 1.0, sample: bool = True) -> EditOutput:
        """phi_hat from phi_x (Eq. 1).  ``use_gt`` (B,) bool picks, per sample, the ground-truth mask
        instead of the predicted one (the released code's scheduled sampling)."""
        img_vec = feat.mean((2, 3))
        t_how, w_how = self.how_head(text, img_vec)
        pred = w_where = None
        if self.where is not None:
            t_where, w_where = self.where_head(text, img_vec)
            pred = self.where(feat, t_where)
        mask = pred if pred is not None else torch.ones_like(feat[:, :1])
        if pred is not None and use_gt is not None and gt_mask is not None:
            mask = torch.where(use_gt[:, None, None, None], gt_mask, pred)
        edited, alpha = self.how(self.how_input(feat), t_how, tau=tau, sample=sample)
        return EditOutput((1 - mask) * feat + mask * edited, mask, pred, alpha, t_how, w_where, w_how)

    def forward(self, image: torch.Tensor, text: TokenFeatures, **kw) -> EditOutput:
        out = self.edit_features(self.encoder(image), text, **kw)
        out.image = self.decoder(out.feature)
        return out


class PatchDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` stride-2 layers (pix2pix), instance norm, LeakyReLU 0.2."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers, c = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)], ndf
        for i in range(1, n_layers + 1):
            c_out = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_out, 4, 2 if i < n_layers else 1, 1, bias=False), _norm(c_out, affine=False),
                       nn.LeakyReLU(0.2, True)]
            c = c_out
        self.net = nn.Sequential(*layers, nn.Conv2d(c, 1, 4, 1, 1))

    def forward(self, x):
        return self.net(x)


def lsgan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (the released code's ``gan_mode``)."""
    return ((pred - (1.0 if real else 0.0)) ** 2).mean()


def adversarial_loss(disc: nn.Module, fake: torch.Tensor, *cond) -> torch.Tensor:
    """The generator's LSGAN term through the discriminator with detached parameters (``cond``:
    further discriminator inputs, e.g. the caption of a text-conditioned discriminator)."""
    params = {k: v.detach() for k, v in disc.named_parameters()}
    return lsgan_loss(functional_call(disc, params, (fake, *cond)), True)


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, *cond) -> torch.Tensor:
    """The discriminator's LSGAN term: ``real`` toward 1, ``fake`` (detached) toward 0.

    Without ``cond`` and without batch norm in ``disc`` (the PatchGAN: its instance norms are per
    sample, so the result is the same), real and fake go through in one batch."""
    if not cond and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules()):
        pred_real, pred_fake = disc(torch.cat([real, fake.detach()])).chunk(2)
        return lsgan_loss(pred_real, True) + lsgan_loss(pred_fake, False)
    return lsgan_loss(disc(real, *cond), True) + lsgan_loss(disc(fake.detach(), *cond), False)


def gt_mask(feat_x: torch.Tensor, feat_y: torch.Tensor) -> torch.Tensor:
    """The ground-truth mask: channel mean of |E(x) - E(y)|, min-max normalised per sample (B, 1, h, w)."""
    d = (feat_x - feat_y).abs().mean(1, keepdim=True)
    lo = d.amin((2, 3), keepdim=True)
    return (d - lo) / ((d.amax((2, 3), keepdim=True) - lo) + 1e-5)


def gate_diversity_loss(alpha: torch.Tensor, t_feat: torch.Tensor, shifts=(1, 2, 3)) -> torch.Tensor:
    """The released code's gate-diversity term: minus the mean, over batch pairs (i, i + s), of the
    L1 distance between their gates divided by the L1 distance between their text features.
    Pushes different instructions onto different routes (Fig. 5b).

    One deviation: the text distance is floored at 10% of its batch mean, because a batch can hold
    the same instruction twice and the released code's ratio then explodes (distance + 1e-5)."""
    a, t = alpha.flatten(1), t_feat.detach().flatten(1)
    shifts = [s for s in shifts if s < len(a)]
    if not shifts:
        return alpha.new_zeros(())
    gate_d = torch.stack([(a - a.roll(-s, 0)).abs().sum(1) for s in shifts])
    text_d = torch.stack([(t - t.roll(-s, 0)).abs().sum(1) for s in shifts])
    return -(gate_d / text_d.clamp_min(0.1 * text_d.mean() + 1e-5)).mean()

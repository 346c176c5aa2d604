"""The LBIE model (Chen et al., CVPR 2018, §3): image encoder, sentence encoder, recurrent
attentive fusion with per-region termination gates, and a deconvolution decoder.

Sizes default to the paper's CoSaL model (§4.1): six 3x3 convs (4,4,8,8,16,16) with a 2x2
max-pool after every two, 16-unit LSTMs, 16-unit attention and GRU, a 1x1 classifier
(16, classes) and one deconvolution (kernel 16, stride 8) initialised bilinear.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

TERMINATIONS = ("gumbel", "marginal")
# what the termination gate reads: the next state s^{t+1} (the paper's equation) or the GRU's hidden
# state h = Ô^t ("a linear map on top of the hidden state of each GRU cell", paper §4.1)
GATE_INPUTS = ("state", "hidden")


# --------------------------------------------------------------------------- encoders
class ImageEncoder(nn.Module):
    """3x3 convs with ReLU, a 2x2 max-pool after every two layers: (B,3,H,W) → (B,D,H/8,W/8)."""

    def __init__(self, channels=(4, 4, 8, 8, 16, 16), in_channels: int = 3):
        super().__init__()
        layers, c_in = [], in_channels
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.net = nn.Sequential(*layers)
        self.out_channels = c_in

    def forward(self, x):
        return self.net(x)


class SentenceEncoder(nn.Module):
    """CoSaL captions: a shared bi-LSTM encodes each sentence, an LSTM reads the sentence
    vectors; the language feature map U holds one vector per sentence (§4.1)."""

    def __init__(self, vocab_size: int = 20, embed_dim: int = 16, hidden: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.word_lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.sent_lstm = nn.LSTM(2 * hidden, hidden, batch_first=True)
        self.out_dim = hidden

    def forward(self, tokens):  # tokens (B, S, L)
        B, S, L = tokens.shape
        _, (h, _) = self.word_lstm(self.embed(tokens.reshape(B * S, L)))  # h (2, B*S, K)
        sent = h.transpose(0, 1).reshape(B, S, -1)  # (B, S, 2K): final forward and backward states
        U, _ = self.sent_lstm(sent)  # (B, S, K)
        return U


# --------------------------------------------------------------------------- fusion
class RegionNorm(nn.Module):
    """Zero mean and unit variance over the channels of every region: (B, D, M, N) → (B, D, M, N)."""

    def forward(self, x):
        return F.layer_norm(x.movedim(1, -1), x.shape[1:2]).movedim(-1, 1)


@dataclass
class FusionOutput:
    outputs: torch.Tensor  # (B, T, D, M, N): intermediate fused maps Ô^t
    log_stop_prob: torch.Tensor  # (B, T, M, N): log-probability of stopping at step t
    attention: torch.Tensor | None  # (B, T, M*N, S): attention of each region over sentences

    @property
    def stop_prob(self) -> torch.Tensor:  # (B, T, M, N), sums to 1 over t
        return self.log_stop_prob.exp()


class RecurrentAttentiveFusion(nn.Module):
    """Recurrent attentive fusion (§3): state S^0 = V; at each step attention
    β_ij ∝ exp(s_i^T W u_j) gives Û^t, a convolutional GRU updates the state
    (z, r gates, ReLU candidate, h = (1-z)⊙S + z⊙c, S^{t+1} = W7 ⊗ h), and a termination gate
    f_tg(s^{t+1}_i) = σ(w·s^{t+1}_i + b) per region gives the stopping distribution
    β^t_i = f_tg(s^t_i) ∏_{k<t} (1 - f_tg(s^k_i)); the last step takes the remaining mass
    (Algorithm 1: a region that never stops outputs its last Ô).

    With ``attention=False`` every region sees the last language vector (the paper's
    concatenation baseline when T = 1).  Options, all off by default (the equations as written,
    PyTorch's initialisation):

    * ``identity_w7``: W7 starts as the identity, so at initialisation S^{t+1} = h and a later step
      starts as a copy of the one before (with a random W7 the later steps start worse than step 1,
      the gates send every region to step 1 and steps 2..T are never trained; chapter 4);
    * ``gate_on="hidden"``: the gate reads the GRU's hidden state h = Ô^t, as the paper's
      implementation details have it (§4.1), instead of s^{t+1};
    * ``stop_bias``: the gates' initial bias (None: PyTorch's default, near 0; positive: regions
      start by stopping early; negative: by running all T steps);
    * ``gate_norm``: the gate reads the state normalised over channels;
    * ``global_context=True`` gives the C-GRU the last language vector (the whole expression, what
      the concatenation baseline tiles) beside the attended Û^t.
    """

    def __init__(self, dim: int, text_dim: int, *, steps: int = 4, attention: bool = True,
                 kernel_size: int = 3, global_context: bool = False, stop_bias: float | None = None,
                 gate_norm: bool = False, identity_w7: bool = False, gate_on: str = "state"):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps (T) must be >= 1, got {steps}")
        if global_context and not attention:
            raise ValueError("global_context adds the last language vector to the attended context; "
                             "without attention the context already is that vector")
        if gate_on not in GATE_INPUTS:
            raise ValueError(f"unknown gate_on {gate_on!r}; valid: {', '.join(GATE_INPUTS)}")
        self.steps, self.attention, self.global_context, self.gate_on = steps, attention, global_context, gate_on
        p = kernel_size // 2
        ctx = 2 * text_dim if global_context else text_dim
        self.W = nn.Linear(text_dim, dim, bias=False)  # bilinear attention s^T W u
        self.gates = nn.Conv2d(dim + ctx, 2 * dim, kernel_size, padding=p)  # W1..W4 → z, r
        self.cand_s = nn.Conv2d(dim, dim, kernel_size, padding=p, bias=False)  # W5
        self.cand_u = nn.Conv2d(ctx, dim, kernel_size, padding=p)  # W6, b
        self.out = nn.Conv2d(dim, dim, kernel_size, padding=p)  # W7
        if identity_w7:  # S^{t+1} = h at initialisation: a later step starts as a copy of the one before
            nn.init.dirac_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.stop = nn.Conv2d(dim, 1, 1)  # termination gate: a linear map of the state
        if stop_bias is not None:
            nn.init.constant_(self.stop.bias, stop_bias)
        # gate_norm: the gate reads each region's state normalised over channels, so its logit stays on
        # the scale of its weights while the state's norm grows from step to step
        self.gate_norm = RegionNorm() if gate_norm else nn.Identity()

    def attend(self, S, U, mask=None):
        """Û^t: (B,D,M,N), (B,S,K) → (B,K,M,N) and the weights (B, M*N, S).  The scores are
        divided by √D (as in the released code) so the softmax starts near uniform.  ``mask``
        (B, S) bool, optional: False marks padding that gets no attention (word-level text)."""
        B, D, M, N = S.shape
        if not self.attention:
            return U[:, -1, :, None, None].expand(-1, -1, M, N), None
        scores = torch.einsum("bdn,bsd->bns", S.flatten(2), self.W(U)) / math.sqrt(D)  # (B, MN, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        beta = scores.softmax(-1)
        U_hat = torch.einsum("bns,bsk->bkn", beta, U).reshape(B, -1, M, N)
        return U_hat, beta

    def forward(self, V, U, mask=None) -> FusionOutput:
        S, outs, gates, atts = V, [], [], []
        for _ in range(self.steps):
            U_hat, beta = self.attend(S, U, mask)
            if self.global_context:
                U_hat = torch.cat([U_hat, U[:, -1, :, None, None].expand_as(U_hat)], 1)
            z, r = torch.sigmoid(self.gates(torch.cat([S, U_hat], 1))).chunk(2, 1)
            c = F.relu(self.cand_s(r * S) + self.cand_u(U_hat))
            h = (1 - z) * S + z * c  # Ô^t
            S = self.out(h)  # S^{t+1}
            outs.append(h)
            gates.append(self.stop(self.gate_norm(S if self.gate_on == "state" else h))[:, 0])  # (B, M, N)
            atts.append(beta)
        a = torch.stack(gates, 1)  # (B, T, M, N) gate logits
        # log β^t = log f_tg(s^t) + Σ_{k<t} log(1 - f_tg(s^k)), in log-sigmoids: exact where β^t
        # underflows, so a step the gates have nearly ruled out still gets a gradient
        log_go = F.logsigmoid(-a[:, :-1]).cumsum(1)  # log of surviving steps 1..t
        log_stop = torch.cat([F.logsigmoid(a[:, :1]), F.logsigmoid(a[:, 1:-1]) + log_go[:, :-1], log_go[:, -1:]], 1) \
            if self.steps > 1 else torch.zeros_like(a)  # the last step takes what remains
        attention = torch.stack(atts, 1) if self.attention else None
        return FusionOutput(torch.stack(outs, 1), log_stop, attention)


# --------------------------------------------------------------------------- decoder
def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights (C, C, k, k) that make a transposed convolution bilinear upsampling."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    w = torch.zeros(channels, channels, kernel_size, kernel_size)
    w[range(channels), range(channels)] = filt1d[:, None] * filt1d[None, :]
    return w


class Decoder(nn.Module):
    """Two 1x1 convs (classifier) then one transposed conv, initialised bilinear, that upsamples
    by ``stride`` (§4.1: kernel 16, stride 8)."""

    def __init__(self, dim: int, num_classes: int, *, hidden: int = 16, stride: int = 8):
        super().__init__()
        self.classifier = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(hidden, num_classes, 1))
        k = 2 * stride
        self.up = nn.ConvTranspose2d(num_classes, num_classes, k, stride=stride, padding=stride // 2)
        with torch.no_grad():
            self.up.weight.copy_(bilinear_kernel(num_classes, k))
            self.up.bias.zero_()

    def forward(self, O):
        return self.up(self.classifier(O))


# --------------------------------------------------------------------------- the model
@dataclass
class LBIEOutput:
    logits: torch.Tensor  # (B, C, H, W) from the selected (sampled or most likely) stopping steps
    fusion: FusionOutput
    step_logits: torch.Tensor | None = None  # (B, T, C, H, W), "marginal" training only


class LBIE(nn.Module):
    """Language-based segmentation/colourisation network for CoSaL (§3, §4.1).

    ``termination="gumbel"`` (paper): during training the stopping step of each region is a
    Gumbel-softmax sample at temperature ``tau`` (annealed by the caller) over log β^t_i, and the
    region's output is the sample-weighted mix of its Ô^t.  ``"marginal"`` (released code):
    every step is decoded and the loss marginalises the stopping step per pixel
    (:func:`lbie_loss`).  At evaluation both take the most likely stopping step.
    """

    def __init__(self, *, num_classes: int = 4, vocab_size: int = 20, steps: int = 4,
                 attention: bool = True, termination: str = "gumbel",
                 channels=(4, 4, 8, 8, 16, 16), text_dim: int = 16, classifier_hidden: int = 16,
                 input_skip: bool = True, mask_padding: bool = False, global_context: bool = False,
                 stop_bias: float | None = None, gate_norm: bool = False, identity_w7: bool = False,
                 gate_on: str = "state"):
        super().__init__()
        # mask_padding: language positions whose tokens are all 0 (padding) get no attention.  Off for
        # CoSaL, whose nine sentences are always present (and whose published weights predate it).
        self.mask_padding = mask_padding
        if termination not in TERMINATIONS:
            raise ValueError(f"unknown termination {termination!r}; valid: {', '.join(TERMINATIONS)}")
        self.termination = termination
        self.encoder = ImageEncoder(channels)
        self.text = SentenceEncoder(vocab_size, text_dim, text_dim)
        D = self.encoder.out_channels
        self.fusion = RecurrentAttentiveFusion(D, text_dim, steps=steps, attention=attention,
                                               global_context=global_context, stop_bias=stop_bias,
                                               gate_norm=gate_norm, identity_w7=identity_w7, gate_on=gate_on)
        stride = 2 ** (len(channels) // 2)
        self.decoder = Decoder(D, num_classes, hidden=classifier_hidden, stride=stride)
        # Deviation (documented): a 1x1 conv that sees the input image at full resolution next to
        # the upsampled logits.  CoSaL's coloured pixels are exactly the input's black pixels, but a
        # 6x6 map upsampled by one deconvolution cannot draw 16 px shapes; the skip separates
        # the language reasoning that Table 2 measures from drawing boundaries.
        self.skip = nn.Conv2d(num_classes + 3, num_classes, 1) if input_skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)
        self.tau = 1.0  # Gumbel-softmax temperature; the training loop anneals it
        # set by the training loop during a gate warm-up: each region's stopping step is drawn uniformly, so
        # every step's output is trained on every region and the gates (not used) learn nothing yet
        self.uniform_steps = False
        # channels_last makes these small convolutions 1.5-4x faster on CPU (see lbie.bench)
        self.to(memory_format=torch.channels_last)

    @property
    def steps(self) -> int:
        return self.fusion.steps

    def gate_schedule(self, progress: float, warmup: float, step_cost: float,
                      price_in_warmup: bool = False) -> float:
        """Set the gate warm-up for the training step at ``progress`` in [0, 1] (:attr:`uniform_steps` while
        ``progress < warmup``) and return the price per step to pass to :func:`lbie_loss`: ``step_cost``,
        except during the warm-up unless ``price_in_warmup`` (the gates are not used then, so a price would
        be their only gradient and would teach every gate to stop at step 1)."""
        self.uniform_steps = progress < warmup
        return step_cost if price_in_warmup or not self.uniform_steps else 0.0

    def forward(self, images, tokens) -> LBIEOutput:
        V = self.encoder(images.contiguous(memory_format=torch.channels_last))  # (B, D, M, N)
        U = self.text(tokens)  # (B, S, K)
        mask = None
        if self.mask_padding:
            mask = tokens.ne(0).flatten(2).any(-1)  # (B, S): False = a padding position
            mask = mask | ~mask.any(-1, keepdim=True)  # an empty expression attends everywhere (no NaN)
        fus = self.fusion(V, U, mask)
        B, T, D, M, N = fus.outputs.shape
        if self.training and self.termination == "marginal" and T > 1:
            step_logits = self.decode(fus.outputs.reshape(B * T, D, M, N), images.repeat_interleave(T, 0))
            step_logits = step_logits.reshape(B, T, *step_logits.shape[1:])
            return LBIEOutput(self._select(step_logits, fus.stop_prob), fus, step_logits)
        if self.training and T > 1 and self.uniform_steps:
            steps = torch.randint(T, (B, M, N), device=fus.outputs.device)
            weights = F.one_hot(steps, T).permute(0, 3, 1, 2).to(fus.outputs.dtype)
        elif self.training and T > 1:  # Gumbel-softmax relaxation of the stopping step
            weights = F.gumbel_softmax(fus.log_stop_prob, tau=self.tau, hard=False, dim=1)  # (B, T, M, N)
        else:
            weights = F.one_hot(fus.stop_prob.argmax(1), T).permute(0, 3, 1, 2).to(fus.outputs.dtype)
        O = (weights[:, :, None] * fus.outputs).sum(1)  # (B, D, M, N)
        return LBIEOutput(self.decode(O, images), fus)

    def decode(self, O, images):
        """Fused map (B, D, M, N) → logits (B, C, H, W)."""
        logits = self.decoder(O)
        if self.skip is not None:
            logits = logits + self.skip(torch.cat([logits, images.to(logits.dtype)], 1))
        return logits

    @staticmethod
    def _select(step_logits, stop_prob):
        """Logits at each region's most likely stopping step (upsampled to pixels)."""
        T = step_logits.shape[1]
        idx = stop_prob.argmax(1)
        idx = regions_to_pixels(idx, step_logits.shape[-1])  # (B, H, W)
        onehot = F.one_hot(idx, T).permute(0, 3, 1, 2)[:, :, None]
        return (step_logits * onehot).sum(1)

    @torch.no_grad()
    def predict(self, images, tokens) -> torch.Tensor:
        """Predicted label map (B, H, W)."""
        was = self.training
        self.eval()
        try:
            return self(images, tokens).logits.argmax(1)
        finally:
            self.train(was)


def regions_to_pixels(x, size: int):
    """Repeat a per-region map (..., M, N) to pixels (..., size, size): each region covers a block."""
    scale = size // x.shape[-1]
    return x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)


# A pixel labelled IGNORE_LABEL is no training target: it gets weight 0 in :func:`lbie_loss`
IGNORE_LABEL = 255


def pixel_weights(labels, fg_weight: float):
    """The released code weights foreground pixels ``fg_weight`` (10) and background 1; a pixel labelled
    :data:`IGNORE_LABEL` weighs 0."""
    return torch.where(labels == IGNORE_LABEL, 0.0, torch.where(labels > 0, fg_weight, 1.0))


def expected_extra_steps(fusion: FusionOutput) -> torch.Tensor:
    """Mean over regions of E[t - 1] under the stopping distribution β (0: every region stops at step 1)."""
    T = fusion.log_stop_prob.shape[1]
    t = torch.arange(T, device=fusion.log_stop_prob.device, dtype=fusion.log_stop_prob.dtype)
    return (fusion.stop_prob * t[None, :, None, None]).sum(1).mean()


def lbie_loss(out: LBIEOutput, labels, *, fg_weight: float = 10.0, step_cost: float = 0.0):
    """Pixel-wise softmax cross-entropy (§3), weighted as in the released code.

    With ``step_logits`` (marginal termination) the stopping step is marginalised per pixel:
    -log Σ_t β^t p(y | Ô^t), the stopping distribution upsampled to pixels.
    ``step_cost`` > 0 adds ``step_cost`` x :func:`expected_extra_steps` (a deviation: a price per
    fusion step, as in adaptive computation time, so that a region runs on only when reading more
    lowers its loss by more than that price).  Pixels labelled :data:`IGNORE_LABEL` add nothing.
    """
    w = pixel_weights(labels, fg_weight)
    if out.step_logits is None:
        nll = F.cross_entropy(out.logits, labels, reduction="none", ignore_index=IGNORE_LABEL)
    else:
        B, T, C, H, W = out.step_logits.shape
        logp_y = -F.cross_entropy(out.step_logits.reshape(B * T, C, H, W), labels.repeat_interleave(T, 0),
                                  reduction="none", ignore_index=IGNORE_LABEL).reshape(B, T, H, W)
        log_stop = regions_to_pixels(out.fusion.log_stop_prob, H)  # (B, T, H, W)
        nll = -torch.logsumexp(log_stop + logp_y, dim=1)
    loss = (w * nll).sum() / w.sum()
    return loss + step_cost * expected_extra_steps(out.fusion) if step_cost else loss

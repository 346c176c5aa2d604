"""LBIE as a language-based colouriser (Chen et al., CVPR 2018, §3 and §4.3): the generator predicts the
CIE-Lab ab channels of a flower from its lightness L and a caption; a discriminator sees the Lab image and
the caption.

Both are built from the LBIE components of :mod:`lbie.models.lbie`:

* **generator** (:class:`Colorizer`): :class:`~lbie.models.lbie.ImageEncoder` on L → V (B, D, H/8, W/8);
  :class:`WordEncoder`, a bi-LSTM over the caption's words → U (B, L, K); one step of
  :class:`~lbie.models.lbie.RecurrentAttentiveFusion` (attention over words; §4.3: "the maximum length of
  the spatial RNN is 1"); :class:`~lbie.models.lbie.Decoder` to 2 channels, upsampled x8 (bilinear
  initialisation); then a documented addition, a residual full-resolution refinement (three 3x3 convs on
  [upsampled ab, L]) that snaps the colours to the edges in L, the colouriser's counterpart of the CoSaL
  model's input skip; ``tanh`` bounds ab / :data:`AB_SCALE` to [-1, 1].
* **discriminator** (:class:`TextDiscriminator`): the PatchGAN trunk of :class:`~lbie.models.timgan.PatchDiscriminator`
  on (L, a, b); its own :class:`WordEncoder` and attention (parameters not shared with the generator's, as in
  the paper) align the words with each image region through a one-step fusion; a 1x1 conv scores each patch.

Inputs: L in [0, 100] (B, 1, H, W); tokens (B, 1, 20) ids into :data:`lbie.data.flowers.VOCAB`, 0 = padding.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..data.flowers import MAX_WORDS, TOKEN, VOCAB, lab_to_rgb
from ..data.referring import encode_texts
from .lbie import Decoder, ImageEncoder, RecurrentAttentiveFusion
from .timgan import PatchDiscriminator

AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below ~110: the networks see ab / AB_SCALE


def normalize_lab(L, ab=None) -> torch.Tensor:
    """Network scale: L (B,1,H,W) in [0, 100] → L / 50 - 1; with ab (B,2,H,W) in Lab units, (L, a, b) stacked."""
    x = L / 50 - 1
    return x if ab is None else torch.cat([x, ab / AB_SCALE], 1)


def tokenize(texts) -> torch.Tensor:
    """Captions (str or list of str; case and a final full stop ignored) → tokens (N, 1, MAX_WORDS)."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    clean = [" ".join(t.lower().strip().rstrip(".").replace(",", " ,").split()) for t in texts]
    return torch.from_numpy(encode_texts(clean, TOKEN, 1, MAX_WORDS)[0])


class WordEncoder(nn.Module):
    """Word embedding + bi-LSTM: tokens (B, S, L) → per-word features U (B, S*L, K) and the mask (B, S*L) of
    real words (the first position always counts, so an empty caption still has something to attend)."""

    def __init__(self, vocab_size: int = len(VOCAB), dim: int = 64):
        super().__init__()
        if dim % 2:
            raise ValueError(f"text_dim must be even (two LSTM directions), got {dim}")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self.out_dim = dim

    def forward(self, tokens):
        words = tokens.flatten(1)  # (B, S*L)
        U, _ = self.lstm(self.embed(words))  # (B, S*L, K)
        mask = words != 0
        mask[:, 0] = True
        return U, mask


class Colorizer(nn.Module):
    """The LBIE generator for colourisation: (L, caption) → ab (B, 2, H, W) in Lab units (module doc)."""

    def __init__(self, *, width: int = 32, text_dim: int = 64, use_text: bool = True, vocab_size: int = len(VOCAB)):
        super().__init__()
        self.use_text = use_text  # False: the no-text baseline, every caption blanked to padding
        self.encoder = ImageEncoder((width, width, 2 * width, 2 * width, 4 * width, 4 * width), in_channels=1)
        self.text = WordEncoder(vocab_size, text_dim)
        D = self.encoder.out_channels
        self.fusion = RecurrentAttentiveFusion(D, text_dim, steps=1)
        self.decoder = Decoder(D, 2, hidden=D // 2, stride=8)
        r = max(width // 2, 8)
        self.refine = nn.Sequential(nn.Conv2d(3, r, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(r, r, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(r, 2, 3, padding=1))
        nn.init.zeros_(self.refine[-1].weight)  # starts as the plain LBIE decoder
        nn.init.zeros_(self.refine[-1].bias)
        self.to(memory_format=torch.channels_last)

    def forward(self, L, tokens, *, return_attention: bool = False):
        x = normalize_lab(L).contiguous(memory_format=torch.channels_last)
        U, mask = self.text(tokens if self.use_text else torch.zeros_like(tokens))  # (B, W, K), (B, W)
        fus = self.fusion(self.encoder(x), U, mask)  # outputs (B, 1, D, H/8, W/8)
        coarse = self.decoder(fus.outputs[:, -1])  # (B, 2, H, W)
        ab = AB_SCALE * torch.tanh(coarse + self.refine(torch.cat([coarse, x], 1)))
        return (ab, fus.attention[:, -1]) if return_attention else ab  # attention (B, H/8*W/8, words)


class TextDiscriminator(nn.Module):
    """PatchGAN on the Lab image, conditioned on the caption by word attention per region (module doc):
    (B, 3, H, W) network-scale Lab, tokens → patch scores (B, 1, h, w)."""

    def __init__(self, *, ndf: int = 32, n_layers: int = 3, text_dim: int = 64, vocab_size: int = len(VOCAB)):
        super().__init__()
        self.features = PatchDiscriminator(in_ch=3, ndf=ndf, n_layers=n_layers).net[:-1]  # without the scoring conv
        C = ndf * min(2 ** n_layers, 8)
        self.text = WordEncoder(vocab_size, text_dim)
        self.align = RecurrentAttentiveFusion(C, text_dim, steps=1)
        self.score = nn.Conv2d(C, 1, 1)
        self.to(memory_format=torch.channels_last)

    def forward(self, lab, tokens):
        U, mask = self.text(tokens)
        fus = self.align(self.features(lab.contiguous(memory_format=torch.channels_last)), U, mask)
        return self.score(fus.outputs[:, -1])


def to_rgb_uint8(L, ab) -> np.ndarray:
    """L (B,1,H,W) and ab (B,2,H,W) in Lab units → sRGB uint8 (B, H, W, 3) numpy (out-of-gamut colours clipped)."""
    rgb = lab_to_rgb(torch.cat([L, ab], 1).detach().float().cpu(), axis=1)
    return (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

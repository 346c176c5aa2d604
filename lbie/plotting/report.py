"""The reproduction report's figure (chapter 14): every paper claim checked on our results."""
from __future__ import annotations

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np

from .style import COLUMN_WIDTH, column_figsize

VERDICT_COLOR = {"reproduced": "tab:green", "partly": "tab:orange", "not": "tab:red"}


def plot_claims(claims, *, separation: float = 2.0, limit: float = 8.0, title: str | None = None):
    """The paper's claims (the DataFrame of :func:`lbie.experiments.report.claims`), one bar each, one panel per paper
    table: our gap in units of the combined std over seeds, positive when it has the paper's sign (bars past
    ``limit`` are cut there and marked); colour = verdict.  Claims whose rows are missing are left out and
    counted in the panel's title."""
    tables = [t for t in dict.fromkeys(claims["table"]) if (claims[claims["table"] == t]["verdict"] != "missing").any()]
    counts = [int((claims[claims["table"] == t]["verdict"] != "missing").sum()) for t in tables]
    height = 0.9 + 0.19 * sum(counts) + 0.45 * len(tables)
    fig, axes = plt.subplots(len(tables), 1, figsize=column_figsize(COLUMN_WIDTH, height), sharex=True,
                             gridspec_kw={"height_ratios": counts}, squeeze=False)
    for ax, table in zip(axes[:, 0], tables):
        rows = claims[claims["table"] == table]
        shown = rows[rows["verdict"] != "missing"]
        signed = np.sign(shown["gap"]) * np.sign(shown["paper gap"]) * shown["separation"]
        values = np.clip(signed.to_numpy(dtype=float), -limit, limit)
        y = np.arange(len(shown))[::-1]
        ax.barh(y, values, color=[VERDICT_COLOR[v] for v in shown["verdict"]], height=0.7)
        for yi, v, raw, seeds in zip(y, values, signed, shown["seeds"]):
            if abs(raw) > limit:
                ax.text(v, yi, " ›" if v > 0 else "‹ ", ha="left" if v > 0 else "right", va="center", fontsize=8)
            if seeds < 2:
                ax.text(0, yi, " 1 seed", va="center", fontsize=8)
        ax.set_yticks(y, shown["label"], fontsize=8)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.axvline(separation, color="0.3", lw=0.8, ls="--")
        missing = len(rows) - len(shown)
        ax.set_title(table + (f" ({missing} claims missing from the results)" if missing else ""), fontsize=9)
    axes[-1, 0].set_xlim(-limit - 0.5, limit + 0.5)
    axes[-1, 0].set_xlabel(f"our gap / combined std  (> 0: the paper's sign; dashed: {separation:g}, 'reproduced')")
    handles = [patches.Patch(color=c, label=v) for v, c in VERDICT_COLOR.items()]
    fig.legend(handles=handles, loc="upper right", ncol=3, fontsize=8, frameon=False)
    absent = [t for t in dict.fromkeys(claims["table"]) if t not in tables]
    fig.suptitle((title or "The paper's claims, checked on our results")
                 + (f"\nno results yet: {', '.join(absent)}" if absent else ""), x=0.02, ha="left")
    fig.tight_layout()
    return fig

"""The reproduction report: every paper table's claims checked against ``results/*.json``.

Everything here is computed from the results files and from the paper's numbers kept in the package
(:data:`lbie.experiments.reproduce.PAPER_TABLE2`, :data:`lbie.experiments.reproduce.PAPER_TIMGAN`,
:data:`lbie.experiments.segmentation.PAPER_TABLE3`, :data:`lbie.experiments.colorization.PAPER_TABLE4`):

* :func:`entries` -- one row per paper table, method (or configuration) and metric: the paper's value, ours
  (mean, std, seeds), ours / paper, training minutes, preset and hardware;
* :func:`claims` -- every gap the paper reports, judged by :data:`VERDICT_RULE`;
* :func:`summary` and :func:`render_summary` -- one line per paper table (the README's summary).

Reading the files -- :func:`check_results`, :func:`currency` (is a file from the current code?) and
:func:`compute` (what it cost) -- is :mod:`lbie.experiments.results_files`; the deviations from the paper and the
released code are listed in :mod:`lbie.experiments.deviations`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .colorization import PAPER_TABLE4
from .reproduce import PAPER_TABLE2, PAPER_TIMGAN, RESULT_FILES
from .results_files import (TABLES, ResultsError, check_result, check_results, compute, currency,  # noqa: F401
                            currency_note, hardware, load_results, table2_key)
from .segmentation import METHOD_LABELS, PAPER_TABLE3, PRECISIONS
from ..models.timgan import VARIANTS
from ..models.timgan_baselines import BASELINES

SEPARATION = 2.0  # combined standard deviations a gap must clear to count as reproduced
VERDICTS = ("reproduced", "partly", "not", "missing")
VERDICT_RULE = (
    "A gap is the first method's advantage over the second in the paper's direction (positive: the first is "
    "better; a lower FID is better). Verdict: **reproduced** when our gap has the paper's sign and is at least "
    f"{SEPARATION:g} combined standard deviations (the root of the sum of both rows' variances over seeds) away "
    "from zero, with at least 2 seeds on each side; **partly** when the sign matches but the separation is "
    "smaller, or a side has a single seed; **not** when our gap has the opposite sign (or is exactly zero); "
    "**missing** when a row is not in the results file. Absolute numbers are compared by the ratio ours / paper.")
COVERAGES = ("released", "full")
# metric -> (label, scale of the recorded value, format, higher is better)
METRICS = {"iou": ("IoU", 1, ".3f", True), "iou_relational": ("IoU, relational cells", 1, ".3f", True),
           "overall_iou": ("overall IoU (%)", 100, ".1f", True),
           **{f"P@{t}": (f"precision@{t} (%)", 100, ".1f", True) for t in PRECISIONS},
           "consistency": ("consistency", 1, ".3f", True), "quality": ("quality (human)", 1, ".3f", True),
           "fid": ("FID", 1, ".1f", False), "rs1": ("RS@1 (%)", 1, ".1f", True), "rs5": ("RS@5 (%)", 1, ".1f", True)}
TIMGAN_LABELS = {"timgan": "TIM-GAN", "no_where": "no f_where", "no_how": "no f_how",
                 "no_text_adaptive": "no text-adaptive", "tirg": "TIRG-GAN", "geneva": "GeNeVA", "tagan": "TA-GAN",
                 "dmgan": "DM-GAN", "ground_truth": "real images"}
COLORIZATION_LABELS = {"lbie": "LBIE", "no_text": "no text (baseline)", "ground_truth": "ground truth"}


# --------------------------------------------------------------------------- paper vs ours, row by row
def _ms(value, scale: float = 1.0):
    """(mean, std, seeds) of a recorded mean/std/seeds record, scaled; None when there is none."""
    if not value:
        return None
    return value["mean"] * scale, value["std"] * scale, int(value["seeds"])


def _rows_of(table: str, result: dict | None):
    """(key, label, {metric: (paper, recorded value)}, train seconds record) for every row the paper has."""
    rows = (result or {}).get("rows", [])
    if table == "LBIE Table 2":
        by_key = {(r["coverage"], r["T"], r["attention"], r["num_direct"]): r for r in rows
                  if r.get("input_skip", True)}  # the paper's-decoder rows are not cells of the table
        for cov in COVERAGES:
            for (T, att), papers in PAPER_TABLE2.items():
                for d, paper in papers.items():
                    r = by_key.get((cov, T, att, d), {})
                    key = table2_key(cov, T, att, d)
                    # the paper reports no IoU by reasoning depth: ours only
                    yield key, key, {"iou": (paper, r.get("iou")), "iou_relational": (None, r.get("iou_relational"))}, \
                        r.get("train_seconds")
    elif table == "LBIE Table 3":
        by_method = {r["method"]: r for r in rows}
        for m, paper in PAPER_TABLE3.items():
            r = by_method.get(m, {})
            metrics = {"overall_iou": (paper["overall_iou"], r.get("overall_iou"))}
            metrics |= {f"P@{t}": (paper["precision"][t], r.get("precision", {}).get(t)) for t in PRECISIONS}
            yield m, METHOD_LABELS[m], metrics, r.get("train_seconds")
    elif table == "LBIE Table 4":
        by_method = {r["method"]: r for r in rows}
        train = (result or {}).get("provenance", {}).get("train_seconds", {})
        for m, paper in PAPER_TABLE4.items():
            r = by_method.get(m, {})
            yield m, COLORIZATION_LABELS[m], {"consistency": (paper["consistency"], r.get("consistency")),
                                              "quality": (paper["quality"], None),
                                              "fid": (None, r.get("realism", {}).get("fid"))}, train.get(m)
    else:
        by_method = {r["method"]: r for r in rows}
        methods = VARIANTS if table == "TIM-GAN Table 2" else ("timgan", *BASELINES, "ground_truth")
        for m in methods:
            r, paper = by_method.get(m, {}), PAPER_TIMGAN[m]
            yield m, TIMGAN_LABELS[m], {k: (paper[k], r.get(k)) for k in ("rs1", "rs5", "fid")}, r.get("train_seconds")


def entries(results: dict[str, dict]):
    """Paper vs ours for every row and metric of the paper's tables, as a pandas DataFrame: ``table``, ``key``,
    ``row`` (its label), ``metric``, ``paper``, ``ours`` / ``std`` / ``seeds`` (NaN / 0 when the results file
    lacks the row), ``ours / paper``, ``train min`` (mean per run), ``preset``, ``hardware`` and ``file``.
    Values are in the units the paper prints (Table 3 in %)."""
    import pandas as pd

    records = []
    for table, experiment in TABLES.items():
        result = results.get(experiment)
        prov = (result or {}).get("provenance", {})
        for key, label, metrics, train in _rows_of(table, result):
            for metric, (paper, value) in metrics.items():
                scale = METRICS[metric][1]
                ours = _ms(value, scale)
                paper = np.nan if paper is None else paper * scale
                mean, std, seeds = ours if ours else (np.nan, np.nan, 0)
                records.append({"table": table, "key": key, "row": label, "metric": metric, "paper": paper,
                                "ours": mean, "std": std, "seeds": seeds,
                                "ours / paper": mean / paper if paper else np.nan,
                                "train min": train["mean"] / 60 if train and train.get("mean") else np.nan,
                                "preset": prov.get("preset"), "hardware": hardware(prov) if prov else None,
                                "file": RESULT_FILES[experiment]})
    frame = pd.DataFrame.from_records(records)
    frame["seeds"] = frame["seeds"].astype(int)
    return frame


# --------------------------------------------------------------------------- the paper's claims
def gap_verdict(paper_a, paper_b, ours_a, ours_b, *, higher_is_better: bool = True,
                paper_higher_is_better: bool | None = None, separation: float = SEPARATION) -> dict:
    """Judge one gap by :data:`VERDICT_RULE`.  ``paper_a`` / ``paper_b``: the paper's values; ``ours_a`` /
    ``ours_b``: (mean, std, seeds) or None (a missing row).  Gaps are oriented so that positive means ``a`` is
    better (``higher_is_better`` for ours; ``paper_higher_is_better``, default the same, for the paper's metric).
    Returns ``paper gap``, ``gap``, ``combined std``, ``separation`` (|gap| / combined std), ``seeds`` (the
    smaller count) and ``verdict``."""
    sign = lambda better: 1.0 if better else -1.0  # noqa: E731
    p_better = higher_is_better if paper_higher_is_better is None else paper_higher_is_better
    paper_gap = (np.nan if paper_a is None or paper_b is None or np.isnan(paper_a) or np.isnan(paper_b)
                 else sign(p_better) * (paper_a - paper_b))
    if np.isnan(paper_gap) or paper_gap == 0:
        raise ValueError(f"the paper reports no gap between {paper_a!r} and {paper_b!r}: nothing to reproduce")
    out = {"paper gap": paper_gap, "gap": np.nan, "combined std": np.nan, "separation": np.nan, "seeds": 0}
    if ours_a is None or ours_b is None:
        return out | {"verdict": "missing"}
    gap = sign(higher_is_better) * (ours_a[0] - ours_b[0])
    combined = math.hypot(ours_a[1], ours_b[1])
    sep = abs(gap) / combined if combined > 0 else (math.inf if gap else 0.0)
    out |= {"gap": gap, "combined std": combined, "separation": sep, "seeds": min(ours_a[2], ours_b[2])}
    if gap == 0 or np.sign(gap) != np.sign(paper_gap):
        return out | {"verdict": "not"}
    return out | {"verdict": "reproduced" if out["seeds"] >= 2 and sep >= separation else "partly"}


def claim_specs() -> list[dict]:
    """Every gap the paper's tables report: ``table``, ``claim``, a short ``label``, rows ``a`` and ``b`` (keys
    of :func:`entries`), ``metric`` (ours) and ``paper_metric`` (the paper's, when it differs: a stand-in), and
    ``headline``, the claim's text in the one-line summary of its table (None: not a summary claim)."""
    specs = []
    for cov in COVERAGES:
        for d in (4, 6, 8):
            specs.append(dict(table="LBIE Table 2", claim=f"attention beats no attention at T = 1, {cov} coverage",
                              a=table2_key(cov, 1, True, d), b=table2_key(cov, 1, False, d), metric="iou",
                              label=f"{cov}, {d} direct: attention vs none (T = 1)"))
            specs.append(dict(table="LBIE Table 2", claim=f"T = 4 vs T = 1 with attention, {cov} coverage",
                              a=table2_key(cov, 4, True, d), b=table2_key(cov, 1, True, d), metric="iou",
                              label=f"{cov}, {d} direct: T = 4 vs T = 1",
                              headline="T = 4 beats T = 1 with attention when most descriptions are relational "
                                       "(4 direct, released coverage)" if (cov, d) == ("released", 4) else None))
        # the mechanism behind that gain: more steps for the cells described through relations (the paper's
        # Table 2 gives the overall IoU only, so its gap stands in)
        specs.append(dict(table="LBIE Table 2", claim=f"T = 4 vs T = 1 with attention, {cov} coverage",
                          a=table2_key(cov, 4, True, 4), b=table2_key(cov, 1, True, 4), metric="iou_relational",
                          paper_metric="iou", label=f"{cov}, 4 direct: T = 4 vs T = 1, relational cells"))
    for metric in ("overall_iou", *(f"P@{t}" for t in PRECISIONS)):
        headline = "LBIE beats Hu et al.'s concatenation on overall IoU" if metric == "overall_iou" else None
        specs.append(dict(table="LBIE Table 3", claim="LBIE vs Hu et al.'s concatenation", a="lbie", b="concat",
                          metric=metric, label=METRICS[metric][0], headline=headline))
    specs.append(dict(table="LBIE Table 4", claim="LBIE's colours follow the caption more often than without text",
                      a="lbie", b="no_text", metric="consistency", label="consistency",
                      headline="LBIE's colours follow the caption more often than the no-text baseline's"))
    specs.append(dict(table="LBIE Table 4", claim="LBIE's images look better than without text (ours: FID)",
                      a="lbie", b="no_text", metric="fid", paper_metric="quality", label="FID (paper: quality)"))
    for table, others in (("TIM-GAN Table 1", BASELINES), ("TIM-GAN Table 2", VARIANTS[1:])):
        kind = "baseline" if table.endswith("1") else "ablation"
        for other in others:
            for metric in ("rs1", "rs5", "fid"):
                specs.append(dict(table=table, claim=f"TIM-GAN vs each {kind}", a="timgan", b=other, metric=metric,
                                  label=f"vs {TIMGAN_LABELS[other]}: {METRICS[metric][0]}",
                                  headline=f"TIM-GAN beats each {kind} on RS@1" if metric == "rs1" else None))
    return specs


def claims(results: dict[str, dict], *, separation: float = SEPARATION):
    """Every claim of :func:`claim_specs` judged on ``results`` (:func:`gap_verdict`), as a pandas DataFrame with
    the paper's and our values of both rows, the gaps, the combined std, the separation, seeds and verdict."""
    import pandas as pd

    frame = entries(results).set_index(["table", "key", "metric"])
    records = []
    for spec in claim_specs():
        pm = spec.get("paper_metric", spec["metric"])
        get = lambda row, metric: frame.loc[(spec["table"], row, metric)]  # noqa: E731
        pa, pb, oa, ob = get(spec["a"], pm), get(spec["b"], pm), get(spec["a"], spec["metric"]), get(spec["b"],
                                                                                                    spec["metric"])
        ours = [None if o["seeds"] == 0 else (o["ours"], o["std"], int(o["seeds"])) for o in (oa, ob)]
        judged = gap_verdict(pa["paper"], pb["paper"], *ours, higher_is_better=METRICS[spec["metric"]][3],
                             paper_higher_is_better=METRICS[pm][3], separation=separation)
        metric = METRICS[spec["metric"]][0] + (f" (paper: {METRICS[pm][0]})" if pm != spec["metric"] else "")
        records.append({"table": spec["table"], "claim": spec["claim"], "label": spec["label"], "a": oa["row"],
                        "b": ob["row"],
                        "metric": metric, "paper a": pa["paper"], "paper b": pb["paper"], "ours a": oa["ours"],
                        "ours b": ob["ours"], **judged, "headline": spec.get("headline"), "fmt": METRICS[pm][2],
                        "ours fmt": METRICS[spec["metric"]][2]})
    return pd.DataFrame.from_records(records)


def tally(verdicts) -> str:
    """``"2 reproduced, 1 partly, 3 not"`` (verdicts that occur, in the order of :data:`VERDICTS`)."""
    counts = {v: list(verdicts).count(v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n)


# --------------------------------------------------------------------------- display and the summary
def _fmt(x, fmt: str, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return "∞" if x == math.inf else format(x, ("+" if sign else "") + fmt)


def entries_table(frame):
    """:func:`entries` for reading: paper, ours (mean ± std), seeds, ours / paper, training minutes as text."""
    import pandas as pd

    fmt = lambda r, x: _fmt(x, METRICS[r["metric"]][2])  # noqa: E731
    return pd.DataFrame({"table": frame["table"], "row": frame["row"],
                         "metric": [METRICS[m][0] for m in frame["metric"]],
                         "paper": [fmt(r, r["paper"]) for _, r in frame.iterrows()],
                         "ours": [f"{fmt(r, r['ours'])} ± {fmt(r, r['std'])}" if r["seeds"] > 1 else
                                  fmt(r, r["ours"]) if r["seeds"] else "missing" for _, r in frame.iterrows()],
                         "seeds": frame["seeds"], "ours / paper": [_fmt(x, ".2f") for x in frame["ours / paper"]],
                         "train min": [_fmt(x, ".1f") for x in frame["train min"]], "preset": frame["preset"],
                         "hardware": frame["hardware"]})


def _ours_gap(r) -> str:
    if r["verdict"] == "missing":
        return "missing"
    return f"{_fmt(r['gap'], r['ours fmt'], True)} ± {_fmt(r['combined std'], r['ours fmt'])} ({r['seeds']} seeds)"


def claims_table(frame):
    """:func:`claims` for reading: each gap as text, the separation and the verdict."""
    import pandas as pd

    return pd.DataFrame({"table": frame["table"], "claim": frame["claim"], "a vs b": frame["a"] + " vs " + frame["b"],
                         "metric": frame["metric"],
                         "paper gap": [_fmt(r["paper gap"], r["fmt"], True) for _, r in frame.iterrows()],
                         "our gap ± combined std": [_ours_gap(r) for _, r in frame.iterrows()],
                         "separation": [_fmt(x, ".1f") for x in frame["separation"]], "verdict": frame["verdict"]})


def summary(results: dict[str, dict], *, separation: float = SEPARATION):
    """One row per paper table, as a pandas DataFrame: its headline claim, the paper's gap(s), ours (± combined
    std), the verdict (the worst over the headline's gaps), the tally over all of the table's claims, and the
    state of its results file."""
    import pandas as pd

    judged = claims(results, separation=separation)
    records = []
    for table, experiment in TABLES.items():
        mine = judged[judged["table"] == table]
        head = mine[mine["headline"].notna()]
        many = len(head) > 1
        label = lambda r: f" vs {r['b']}" if many else ""  # noqa: E731
        present = [v for v in head["verdict"] if v != "missing"]
        missing = len(head) - len(present)
        verdict = (max(present, key=VERDICTS.index) if present else "missing") + (
            f" ({missing} of {len(head)} rows missing)" if present and missing else "")
        result = results.get(experiment)
        state = ("no results file" if result is None else
                 f"{'complete' if result['complete'] else 'INCOMPLETE'}, {currency_note(currency(experiment, result))}")
        records.append({"paper table": table, "claim": head["headline"].iloc[0],
                        "paper": "; ".join(_fmt(r["paper gap"], r["fmt"], True) + label(r) for _, r in head.iterrows()),
                        "ours": "; ".join(_ours_gap(r) + label(r) for _, r in head.iterrows()), "verdict": verdict,
                        "all claims of the table": tally(mine["verdict"]),
                        "results file": f"{RESULT_FILES[experiment]}: {state}"})
    return pd.DataFrame.from_records(records)


def markdown_table(frame) -> str:
    """A pandas DataFrame as a Markdown table (its index left out)."""
    cell = lambda x: str(x).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)])


def render_summary(folder: str | Path | None = None) -> str:
    """Markdown: the reproduction summary of :func:`summary` for the files in ``folder`` (checked by
    :func:`check_results`), with the verdict rule; empty when the folder holds no results file."""
    results = check_results(folder)
    if not results:
        return ""
    return "\n".join([f"Reproduction summary (one line per paper table; the reproduction report chapter has every "
                      "claim). Gaps: paper, and ours ± the combined std over seeds.", "",
                      markdown_table(summary(results)), "", VERDICT_RULE])

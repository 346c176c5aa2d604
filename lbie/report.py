"""The reproduction report: every paper table's claims checked against ``results/*.json``.

Everything here is computed from the results files and from the paper's numbers kept in the package
(:data:`lbie.reproduce.PAPER_TABLE2`, :data:`lbie.reproduce.PAPER_TIMGAN`,
:data:`lbie.segmentation_experiment.PAPER_TABLE3`, :data:`lbie.colorization_experiment.PAPER_TABLE4`):

* :func:`check_results` -- each file holds what the report reads, or a :class:`ResultsError` names file and key;
* :func:`entries` -- one row per paper table, method (or configuration) and metric: the paper's value, ours
  (mean, std, seeds), ours / paper, training minutes, preset and hardware;
* :func:`claims` -- every gap the paper reports, judged by :data:`VERDICT_RULE`;
* :func:`compute` and :func:`currency` -- what each file cost, whether it is complete and from the current code;
* :func:`summary` and :func:`render_summary` -- one line per paper table (the README's summary).

The deviations from the paper and the released code are listed in :mod:`lbie.deviations`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .colorization_experiment import PAPER_TABLE4, colorization_config
from .config import RUN_OPTIONS
from .cosal_experiment import cosal_config
from .flowers import DATA_VERSION as FLOWERS_DATA_VERSION
from .reproduce import GATE_STUDY, PAPER_TABLE2, PAPER_TIMGAN, RESULT_FILES
from .segmentation_experiment import METHOD_LABELS, PAPER_TABLE3, PRECISIONS, segmentation_config
from .timgan import VARIANTS
from .timgan_baselines import BASELINES
from .timgan_experiment import timgan_config
from .utils import load_json, results_dir

SEPARATION = 2.0  # combined standard deviations a gap must clear to count as reproduced
VERDICTS = ("reproduced", "partly", "not", "missing")
VERDICT_RULE = (
    "A gap is the first method's advantage over the second in the paper's direction (positive: the first is "
    "better; a lower FID is better). Verdict: **reproduced** when our gap has the paper's sign and is at least "
    f"{SEPARATION:g} combined standard deviations (the root of the sum of both rows' variances over seeds) away "
    "from zero, with at least 2 seeds on each side; **partly** when the sign matches but the separation is "
    "smaller, or a side has a single seed; **not** when our gap has the opposite sign (or is exactly zero); "
    "**missing** when a row is not in the results file. Absolute numbers are compared by the ratio ours / paper.")
TABLES = {"LBIE Table 2": "cosal-table2", "LBIE Table 3": "referit-synth", "LBIE Table 4": "flowers-synth",
          "TIM-GAN Table 1": "timgan-css", "TIM-GAN Table 2": "timgan-css"}
COVERAGES = ("released", "full")
# metric -> (label, scale of the recorded value, format, higher is better)
METRICS = {"iou": ("IoU", 1, ".3f", True), "overall_iou": ("overall IoU (%)", 100, ".1f", True),
           **{f"P@{t}": (f"precision@{t} (%)", 100, ".1f", True) for t in PRECISIONS},
           "consistency": ("consistency", 1, ".3f", True), "quality": ("quality (human)", 1, ".3f", True),
           "fid": ("FID", 1, ".1f", False), "rs1": ("RS@1 (%)", 1, ".1f", True), "rs5": ("RS@5 (%)", 1, ".1f", True)}
TIMGAN_LABELS = {"timgan": "TIM-GAN", "no_where": "no f_where", "no_how": "no f_how",
                 "no_text_adaptive": "no text-adaptive", "tirg": "TIRG-GAN", "geneva": "GeNeVA", "tagan": "TA-GAN",
                 "dmgan": "DM-GAN", "ground_truth": "real images"}
COLORIZATION_LABELS = {"lbie": "LBIE", "no_text": "no text (baseline)", "ground_truth": "ground truth"}


class ResultsError(ValueError):
    """A results file lacks something the report needs (the message names the file and the key)."""


# --------------------------------------------------------------------------- checking the files
_PROVENANCE = ("preset", "seeds", "cpu_count", "torch", "cuda", "wall_seconds")
_MS = ("mean", "std", "seeds")


def _ms_keys(*names: str) -> tuple[str, ...]:
    return tuple(f"{n}/{k}" for n in names for k in _MS)


# per experiment: required provenance keys and required keys of every row ("a/b": nested; a trailing "?":
# present, and either null or a mean/std/seeds record)
REQUIRED = {
    "cosal-table2": (_PROVENANCE + ("termination", "num_colors"),
                     ("coverage", "T", "attention", "num_direct", "paper", *_ms_keys("iou"), "train_seconds/mean")),
    "cosal-gates": (_PROVENANCE + ("epochs",),
                    ("name", "settings", *_ms_keys("iou"), "iou_by_depth", "stop_step_share/all",
                     "stop_step_share/by_depth", "train_seconds/mean")),
    "timgan-css": (_PROVENANCE + ("config",), ("method", *_ms_keys("rs1", "rs5"), "fid?", "train_seconds/mean")),
    "referit-synth": (_PROVENANCE + ("config",),
                      ("method", *_ms_keys("overall_iou", *(f"precision/{t}" for t in PRECISIONS)),
                       "train_seconds/mean")),
    "flowers-synth": (_PROVENANCE + ("config", "train_seconds"), ("method", *_ms_keys("consistency"), "realism/fid?")),
}


def _lacks(record: dict, path: str) -> str | None:
    """The first key of ``path`` missing from ``record`` (None: everything is there)."""
    optional = path.endswith("?")
    keys = path.rstrip("?").split("/")
    value = record
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            return "/".join(keys[:i + 1])
        value = value[key]
    if optional and value is not None:
        return next((f"{path.rstrip('?')}/{k}" for k in _MS if not isinstance(value, dict) or k not in value), None)
    return None


def check_result(result: dict, name: str) -> dict:
    """``result`` (the contents of results file ``name``) if it holds every key the report reads, else a
    :class:`ResultsError` that names the file and the first missing key."""
    expected = next((e for e, f in RESULT_FILES.items() if f == name), None)
    if expected is None:
        raise ResultsError(f"{name}: not a results file of the report (known: {', '.join(RESULT_FILES.values())})")
    if not isinstance(result, dict):
        raise ResultsError(f"{name}: holds a {type(result).__name__}, not a results record")
    for key in ("experiment", "complete", "provenance", "rows"):
        if key not in result:
            raise ResultsError(f"{name}: lacks '{key}'")
    if result["experiment"] != expected:
        raise ResultsError(f"{name}: 'experiment' is {result['experiment']!r}, expected {expected!r}")
    if not isinstance(result["rows"], list) or not result["rows"]:
        raise ResultsError(f"{name}: 'rows' is empty")
    prov_keys, row_keys = REQUIRED[expected]
    for key in prov_keys:
        if key not in result["provenance"]:
            raise ResultsError(f"{name}: 'provenance' lacks '{key}'")
    for i, row in enumerate(result["rows"]):
        for path in row_keys:
            missing = _lacks(row, path)
            if missing:
                label = row.get("method", row.get("name")) if isinstance(row, dict) else None
                raise ResultsError(f"{name}: rows[{i}]{f' ({label})' if label else ''} lacks '{missing}'")
    return result


def load_results(folder: str | Path | None = None) -> dict[str, dict]:
    """The results files present in ``folder`` (None: the published ``results/``), by experiment, unchecked."""
    folder = Path(folder) if folder is not None else results_dir()
    return {e: load_json(folder / f) for e, f in RESULT_FILES.items() if (folder / f).exists()}


def check_results(folder: str | Path | None = None) -> dict[str, dict]:
    """:func:`load_results`, with every file validated by :func:`check_result` (a missing file is not an error:
    the report shows its rows as missing)."""
    return {e: check_result(r, RESULT_FILES[e]) for e, r in load_results(folder).items()}


# --------------------------------------------------------------------------- paper vs ours, row by row
def table2_key(coverage: str, T: int, attention: bool, num_direct: int) -> str:
    """The label of a Table 2 configuration, e.g. ``released, T = 4 + attention, 4 direct``."""
    return f"{coverage}, T = {T}{' + attention' if attention else ', no attention'}, {num_direct} direct"


def _ms(value, scale: float = 1.0):
    """(mean, std, seeds) of a recorded mean/std/seeds record, scaled; None when there is none."""
    if not value:
        return None
    return value["mean"] * scale, value["std"] * scale, int(value["seeds"])


def _hardware(prov: dict) -> str:
    return f"{prov.get('cpu_count')} CPU cores, " + (f"GPU {prov['cuda']}" if prov.get("cuda") else "no GPU")


def _rows_of(table: str, result: dict | None):
    """(key, label, {metric: (paper, recorded value)}, train seconds record) for every row the paper has."""
    rows = (result or {}).get("rows", [])
    if table == "LBIE Table 2":
        by_key = {(r["coverage"], r["T"], r["attention"], r["num_direct"]): r for r in rows}
        for cov in COVERAGES:
            for (T, att), papers in PAPER_TABLE2.items():
                for d, paper in papers.items():
                    r = by_key.get((cov, T, att, d), {})
                    key = table2_key(cov, T, att, d)
                    yield key, key, {"iou": (paper, r.get("iou"))}, r.get("train_seconds")
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
                                "preset": prov.get("preset"), "hardware": _hardware(prov) if prov else None,
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
    for metric in ("overall_iou", *(f"P@{t}" for t in PRECISIONS)):
        specs.append(dict(table="LBIE Table 3", claim="LBIE vs Hu et al.'s concatenation", a="lbie", b="concat",
                          metric=metric, label=METRICS[metric][0], headline="LBIE beats Hu et al.'s concatenation on overall IoU"
                          if metric == "overall_iou" else None))
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
                                  label=f"vs {TIMGAN_LABELS[other]}: {METRICS[metric][0]}", headline=f"TIM-GAN beats each {kind} on RS@1" if metric == "rs1" else None))
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


# --------------------------------------------------------------------------- compute and currency
# Settings added to the code after some results files were written, each with the value that reproduces the
# code's behaviour before it existed, so a recorded configuration without the key ran with that value
# (lbie.lbie_model: identity_w7, gate_on, gate_norm; lbie.lbie_model.lbie_loss: step_cost; lbie.timgan: output;
# lbie.timgan_experiment: gan_ramp).
SETTINGS_BEFORE = {"identity_w7": False, "gate_on": "state", "gate_norm": False, "step_cost": 0.0,
                   "output": "tanh", "gan_ramp": 0.0}
PRESET_EXPERIMENTS = {"cosal-table2": "cosal", "cosal-gates": "cosal", "timgan-css": "timgan",
                      "referit-synth": "segmentation", "flowers-synth": "colorization"}


class Before(str):
    """A value a record does not hold, inferred from :data:`SETTINGS_BEFORE` (shown as such)."""

    def __new__(cls, value):
        return super().__new__(cls, f"{value!r} (not recorded: before the setting existed)")

    def __repr__(self) -> str:
        return str(self)


def compare_config(recorded: dict, current: dict, prefix: str = "") -> tuple[dict, list]:
    """({setting: (recorded, current)} for the settings that differ, [current settings the record lacks]).
    A lacking setting of :data:`SETTINGS_BEFORE` counts as recorded with its earlier value (a :class:`Before`)."""
    differs, unrecorded = {}, []
    for key in sorted(set(recorded) | set(current)):
        if key not in current:
            differs[prefix + key] = (recorded[key], "(no longer a setting)")
        elif key in recorded:
            if recorded[key] != current[key]:
                differs[prefix + key] = (recorded[key], current[key])
        elif key in SETTINGS_BEFORE:
            if SETTINGS_BEFORE[key] != current[key]:
                differs[prefix + key] = (Before(SETTINGS_BEFORE[key]), current[key])
        else:
            unrecorded.append(prefix + key)
    return differs, unrecorded


def _drop(cfg: dict, *keys: str) -> dict:
    return {k: v for k, v in cfg.items() if k not in keys}


def currency(experiment: str, result: dict) -> dict:
    """Is ``result`` from the current code?  Its recorded run configuration(s) against what the experiment's
    config function gives now for the same preset and overrides: ``status`` ("current", "stale": some setting
    differs, "unverified": nothing differs but the file does not record everything), ``differs`` and
    ``unrecorded`` (see :func:`compare_config`)."""
    prov = result["provenance"]
    # the options of how a run ran (device, run folder, ...) are not settings of what it trained
    preset, overrides = prov["preset"], _drop(prov.get("overrides") or {}, "device", *RUN_OPTIONS)
    differs, unrecorded = {}, []

    def add(found):
        differs.update(found[0])
        unrecorded.extend(found[1])

    if experiment == "timgan-css":
        add(compare_config(_drop(prov["config"], "variant", "seed"),
                           _drop(timgan_config(preset, **overrides), "variant", "seed")))
    elif experiment == "referit-synth":
        for method, recorded in prov["config"].items():
            add(compare_config(_drop(recorded, "seed"),
                               _drop(segmentation_config(preset, method=method, **overrides), "seed"), f"{method}: "))
    elif experiment == "flowers-synth":  # the data version is kept in the provenance, not in the run config
        recorded = _drop(prov["config"], "method", "seed") | (
            {"data_version": prov["data_version"]} if "data_version" in prov else {})
        add(compare_config(recorded, _drop(colorization_config(preset, **overrides), "method", "seed")
                           | {"data_version": FLOWERS_DATA_VERSION}))
    else:  # CoSaL: each row records its own run configuration
        lacking = 0
        for row in result["rows"]:
            if experiment == "cosal-gates":
                study = GATE_STUDY.get(row["name"])
                if study is None:
                    differs[f"{row['name']}: row"] = ("in the file", "no longer in the study")
                    continue
                if row["settings"] != study:
                    differs[f"{row['name']}: settings"] = (row["settings"], study)
            if "config" not in row:
                lacking += 1
                continue
            if experiment == "cosal-gates":
                label = row["name"]
                settings = dict(dict(num_direct=4, coverage="full", steps=4, epochs=prov["epochs"]), **study)
            else:
                label = table2_key(row["coverage"], row["T"], row["attention"], row["num_direct"])
                settings = dict(dict(coverage=row["coverage"], steps=row["T"], attention=row["attention"],
                                     num_direct=row["num_direct"], termination=prov["termination"],
                                     num_colors=prov["num_colors"]), **overrides)
            add(compare_config(row["config"], _drop(cosal_config(preset, **settings), "seed"), f"{label}: "))
        if lacking:
            unrecorded.append(f"run configuration ({lacking} of {len(result['rows'])} rows)")
    return {"status": "stale" if differs else "unverified" if unrecorded else "current", "differs": differs,
            "unrecorded": unrecorded}


def currency_note(found: dict, *, detail: bool = False) -> str:
    """``"stale (epochs, w_gan)"``; with ``detail`` every differing value (recorded → current)."""
    names = lambda keys: sorted({k.rsplit(": ", 1)[-1] for k in keys})  # noqa: E731
    parts = []
    if found["differs"]:
        parts.append("; ".join(f"{k}: {r!r} → {c!r}" for k, (r, c) in found["differs"].items()) if detail
                     else "differs: " + ", ".join(names(found["differs"])))
    if found["unrecorded"]:
        parts.append("not recorded: " + ", ".join(names(found["unrecorded"])))
    return found["status"] + (f" ({'; '.join(parts)})" if parts else "")


def _train_runs(experiment: str, result: dict) -> list[tuple[float, int]]:
    """(mean training seconds, runs) of every trained row (the bounds such as the ground truth train nothing)."""
    if experiment == "flowers-synth":
        records = result["provenance"]["train_seconds"].values()
    else:
        records = [r["train_seconds"] for r in result["rows"]]
    return [(r["mean"], int(r["seeds"])) for r in records if r and r.get("mean")]


def compute(results: dict[str, dict]):
    """Per results file, as a pandas DataFrame: the paper tables it holds, preset, seeds, ``complete``, ``code``
    (:func:`currency`), hardware, torch, runs trained, mean training minutes per run, training hours of all runs,
    wall hours, the estimated hours of one ``paper``-preset run on a Colab T4 (:mod:`lbie.config`), commit, date."""
    import pandas as pd

    from .config import estimate_paper_seconds

    records = []
    for experiment, file in RESULT_FILES.items():
        tables = ", ".join(t for t, e in TABLES.items() if e == experiment) or "termination-gate study (supporting)"
        record = {"file": file, "paper tables": tables,
                  "paper preset, one run on a T4 (h, est.)": estimate_paper_seconds(PRESET_EXPERIMENTS[experiment],
                                                                                   "cuda") / 3600}
        result = results.get(experiment)
        if result is None:
            records.append(record | {"code": "no results file"})
            continue
        prov, runs = result["provenance"], _train_runs(experiment, result)
        n, seconds = sum(k for _, k in runs), sum(m * k for m, k in runs)
        records.append(record | {"preset": prov["preset"], "seeds": prov["seeds"], "complete": bool(result["complete"]),
                                 "code": currency_note(currency(experiment, result)), "hardware": _hardware(prov),
                                 "torch": prov["torch"], "runs": n, "train min per run": seconds / n / 60 if n else np.nan,
                                 "train h, all runs": seconds / 3600, "wall h": prov["wall_seconds"] / 3600,
                                 "commit": prov.get("git_commit"), "written": prov.get("time_utc")})
    return pd.DataFrame.from_records(records).set_index("file")


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

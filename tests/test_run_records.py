"""Reproductions keep one record per finished run and do not train a recorded run again."""
from __future__ import annotations

import json

from lbie.experiments.run_records import load_records, record_path, recorded_runs

CALLS = []


def _square(job: dict) -> dict:
    CALLS.append(job["x"])
    return {"job": job, "metrics": {"y": job["x"] ** 2}}


def _config(job: dict) -> dict:
    return {"x": job["x"], "epochs": job.get("epochs", 2)}


def _name(cfg: dict) -> str:
    return f"x{cfg['x']}"


def _run(jobs, folder, **kw):
    return dict(recorded_runs(_square, jobs, 1, folder, config_of=_config, name_of=_name, **kw))


def test_finished_runs_are_read_back_not_run_again(tmp_path):
    CALLS.clear()
    jobs = [{"x": 1, "threads": 1}, {"x": 2, "threads": 1}]
    first = _run(jobs, tmp_path)
    assert CALLS == [1, 2] and first[1]["metrics"] == {"y": 4}
    record = json.loads(record_path(tmp_path, "x2", {"x": 2, "epochs": 2}).read_text())
    assert record["config"] == {"x": 2, "epochs": 2} and record["metrics"] == {"y": 4}
    assert "git_commit" in record["record"]  # the code that trained it
    CALLS.clear()
    again = _run(jobs + [{"x": 3, "threads": 2}], tmp_path)  # threads say how, not what: not part of the key
    assert CALLS == [3]
    assert {i: r["metrics"] for i, r in again.items()} == {0: {"y": 1}, 1: {"y": 4}, 2: {"y": 9}}


def test_another_configuration_is_trained_and_recorded_apart(tmp_path):
    CALLS.clear()
    _run([{"x": 1}], tmp_path)
    _run([{"x": 1, "epochs": 4}], tmp_path)  # a changed default or setting: the record does not match
    _run([{"x": 12}], tmp_path)
    assert CALLS == [1, 1, 12] and len(list(tmp_path.glob("x1-*.json"))) == 2
    found = load_records(tmp_path, "x1-*")  # oldest first, named by file
    assert [r["config"]["epochs"] for r in found] == [2, 4]
    assert found[0]["name"] == record_path(tmp_path, "x1", {"x": 1, "epochs": 2}).stem


def test_finish_runs_before_the_record_is_written(tmp_path):
    def finish(res):
        res["metrics"]["scored"] = True
        return res

    _run([{"x": 5}], tmp_path, finish=finish)
    CALLS.clear()
    assert _run([{"x": 5}], tmp_path)[0]["metrics"] == {"y": 25, "scored": True} and CALLS == []


def test_no_folder_keeps_no_records(tmp_path):
    CALLS.clear()
    _run([{"x": 1}], None)
    _run([{"x": 1}], None)
    assert CALLS == [1, 1]


def test_whole_numbers_for_float_settings_name_the_same_run():
    from lbie.config import config_hash
    from lbie.experiments.cosal import cosal_config

    a, b = cosal_config("smoke", stop_bias=-2, fg_weight=1), cosal_config("smoke", stop_bias=-2.0, fg_weight=1.0)
    assert a == b and config_hash(a) == config_hash(b) and type(a["stop_bias"]) is float
    assert cosal_config("smoke", stop_bias=None)["stop_bias"] is None and type(a["epochs"]) is int


def test_a_setting_added_at_its_earlier_value_keeps_records(tmp_path, monkeypatch):
    # a record written before the code had the setting "gate_warmup" ran with its earlier value, 0.0
    CALLS.clear()
    _run([{"x": 7}], tmp_path)
    newer = lambda job: _config(job) | {"gate_warmup": job.get("gate_warmup", 0.0)}  # noqa: E731
    again = dict(recorded_runs(_square, [{"x": 7}, {"x": 7, "gate_warmup": 0.5}], 1, tmp_path,
                               config_of=newer, name_of=_name))
    assert CALLS == [7, 7] and again[0]["metrics"] == {"y": 49}  # only the run at another value trains


def test_records_varying_keeps_runs_that_differ_only_in_the_named_settings(tmp_path, monkeypatch):
    from lbie import config
    from lbie.experiments import results_files

    monkeypatch.setitem(config.SETTINGS_BEFORE, "w", 0.0)
    jobs = [{"x": 1, "threads": 1}, {"x": 2, "threads": 1}, {"x": 3, "threads": 1, "epochs": 5}]
    _run(jobs, tmp_path)  # records without "w": they ran at its earlier value, 0
    today = lambda cfg: {"x": cfg["x"], "epochs": 2, "w": 1.0}  # noqa: E731 -- today's default w is 1
    assert results_files.records_varying(tmp_path, "x*", today, ["x"]) == []  # w differs too
    found = results_files.records_varying(tmp_path, "x*", today, ["x", "w"])
    assert [r["config"] for r in found] == [{"x": 1, "epochs": 2, "w": 0.0}, {"x": 2, "epochs": 2, "w": 0.0}]
    assert len(results_files.records_varying(tmp_path, "x*", today, ["x", "w", "epochs"])) == 3


def test_a_record_that_is_not_current_is_run_again_and_replaced(tmp_path):
    CALLS.clear()
    jobs = [{"x": 1, "threads": 1}, {"x": 2, "threads": 1}]
    _run(jobs, tmp_path)
    CALLS.clear()
    # e.g. metrics from an earlier version of the evaluation: the record of x = 2 is stale
    again = _run(jobs, tmp_path, current=lambda record: record["metrics"]["y"] != 4)
    assert CALLS == [2] and again[1]["metrics"] == {"y": 4}
    assert len(load_records(tmp_path)) == 2  # replaced, not added
    old = record_path(tmp_path, "x2", {"x": 2, "epochs": 2})
    old.rename(old.with_name("x2-0ld0hash.json"))  # written under an earlier name
    _run(jobs, tmp_path, current=lambda record: record["metrics"]["y"] != 4)
    names = {r["name"] for r in load_records(tmp_path)}
    assert names == {record_path(tmp_path, "x1", {"x": 1, "epochs": 2}).stem, "x2-0ld0hash"}  # rewritten in place

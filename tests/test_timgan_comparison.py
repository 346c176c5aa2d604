"""The ablations-and-baselines chapter's package functions: the results tables (rows held, gaps against
the paper's claims), the side-by-side figure of several methods, and finding a model without training."""
import json

import numpy as np
import pytest

import lbie
from lbie.checkpoints import has_checkpoint
from lbie.experiments.results import row_status
from lbie.experiments.timgan import build_model


def _ms(mean, std=0.0, seeds=3):
    return {"mean": mean, "std": std, "seeds": seeds}


def _row(method, rs1, rs5, *, paper=None, fid=None, by_kind=None, seeds=3):
    return {"method": method, "rs1": _ms(*rs1, seeds=seeds), "rs5": _ms(*rs5, seeds=seeds), "l1": _ms(0.01, seeds=seeds),
            "fid": fid, "train_seconds": _ms(120.0, seeds=seeds), "paper": paper, "by_kind": by_kind or {}}


@pytest.fixture
def result():
    """A hand-built results dict: three seeds asked for; tirg has one; dmgan and no_how are missing."""
    kinds = {"add": {"rs1": _ms(20.0, 1.0), "rs5": _ms(30.0), "change_ratio": _ms(0.5, 0.1)},
             "remove": {"rs1": _ms(80.0), "rs5": _ms(90.0)}}  # this kind has no change ratio
    rows = [_row("timgan", (60.0, 3.0), (70.0, 1.0), paper={"fid": 33.0, "rs1": 95.9, "rs5": 97.8}, by_kind=kinds),
            _row("no_where", (50.0, 4.0), (52.0, 1.0), paper={"fid": 34.8, "rs1": 81.7, "rs5": 89.6}),
            _row("no_text_adaptive", (40.0, 0.0), (90.0, 0.0), paper={"fid": 45.9, "rs1": 29.9, "rs5": 49.1}),
            _row("tirg", (30.0, 0.0), (40.0, 0.0), paper={"fid": 34.0, "rs1": 48.5, "rs5": 68.2}, seeds=1),
            _row("tagan", (70.0, 1.0), (75.0, 1.0), paper={"fid": 58.8, "rs1": 40.8, "rs5": 64.1}),
            _row("source_copy", (30.0, 0.0), (44.0, 0.0), seeds=1)]
    return {"experiment": "timgan-css", "complete": False, "provenance": {"seeds": 3}, "rows": rows}


def test_row_status_names_missing_and_incomplete_rows(result):
    expected = list(lbie.experiments.timgan.METHODS) + ["source_copy", "ground_truth"]
    s = row_status(result, expected)
    assert s["missing"] == ["no_how", "geneva", "dmgan", "ground_truth"]
    assert s["present"] == ["timgan", "no_where", "no_text_adaptive", "tirg", "tagan", "source_copy"]
    assert s["incomplete"] == {"tirg": 1}  # source_copy is evaluated once by design
    assert s["seeds"] == 3 and s["complete"] is False and s["extra"] == []
    assert "INCOMPLETE" in s["text"] and "no_how, geneva, dmgan, ground_truth" in s["text"] and "tirg (1 of 3)" in s["text"]
    full = dict(result, complete=True, rows=[r for r in result["rows"] if r["method"] in ("timgan", "source_copy")])
    s = row_status(full, ["timgan", "source_copy"])
    assert not s["missing"] and not s["incomplete"] and "Every expected row is present" in s["text"]
    assert row_status(full, ["timgan"])["extra"] == ["source_copy"]
    with pytest.raises(ValueError, match="rows"):
        row_status({"complete": True}, ["timgan"])


def test_timgan_frame_by_kind_with_change_ratio(result):
    frame = lbie.timgan_frame(result, by_kind=("rs1", "change_ratio"), kind_std=True)
    assert frame.loc["timgan", "change_ratio add"] == 0.5 and frame.loc["timgan", "change_ratio add_std"] == 0.1
    assert frame.loc["timgan", "rs1 add_std"] == 1.0
    assert np.isnan(frame.loc["timgan", "change_ratio remove"])  # not in the file: NaN, not an error
    assert np.isnan(frame.loc["no_where", "rs1 add"])  # a row without by_kind
    assert frame.loc["tirg", "seeds"] == 1 and frame.loc["timgan", "train min"] == 2.0
    plain = lbie.timgan_frame(result)  # the default keeps the earlier columns only
    assert "rs1 add" in plain.columns and "change_ratio add" not in plain.columns and "rs1 add_std" not in plain


def test_gap_frame_signs_spread_and_separation(result):
    gaps = lbie.timgan_gap_frame(result, metrics=("rs1", "rs5", "fid")).set_index(["method", "metric"])
    assert set(gaps.index.get_level_values(0)) == {"no_where", "no_text_adaptive", "tirg", "tagan"}  # the rows held
    assert "fid" not in gaps.index.get_level_values(1)  # FID was not computed (None in every row)
    g = gaps.loc[("no_where", "rs1")]
    assert g.ours == 10.0 and g.ours_std == 5.0 and g.paper == pytest.approx(14.2)
    assert g.same_sign and not g.separated and g.seeds == 3  # 10 is not more than 2 x 5
    assert gaps.loc[("no_where", "rs5")].separated  # 18 > 2 x sqrt(2)
    assert gaps.loc[("no_text_adaptive", "rs1")].separated and gaps.loc[("no_text_adaptive", "rs1")].same_sign
    assert not gaps.loc[("no_text_adaptive", "rs5")].same_sign  # ours -20, the paper's +48.7
    assert gaps.loc[("tirg", "rs1")].separated is None and gaps.loc[("tirg", "rs1")].seeds == 1  # one seed: no spread
    assert not gaps.loc[("tagan", "rs1")].same_sign  # the baseline above the full model
    none = lbie.timgan_gap_frame(dict(result, rows=result["rows"][1:]))  # no full-model row: nothing to check
    assert none.empty and list(none.columns)[:3] == ["method", "metric", "ours"]


@pytest.fixture(scope="module")
def two_models():
    text = lbie.cached_text_encoder()
    cfg = lbie.timgan_config("smoke")
    models = {m: build_model(dict(cfg, variant=m), text.dim).eval() for m in ("timgan", "tirg")}
    return models, text


def test_show_method_edits_with_a_tiny_model_pair(two_models):
    import matplotlib.pyplot as plt

    models, text = two_models
    data = lbie.generate_css(6, seed=4)
    picks = [0, 2, 5]
    edits = {m: lbie.edit_images(model, text, data.source[picks], data.instruction[picks]) for m, model in models.items()}
    assert not np.array_equal(edits["timgan"], edits["tirg"])
    fig = lbie.show_method_edits(data, picks, {**edits, "dmgan": None}, title="tiny models")
    axes = np.array(fig.axes).reshape(len(picks), 6)  # source, instruction, target, three methods
    assert [ax.get_title() for ax in axes[0]] == ["source", "instruction", "target", "TIM-GAN", "TIRG-GAN", "DM-GAN"]
    for r, i in enumerate(picks):
        assert np.array_equal(axes[r, 0].images[0].get_array(), data.source[i])
        assert np.array_equal(axes[r, 2].images[0].get_array(), data.target[i])
        assert np.array_equal(axes[r, 3].images[0].get_array(), edits["timgan"][r])
        assert np.array_equal(axes[r, 4].images[0].get_array(), edits["tirg"][r])
        assert not axes[r, 5].images and axes[r, 5].texts[0].get_text() == "no\nmodel"
        assert str(data.instruction[i]).split()[0] in "".join(t.get_text() for t in axes[r, 1].texts)
    assert fig.get_size_inches()[0] <= 7.5 + 1e-9 and fig._suptitle.get_text() == "tiny models"
    full = lbie.show_method_edits(data, picks, {m: lbie.edit_images(models["timgan"], text, data.source,
                                                                   data.instruction) for m in ("timgan",)})
    assert np.array(full.axes).reshape(3, 4)[1, 3].images  # edits for the whole split, picked by index
    with pytest.raises(ValueError, match="index"):
        lbie.show_method_edits(data, [], edits)
    with pytest.raises(ValueError, match="method"):
        lbie.show_method_edits(data, picks, {})
    plt.close("all")


def test_model_source_finds_runs_and_checkpoints_without_training(tmp_path):
    kw = dict(preset="smoke", variant="geneva", seed=0, n_train=32)  # a configuration of this test's own
    ckpt = tmp_path / "ckpt"
    assert lbie.timgan_model_source(directory=ckpt, **kw) is None
    unfinished = lbie.train_timgan(**kw, evaluate=False)  # trained, but no metrics.json: not a finished run
    assert not (unfinished.run_dir / "metrics.json").exists()
    assert lbie.timgan_model_source(directory=ckpt, **kw) is None
    run = lbie.train_timgan(**kw)
    assert lbie.timgan_model_source(directory=ckpt, **kw) == "run"
    assert lbie.timgan_model_source(directory=ckpt, **dict(kw, seed=1)) is None
    metrics = run.run_dir / "metrics.json"
    stored = json.loads(metrics.read_text())
    metrics.write_text(json.dumps(dict(stored, config=dict(stored["config"], w_gan=5.0))))
    assert lbie.timgan_model_source(directory=ckpt, **kw) is None  # a run of other settings is not this model
    metrics.write_text(json.dumps(stored))
    lbie.publish_timgan(run, ckpt)
    assert lbie.timgan_model_source(directory=ckpt, **kw) == "checkpoint"
    name = f"css-{lbie.experiments.timgan.run_name(run.config)}"
    assert has_checkpoint(name, run.config, ckpt) and not has_checkpoint(name, dict(run.config, seed=1), ckpt)
    assert not has_checkpoint("css-none", run.config, ckpt) and not has_checkpoint(name, run.config, tmp_path / "x")
    assert lbie.load_or_train_timgan(directory=ckpt, **kw).run_dir is None  # loaded, as the source said
    (ckpt / json.loads((ckpt / "registry.json").read_text())[name]["file"]).unlink()
    assert lbie.timgan_model_source(directory=ckpt, **kw) == "run"  # the file is gone: the run is found instead

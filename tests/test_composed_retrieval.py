"""Retrieval with edited images: top-k queries, target ranks, the TIRG composer and its cache, the figures."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import lbie
from lbie.checkpoints import find_checkpoint, load_or_train_cached
from lbie.experiments.composed_retrieval import TIRGComposer, load_or_train_tirg_composer, train_tirg_composer
from lbie.data.css import cells_to_id, id_to_cells, scene_differences
from lbie.metrics.retrieval import RetrievalResult, target_rank, top_k
from lbie.models.text_encoder import cached_text_encoder
from lbie.models.timgan_baselines import build_baseline


class Pixels(lbie.RetrievalAutoEncoder):
    """An identity "encoder" (code = the pixels): exact image matching."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Identity())


@pytest.fixture(scope="module")
def data():
    return lbie.generate_css(40, seed=3)


# --------------------------------------------------------------------------- top-k and ranks
def test_top_k_target_rank_and_hits_by_hand():
    gallery = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    ids = np.array([10, 11, 12, 13])
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    rows, sim = top_k(query, gallery, ids, exclude_ids=[10, -1, 12], k=3)
    # query 0: 10 excluded -> 11, 13, 12; query 1: nothing excluded -> 10, 11, 13; query 2: 12 excluded -> 13, 11, 10
    assert rows.tolist() == [[1, 3, 2], [0, 1, 3], [3, 1, 0]]
    assert sim[1, 0] == pytest.approx(1.0) and np.all(np.diff(sim, axis=1) <= 0)
    ranks = target_rank(query, gallery, ids, target_ids=[13, 12, 10], exclude_ids=[10, -1, 12])
    assert ranks.tolist() == [2, 4, 3]
    assert target_rank(query[:1], gallery, ids, [99], [10]).tolist() == [0]  # not in the gallery
    res = RetrievalResult(rows, ids[rows], sim, np.array([13, 12, 10]), ranks)
    assert res.hits(1).tolist() == [False, False, False] and res.hits(3).tolist() == [True, False, True]
    hits = lbie.rs_at_n(query, gallery, ids, [13, 12, 10], [10, -1, 12], ns=(1, 3))
    assert hits[3].tolist() == res.hits(3).tolist()
    scores = res.scores(kind=["add", "add", "remove"], ns=(1, 3))
    assert scores["rs3"] == pytest.approx(200 / 3) and scores["by_kind"]["add"]["rs3"] == 50.0
    assert scores["by_kind"]["remove"] == {"rs1": 0.0, "rs3": 100.0}
    with pytest.raises(ValueError, match="k = 3"):
        res.hits(4)
    with pytest.raises(ValueError, match="matching lengths"):
        top_k(query, gallery, ids, exclude_ids=[10], k=2)
    with pytest.raises(ValueError, match="at least 1"):
        top_k(query, gallery, ids, exclude_ids=[10, -1, 12], k=0)


def test_index_query_and_gallery_images(data):
    index = lbie.RetrievalIndex(Pixels(), data.source, data.target, data.source_id, data.target_id)
    rows = np.arange(len(index)).reshape(-1, 1)[:7]
    images = index.gallery_images(rows)
    assert images.shape == (7, 1, 64, 64, 3) and images.dtype == np.uint8
    by_id = {int(i): im for i, im in zip(data.source_id, data.source)} | \
            {int(i): im for i, im in zip(data.target_id, data.target)}
    for r, im in zip(rows[:, 0], images[:, 0]):
        assert (by_id[int(index.ids[r])] == im).all()
    perfect = index.query(index.embed(data.target), k=5)
    assert perfect.target_rank.tolist() == [1] * len(data) and perfect.scores()["rs1"] == 100.0
    assert (perfect.ids[:, 0] == data.target_id).all() and (index.ids[perfect.rows] == perfect.ids).all()
    copy = index.query(index.embed(data.source), k=5)
    assert (copy.ids != data.source_id[:, None]).all()  # the source itself is never returned...
    assert copy.scores(data.kind)["rs1"] == pytest.approx(index.score(data.source)["rs1"])  # ...as RS@N does
    kept = index.query(index.embed(data.source), k=5, keep_source=True)
    assert (kept.ids[:, 0] == data.source_id).all() and (kept.target_rank >= 2).all()
    with pytest.raises(ValueError, match="one per test triple"):
        index.query(index.embed(data.source[:3]))


def test_scene_ids_decode_and_differences():
    cells = np.full((2, 9), -1, np.int8)
    cells[0, 0] = 16 * 1 + 2 * 1 + 0  # small red circle, top left
    cells[1, 0] = 16 * 1 + 2 * 2 + 0  # small blue circle, top left
    cells[1, 4] = 16 * 0 + 2 * 0 + 1  # large gray rectangle, center
    assert (id_to_cells(cells_to_id(cells)) == cells).all()
    assert scene_differences(cells[1], cells[0]) == ["top left: blue, not red", "extra large gray rectangle, center"]
    assert scene_differences(cells[0], cells[1]) == ["top left: red, not blue", "no large gray rectangle, center"]
    assert scene_differences(cells[0], cells[0]) == []
    with pytest.raises(ValueError, match="non-negative"):
        id_to_cells([-5])


# --------------------------------------------------------------------------- the TIRG composer
def test_tirg_gan_keeps_its_parameter_names():
    keys = set(build_baseline("tirg", 384, dim=4, head_dim=16, n_res=1).state_dict())
    assert {"gate.0.weight", "gate.3.weight", "residual.3.bias", "lstm.weight_ih_l0", "text_fc.weight", "w"} <= keys


def test_untrained_composer_retrieves_as_the_source(data):
    text = cached_text_encoder()
    encoder = lbie.RetrievalAutoEncoder(width=4, code_ch=2).eval()
    composer = TIRGComposer(encoder.code_ch, text.dim, text_hidden=8)
    q = composer.compose(encoder, text, data.source, data.instruction, batch_size=16)
    assert q.shape == (len(data), 2 * 16 * 16)
    torch.testing.assert_close(q, encoder.embed(data.source), atol=1e-5, rtol=1e-4)  # both last convs start at 0
    with pytest.raises(ValueError, match="instructions"):
        composer.compose(encoder, text, data.source, data.instruction[:3])


def test_training_makes_the_query_read_the_instruction(data, tmp_path):
    text = cached_text_encoder()
    torch.manual_seed(0)
    encoder = lbie.RetrievalAutoEncoder(width=4, code_ch=2).eval()
    composer = train_tirg_composer(encoder, text, data.source, data.target, data.instruction, data.source_id,
                                   data.target_id, epochs=2, text_hidden=8, batch_size=8, negatives=16,
                                   run_dir=tmp_path)
    history = lbie.load_checkpoint(tmp_path / "checkpoint.pt")["history"]
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)
    src = np.repeat(data.source[:1], 2, axis=0)
    a, b = composer.compose(encoder, text, src, ["add a large red circle to the top left", "erase the triangle"])
    assert not torch.allclose(a, b)  # the text now moves the query
    assert torch.allclose(a.norm(), torch.tensor(1.0))
    with pytest.raises(ValueError, match="same length"):
        train_tirg_composer(encoder, text, data.source, data.target[:5], data.instruction, data.source_id,
                            data.target_id, epochs=1)


def test_load_or_train_tirg_composer_trains_once_and_publishes(monkeypatch, tmp_path):
    cfg = lbie.timgan_config("smoke")
    train, test = lbie.css_splits(cfg)
    index = lbie.retrieval_index(cfg, train, test)
    text = cached_text_encoder()
    published = tmp_path / "published"
    published.mkdir()
    kw = dict(epochs=1, text_hidden=8, negatives=32, directory=published)
    first = load_or_train_tirg_composer(cfg, train, index, text, **kw)
    monkeypatch.setattr(lbie.experiments.composed_retrieval, "train_tirg_composer",
                        lambda *a, **k: pytest.fail("the finished run should be reused"))
    again = load_or_train_tirg_composer(cfg, train, index, text, publish=True, **kw)
    for k, v in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    entry = lbie.load_json(published / "registry.json")["tirg-" + lbie.retrieval_encoder_name(cfg)]
    assert entry["config"]["epochs"] == 1 and entry["config"]["negatives"] == 32
    with pytest.raises(ValueError, match="unknown TIRG composer settings"):
        load_or_train_tirg_composer(cfg, train, index, text, width=3)


def test_load_or_train_cached_order(tmp_path):
    calls = []

    def train(run_dir):  # what fit leaves behind: the weights in run_dir/checkpoint.pt
        calls.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        model = torch.nn.Linear(2, 1)
        torch.save({"model": model.state_dict()}, run_dir / "checkpoint.pt")
        return model

    kw = dict(experiment="test", directory=tmp_path / "published")
    (tmp_path / "published").mkdir()
    a = load_or_train_cached(torch.nn.Linear(2, 1), "lin", {"n": 1}, tmp_path / "run", train, **kw)
    b = load_or_train_cached(torch.nn.Linear(2, 1), "lin", {"n": 1}, tmp_path / "run", train, publish=True, **kw)
    assert len(calls) == 1 and torch.equal(a.weight, b.weight)
    assert find_checkpoint("lin", {"n": 1}, tmp_path / "published") is not None
    (tmp_path / "run" / "metrics.json").unlink()  # the published weights are found first now
    c = load_or_train_cached(torch.nn.Linear(2, 1), "lin", {"n": 1}, tmp_path / "run", train, **kw)
    assert len(calls) == 1 and torch.equal(a.weight, c.weight)


# --------------------------------------------------------------------------- the figures
def test_retrieval_figures(data):
    index = lbie.RetrievalIndex(Pixels(), data.source, data.target, data.source_id, data.target_id)
    results = {"source only": index.query(index.embed(data.source), k=4),
               "edit": index.query(index.embed(data.target), k=4)}
    fig = lbie.plot_retrieval_queries(data, 2, results, index, queries={"source only": data.source[2], "edit": None},
                                      mask=np.random.default_rng(0).random((16, 16)), k=4)
    assert len(fig.axes) == 4 + 2 * 5
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert any("= target" in t for t in labels)
    plt.close(fig)
    fig = lbie.show_retrieval_failures(data, [0, 5], data.source, results["source only"], index,
                                       masks=np.zeros((len(data), 16, 16)), k=3)
    assert len(fig.axes) == 2 * (5 + 3)
    plt.close(fig)

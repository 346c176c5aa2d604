"""The interactive editor (widgets driven programmatically, no frontend) and the gallery of unseen phrasings."""
import cv2
import numpy as np
import pytest
import torch

import lbie
from lbie.models.colorization import Colorizer
from lbie.data.css import cell_code, generate_css, reference, render_cells
from lbie.editor import (ColorizationEditor, TIMGANEditor, editor_tabs, gates_html, mask_overlay, png_bytes,
                         time_callback)
from lbie.experiments.edit_gallery import FAMILIES, gallery_cases, gallery_data, gallery_scenes, score_gallery
from lbie.models.text_encoder import cached_text_encoder
from lbie.models.timgan import TIMGAN


@pytest.fixture(scope="module")
def text():
    return cached_text_encoder()


@pytest.fixture(scope="module")
def scenes():
    return generate_css(12, seed=4)


@pytest.fixture
def editor(text, scenes):
    torch.manual_seed(0)
    model = TIMGAN(text.dim, dim=4, n_res=1, head_dim=16, where_res=1).eval()
    return TIMGANEditor(model, text, scenes, scale=2)


def _decode(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


# --------------------------------------------------------------------------- drawing
def test_png_bytes_is_a_nearest_neighbour_upscale():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(_decode(png_bytes(img, 3)), img.repeat(3, 0).repeat(3, 1))
    with pytest.raises(ValueError, match="RGB"):
        png_bytes(np.zeros((4, 4, 4), np.uint8))


def test_mask_overlay_upsamples_the_feature_mask():
    image = np.full((8, 8, 3), 255, np.uint8)
    mask = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = mask_overlay(mask, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[:4, :4] == out[0, 0]).all() and (out[:4, 4:] == out[0, 4]).all()  # one block per feature cell
    assert out[0, 0].sum() < out[0, 4].sum()  # 0 is dark, 1 light (magma)


def test_gates_html_shows_every_gate():
    page = gates_html(np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert page.count("<td") == 4 and "0.75" in page and "layer 2" in page and "block 2" in page


# --------------------------------------------------------------------------- TIM-GAN tab
def test_outputs_change_with_the_instruction(editor):
    assert editor.last is not None and "error" not in editor.status.value
    before, alpha = (editor.edit_image.value, editor.mask_image.value), editor.last.alpha
    editor.instruction.value = "remove the large blue triangle in the bottom right"  # the observer edits
    after = (editor.edit_image.value, editor.mask_image.value)
    assert editor.last is not None and editor.last.edits.shape == (1, 64, 64, 3)
    assert all(a != b for a, b in zip(before, after)) and not np.allclose(alpha, editor.last.alpha)
    layers, blocks = editor.model.how.layers, editor.model.how.blocks
    assert editor.last.alpha.shape == (1, layers, blocks) and editor.gates.value.count("<td") == layers * blocks
    assert _decode(editor.edit_image.value).shape == (128, 128, 3)
    assert np.array_equal(_decode(editor.edit_image.value)[::2, ::2], editor.last.edits[0])


@pytest.mark.parametrize("bad, message", [("", "empty"), ("   ", "empty"), ("red " * 60, "word pieces")])
def test_a_bad_instruction_is_shown_not_raised(editor, bad, message):
    editor.instruction.value = bad  # must not raise
    assert editor.message.startswith("error: ") and message in editor.message and "error" in editor.status.value
    assert editor.last is None and editor.gates.value == ""
    assert (_decode(editor.edit_image.value) == 235).all()  # the placeholder, not a stale edit
    assert editor.update() is False
    editor.instruction.value = "erase the circle"
    assert editor.last is not None and "error" not in editor.message


def test_adding_an_object_changes_the_source(editor):
    editor.clear_button.click()
    assert (editor.cells == -1).all() and (_decode(editor.source_image.value) == 255).all()
    empty = editor.source_image.value
    editor.shape.value, editor.color.value, editor.object_size.value, editor.cell.value = "circle", "blue", "large", 0
    editor.add_button.click()
    assert editor.cells[0] == cell_code("circle", "blue", "large") and (editor.cells[1:] == -1).all()
    assert editor.source_image.value != empty
    assert np.array_equal(_decode(editor.source_image.value)[::2, ::2], render_cells(editor.cells[None])[0])
    assert np.array_equal(editor.last.edits.shape, (1, 64, 64, 3))
    editor.color.value = "red"  # the same cell again: the new object replaces the old one
    editor.add_button.click()
    assert editor.cells[0] == cell_code("circle", "red", "large") and (editor.cells >= 0).sum() == 1


def test_scene_menu_and_random_scenes(editor, scenes):
    editor.scene_menu.value = 3
    assert np.array_equal(editor.cells, scenes.source_cells[3]) and editor.instruction.value == scenes.instruction[3]
    assert np.array_equal(editor.source, scenes.source[3])
    seen = {tuple(editor.cells)}
    for _ in range(3):
        editor.random_button.click()
        assert editor.last is not None
        seen.add(tuple(editor.cells))
    assert len(seen) == 4


# --------------------------------------------------------------------------- colourisation tab
@pytest.fixture
def colour_editor():
    torch.manual_seed(0)
    return ColorizationEditor(Colorizer(width=4, text_dim=8).eval(), flower_seed=2, scale=2)


def test_colourisation_follows_the_caption(colour_editor):
    ed = colour_editor
    assert ed.last is not None and ed.caption.value == lbie.data.flowers.generate_flowers(1, seed=2).texts[0]
    before = ed.output_image.value
    ed.caption.value = "this flower has blue petals and a yellow center"
    assert ed.output_image.value != before and "asks for blue" in ed.status.value
    assert np.array_equal(_decode(ed.output_image.value)[::2, ::2], ed.last)
    flower = ed.flower_image.value
    ed.new_button.click()
    assert ed.flower_seed.value == 3 and ed.flower_image.value != flower
    assert ed.caption.value == lbie.data.flowers.generate_flowers(1, seed=3).texts[0]


def test_colourisation_unknown_word_is_shown_not_raised(colour_editor):
    colour_editor.caption.value = "the petals are turquoise"
    assert colour_editor.message.startswith("error: ") and "turquoise" in colour_editor.message
    assert colour_editor.last is None and colour_editor.painted is None
    assert (_decode(colour_editor.output_image.value) == 235).all()
    colour_editor.caption.value = "the petals are red"
    assert colour_editor.last is not None and "error" not in colour_editor.message
    assert colour_editor.asked == "red" and colour_editor.painted in lbie.data.flowers.COLORS


def test_tabs_snapshot_and_timing(editor, colour_editor):
    tabs = editor_tabs(editor, colour_editor)
    assert tabs.children == (editor.widget, colour_editor.widget) and len(tabs.titles) == 2
    page = editor.snapshot_html()
    assert page.count("<img src='data:image/png;base64,") == 3 and editor.gates.value in page
    assert editor.message in page and colour_editor.snapshot_html().count("<img") == 3
    texts = ["erase the circle", "remove the square", "remove the square"]  # the repeat runs no callback
    ms = time_callback(editor, texts)
    assert len(ms) == 2 and (ms > 0).all() and editor.instruction.value == "remove the square"
    wall, cpu = time_callback(editor, ["erase the square", "remove the circle"], with_cpu=True)
    assert wall.shape == cpu.shape == (2,) and (cpu > 0).all()
    with pytest.raises(RuntimeError, match="rejected"):
        time_callback(colour_editor, ["a teal flower"])


# --------------------------------------------------------------------------- gallery
def test_gallery_cases_and_their_intended_scenes():
    cells = np.full(9, -1)
    cells[[0, 4, 8]] = [cell_code("rectangle", "red", "small"), cell_code("rectangle", "red", "large"),
                        cell_code("triangle", "blue", "small")]
    cases = gallery_cases(cells)
    assert {c.family for c in cases} == set(FAMILIES)
    by = {(c.family, c.edit): c for c in cases}
    assert reference(cells, 0) == "the small square" and reference(cells, 4) == "the large object"
    control = by[("training phrasing", "change-color")]
    assert control.instruction.startswith("make the small square ")
    changed = np.flatnonzero(np.array(control.target_cells) != cells)
    assert changed.tolist() == [0] and by[("synonym", "change-color")].target_cells == control.target_cells
    assert by[("training phrasing", "remove")].target_cells[4] == -1
    assert by[("training phrasing", "add")].target_cells[1] >= 0  # the first empty cell
    move = by[("new verb", "move")].target_cells
    assert move[0] == -1 and move[1] == cells[0]
    assert all(c.target_cells == tuple(cells) for c in cases if c.family == "impossible")
    assert "red circle" in [c for c in cases if c.family == "impossible"][0].instruction  # a near miss
    with pytest.raises(ValueError, match="at least two objects"):
        gallery_cases(np.r_[cells[:1], np.full(8, -1)])


def test_training_phrasings_are_the_generators(scenes):
    """The control cases use the generator's own templates and references: they occur in a large split."""
    train = lbie.load_css("train", 20_000)
    data, family, _ = gallery_data(gallery_scenes(scenes, 2, n_objects=2))
    seen = set(train.instruction.tolist())
    controls = data.instruction[family == "training phrasing"]
    assert np.mean([t in seen for t in controls]) > 0.5


def test_score_gallery_verdicts(scenes):
    class Pixels(lbie.RetrievalAutoEncoder):  # exact pixel matching
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Flatten()

    data, family, scene = gallery_data(gallery_scenes(scenes, 2, n_objects=2))
    assert len(data) == len(family) == len(scene) and set(scene) == {0, 1}
    assert np.array_equal(data.mask, (data.source != data.target).any(-1))
    index = lbie.RetrievalIndex(Pixels(), scenes.source, scenes.target, scenes.source_id, scenes.target_id)
    perfect = score_gallery(data.target, data, index, scenes, training_instructions=scenes.instruction)
    assert (perfect["verdict"] == "ok").all()
    asked = family != "impossible"
    assert np.allclose(perfect["change_ratio"][asked], 1) and np.isnan(perfect["change_ratio"][~asked]).all()
    assert (perfect["hit@1, source excluded"][asked] == 1).all()
    copy = score_gallery(data.source, data, index, scenes)
    assert (copy["verdict"][~asked] == "ok").all() and (copy["verdict"][asked] == "unchanged").all()
    assert (copy["change_ratio"][asked] == 0).all() and "in training split" not in copy
    # every edit replaced by its scene's "remove" target: right for the remove cases only
    removal = {s: data.target[(scene == s) & (data.kind == "remove")][0] for s in set(scene)}
    other = score_gallery(np.stack([removal[s] for s in scene]), data, index, scenes)["verdict"]
    assert (other[data.kind == "remove"] == "ok").all() and (other[~asked] == "changed").all()
    assert (other[asked & (data.kind != "remove") & (data.kind != "change-color + remove")] == "wrong").all()
    with pytest.raises(ValueError, match="gallery cases"):
        score_gallery(data.source[:2], data, index, scenes)

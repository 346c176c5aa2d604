"""check_edit_inputs: what the TIM-GAN edit path accepts, converts and refuses."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lbie.data.edit_inputs import check_edit_inputs


def _images(n=2, h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_uint8_batch_passes_through():
    x = _images(2)
    out, texts = check_edit_inputs(x, ["add a red circle", "remove the square"], size=64)
    assert out is x
    assert texts == ["add a red circle", "remove the square"] and all(type(t) is str for t in texts)


def test_single_image_and_string_become_a_batch_of_one():
    x = _images(1)[0]
    out, texts = check_edit_inputs(x, "add a red circle", size=64)
    assert out.shape == (1, 64, 64, 3) and out.dtype == np.uint8 and (out[0] == x).all()
    assert texts == ["add a red circle"]


def test_bare_string_with_one_image_is_one_instruction():
    _, texts = check_edit_inputs(_images(1), "make it blue")
    assert texts == ["make it blue"]  # not ['m', 'a', 'k', ...]


def test_float_in_unit_range_is_converted_to_uint8():
    x = np.array([0.0, 0.5, 1.0, 0.25], dtype=np.float32).reshape(1, 2, 2, 1).repeat(3, -1)
    out, _ = check_edit_inputs(x, ["edit"])
    assert out.dtype == np.uint8 and out.shape == (1, 2, 2, 3)
    assert out[0, :, :, 0].ravel().tolist() == [0, 128, 255, 64]


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (0.0, 255.0)])
def test_float_outside_unit_range_raises(lo, hi):
    x = np.linspace(lo, hi, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_edit_inputs(x, ["a", "b"])


def test_float_nan_raises():
    x = np.full((1, 8, 8, 3), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN"):
        check_edit_inputs(x, ["a"])


@pytest.mark.parametrize("shape", [(64, 64), (2, 64, 64), (64, 64, 1), (2, 64, 64, 1)])
def test_grey_images_raise(shape):
    with pytest.raises(ValueError, match="grey") as e:
        check_edit_inputs(np.zeros(shape, np.uint8), ["a", "b"] if len(shape) in (3, 4) and shape[0] == 2 else "a")
    assert str(shape) in str(e.value) and "np.repeat" in str(e.value)


@pytest.mark.parametrize("shape", [(64, 64, 4), (2, 64, 64, 4)])
def test_rgba_raises(shape):
    with pytest.raises(ValueError, match="RGBA") as e:
        check_edit_inputs(np.zeros(shape, np.uint8), ["a", "b"] if len(shape) == 4 else "a")
    assert str(shape) in str(e.value) and "[..., :3]" in str(e.value)


@pytest.mark.parametrize("shape, fix", [((2, 3, 64, 64), "transpose(0, 2, 3, 1)"), ((3, 64, 64), "transpose(1, 2, 0)")])
def test_channels_first_raises(shape, fix):
    with pytest.raises(ValueError, match="channels-first") as e:
        check_edit_inputs(np.zeros(shape, np.uint8), ["a", "b"] if len(shape) == 4 else "a")
    assert str(shape) in str(e.value) and fix in str(e.value)


def test_other_shapes_raise():
    with pytest.raises(ValueError, match=r"\(5,\)"):
        check_edit_inputs(np.zeros(5, np.uint8), "a")
    with pytest.raises(ValueError, match="stacked"):
        check_edit_inputs([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 9, 3), np.uint8)], ["a", "b"])


def test_wrong_size_raises_naming_both():
    with pytest.raises(ValueError, match="65x65.*64x64"):
        check_edit_inputs(_images(1, 65, 65), ["a"], size=64)
    with pytest.raises(ValueError, match="64x48.*64x64"):
        check_edit_inputs(_images(1, 64, 48), ["a"], size=(64, 64))
    assert check_edit_inputs(_images(1, 64, 48), ["a"], size=(64, 48))[0].shape == (1, 64, 48, 3)


def test_none_instruction_raises():
    with pytest.raises(ValueError, match="None"):
        check_edit_inputs(_images(1), None)
    with pytest.raises(ValueError, match="instruction 1 is None"):
        check_edit_inputs(_images(2), ["a", None])


def test_non_string_or_empty_instruction_raises():
    with pytest.raises(ValueError, match="instruction 0 is a int"):
        check_edit_inputs(_images(1), [3])
    with pytest.raises(ValueError, match="instruction 1 is empty"):
        check_edit_inputs(_images(2), ["a", "  "])
    with pytest.raises(ValueError, match="bytes"):
        check_edit_inputs(_images(1), b"add a circle")


def test_bare_string_with_several_images_raises():
    with pytest.raises(ValueError, match=r"one instruction string for 3 images.*\[text\] \* 3"):
        check_edit_inputs(_images(3), "add a red circle")


def test_counts_must_match():
    with pytest.raises(ValueError, match="2 image.*3 instruction"):
        check_edit_inputs(_images(2), ["a", "b", "c"])
    with pytest.raises(ValueError, match="1 image.*2 instruction"):
        check_edit_inputs(_images(1)[0], ["a", "b"])


def test_string_arrays_and_tuples_are_instructions():
    _, texts = check_edit_inputs(_images(2), np.array(["add", "remove"]))
    assert texts == ["add", "remove"] and all(type(t) is str for t in texts)
    assert check_edit_inputs(_images(1), np.array("add a circle"))[1] == ["add a circle"]
    assert check_edit_inputs(_images(2), ("x", "y"))[1] == ["x", "y"]


def test_too_long_instruction_raises_naming_length_and_limit():
    def pieces(text):  # a stand-in tokenizer: two word pieces per word
        return 2 * len(text.split())

    ok = check_edit_inputs(_images(2), ["one two", "three"], max_words=4, count_tokens=pieces)
    assert ok[1] == ["one two", "three"]
    with pytest.raises(ValueError, match=r"instruction 1 .* has 6 word pieces, more than the limit of 4"):
        check_edit_inputs(_images(2), ["one two", "a b c"], max_words=4, count_tokens=pieces)


def test_max_words_without_tokenizer_counts_words():
    with pytest.raises(ValueError, match="has 3 words, more than the limit of 2"):
        check_edit_inputs(_images(1), "a b c", max_words=2)
    assert check_edit_inputs(_images(1), "a b", max_words=2)[1] == ["a b"]


def test_module_does_not_import_the_text_encoder():
    # lbie/__init__ imports everything, so load the module file on its own
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('edit_inputs', 'lbie/data/edit_inputs.py'); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "bad = [n for n in ('lbie.models.text_encoder', 'transformers', 'torch') if n in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])

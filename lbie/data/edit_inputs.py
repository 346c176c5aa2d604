"""Validation of the images and instructions given to a TIM-GAN edit (:func:`check_edit_inputs`).

The model edits a batch of RGB images, uint8 (N, H, W, 3), with one text instruction per image.  Inputs
that are easy to get wrong -- a single image, floats, grey or RGBA images, channels-first tensors, a wrong
resolution, a bare string for several images, missing or over-long instructions -- are either turned into
that form (when the meaning is unambiguous) or rejected with a ``ValueError`` saying what to do.

The module needs only numpy: the tokenizer's word-piece count comes in as a callable, so the text encoder
is never imported here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["check_edit_inputs"]


def _fmt_shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _check_shape(x: np.ndarray) -> bool:
    """Validate the layout of ``x``; True when it is one (H, W, 3) image rather than a batch."""
    shape = _fmt_shape(x.shape)
    if x.ndim == 2:
        raise ValueError(f"images of shape {shape} look like one grey (H, W) image; the model edits RGB images "
                         f"(H, W, 3) or (N, H, W, 3): repeat the channel, e.g. np.repeat(image[..., None], 3, -1)")
    if x.ndim == 3:
        if x.shape[-1] == 3:
            return True
        if x.shape[-1] == 4:
            raise ValueError(f"image of shape {shape} has 4 channels (RGBA); the model edits RGB images: drop "
                             f"or composite the alpha channel first, e.g. image[..., :3]")
        if x.shape[-1] == 1:
            raise ValueError(f"image of shape {shape} has 1 channel (grey); the model edits RGB images: repeat "
                             f"the channel, e.g. np.repeat(image, 3, -1)")
        if x.shape[0] == 3:
            raise ValueError(f"image of shape {shape} looks channels-first (3, H, W); the model takes channels "
                             f"last (H, W, 3): use image.transpose(1, 2, 0)")
        raise ValueError(f"images of shape {shape} look like a batch of grey (N, H, W) images; the model edits "
                         f"RGB images (N, H, W, 3): repeat the channel, e.g. np.repeat(images[..., None], 3, -1)")
    if x.ndim == 4:
        if x.shape[-1] == 3:
            return False
        if x.shape[-1] == 4:
            raise ValueError(f"images of shape {shape} have 4 channels (RGBA); the model edits RGB images: drop "
                             f"or composite the alpha channel first, e.g. images[..., :3]")
        if x.shape[-1] == 1:
            raise ValueError(f"images of shape {shape} have 1 channel (grey); the model edits RGB images: "
                             f"repeat the channel, e.g. np.repeat(images, 3, -1)")
        if x.shape[1] in (1, 3, 4):
            raise ValueError(f"images of shape {shape} look channels-first (N, C, H, W); the model takes channels "
                             f"last (N, H, W, 3): use images.transpose(0, 2, 3, 1)")
    raise ValueError(f"images of shape {shape}: expected one RGB image (H, W, 3) or a batch (N, H, W, 3)")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "f":
        if x.size and not np.isfinite(x).all():
            raise ValueError("float images contain NaN or infinite values")
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
        if lo < 0 or hi > 1:
            raise ValueError(f"float images must lie in [0, 1], got values in [{lo:g}, {hi:g}]; pass uint8 images "
                             f"(0..255) or floats in [0, 1] (for [-1, 1] use (x + 1) / 2, for 0..255 x / 255)")
        return np.round(x * 255).astype(np.uint8)
    if x.dtype.kind in "iu":
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(f"integer images must lie in 0..255, got values in {lo}..{hi}")
        return x.astype(np.uint8)
    raise ValueError(f"images of dtype {x.dtype}: expected uint8 (0..255) or float (0..1) RGB values")


def _check_size(x: np.ndarray, size) -> None:
    if size is None:
        return
    if isinstance(size, (int, np.integer)):
        want = (int(size), int(size))
    else:
        want = tuple(int(s) for s in size)
        if len(want) != 2:
            raise ValueError(f"size must be an int or an (H, W) pair, got {size!r}")
    got = tuple(int(s) for s in x.shape[1:3])
    if got != want:
        raise ValueError(f"images are {got[0]}x{got[1]} but the model edits {want[0]}x{want[1]} images; "
                         f"resize them to {want[0]}x{want[1]} first")


def _instruction_list(instructions, n_images: int) -> list[str]:
    if instructions is None:
        raise ValueError("instructions is None; every edit needs a text instruction")
    if isinstance(instructions, np.ndarray):
        instructions = instructions.tolist()  # a 0-d string array becomes its string
    if isinstance(instructions, bytes):
        raise ValueError("instructions must be str, not bytes: decode them first, e.g. text.decode('utf-8')")
    if isinstance(instructions, str):
        if n_images != 1:
            raise ValueError(f"one instruction string for {n_images} images; pass a list of {n_images} "
                             f"instructions ([text] * {n_images} applies the same edit to every image)")
        instructions = [instructions]
    elif not isinstance(instructions, Iterable):
        raise ValueError(f"instructions must be a string or a sequence of strings, got {type(instructions).__name__}")
    texts = list(instructions)
    for i, t in enumerate(texts):
        if t is None:
            raise ValueError(f"instruction {i} is None; every edit needs a text instruction")
        if not isinstance(t, str):
            raise ValueError(f"instruction {i} is a {type(t).__name__} ({t!r}), expected a str")
        if not t.strip():
            raise ValueError(f"instruction {i} is empty; every edit needs a text instruction")
    if len(texts) != n_images:
        raise ValueError(f"{n_images} image(s) but {len(texts)} instruction(s); give one instruction per image")
    return [str(t) for t in texts]  # plain str (not np.str_)


def _count_words(text: str) -> int:
    return len(text.split())


def check_edit_inputs(images, instructions, *, size: int | tuple[int, int] | None = None,
                      max_words: int | None = None,
                      count_tokens: Callable[[str], int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Check and normalise the inputs of a TIM-GAN edit; returns ``(images, instructions)`` with images
    uint8 (N, H, W, 3) and one plain ``str`` instruction per image.

    Images (anything ``np.asarray`` reads, e.g. a CPU tensor):

    * uint8 (N, H, W, 3) is returned as is (the same array, no copy);
    * a single image (H, W, 3) becomes a batch of one, (1, H, W, 3);
    * floats must lie in [0, 1] and are converted to uint8 as ``round(x * 255)``; floats outside
      [0, 1] (e.g. [-1, 1] or 0..255) or NaN raise;  other integer dtypes are converted when all values
      are in 0..255 and raise otherwise;
    * grey (H, W), (N, H, W) or (..., 1), RGBA (..., 4) and channels-first (3, H, W) / (N, 3, H, W)
      images raise, naming the shape and the conversion to make (RGBA is not converted silently: what
      lies under transparent pixels is undefined);
    * ``size`` (an int for square images, or (H, W)): the model's resolution; other sizes raise naming
      both.

    Instructions:

    * a bare string with one image is that image's instruction (never split into characters); with
      several images it raises (pass a list, ``[text] * N`` for the same edit everywhere);
    * otherwise a sequence of strings (list, tuple, numpy string array, ...), one per image; ``None``,
      non-strings and empty strings raise, as does a count that differs from the number of images;
    * ``max_words``: the longest instruction allowed, in word pieces as counted by ``count_tokens(text)``
      (pass the tokenizer's count, e.g. ``lambda t: len(encoder.tokenizer.tokenize(t))`` with
      ``max_words=encoder.max_length - 2``); without ``count_tokens``, whitespace-separated words are
      counted.  A longer instruction raises naming its position, its length and the limit.

    Every problem with the inputs raises ``ValueError``.
    """
    stack_error = ValueError("images could not be stacked into one array (different shapes or non-numeric "
                             "items); pass one (N, H, W, 3) array of equally sized images")
    if images is None:
        raise ValueError("images is None; pass one RGB image (H, W, 3) or a batch (N, H, W, 3)")
    try:
        x = np.asarray(images)
    except ValueError as e:  # ragged lists
        raise stack_error from e
    if x.dtype == object:
        raise stack_error
    single = _check_shape(x)
    x = _to_uint8(x)
    if single:
        x = x[None]
    if len(x) == 0:
        raise ValueError("no images given")
    _check_size(x, size)
    texts = _instruction_list(instructions, len(x))
    if max_words is not None:
        if int(max_words) < 1:
            raise ValueError(f"max_words must be positive, got {max_words}")
        count = _count_words if count_tokens is None else count_tokens
        unit = "words" if count_tokens is None else "word pieces"
        for i, t in enumerate(texts):
            n = count(t)
            if not isinstance(n, (int, np.integer)):
                raise TypeError(f"count_tokens must return an int, got {type(n).__name__} for instruction {i}")
            if n > max_words:
                shown = t if len(t) <= 60 else t[:57] + "..."
                raise ValueError(f"instruction {i} ({shown!r}) has {int(n)} {unit}, more than the limit of "
                                 f"{int(max_words)}; shorten it (the text encoder would truncate it)")
    return x, texts

"""An interactive editor for the two trained models (ipywidgets): TIM-GAN on CSS-2D and LBIE's colouriser.

* :class:`TIMGANEditor` -- pick a test scene or a random one (:func:`lbie.data.css.generate_css`), place objects
  on the 3x3 grid (shape / colour / size / cell, "add object", "clear"), type an instruction, and see the
  source, TIM-GAN's edit, its where mask M (predicted at feature resolution, upsampled nearest-neighbour
  over the source) and its routing gates alpha (layers x blocks), through :func:`~lbie.experiments.timgan.
  explain_edits`.
* :class:`ColorizationEditor` -- generate a flower (:func:`lbie.data.flowers.generate_flowers`), type a caption,
  see LBIE's colourisation of its lightness (:func:`~lbie.experiments.colorization.colorize`) and the colour
  name the petals got.

Every observer calls the editor's :meth:`update`, the end-to-end callback (model, then the images drawn
into the widgets), which returns True on success.  Inputs the models reject (an empty or over-long
instruction, checked by :func:`lbie.edit_inputs.check_edit_inputs`; a word outside the colouriser's
vocabulary) raise ``ValueError`` inside it; :meth:`update` catches it and shows the message in the
editor's ``status`` widget (its text in ``message``) instead of raising.  Images are drawn without matplotlib: upscaled
nearest-neighbour and encoded as PNG by OpenCV (a few milliseconds), so one edit stays well inside an
interactive budget (``python -m lbie bench --part editor`` times :meth:`update`).  The widgets work without
a frontend, so the callbacks can be driven programmatically (tests, notebooks run headless).
"""
from __future__ import annotations

import base64
import html
import time

import cv2
import ipywidgets as w
import numpy as np

from .experiments.colorization import colorize
from .models.colorization import tokenize
from .data.css import COLORS, POSITIONS, SHAPES, SIZES, CSSData, cell_code, generate_css, render_cells
from .data.flowers import PARTS, VOCAB, caption_colors, classify_colors, generate_flowers, lab_to_rgb, rgb_to_lab
from .data.flowers import COLORS as FLOWER_COLORS
from .experiments.timgan import explain_edits

__all__ = ["TIMGANEditor", "ColorizationEditor", "editor_tabs", "time_callback", "png_bytes", "mask_overlay",
           "gates_html"]

_ERROR_STYLE, _NOTE_STYLE = "color:#b00020", "color:#555"
_BLANK = 235  # grey of the placeholder drawn where an output is missing (after an error)


# --------------------------------------------------------------------------- drawing (no matplotlib)
def png_bytes(image, scale: int = 4) -> bytes:
    """uint8 RGB (H, W, 3) or grey (H, W) -> PNG bytes of the image upscaled ``scale`` x, nearest-neighbour."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {img.shape}")
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR) if big.ndim == 3 else big)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("OpenCV could not encode the image as PNG")
    return buf.tobytes()


def mask_overlay(mask, image, opacity: float = 0.6) -> np.ndarray:
    """A mask (h, w) in [0, 1] upsampled nearest-neighbour to ``image`` (H, W, 3) uint8, coloured with
    OpenCV's magma map (black 0 .. light yellow 1, the book's mask colours) and blended over it."""
    image = np.asarray(image, dtype=np.uint8)
    up = cv2.resize(np.asarray(mask, dtype=np.float32), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    colour = cv2.applyColorMap(np.round(np.clip(up, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1]
    return np.round((1 - opacity) * image + opacity * colour).astype(np.uint8)


def gates_html(alpha) -> str:
    """The routing gates alpha (layers, blocks) as an HTML table, each cell shaded by its value."""
    alpha = np.asarray(alpha, dtype=np.float64)
    head = "".join(f"<th style='padding:2px 8px'>block {j + 1}</th>" for j in range(alpha.shape[1]))
    rows = "".join(
        f"<tr><th style='padding:2px 8px'>layer {i + 1}</th>" + "".join(
            f"<td style='padding:2px 8px;text-align:right;background:rgba(31,119,180,{v:.2f})'>{v:.2f}</td>"
            for v in row) + "</tr>" for i, row in enumerate(alpha))
    return f"<table style='border-collapse:collapse'><tr><th></th>{head}</tr>{rows}</table>"


def _blank(size: int) -> np.ndarray:
    return np.full((size, size, 3), _BLANK, np.uint8)


def _panel(title: str, child: w.Widget) -> w.VBox:
    return w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"), child])


def _image_widget(px: int) -> w.Image:
    return w.Image(format="png", width=px, height=px)


class _Editor:
    """What both editors share: the ``status`` line (its plain text in :attr:`message`), the Text widget
    whose observer runs :meth:`update` (:attr:`text_box`), and a static HTML copy of the panels."""

    text_box: w.Text
    status: w.HTML
    message: str = ""
    last = None  # the output of the last successful update, None after a rejected input
    _panels: dict  # title -> Image or HTML widget

    def _say(self, text: str, error: bool = False) -> None:
        self.message = f"error: {text}" if error else text
        style = _ERROR_STYLE if error else _NOTE_STYLE
        self.status.value = f"<span style='{style}'>{html.escape(self.message)}</span>"

    def snapshot_html(self) -> str:
        """The panels and the status line as self-contained HTML (PNG data URIs): what the widgets show,
        for pages without a live kernel."""
        cells = []
        for title, widget in self._panels.items():
            body = widget.value if not isinstance(widget, w.Image) else (
                f"<img src='data:image/png;base64,{base64.b64encode(widget.value).decode()}' "
                f"alt='{html.escape(title)}' width='{widget.width}'>")
            cells.append(f"<td style='vertical-align:top;padding:4px'><b>{html.escape(title)}</b><br>{body}</td>")
        return (f"<p><b>{html.escape(self.text_box.description)}:</b> “{html.escape(self.text_box.value)}”</p>"
                f"<table><tr>{''.join(cells)}</tr></table>{self.status.value}")


def time_callback(editor: _Editor, texts, *, with_cpu: bool = False):
    """Milliseconds from setting each of ``texts`` as the editor's Text value to the end of its observer,
    the callback (:meth:`update`: the model, then the images drawn into the widgets).  Texts equal to the
    current value are skipped (no observer runs); the TIM-GAN editor's text encoder forgets each
    instruction first, so the transformer runs as for a newly typed one.  ``with_cpu``: also the process's
    CPU time of each callback (equal to the wall time on an idle machine; on a busy one the difference is
    time spent waiting for a core).  ``RuntimeError`` when the editor rejects a text."""
    cache = getattr(getattr(editor, "text_encoder", None), "_cache", {})
    wall, cpu = [], []
    for t in texts:
        cache.pop(t, None)
        if t == editor.text_box.value:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        editor.text_box.value = t
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
        if editor.last is None:
            raise RuntimeError(f"the editor rejected {t!r}: {editor.message}")
    return (np.array(wall), np.array(cpu)) if with_cpu else np.array(wall)


# --------------------------------------------------------------------------- TIM-GAN on CSS-2D
class TIMGANEditor(_Editor):
    """Widgets around a trained TIM-GAN (``model``, ``text_encoder``: a :class:`~lbie.experiments.timgan.
    TIMGANRun`'s) on CSS-2D scenes.  ``scenes``: the test split offered in the scene menu (its first
    ``n_choices``); ``size``: the model's image size; ``scale``: display upscaling; ``seed`` / ``sample``:
    as in :func:`~lbie.experiments.timgan.edit_images` (gates Gumbel-sampled from a fixed seed, as in
    evaluation).  ``widget`` is the editor's box; :meth:`update` is the callback of every control."""

    def __init__(self, model, text_encoder, scenes: CSSData, *, size: int | None = None, scale: int = 4,
                 n_choices: int = 50, seed: int = 0, sample: bool = True):
        self.model, self.text_encoder, self.scenes = model, text_encoder, scenes
        self.size = int(size or scenes.source.shape[1])
        self.scale, self.seed, self.sample = scale, seed, sample
        self._random_seed = 0
        self.cells = np.asarray(scenes.source_cells[0], dtype=np.int8).copy()  # (9,) the source scene
        self.last = None  # the EditExplanation of the last successful edit
        n = min(n_choices, len(scenes))
        count = (np.asarray(scenes.source_cells[:n]) >= 0).sum(1)
        self.scene_menu = w.Dropdown(options=[(f"test scene {i} ({c} objects)", i) for i, c in enumerate(count)],
                                     value=0, description="scene")
        self.random_button = w.Button(description="random scene", tooltip="a new scene from the CSS-2D generator")
        self.shape = w.Dropdown(options=SHAPES, value=SHAPES[0], description="shape")
        self.color = w.Dropdown(options=COLORS, value=COLORS[1], description="colour")
        self.object_size = w.Dropdown(options=SIZES, value=SIZES[0], description="size")
        self.cell = w.Dropdown(options=[(p, k) for k, p in enumerate(POSITIONS)], value=4, description="cell")
        self.add_button = w.Button(description="add object", tooltip="place the object (replacing one in that cell)")
        self.clear_button = w.Button(description="clear", tooltip="remove every object")
        self.instruction = w.Text(value=str(scenes.instruction[0]), description="instruction",
                                  placeholder="e.g. make the red square blue", continuous_update=True,
                                  layout=w.Layout(width="90%"))
        self.text_box = self.instruction
        px = self.size * scale
        self.source_image, self.edit_image, self.mask_image = (_image_widget(px) for _ in range(3))
        self.gates = w.HTML()
        self.status = w.HTML()
        self._panels = {"source": self.source_image, "TIM-GAN's edit": self.edit_image,
                        "where mask M (feature resolution, upsampled)": self.mask_image,
                        "routing gates α (layers x blocks)": self.gates}
        self.widget = w.VBox([
            w.HBox([self.scene_menu, self.random_button]),
            w.HBox([self.shape, self.color, self.object_size, self.cell]),
            w.HBox([self.add_button, self.clear_button]),
            self.instruction,
            w.HBox([_panel(title, widget) for title, widget in self._panels.items()]),
            self.status])
        self.scene_menu.observe(lambda change: self.pick_scene(change["new"]), "value")
        self.random_button.on_click(lambda _: self.random_scene())
        self.add_button.on_click(lambda _: self.add_object())
        self.clear_button.on_click(lambda _: self.clear())
        self.instruction.observe(lambda _: self.update(), "value")
        self.update()

    @property
    def source(self) -> np.ndarray:
        """The current source scene rendered by the CSS-2D renderer, (size, size, 3) uint8."""
        return render_cells(self.cells[None], self.size)[0]

    def _set(self, cells, instruction: str | None = None) -> bool:
        self.cells = np.asarray(cells, dtype=np.int8).copy()
        if instruction is not None and instruction != self.instruction.value:
            self.instruction.value = instruction  # its observer runs update()
            return self.last is not None
        return self.update()

    def pick_scene(self, i: int) -> bool:
        """Test scene ``i`` with its own instruction."""
        return self._set(self.scenes.source_cells[i], str(self.scenes.instruction[i]))

    def random_scene(self) -> bool:
        """A new scene (and an instruction for it) from the CSS-2D generator."""
        self._random_seed += 1
        data = generate_css(1, seed=10_000 + self._random_seed, size=16)  # only its cells and text are used
        return self._set(data.source_cells[0], str(data.instruction[0]))

    def add_object(self) -> bool:
        """Place the object chosen in the dropdowns in its cell (replacing the cell's object, if any)."""
        cells = self.cells.copy()
        cells[self.cell.value] = cell_code(self.shape.value, self.color.value, self.object_size.value)
        return self._set(cells)

    def clear(self) -> bool:
        """An empty canvas."""
        return self._set(np.full(9, -1))

    def update(self) -> bool:
        """Edit the source with the instruction and draw source, edit, mask and gates (the callback)."""
        source = self.source
        self.source_image.value = png_bytes(source, self.scale)
        try:
            ex = explain_edits(self.model, self.text_encoder, source[None], [self.instruction.value],
                               seed=self.seed, sample=self.sample)
        except ValueError as e:
            self.last = None
            self.edit_image.value = self.mask_image.value = png_bytes(_blank(self.size), self.scale)
            self.gates.value = ""
            self._say(str(e), error=True)
            return False
        self.last = ex
        self.edit_image.value = png_bytes(ex.edits[0], self.scale)
        self.mask_image.value = png_bytes(mask_overlay(ex.mask[0], source), self.scale)
        self.gates.value = "no how module (no gates)" if ex.alpha is None else gates_html(ex.alpha[0])
        changed = float((np.abs(ex.edits[0].astype(np.int16) - source).sum(-1) > 30).mean())
        h, wd = ex.mask.shape[1:]
        self._say(f"{len(ex.tokens[0])} word pieces; mask {h}x{wd}, mean {ex.mask[0].mean():.2f}, max "
                  f"{ex.mask[0].max():.2f}; pixels changed: {changed:.1%}")
        return True


# --------------------------------------------------------------------------- LBIE colourisation
def _petal_colour(rgb: np.ndarray, parts: np.ndarray) -> str:
    """The most common colour name over the petal pixels (as :func:`lbie.data.flowers.caption_consistency`)."""
    names = classify_colors(rgb_to_lab(rgb[parts == PARTS.index("petals")]))
    return FLOWER_COLORS[int(np.bincount(names, minlength=len(FLOWER_COLORS)).argmax())] if names.size else ""


class ColorizationEditor(_Editor):
    """Widgets around LBIE's colouriser (``model``: a :class:`~lbie.experiments.colorization.ColorizationRun`'s)
    on generated flowers: the flower (by seed), its grey input, the colourisation of the typed caption, and
    the colour name its petals got next to the one the caption asks for."""

    def __init__(self, model, *, flower_seed: int = 0, size: int = 64, scale: int = 4):
        self.model, self.size, self.scale = model, size, scale
        self.flower_seed = w.BoundedIntText(value=flower_seed, min=0, max=10**9, description="flower seed")
        self.new_button = w.Button(description="new flower", tooltip="the next seed")
        self.caption = w.Text(description="caption", placeholder="e.g. this flower has blue petals",
                              continuous_update=True, layout=w.Layout(width="90%"))
        self.text_box = self.caption
        px = size * scale
        self.flower_image, self.grey_image, self.output_image = (_image_widget(px) for _ in range(3))
        self.status = w.HTML()
        self.last = None  # the last colourisation, (size, size, 3) uint8
        self.asked = self.painted = None  # the petal colour the caption names / the colourisation's
        self._panels = {"generated flower": self.flower_image, "input: its lightness L": self.grey_image,
                        "LBIE's colourisation": self.output_image}
        self.widget = w.VBox([w.HBox([self.flower_seed, self.new_button]), self.caption,
                              w.HBox([_panel(title, widget) for title, widget in self._panels.items()]),
                              self.status])
        self.flower_seed.observe(lambda change: self.new_flower(change["new"]), "value")
        self.new_button.on_click(lambda _: setattr(self.flower_seed, "value", self.flower_seed.value + 1))
        self.caption.observe(lambda _: self.update(), "value")
        self.new_flower(flower_seed)

    def _load(self, seed: int) -> None:
        self.flower = generate_flowers(1, seed=seed, size=self.size)
        L = rgb_to_lab(self.flower.images[0])[..., 0]
        grey = lab_to_rgb(np.stack([L, np.zeros_like(L), np.zeros_like(L)], -1))
        self.flower_image.value = png_bytes(self.flower.images[0], self.scale)
        self.grey_image.value = png_bytes(np.round(grey * 255).astype(np.uint8), self.scale)

    def new_flower(self, seed: int) -> bool:
        """The flower of ``seed`` with its own caption."""
        self._load(seed)
        caption = str(self.flower.texts[0])
        if caption != self.caption.value:
            self.caption.value = caption  # its observer runs update()
            return self.last is not None
        return self.update()

    def update(self) -> bool:
        """Colourise the flower's lightness following the caption and draw it (the callback)."""
        try:
            tokens = tokenize([self.caption.value])
        except ValueError as e:
            self.last = self.painted = None
            self.output_image.value = png_bytes(_blank(self.size), self.scale)
            self._say(f"{e}; the colouriser knows the words: {' '.join(VOCAB[1:])}", error=True)
            return False
        self.last = colorize(self.model, self.flower.images, tokens)[0]
        self.output_image.value = png_bytes(self.last, self.scale)
        asked = caption_colors(self.caption.value).get("petals")
        got = _petal_colour(self.last, self.flower.parts[0])
        verdict = "" if asked is None else (" ✓" if got == asked else " ✗")
        self.asked, self.painted = asked, got
        self._say(f"petals: the caption asks for {asked or '(no colour)'}, the colourisation's most common petal "
                  f"colour is {got}{verdict}")
        return True


def editor_tabs(timgan: TIMGANEditor, colorization: ColorizationEditor) -> w.Tab:
    """The two editors as tabs."""
    return w.Tab(children=[timgan.widget, colorization.widget], titles=("TIM-GAN on CSS-2D", "LBIE colourisation"))

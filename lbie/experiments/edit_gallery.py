"""A gallery of instructions outside CSS-2D's training phrasings, each with the scene it asks for.

CSS-2D's generator (:mod:`lbie.data.css`) phrases every instruction from a few templates ("make the red object
blue", "remove the circle in the center", "add a small red circle to the top left", ...).  The objects are
named as the generator names them (:func:`lbie.data.css.reference`), so only the phrasing around them varies.
:func:`gallery_cases` writes, for one scene, the same edits in other words -- a template phrasing as the
control, synonyms the templates never use ("colour", "eliminate", "tiny", "enlarge"), paraphrases, unseen
word orders -- and instructions the model was never trained on: two edits at once, a new verb ("move"),
and impossible edits (an object that is not there, a shape CSS-2D does not have).  Each case comes with
its **intended scene**, rendered by the project's renderer; for an impossible edit that is the source
itself (the right answer is to change nothing).

:func:`score_gallery` measures the model's edits against those scenes, with no verdict typed by hand:

* the shared retrieval encoder (:func:`lbie.experiments.timgan.retrieval_index`) embeds the edit and a
  gallery of the test split's scenes plus every case's source and intended scene; the verdict is ``ok``
  when the intended scene is the nearest (cosine, the source **kept** in the gallery: the stricter RS@1
  variant), ``unchanged`` when the source is nearest instead, ``wrong`` otherwise (for an impossible edit:
  ``ok`` when the source is nearest, else ``changed``);
* ``hit@1, source excluded``: the paper's RS@1 criterion for the same edit (the intended scene nearest once
  the source is left out; NaN for an impossible edit, whose intended scene is the source);
* the pixel measures of :func:`lbie.experiments.timgan.edit_fidelity`: ``change_ratio`` (how much of the
  asked-for change was drawn; NaN when nothing is asked) and ``outside_change`` (change elsewhere).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.css import (COLORS, POSITIONS, SHAPE_WORDS, SHAPES, SIZES, CSSData, cell_attributes, cell_code,
                  cells_to_id, reference, render_cells)
from ..metrics.retrieval import RetrievalIndex, rs_at_n
from .timgan import edit_fidelity

FAMILIES = ("training phrasing", "synonym", "paraphrase", "word order", "two edits", "new verb", "impossible")


@dataclass(frozen=True)
class GalleryCase:
    """One instruction for a scene: ``family`` (one of :data:`FAMILIES`), ``edit`` (what it asks for,
    e.g. ``"change-color"``, ``"none"``), the instruction and the intended scene's cells (9,)."""
    family: str
    edit: str
    instruction: str
    target_cells: tuple[int, ...]


def _attrs(code: int) -> tuple[str, str, str]:
    a = cell_attributes(code)
    return a["shape"], a["color"], a["size"]


def _with(cells, changes: dict) -> tuple[int, ...]:
    """``cells`` with cell k set to ``changes[k]`` (a code, -1 to empty it)."""
    return tuple(int(changes.get(k, c)) for k, c in enumerate(cells))


def gallery_cases(cells) -> list[GalleryCase]:
    """The gallery's instructions for the scene ``cells`` (nine cell codes, -1 empty; at least two objects
    and one empty cell).  Object A is the first occupied cell, B the second, E the first empty cell."""
    cells = [int(c) for c in np.asarray(cells).ravel()]
    occupied, empty = [k for k, c in enumerate(cells) if c >= 0], [k for k, c in enumerate(cells) if c < 0]
    if len(cells) != 9 or len(occupied) < 2 or not empty:
        raise ValueError(f"a gallery scene needs nine cells with at least two objects and one empty cell, got {cells}")
    a, b, e = occupied[0], occupied[1], empty[0]
    shape, color, size = _attrs(cells[a])
    ref_a, ref_b, where = reference(cells, a), reference(cells, b), POSITIONS[e]
    new_color = COLORS[(COLORS.index(color) + 3) % len(COLORS)]
    new_size = SIZES[1 - SIZES.index(size)]
    new_shape = SHAPES[(SHAPES.index(shape) + 1) % len(SHAPES)]
    recolored = _with(cells, {a: cell_code(shape, new_color, size)})
    removed = _with(cells, {b: -1})
    added = _with(cells, {e: cell_code(new_shape, new_color, "small")})
    resized = _with(cells, {a: cell_code(shape, color, new_size)})
    reshaped = _with(cells, {a: cell_code(new_shape, color, size)})
    noun = SHAPE_WORDS[new_shape][0]
    # an object that is not in the scene: A's colour on another shape if possible (a near miss)
    present = {_attrs(c)[:2] for c in cells if c >= 0}
    absent = next((sh, col) for col in (color,) + COLORS for sh in SHAPES if (sh, col) not in present)
    rows = [
        ("training phrasing", "change-color", f"make {ref_a} {new_color}", recolored),
        ("synonym", "change-color", f"colour {ref_a} {new_color}", recolored),
        ("paraphrase", "change-color", f"i would like {ref_a} to be {new_color}", recolored),
        ("word order", "change-color", f"{ref_a}, make it {new_color}", recolored),
        ("training phrasing", "remove", f"remove {ref_b}", removed),
        ("synonym", "remove", f"eliminate {ref_b}", removed),
        ("paraphrase", "remove", f"i do not want {ref_b} any more", removed),
        ("word order", "remove", f"{ref_b}, delete it", removed),
        ("training phrasing", "add", f"add a small {new_color} {noun} to the {where}", added),
        ("synonym", "add", f"add a tiny {new_color} {noun} to the {where}", added),
        ("word order", "add", f"in the {where}, add a small {new_color} {noun}", added),
        ("training phrasing", "change-size", f"make {ref_a} {new_size}", resized),
        ("synonym", "change-size", f"{'enlarge' if new_size == 'large' else 'shrink'} {ref_a}", resized),
        ("training phrasing", "change-shape", f"turn {ref_a} into a {noun}", reshaped),
        ("two edits", "change-color + remove", f"make {ref_a} {new_color} and remove {ref_b}",
         _with(recolored, {b: -1})),
        ("new verb", "move", f"move {ref_a} to the {where}", _with(cells, {a: -1, e: cells[a]})),
        ("impossible", "none", f"remove the {absent[1]} {SHAPE_WORDS[absent[0]][0]}", tuple(cells)),
        ("impossible", "none", f"make the hexagon {new_color}", tuple(cells)),
    ]
    return [GalleryCase(f, k, t, tgt) for f, k, t, tgt in rows]


def gallery_scenes(data: CSSData, n: int, *, n_objects: int = 3) -> np.ndarray:
    """Cells (n, 9) of the first ``n`` source scenes of ``data`` with ``n_objects`` objects."""
    count = (np.asarray(data.source_cells) >= 0).sum(1)
    picks = np.flatnonzero(count == n_objects)[:n]
    if len(picks) < n:
        raise ValueError(f"only {len(picks)} scenes with {n_objects} objects in the data, {n} asked for")
    return np.asarray(data.source_cells)[picks]


def gallery_data(scenes, *, size: int = 64) -> tuple[CSSData, np.ndarray, np.ndarray]:
    """Every case of every scene as one :class:`~lbie.data.css.CSSData` (kind: the intended edit, mask: the
    pixels where source and intended scene differ), with each case's family and scene number (N,)."""
    scenes = np.asarray(scenes)
    rows = [(s, case) for s, cells in enumerate(scenes) for case in gallery_cases(cells)]
    src = np.array([scenes[s] for s, _ in rows], dtype=np.int8)
    tgt = np.array([c.target_cells for _, c in rows], dtype=np.int8)
    source, target = render_cells(src, size), render_cells(tgt, size)
    n = len(rows)
    data = CSSData(source=source, target=target, mask=(source != target).any(-1),
                   instruction=np.array([c.instruction for _, c in rows]), reference=np.full(n, ""),
                   kind=np.array([c.edit for _, c in rows]), attribute=np.full(n, ""), edited=np.full(n, -1),
                   source_cells=src, target_cells=tgt, source_id=cells_to_id(src), target_id=cells_to_id(tgt))
    return data, np.array([c.family for _, c in rows]), np.array([s for s, _ in rows])


def score_gallery(edits, data: CSSData, index: RetrievalIndex, distractors: CSSData, *,
                  training_instructions=None) -> dict:
    """Per case: the nearest scene's verdict (module doc), ``change_ratio`` and ``outside_change``
    (:func:`~lbie.experiments.timgan.edit_fidelity`) and, given ``training_instructions``, whether the
    instruction occurs verbatim in them.  ``index`` supplies the shared encoder; the retrieval gallery
    is ``distractors``' scenes (e.g. the test split) plus every case's source and intended scene."""
    edits = np.asarray(edits)
    if len(edits) != len(data):
        raise ValueError(f"{len(edits)} edits for {len(data)} gallery cases")
    gallery = RetrievalIndex(index.encoder, np.concatenate([distractors.source, data.source]),
                             np.concatenate([distractors.target, data.target]),
                             np.concatenate([distractors.source_id, data.source_id]),
                             np.concatenate([distractors.target_id, data.target_id]))
    query, keep = index.encoder.embed(edits), np.full(len(data), -1)
    intended = rs_at_n(query, gallery.embeddings, gallery.ids, data.target_id, keep, ns=(1,))[1]
    nearest_source = rs_at_n(query, gallery.embeddings, gallery.ids, data.source_id, keep, ns=(1,))[1]
    paper = rs_at_n(query, gallery.embeddings, gallery.ids, data.target_id, data.source_id, ns=(1,))[1]
    nothing_asked = data.source_id == data.target_id
    verdict = np.where(nothing_asked, np.where(intended, "ok", "changed"),
                       np.where(intended, "ok", np.where(nearest_source, "unchanged", "wrong")))
    fid = edit_fidelity(edits, data.source, data.target, np.arange(len(data)).astype(str))
    out = {"instruction": data.instruction, "intended edit": data.kind, "verdict": verdict,
           "hit@1, source excluded": np.where(nothing_asked, np.nan, paper.astype(float)),
           "change_ratio": np.array([fid[str(i)]["change_ratio"] for i in range(len(data))]),
           "outside_change": np.array([fid[str(i)]["outside_change"] for i in range(len(data))])}
    if training_instructions is not None:
        seen = set(np.asarray(training_instructions).tolist())
        out["in training split"] = np.array([t in seen for t in data.instruction.tolist()])
    return out

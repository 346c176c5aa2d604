"""Checks that keep the notebooks and the Jupyter Book table of contents consistent.

Uses only the standard library, json and PyYAML (a dependency of jupyter-book).
"""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = ROOT / "book" / "_toc.yml"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _toc_files(node):
    """All `file:` entries (and the root) of a jb-book toc, in order."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_toc_files(item))
    return found


def _resolve(entry):
    """The file a toc entry names: entries are paths from the repo root, suffix optional."""
    path = ROOT / entry
    if path.suffix in (".md", ".ipynb"):
        return path if path.is_file() else None
    for suffix in (".ipynb", ".md"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    return None


def _load(nb_path):
    return json.loads(nb_path.read_text(encoding="utf-8"))


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_toc_entries_exist():
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    entries = _toc_files(toc)
    assert entries, "book/_toc.yml lists no files"
    missing = [e for e in entries if _resolve(e) is None]
    assert not missing, f"toc entries with no file: {missing}"


def test_every_notebook_in_toc():
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    listed = {_resolve(e) for e in _toc_files(toc)}
    absent = [nb.relative_to(ROOT).as_posix() for nb in NOTEBOOKS if nb not in listed]
    assert not absent, f"notebooks missing from book/_toc.yml: {absent}"


notebook_params = pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])


@notebook_params
def test_first_cell_is_title(nb_path):
    cells = _load(nb_path)["cells"]
    assert cells, "notebook has no cells"
    first = cells[0]
    assert first["cell_type"] == "markdown", "first cell must be markdown"
    first_line = _source(first).lstrip().splitlines()[0] if _source(first).strip() else ""
    assert re.match(r"^# \S", first_line), f"first cell must start with '# Title', got {first_line!r}"


@notebook_params
def test_one_parameters_cell(nb_path):
    cells = _load(nb_path)["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found {len(tagged)}"
    cell = tagged[0]
    assert cell["cell_type"] == "code", "the 'parameters' cell must be a code cell"
    assert re.search(r"^preset\s*=\s*", _source(cell), re.MULTILINE), (
        "the 'parameters' cell must set `preset = ...`"
    )


@notebook_params
def test_no_stored_errors(nb_path):
    cells = _load(nb_path)["cells"]
    errors = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
        and any(out.get("output_type") == "error" for out in c.get("outputs", []))
    ]
    assert not errors, f"cells with stored error outputs: {errors}"


BUILT = ROOT / "book" / "_build" / "html"


def _built_pages():
    """The built book's chapter pages, or a skip when the book has not been built."""
    pages = sorted((BUILT / "notebooks").glob("*.html"))
    if not pages:
        pytest.skip(f"the book has not been built ({BUILT.relative_to(ROOT)}/notebooks/ holds no pages); "
                    "build it with `make book-smoke` or `make book`")
    return pages


def test_math_is_served_locally():
    """MathJax comes from the built book's own _static folder, not from a CDN, so formulas render offline."""
    pages = _built_pages()
    chapter2 = BUILT / "notebooks" / "02_fusion_step_by_step.html"
    assert chapter2 in pages, "chapter 2 (a page with math) is missing from the built book"
    assert re.search(r'class="math[ "]', chapter2.read_text(encoding="utf-8")), "chapter 2 renders no math"
    for page in pages:
        html = page.read_text(encoding="utf-8")
        scripts = [src for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) if "mathjax" in src.lower()]
        if page == chapter2:
            assert scripts, f"{page.name} loads no MathJax script"
        remote = [src for src in scripts if re.match(r"(https?:)?//", src)]
        assert not remote, f"{page.name} loads MathJax from a CDN: {remote}"
        for src in scripts:
            assert (page.parent / src.split("?")[0]).is_file(), f"{page.name}: {src} is not in the built book"


def test_no_script_from_a_cdn():
    """Every script of the built book is served from the book itself (it reads offline), including on the pages
    with ipywidgets, whose embedding scripts myst-nb would otherwise load from a CDN."""
    for page in _built_pages():
        html = page.read_text(encoding="utf-8")
        remote = [src for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) if re.match(r"(https?:)?//", src)]
        assert not remote, f"{page.name} loads scripts from the network: {remote}"


def test_custom_css_registered():
    """book/_static/custom.css (table padding, scrolling of wide tables) exists and the book links it."""
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    assert "book/_static" in config["html_static_path"]
    assert "custom.css" in config["html_css_files"]
    assert (ROOT / "book" / "_static" / "custom.css").is_file()

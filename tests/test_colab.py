"""Colab: every chapter's badge and install command match book/_config.yml, and a chapter run the way
Colab runs it (an installed, non-editable wheel; a folder outside the repository; ``google.colab``
imported) loads the published checkpoints and results and trains nothing.

The last test builds the wheel, installs it into a fresh virtual environment that borrows this
environment's packages (torch is not installed again) and executes chapter 6 at its default preset:
about a minute on two busy cores.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import yaml

from lbie import devtools

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BOOK = yaml.safe_load((ROOT / "book" / "_config.yml").read_text(encoding="utf-8"))
CHAPTER = ROOT / "notebooks" / "06_language_colorization.ipynb"  # loads two checkpoints and a results file


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _title_and_setup(nb_path):
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    return (next(c for c in cells if c["cell_type"] == "markdown"), next(c for c in cells if c["cell_type"] == "code"))


# --------------------------------------------------------------------------- one place names the repository
def test_book_launches_colab():
    assert BOOK["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    # the launch button links <path_to_book>/<page>.ipynb of the repository; pages are notebooks/<name>
    path_to_book = BOOK["repository"]["path_to_book"].strip("/")
    for nb in NOTEBOOKS:
        assert (ROOT / path_to_book / "notebooks" / nb.name).is_file()


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_badge_and_install_match_book_config(nb_path):
    url, branch = BOOK["repository"]["url"].rstrip("/"), BOOK["repository"]["branch"]
    org, repo = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url).groups()
    prefix = BOOK["repository"]["path_to_book"].strip("/")
    page = f"{prefix}/notebooks/{nb_path.name}" if prefix else f"notebooks/{nb_path.name}"
    title, setup = (_source(c) for c in _title_and_setup(nb_path))

    lines = title.splitlines()
    assert lines[0].startswith("# ") and lines[1] == ""
    assert lines[2] == ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                        f"(https://colab.research.google.com/github/{org}/{repo}/blob/{branch}/{page})")
    assert title.count("colab.research.google.com/github/") == 1

    installs = [line for line in setup.splitlines() if "pip install" in line]
    assert installs == [f'    !pip install -q "lbie[minilm] @ git+{url}@{branch}"'], installs
    assert 'if "google.colab" in sys.modules and os.environ.get("LBIE_SKIP_INSTALL") != "1":' in setup
    assert setup.count("github.com") == 1


def test_devtools_reports_no_stale_notebook():
    assert devtools.sync_notebooks(check=True) == []


def test_devtools_rewrites_only_the_title_and_setup_cells(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "book" / "_config.yml").read_text(encoding="utf-8")
                      .replace(BOOK["repository"]["url"], "https://github.com/another-org/lbie-fork"), encoding="utf-8")
    assert len(devtools.sync_notebooks(notebooks=notebooks, config=config)) == len(NOTEBOOKS)
    assert devtools.sync_notebooks(notebooks=notebooks, config=config, check=True) == []  # idempotent
    for nb in NOTEBOOKS:
        old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (nb, notebooks / nb.name))
        title, setup = _title_and_setup(notebooks / nb.name)
        assert "github/another-org/lbie-fork/blob/main/notebooks/" + nb.name in _source(title)
        assert "git+https://github.com/another-org/lbie-fork@main" in _source(setup)
        changed = [i for i, (a, b) in enumerate(zip(old["cells"], new["cells"])) if a != b]
        assert changed == [old["cells"].index(next(c for c in old["cells"] if c["cell_type"] == t))
                           for t in ("markdown", "code")]
        assert [c.get("id") for c in old["cells"]] == [c.get("id") for c in new["cells"]]


def test_the_wheel_ships_every_subpackage():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lbie").rglob("__init__.py")}
    assert packages - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"


# --------------------------------------------------------------------------- a chapter as Colab runs it
RUNNER = textwrap.dedent('''
    import json, sys
    import nbformat
    from nbclient import NotebookClient

    notebook, executed = sys.argv[1], sys.argv[2]
    nb = nbformat.read(notebook, as_version=4)
    probe = ("import json, sys, lbie\\n"
             "print('colab-probe', json.dumps({'lbie': lbie.__file__, 'prefix': sys.prefix,\\n"
             "      'checkpoints': str(lbie.checkpoints_dir()), 'results': str(lbie.results_dir()),\\n"
             "      'colab': 'google.colab' in sys.modules}))")
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    try:  # no cell of the chapter takes 15 s when it loads; a cell that trains fails at the timeout
        NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    finally:
        nbformat.write(nb, executed)
''')


def _outputs(cells: list[dict]) -> list[str]:
    """Every output of ``cells``, as text (widget outputs as their mime type)."""
    texts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                texts.append("".join(out["text"]))
            elif out["output_type"] == "error":
                texts.append(f"{out['ename']}: {out['evalue']}")
            else:
                data = out.get("data", {})
                texts.append("".join(data.get("text/plain", "")) + " ".join(k for k in data if "widget" in k))
    return texts


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory):
    """A fresh virtual environment with the package installed from its wheel (not editable); heavy
    dependencies come from this environment's site-packages through a .pth file."""
    tmp = tmp_path_factory.mktemp("colab")
    src = tmp / "src"  # build from a copy, so that nothing is written into the repository
    shutil.copytree(ROOT / "lbie", src / "lbie", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("checkpoints", "results"):
        shutil.copytree(ROOT / name, src / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"),
                    str(src)], check=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("lbie-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_lbie_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True)
    # Colab's kernel has google.colab imported; a notebook tells Colab by that module
    stub = tmp / "stub"
    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
    (stub / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
    return {"python": python, "site": site, "stub": stub, "tmp": tmp}


def test_chapter_runs_on_colab_from_the_installed_wheel(colab_env):
    tmp, site = colab_env["tmp"], colab_env["site"]
    work = tmp / "content"  # Colab's working folder: outside the repository, no checkpoints/ or results/
    work.mkdir()
    (work / "run.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("LBIE_PRESET", "MPLBACKEND", "LBIE_PROGRESS", "PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"LBIE_SKIP_INSTALL": "1", "PYTHONPATH": str(colab_env["stub"]), "LBIE_CACHE": str(tmp / "cache"),
            "LBIE_RUNS": str(tmp / "runs"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "PATH": f"{colab_env['python'].parent}{os.pathsep}{os.environ['PATH']}"}
    executed = work / "executed.ipynb"
    proc = subprocess.run([str(colab_env["python"]), "run.py", str(CHAPTER), str(executed)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = [c for c in json.loads(executed.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    outputs = _outputs(cells)
    text = "\n".join(outputs)

    # the kernel ran the installed wheel, saw Colab, and read the wheel's copies of the published files
    probe = json.loads(next(t for t in outputs if t.startswith("colab-probe ")).split(" ", 1)[1])
    assert probe["colab"] is True
    assert Path(probe["prefix"]) == colab_env["python"].parent.parent
    assert Path(probe["lbie"]).parent == site / "lbie"
    assert Path(probe["checkpoints"]) == site / "lbie" / "published" / "checkpoints"
    assert Path(probe["results"]) == site / "lbie" / "published" / "results"
    # with the run records, which chapters compare runs from
    shipped = {p.relative_to(ROOT / "results") for p in (ROOT / "results" / "records").rglob("*.json")}
    assert shipped and shipped == {p.relative_to(Path(probe["results"]))
                                   for p in (Path(probe["results"]) / "records").rglob("*.json")}
    # the setup cell skipped the install (LBIE_SKIP_INSTALL=1) and printed only the versions and device
    assert re.fullmatch(r"lbie \S+ \| torch \S+ \| device: \w+\n", "".join(_outputs(cells[:1]))), cells[0]
    # preset "auto" with LBIE_PRESET unset is cpu; both models came from the published checkpoints
    assert "preset='cpu'" in text
    assert re.search(r"^lbie +: loaded from checkpoints/", text, re.MULTILINE), text
    assert re.search(r"^no_text +: loaded from checkpoints/", text, re.MULTILINE), text
    # the results file was read
    assert re.search(r"^colorization\.json: preset cpu, 3 seed\(s\), complete", text, re.MULTILINE), text
    assert "does not exist yet" not in text
    # nothing was trained: every training run writes under LBIE_RUNS and shows a progress bar
    assert not (tmp / "runs").exists() or not any((tmp / "runs").iterdir())
    assert not re.search(r"epoch \d+/\d+", text) and "widget" not in text

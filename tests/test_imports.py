"""The package's import graph (``python -m lbie.devtools imports``): no cycle, no import of another module's
private name, every import down the layers; and the check finds each of those in small packages made here."""
import re
import textwrap
from pathlib import Path

import pytest

from lbie import devtools, import_graph

ROOT = Path(__file__).resolve().parents[1]


def _package(tmp_path, files: dict) -> Path:
    pkg = tmp_path / "pkg"
    for name, source in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return pkg


def test_lbie_imports_are_clean(capsys):
    assert devtools.main(["imports"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("no cycle, no import of another module's private name, no import up the layers")
    # one line per module, module-level imports first, then those made inside functions
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "lbie").rglob("*.py")}
    listed = {line.split(" ")[0].rstrip(";") for line in out.splitlines() if line.startswith("lbie")}
    assert listed == modules
    assert re.search(r"^lbie\.experiments\.reproduce -> [^;]*\blbie\.utils\b[^;]*; in functions: .*"
                     r"\blbie\.experiments\.cosal\b", out, re.MULTILINE)
    # the layers are printed bottom first
    headers = [line[2:] for line in out.splitlines() if line.startswith("# ")]
    assert headers == [name for name, _ in import_graph.LAYERS]


def test_finds_cycles_through_imports_inside_functions(tmp_path, capsys):
    # like the flat layout's reproduce <-> experiments and results <-> colourisation: two cycles through one module
    pkg = _package(tmp_path, {"__init__.py": "",
                              "a.py": "from .b import f\nfrom .c import h\n",
                              "b.py": "def f():\n    from .a import g\n",
                              "c.py": "def h():\n    from . import a\n",
                              "d.py": "from . import a\n"})
    assert devtools.main(["imports", "--package", str(pkg)]) == 1
    out = capsys.readouterr().out
    assert "pkg.b; in functions: pkg.a\n" in out
    assert [line for line in out.splitlines() if line.startswith("cycle:")] == [
        "cycle: pkg.a -> pkg.b -> pkg.a", "cycle: pkg.a -> pkg.c -> pkg.a"]
    assert out.rstrip().endswith("2 problem(s)")


def test_finds_a_cycle_through_the_package_itself(tmp_path):
    # e.g. a helper that imports the package for its version, while the package imports the helper
    pkg = _package(tmp_path, {"__init__.py": "from .helpers import version\n",
                              "helpers.py": "def version():\n    import pkg\n    return pkg.__version__\n"})
    assert import_graph.read_graph(pkg).cycles() == [["pkg", "pkg.helpers", "pkg"]]


def test_finds_private_names_imported_or_reached_through_a_module(tmp_path, capsys):
    pkg = _package(tmp_path, {"__init__.py": "",
                              "a.py": "_helper = 1\n__all__ = []\n",
                              "sub/__init__.py": "",
                              "sub/b.py": """\
                                  from ..a import _helper, __all__
                                  from .. import a as alias
                                  import pkg.a


                                  def f():
                                      return alias._helper, pkg.a._helper, alias.__all__
                              """})
    assert devtools.main(["imports", "--package", str(pkg)]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("private name:")]
    assert problems == ["private name: pkg.sub.b:1: from pkg.a import _helper",
                        "private name: pkg.sub.b:7: pkg.a._helper",
                        "private name: pkg.sub.b:7: pkg.a._helper"]


def test_finds_imports_up_the_layers_and_modules_in_no_layer(tmp_path):
    pkg = _package(tmp_path, {"__init__.py": "", "low.py": "def f():\n    from .high import y\n", "high.py": "y = 1\n",
                              "loose.py": ""})
    layers = (("bottom", ("pkg.low",)), ("top", ("pkg", "pkg.high")))
    assert import_graph.problems(import_graph.read_graph(pkg), layers) == [
        "layer: pkg.loose is in no layer of lbie.import_graph.LAYERS",
        "layer: pkg.low (bottom) imports pkg.high (top), a higher layer"]


def test_a_folder_without_init_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        devtools.main(["imports", "--package", str(tmp_path)])
    assert e.value.code == 2
    assert "is not a package folder (no __init__.py)" in capsys.readouterr().err

"""``python -m lbie prepare``: downloads from a local HTTP server (archives built from the readers' fixtures),
hash checks, unpacking into the readers' layouts, the manual CoDraw step, and the command line.

The download tests need pooch and skip without it; the registry, verification and command-line tests do not."""
import functools
import hashlib
import http.server
import json
import shutil
import tarfile
import threading
import zipfile

import numpy as np
import pytest
import scipy.io

from lbie.__main__ import main
from lbie.data.prepare import DATASETS, PrepareError, prepare, with_registry
from test_css import _tirg_dict, _write_codraw
from test_flowers import _write_oxford
from test_referring import _write_referit


def _sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(type("Quiet", (http.server.SimpleHTTPRequestHandler,),
                                     {"log_message": lambda *a: None}), directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _tar(path, folder, arcname=None):
    with tarfile.open(path, "w:gz") as t:
        t.add(folder, arcname=arcname or folder.name)


def _zip(path, files: dict):
    with zipfile.ZipFile(path, "w") as z:
        for name, src in files.items():
            z.write(src, name)


def _registry(name, served, base, hashed=True):
    """Every file of ``name`` served locally; with ``hashed``, the files that have a hash in the real
    registry get the served file's sha256 (the others keep None, as in the real registry)."""
    return {name: {f.fname: {"url": f"{base}/{f.fname}"} | ({"hash": _sha256(served / f.fname)}
                                                            if hashed and f.hash else {})
                   for f in DATASETS[name].files}}


def _serve_oxford(served, tmp_path):
    src = tmp_path / "oxford_src"
    _write_oxford(src, labels_mat=True)
    _tar(served / "102flowers.tgz", src / "jpg")
    shutil.copy(src / "imagelabels.mat", served / "imagelabels.mat")
    scipy.io.savemat(str(served / "setid.mat"), {"tstid": np.array([[3, 5]])})
    captions = tmp_path / "cvpr2016_flowers"
    captions.mkdir()
    shutil.copytree(src / "text_c10", captions / "text_c10")
    for f in src.glob("*classes.txt"):
        shutil.copy(f, captions / f.name)
    _tar(served / "cvpr2016_flowers.tar.gz", captions)


def _serve_referit(served, tmp_path):
    src = tmp_path / "referit_src"
    _write_referit(src)
    shutil.copy(src / "data" / "referit_query_test.json", src / "data" / "referit_query_trainval.json")
    with tarfile.open(served / "referitdata.tar.gz", "w:gz") as t:
        for sub in ("images", "mask"):
            t.add(src / "referit-dataset" / sub, arcname=sub)
    for f in (src / "data").iterdir():
        shutil.copy(f, served / f.name)


# --------------------------------------------------------------------------- downloads (need pooch)
def test_oxford_through_the_command_line(server, tmp_path, capsys):
    pytest.importorskip("pooch")
    served, base = server
    _serve_oxford(served, tmp_path)
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(_registry("oxford102", served, base)))
    root = tmp_path / "flowers"
    assert main(["prepare", "oxford102", "--root", str(root), "--registry", str(registry), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (root / "jpg" / "image_00001.jpg").is_file() and (root / "text_c10" / "class_00003").is_dir()
    assert (root / "testclasses.txt").is_file() and not (root / "cvpr2016_flowers").exists()  # top folder stripped
    captions_hash = _sha256(served / "cvpr2016_flowers.tar.gz").removeprefix("sha256:")
    assert f"cvpr2016_flowers.tar.gz: no published hash to check it against; its sha256 is {captions_hash}" in out
    assert "102flowers.tgz: no published hash" not in out  # that one was checked
    assert "verified:" in out and "5 images" in out and f"lbie.data.flowers.load_oxford102('{root}', 'test')" in out
    # a second run finds the files in place (pooch checks the hashes again) and verifies again
    assert main(["prepare", "oxford102", "--root", str(root), "--registry", str(registry), "--no-progress"]) == 0


def test_a_changed_file_is_refused(server, tmp_path):
    pytest.importorskip("pooch")
    served, base = server
    _serve_oxford(served, tmp_path)
    registry = _registry("oxford102", served, base)
    registry["oxford102"]["imagelabels.mat"]["hash"] = "sha256:" + "0" * 64
    with pytest.raises(PrepareError, match=r"imagelabels.mat from .* does not match its recorded hash"):
        prepare("oxford102", tmp_path / "flowers", registry=registry, progress=False, log=lambda *_: None)


def test_referit_layout(server, tmp_path):
    pytest.importorskip("pooch")
    served, base = server
    _serve_referit(served, tmp_path)
    lines = []
    summary = prepare("referit", tmp_path / "referit", registry=_registry("referit", served, base), progress=False,
                      log=lines.append)
    root = tmp_path / "referit"
    assert (root / "referit-dataset" / "images" / "8756.jpg").is_file()
    assert (root / "referit-dataset" / "mask" / "8756_1.mat").is_file()
    assert (root / "data" / "referit_query_test.json").is_file() and "2 images" in summary
    assert any("referitdata.tar.gz: no published hash" in line for line in lines)
    assert any("lbie.data.referring.load_referit(" in line for line in lines)


def test_css_finds_the_npy_inside_the_archive(server, tmp_path):
    pytest.importorskip("pooch")
    served, base = server
    d = _tirg_dict()
    d["test"] = d["train"]
    npy = tmp_path / "css_toy_dataset_novel2_small.dup.npy"
    np.save(npy, d, allow_pickle=True)
    _zip(served / "CSSDataset.zip", {"CSSDataset/css_toy_dataset_novel2_small.dup.npy": npy})
    lines = []
    summary = prepare("css", tmp_path / "css", registry=_registry("css", served, base), progress=False,
                      log=lines.append)
    assert "3 training and 3 test pairs" in summary
    assert any("lbie.load_tirg_css_npy(" in line and "CSSDataset/css_toy" in line for line in lines)


def test_codraw_needs_its_manual_step_then_verifies(server, tmp_path):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("pooch")
    served, base = server
    readme = tmp_path / "LICENSE.txt"
    readme.write_text("the GeNeVA-v1 archive holds RAR files")
    _zip(served / "GeNeVA-v1.zip", {"GeNeVA-v1/LICENSE.txt": readme})
    root = tmp_path / "codraw"
    with pytest.raises(PrepareError, match=r"no codraw_\*.h5 found(.|\n)*GeNeVA_datasets(.|\n)*--no-download"):
        prepare("codraw", root, registry=_registry("codraw", served, base), progress=False, log=lambda *_: None)
    assert (root / "GeNeVA-v1" / "LICENSE.txt").is_file()
    _write_codraw(root / "GeNeVA-v1" / "codraw_val.h5", h5py)  # what GeNeVA's scripts would write
    assert "codraw_val.h5: 5 turns" in prepare("codraw", root, download=False, log=lambda *_: None)


def test_an_archive_reaching_outside_is_refused(server, tmp_path):
    pytest.importorskip("pooch")
    served, base = server
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(served / "referitdata.tar.gz", "w:gz") as t:
        t.add(evil, arcname="../evil.txt")
    registry = {"referit": {"referitdata.tar.gz": {"url": f"{base}/referitdata.tar.gz"}}}
    with pytest.raises(PrepareError, match="refusing to unpack"):
        prepare("referit", tmp_path / "referit", registry=registry, progress=False, log=lambda *_: None)
    assert not (tmp_path / "referit" / "evil.txt").exists()


# --------------------------------------------------------------------------- no download (no pooch needed)
def test_no_download_verifies_a_prepared_folder(tmp_path, capsys):
    root = tmp_path / "flowers"
    _write_oxford(root, labels_mat=True)
    assert main(["prepare", "oxford102", "--root", str(root), "--no-download"]) == 0
    assert "verified:" in capsys.readouterr().out
    (root / "text_c10" / "class_00003" / "image_00005.txt").unlink()
    assert main(["prepare", "oxford102", "--root", str(root), "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "error: oxford102" in err and "image_00005.txt" in err and "Traceback" not in err
    assert main(["prepare", "referit", "--root", str(tmp_path / "nothing"), "--no-download"]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_registry_overrides_and_errors(tmp_path):
    over = with_registry(DATASETS, {"css": {"CSSDataset.zip": {"url": "http://127.0.0.1:1/x.zip", "hash": "md5:0"}}})
    assert over["css"].files[0].url == "http://127.0.0.1:1/x.zip" and over["css"].files[0].hash == "md5:0"
    assert DATASETS["css"].files[0].hash is None  # the registry itself is unchanged
    for bad, message in (({"mnist": {}}, "unknown data set 'mnist'"), ({"css": {"x.zip": {}}}, "unknown files of css"),
                         ({"css": {"CSSDataset.zip": {"sha": "1"}}}, "objects with 'url' and/or 'hash'")):
        with pytest.raises(ValueError, match=message):
            with_registry(DATASETS, bad)
    with pytest.raises(ValueError, match="unknown data set 'mnist'; valid: css, codraw, oxford102, referit"):
        prepare("mnist", tmp_path)


def test_every_file_has_a_hash_or_says_it_has_none():
    for name, spec in DATASETS.items():
        for f in spec.files:
            assert f.hash is None or f.hash.split(":")[0] in ("sha256", "md5"), (name, f.fname)
            assert f.url.startswith(("https://", "http://")) and f.fname
    assert all(f.hash for f in DATASETS["oxford102"].files if f.fname != "cvpr2016_flowers.tar.gz")


@pytest.mark.parametrize("args, message", [
    (["prepare", "mnist", "--root", "x"], "invalid choice: 'mnist'"),
    (["prepare", "css"], "the following arguments are required: --root"),
    (["prepare", "css", "--root", "x", "--registry", "/nonexistent/registry.json"], "--registry"),
])
def test_prepare_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_registry_file_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "r.json"
    for content, message in (("{not json", "Expecting property name"), ('{"css": {"nope.zip": {}}}', "unknown files")):
        path.write_text(content)
        with pytest.raises(SystemExit) as e:
            main(["prepare", "css", "--root", str(tmp_path), "--registry", str(path)])
        assert e.value.code == 2 and message in capsys.readouterr().err

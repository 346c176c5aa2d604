"""Experiments: train and evaluate each paper experiment, reproduce its table, render the results.

* :mod:`~lbie.experiments.cosal` -- LBIE on CoSaL (LBIE Table 2);
* :mod:`~lbie.experiments.timgan` -- TIM-GAN and its ablations and baselines on CSS-2D (TIM-GAN Tables 1-2);
* :mod:`~lbie.experiments.segmentation` -- language-based segmentation (LBIE Table 3 analog);
* :mod:`~lbie.experiments.colorization` -- language-based colourisation (LBIE Table 4 analog, Figs. 6-7);
* :mod:`~lbie.experiments.reproduce` -- ``python -m lbie reproduce``: every table over seeds, to ``results/``;
* :mod:`~lbie.experiments.results` -- the results tables rendered from ``results/*.json``.
"""

"""Plotting: every figure and table of the book, one module per topic.

:mod:`~lbie.plotting.style` holds the book's figure style (applied on import) and the panels the figures
share; :mod:`~lbie.plotting.cosal`, :mod:`~lbie.plotting.fusion` and :mod:`~lbie.plotting.cosal_results`
draw the CoSaL chapters, :mod:`~lbie.plotting.segmentation` and :mod:`~lbie.plotting.colorization` the two
other LBIE experiments, :mod:`~lbie.plotting.css` and :mod:`~lbie.plotting.timgan` the TIM-GAN chapters.
"""

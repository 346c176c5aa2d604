"""Metrics: the scores of every table.

* :mod:`~lbie.metrics.cosal_iou` -- the CoSaL IoUs: the paper's over shapes, the released code's over colours;
* :mod:`~lbie.metrics.segmentation` -- referring segmentation: overall IoU and precision@k (Hu et al.);
* :mod:`~lbie.metrics.retrieval` -- RS@N, TIM-GAN's retrieval score, and FID;
* :mod:`~lbie.metrics.summary` -- mean ± std over seeds, and how the tables print it.
"""

"""Data: the generated data sets of the book and readers for the real ones.

* :mod:`~lbie.data.cosal` -- CoSaL, nine coloured shapes described by nine sentences (LBIE §4.1);
* :mod:`~lbie.data.css` -- CSS-2D (source, instruction, target) edit triples (TIM-GAN §4);
* :mod:`~lbie.data.referring` -- referring expressions on CSS-2D scenes, and the ReferIt release (LBIE §4.2);
* :mod:`~lbie.data.flowers` -- flowers with captions and CIE-Lab conversions, and Oxford-102 (LBIE §4.3);
* :mod:`~lbie.data.edit_formats` -- the real edit data sets' files (TIRG's CSS, TIM-GAN's folders, CoDraw);
* :mod:`~lbie.data.edit_inputs` -- the checks of user images and instructions before an edit;
* :mod:`~lbie.data.files` -- reading the real data sets' files (the error naming a bad file, images).
"""

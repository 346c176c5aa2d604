"""Models: the networks of the two papers and the text encoder.

* :mod:`~lbie.models.lbie` -- LBIE: image and sentence encoders, the recurrent attentive fusion with its
  termination gates, the decoder and the loss (LBIE §3);
* :mod:`~lbie.models.colorization` -- LBIE as a language-based colouriser and its text discriminator (§4.3);
* :mod:`~lbie.models.timgan` -- TIM-GAN: the *where* and *how* modules, text-adaptive routing, the
  autoencoder, the PatchGAN discriminator and the GAN losses (TIM-GAN §3);
* :mod:`~lbie.models.timgan_baselines` -- the baselines of TIM-GAN's Table 1;
* :mod:`~lbie.models.text_encoder` -- BERT-family token features of the instructions (TIM-GAN §3.1), cached.
"""

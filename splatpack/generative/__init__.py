"""Generative models on the compression core (Binary Latent Diffusion, Wang et al., CVPR 2023):
objects as PLAS-sorted attribute grids (:mod:`~splatpack.generative.grids`), a binary
autoencoder (:mod:`~splatpack.generative.bae`) and a Bernoulli diffusion prior over
its latents (:mod:`~splatpack.generative.diffusion`). Algorithms only: no files."""

"""Generative models on the compression core (Binary Latent Diffusion, Wang et al., CVPR 2023):
objects as PLAS-sorted attribute grids (:mod:`~splatpack.generative.grids`), a binary
autoencoder (:mod:`~splatpack.generative.bae`) and a Bernoulli diffusion prior over
its latents (:mod:`~splatpack.generative.diffusion`), bundled as one model file
(:mod:`~splatpack.generative.model`) and trained in BLD's two stages
(:mod:`~splatpack.generative.training`). Splat files are read and written in
:mod:`splatpack.apps`; this package takes and returns GaussianSets."""

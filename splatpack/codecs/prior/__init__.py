"""Learned lossless coding of grid scenes (issue 14, mode b): the grid codec's quantised
attribute images as bit-planes (:mod:`.planes`) coded under a masked bit model
(:mod:`splatpack.generative.bitmodel`, :mod:`splatpack.generative.entropy`) with per-section
fallback to the grid codec's own payload (:mod:`.bitplanes`); model files (:mod:`.modelfile`)
and the training that makes the shipped one (:mod:`.training`)."""

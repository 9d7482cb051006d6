"""The core every other layer builds on: :class:`GaussianSet`, spherical-harmonics constants,
canonical local frames, user-facing errors and atomic file output. Imports nothing else of
splatpack."""

from splatpack.core.errors import CaptureError, SplatpackError
from splatpack.core.gaussians import GaussianSet

__all__ = ["CaptureError", "GaussianSet", "SplatpackError"]

"""Scene representations: :class:`GaussianSet`."""

from splatpack.model.gaussian_set import GaussianSet

__all__ = ["GaussianSet"]

"""splatpack: train, compress, export and view compact 3D Gaussian Splatting scenes.

The flow is one-directional: capture readers (:mod:`splatpack.captures`) produce a
:class:`~splatpack.captures.Capture`; the trainer (:mod:`splatpack.train`) fits a
:class:`~splatpack.core.GaussianSet` with a rasterizer backend (:mod:`splatpack.render`);
the result is written by :mod:`splatpack.io`.
"""

__version__ = "0.1.0"

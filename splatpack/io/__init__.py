"""Scene files: INRIA PLY (:mod:`~splatpack.io.ply`) and atomic writes (:mod:`~splatpack.io.atomic`)."""

from splatpack.io.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from splatpack.io.ply import load_ply, ply_size, save_ply

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "load_ply", "ply_size", "save_ply"]
from splatpack.io.formats import detect_format, load_splats, save_splats  # noqa: E402

__all__ += ["detect_format", "load_splats", "save_splats"]

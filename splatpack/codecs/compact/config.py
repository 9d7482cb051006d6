"""The post-processing settings of a compact scene (Compact-3DGS §3.4) and its ``.spk`` kind."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FORMAT_KIND", "CompactCodecConfig"]

#: ``meta["kind"]`` of a compact ``.spk`` file
FORMAT_KIND = "compact-3dgs"


@dataclass
class CompactCodecConfig:
    """How a trained compact model is quantised once, at save time (``compact.codec`` in a config)."""

    position_bits: int = 16  # per axis, 1..21 (a 63-bit Morton code)
    opacity_bits: int = 8
    hash_prune: float = 0.1  # |v| below → 0 (Compact-3DGS post-processing)
    hash_bits: int = 8
    min_opacity: float = 0.0  # Gaussians with α below are dropped at save time (0: keep all)

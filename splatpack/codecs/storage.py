"""Bytes per attribute of a ``.spk`` scene of any kind (Compact-3DGS's Table 6 breakdown), from its
section names."""

from __future__ import annotations

from pathlib import Path

from splatpack.spk.container import SpkReader

__all__ = ["SECTION_PREFIXES", "attribute_bytes", "storage_table"]

SECTION_PREFIXES = {  # section-name prefixes per attribute: compact scenes, grid scenes, latent scenes
    "position": ("positions", "grid.means", "latent.means"),
    "opacity": ("opacities", "grid.opacities", "latent.opacities"),
    "scale": ("scales.", "grid.scales", "latent.scales"),
    "rotation": ("rotations.", "grid.quats", "latent.quats"),
    "colour": ("colour.", "grid.sh0", "grid.shN", "latent.sh0", "latent.shN"),
}


def attribute_bytes(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Bytes per attribute (and ``other``: header, table, padding, optional sections)."""
    table = {a: sum(v for k, v in sizes.items() if k.startswith(prefixes)) for a, prefixes in SECTION_PREFIXES.items()}
    table["other"] = total - sum(table.values())
    table["total"] = total
    return table


def storage_table(path: str | Path) -> dict[str, int]:
    """Bytes per attribute (position, opacity, scale, rotation, colour, other) of a ``.spk`` file."""
    with SpkReader(path) as r:
        sizes = {s.name: s.length for s in r.sections}
        total = r.file_size
    return attribute_bytes(sizes, total)

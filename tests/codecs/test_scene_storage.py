"""Bytes per attribute of any ``.spk`` scene (splatpack.codecs.storage)."""

from __future__ import annotations

from splatpack.codecs.storage import SECTION_PREFIXES, attribute_bytes, storage_table
from splatpack.spk.container import Section, write_spk


def test_attribute_bytes_sum_compact_and_grid_sections():
    sizes = {
        "positions": 10,
        "scales.indices": 3,
        "scales.codebooks": 4,
        "colour.hash.00": 5,
        "colour.mlp": 1,
        "grid.means.lo": 7,
        "grid.sh0": 2,
        "grid.shN.labels": 6,
        "views": 8,
    }
    t = attribute_bytes(sizes, 100)
    assert t == {"position": 17, "opacity": 0, "scale": 7, "rotation": 0, "colour": 14, "other": 62, "total": 100}
    assert list(t)[:5] == list(SECTION_PREFIXES)


def test_storage_table_reads_the_section_sizes_of_a_file(tmp_path):
    path = tmp_path / "s.spk"
    size = write_spk(
        path,
        [Section("opacities", "raw", b"abc"), Section("rotations.indices", "raw", b"de")],
        meta={},
        num_gaussians=0,
    )
    t = storage_table(path)
    assert t["total"] == size == path.stat().st_size and sum(v for k, v in t.items() if k != "total") == size
    assert t["opacity"] >= 3 and t["rotation"] >= 2

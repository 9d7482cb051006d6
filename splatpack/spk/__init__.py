"""The ``.spk`` container (:mod:`~splatpack.spk.container`, byte layout in :mod:`~splatpack.spk.layout`)
and the array codecs its sections are coded with (:mod:`~splatpack.spk.arrays`)."""

from splatpack.spk.container import (
    FORMAT_VERSION,
    MAGIC,
    Section,
    SectionInfo,
    SpkError,
    SpkReader,
    read_spk_info,
    write_spk,
)

__all__ = ["FORMAT_VERSION", "MAGIC", "Section", "SectionInfo", "SpkError", "SpkReader", "read_spk_info", "write_spk"]

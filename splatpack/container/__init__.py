"""The ``.spk`` container: a versioned, checksummed file of named, lazily read sections."""

from splatpack.container.spk import (
    FORMAT_VERSION,
    MAGIC,
    Section,
    SectionInfo,
    SpkError,
    SpkReader,
    read_spk_info,
    write_spk,
)

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "Section",
    "SectionInfo",
    "SpkError",
    "SpkReader",
    "read_spk_info",
    "write_spk",
]

"""The ``.spk`` byte layout: constants, the section records and the error every problem raises.

Byte layout (all integers little-endian; the full specification, written for other
implementations, is ``docs/spk-format.md``)::

    offset size  field
    0      4     magic b"\\x89SPK"
    4      2     u16 major version (1)  -- a reader refuses another major version
    6      2     u16 minor version (0)  -- a newer minor version stays readable
    8      4     u32 flags (none defined in 1.0; writers write 0, readers ignore)
    12     4     u32 meta_length   (bytes of the meta JSON)
    16     8     u64 num_gaussians (<= 8 * file size: every Gaussian costs at least 1 bit)
    24     4     u32 num_sections
    28     4     u32 table_length  (bytes of the section table)
    32     4     u32 header_crc32 = crc32(bytes 0..31 ++ meta ++ table)
    36     meta_length   meta: UTF-8 JSON object (scene name, config, aabb, ...)
    ..     table_length  section table, num_sections entries, each:
                           u8 name_len (1..64), name (ASCII [A-Za-z0-9_.:/-]),
                           u8 codec_len (1..32), codec (ASCII [a-z0-9_.-]),
                           u8 flags (bit 0 = required; other bits reserved),
                           u64 offset, u64 length, u32 crc32 (of the payload)
    ..     payloads, in table order, each at an offset that is a multiple of 8; the bytes
           between the table and the first payload, between payloads and after the last
           payload are zero (writers add only the padding needed for alignment)

So every byte of a file is checked: the header, meta and table by ``header_crc32`` when the
file is opened, a payload (and the zero padding after it) when that section is read.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from splatpack.core.errors import SplatpackError


class SpkError(SplatpackError):
    """A ``.spk`` file cannot be written or read (corrupt, truncated, unsupported, ...)."""


MAGIC = b"\x89SPK"
FORMAT_VERSION = (1, 0)

HEADER = struct.Struct("<4sHHIIQII")  # magic .. table_length (32 bytes), then u32 crc
HEADER_SIZE = HEADER.size + 4  # 36
ENTRY_TAIL = struct.Struct("<BQQI")  # flags, offset, length, crc32
MIN_ENTRY_SIZE = 1 + 1 + 1 + 1 + ENTRY_TAIL.size  # one-character name and codec: 25
MAX_NAME = 64
MAX_CODEC = 32
ALIGN = 8
GAUSSIANS_PER_BYTE = 8
FLAG_REQUIRED = 1
NAME_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
CODEC_RE = re.compile(r"[a-z0-9_.-]{1,32}")


@dataclass(frozen=True)
class SectionInfo:
    """A section table entry: where a payload lies and how it is coded."""

    name: str
    codec: str
    offset: int
    length: int
    crc32: int
    required: bool


@dataclass
class Section:
    """A section to write: its payload is stored as given (already coded with ``codec``)."""

    name: str
    codec: str
    payload: bytes
    required: bool = True


def align(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`ALIGN`."""
    return -(-n // ALIGN) * ALIGN

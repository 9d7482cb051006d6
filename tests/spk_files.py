"""Helpers for tests that forge ``.spk`` files (``tests/spk/test_container.py``, the viewer tests):
header fields, header checksum, table entry positions."""

from __future__ import annotations

import struct
import zlib

from splatpack.spk.container import HEADER_SIZE

# fixed header fields: name -> (offset, struct format)
FIELDS = {
    "major": (4, "<H"),
    "minor": (6, "<H"),
    "flags": (8, "<I"),
    "meta_length": (12, "<I"),
    "num_gaussians": (16, "<Q"),
    "num_sections": (24, "<I"),
    "table_length": (28, "<I"),
}


def fix_header_crc(buf: bytearray) -> bytearray:
    (meta_len,) = struct.unpack_from("<I", buf, 12)
    (table_len,) = struct.unpack_from("<I", buf, 28)
    body = bytes(buf[HEADER_SIZE : HEADER_SIZE + meta_len + table_len])
    struct.pack_into("<I", buf, 32, zlib.crc32(body, zlib.crc32(bytes(buf[:32]))))
    return buf


def forge(data: bytes, **fields: int) -> bytes:
    buf = bytearray(data)
    for name, value in fields.items():
        off, fmt = FIELDS[name]
        struct.pack_into(fmt, buf, off, value)
    return bytes(fix_header_crc(buf))


def table_entries(data: bytes) -> list[tuple[str, int]]:
    """(name, position of the entry's flags byte) for each table entry of a valid file."""
    (meta_len, _, num_sec) = struct.unpack_from("<IQI", data, 12)
    pos = HEADER_SIZE + meta_len
    out = []
    for _ in range(num_sec):
        name = data[pos + 1 : pos + 1 + data[pos]].decode()
        pos += 1 + data[pos]
        pos += 1 + data[pos]
        out.append((name, pos))
        pos += 21
    return out

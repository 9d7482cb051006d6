"""The PLY container, read without trusting its header: the header parsed in full (up to
:data:`MAX_HEADER` bytes), every element's size checked against the file before anything is
read, and one element read on its own (the INRIA reader needs only ``vertex``; the compressed
PLY reader shares the parser).

Binary elements before the one read are skipped by their size, which needs them to be of fixed
size (no ``list`` properties); elements after it are never read. ASCII files are read a line per
row. The size check gives each element a lower bound on its bytes (a binary row's fixed part, a
list's length prefix; two bytes a value in ASCII), so a forged count (``element face 1000000000``
in a small file, a count of thousands of digits) is refused before it sizes anything. Errors are
:class:`~splatpack.core.errors.SplatpackError`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from splatpack.core.errors import SplatpackError

__all__ = [
    "MAX_HEADER",
    "HeaderElement",
    "HeaderProperty",
    "PlyHeader",
    "check_element_sizes",
    "parse_ply_header",
    "read_element",
]

MAX_HEADER = 1 << 16  # bytes searched for ``end_header``
MAX_COUNT_DIGITS = 19  # no file holds 10^19 rows of even one byte
SCALAR_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
BYTE_ORDERS = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": "="}
COUNT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class HeaderProperty:
    """A property: ``name``, its numpy ``type`` code without byte order, and for a list property
    the type of its length prefix (``count_type``)."""

    name: str
    type: str
    count_type: str | None = None


@dataclass(frozen=True)
class HeaderElement:
    """An element: ``name``, the ``count`` of rows the header claims, its ``properties``."""

    name: str
    count: int
    properties: tuple[HeaderProperty, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)

    @property
    def fixed_size(self) -> bool:
        return all(p.count_type is None for p in self.properties)

    def dtype(self, order: str) -> np.dtype:
        """The row dtype of a fixed-size element in byte order ``order`` (``<``, ``>`` or ``=``)."""
        return np.dtype([(p.name, order + p.type) for p in self.properties])

    def min_bytes(self, ascii: bool) -> int:
        """The fewest bytes its rows can take (Python ints: a forged count cannot overflow)."""
        if ascii:
            return self.count * max(1, 2 * len(self.properties))
        row = sum(np.dtype(p.count_type or p.type).itemsize for p in self.properties)
        return self.count * row


@dataclass(frozen=True)
class PlyHeader:
    """A parsed header: ``format`` (``ascii``, ``binary_little_endian`` or ``binary_big_endian``),
    its ``length`` in bytes (through the newline after ``end_header``) and the ``elements``."""

    format: str
    length: int
    elements: tuple[HeaderElement, ...]

    @property
    def ascii(self) -> bool:
        return self.format == "ascii"

    def element(self, name: str) -> HeaderElement | None:
        return next((e for e in self.elements if e.name == name), None)


def _header_lines(head: bytes, path: str | Path) -> tuple[list[str], int]:
    """The header's lines (without ``ply`` and ``end_header``) and its length in bytes."""
    if head.split(b"\n", 1)[0].strip() != b"ply":
        raise SplatpackError("not a PLY file (missing 'ply' magic)", path)
    lines, at = [], 0
    while True:
        stop = head.find(b"\n", at)
        if stop < 0:
            if head[at:].strip() == b"end_header":
                raise SplatpackError("PLY header is not terminated by a newline", path)
            raise SplatpackError(f"not a PLY file (no end_header in the first {MAX_HEADER >> 10} KiB)", path)
        line = head[at:stop].strip()
        at = stop + 1
        if line == b"end_header":
            break
        lines.append(line)
    try:
        return [line.decode("ascii") for line in lines[1:]], at
    except UnicodeDecodeError:
        raise SplatpackError("PLY header is not ASCII", path) from None


def _count(name: str, word: str, path: str | Path) -> int:
    if COUNT.fullmatch(word) is None:
        raise SplatpackError(f"PLY element '{name}' has count {word[:20]!r}, not a whole number", path)
    if len(word) > MAX_COUNT_DIGITS:
        raise SplatpackError(f"PLY element '{name}' has a count of {len(word)} digits", path)
    return int(word)


def parse_ply_header(head: bytes, path: str | Path) -> PlyHeader:
    """The header at the start of ``head`` (the file's first :data:`MAX_HEADER` bytes, or all of it)."""
    lines, length = _header_lines(head[:MAX_HEADER], path)
    fmt = None
    elements: list[tuple[str, int, list[HeaderProperty]]] = []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and fmt is None:
            if words[1] not in BYTE_ORDERS or words[2] != "1.0":
                raise SplatpackError(f"unsupported PLY format {' '.join(words[1:])[:60]!r}", path)
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            if any(e[0] == words[1] for e in elements):
                raise SplatpackError(f"PLY element '{words[1]}' appears twice", path)
            elements.append((words[1], _count(words[1], words[2], path), []))
        elif words[0] == "property" and len(words) == 3 and elements and words[1] in SCALAR_TYPES:
            elements[-1][2].append(HeaderProperty(words[2], SCALAR_TYPES[words[1]]))
        elif (
            words[0] == "property"
            and len(words) == 5
            and elements
            and words[1] == "list"
            and words[2] in SCALAR_TYPES
            and SCALAR_TYPES[words[2]][0] in "iu"
            and words[3] in SCALAR_TYPES
        ):
            elements[-1][2].append(HeaderProperty(words[4], SCALAR_TYPES[words[3]], SCALAR_TYPES[words[2]]))
        else:
            raise SplatpackError(f"unsupported PLY header line {line[:60]!r}", path)
    if fmt is None:
        raise SplatpackError("PLY header has no format line", path)
    for name, _, props in elements:
        names = [p.name for p in props]
        if len(set(names)) != len(names):
            raise SplatpackError(f"PLY element '{name}' repeats a property", path)
    return PlyHeader(fmt, length, tuple(HeaderElement(n, c, tuple(p)) for n, c, p in elements))


def check_element_sizes(header: PlyHeader, size: int, path: str | Path) -> None:
    """Refuse a header whose elements cannot fit in a file of ``size`` bytes (each at its fewest bytes)."""
    avail = size - header.length
    need = 0
    for e in header.elements:
        need += e.min_bytes(header.ascii)
        slack = 1 if header.ascii else 0  # an ASCII file's last row may lack its newline
        if need > avail + slack:
            what = f"{e.count} vertices" if e.name == "vertex" else f"{e.count} '{e.name}' elements"
            raise SplatpackError(
                f"header claims {what} (at least {need} bytes of data) but {avail} bytes follow the header (truncated?)",
                path,
            )


def read_element(f: BinaryIO, header: PlyHeader, name: str, path: str | Path) -> np.ndarray:
    """Rows of the fixed-size element ``name`` as a structured array (file ``f`` at any position;
    :func:`check_element_sizes` first, so that the count is bounded by the file)."""
    target = header.element(name)
    if target is None:
        raise SplatpackError(f"PLY has no '{name}' element", path)
    if not target.fixed_size or not target.properties:
        raise SplatpackError(f"PLY element '{name}' has list properties or none at all", path)
    before = header.elements[: header.elements.index(target)]
    f.seek(header.length)
    if header.ascii:
        dtype = target.dtype("=")
        lines = itertools.islice(f, sum(e.count for e in before), None)
        if target.count == 0:
            return np.zeros(0, dtype)
        rows = (line.decode("ascii", "replace") for line in itertools.islice(lines, target.count))
        try:
            data = np.loadtxt(rows, dtype=dtype, ndmin=1, comments=None, max_rows=target.count)
        except ValueError as e:
            raise SplatpackError(f"PLY element '{name}' has a malformed row ({e})", path) from None
        if len(data) != target.count:
            raise SplatpackError(f"PLY element '{name}' has {len(data)} rows, not {target.count} (truncated?)", path)
        return data
    lists = [e.name for e in before if not e.fixed_size]
    if lists:
        raise SplatpackError(f"PLY element '{lists[0]}' with list properties comes before '{name}'", path)
    dtype = target.dtype(BYTE_ORDERS[header.format])
    f.seek(header.length + sum(e.count * e.dtype("<").itemsize for e in before))
    data = f.read(target.count * dtype.itemsize)
    if len(data) != target.count * dtype.itemsize:
        raise SplatpackError(f"PLY element '{name}' is cut short (truncated?)", path)
    return np.frombuffer(data, dtype=dtype, count=target.count)

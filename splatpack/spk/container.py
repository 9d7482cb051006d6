"""The ``.spk`` container: a versioned, checksummed file of named sections, read lazily.

The byte layout is in :mod:`splatpack.spk.layout`. Sections are read lazily: :class:`SpkReader`
reads the header, meta and table only and reads a payload when :meth:`SpkReader.read` asks for
it. Every problem is an :class:`SpkError` naming the file and the problem in one line.
"""

from __future__ import annotations

import json
import operator
import os
import stat
import struct
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

from splatpack.core.atomic import atomic_write
from splatpack.core.limits import check_gaussians
from splatpack.spk.arrays import CodecError, decode_array
from splatpack.spk.layout import (
    ALIGN,
    CODEC_RE,
    ENTRY_TAIL,
    FLAG_REQUIRED,
    FORMAT_VERSION,
    GAUSSIANS_PER_BYTE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_CODEC,
    MAX_NAME,
    MIN_ENTRY_SIZE,
    NAME_RE,
    Section,
    SectionInfo,
    SpkError,
    align,
)

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "Section",
    "SectionInfo",
    "SpkError",
    "SpkReader",
    "read_spk_info",
    "write_spk",
]

_CHUNK = 1 << 20  # bytes read at a time when checking zero padding
#: the most Gaussians a byte of meta or payload holds (twice the writer's bound per file byte)
GAUSSIANS_PER_STORED_BYTE = 2 * GAUSSIANS_PER_BYTE


# --------------------------------------------------------------------------- writing


def write_spk(path: str | Path, sections: list[Section], meta: dict, num_gaussians: int) -> int:
    """Write a ``.spk`` file atomically (temp file + rename); returns the file size in bytes.

    Rejects invalid or duplicate section names and codecs, a meta that is not a JSON object,
    and a ``num_gaussians`` the file is too small to be plausible for (more than 8 per byte).
    """
    if not isinstance(meta, dict):
        raise SpkError(f"meta must be a dict, not {type(meta).__name__}", path)
    try:
        meta_bytes = json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SpkError(f"meta is not JSON-serialisable ({exc})", path) from None
    try:
        num_gaussians = operator.index(num_gaussians)
    except TypeError:
        raise SpkError(f"num_gaussians must be an integer, got {num_gaussians!r}", path) from None
    if not 0 <= num_gaussians < 1 << 64:
        raise SpkError(f"num_gaussians must be an integer in [0, 2**64), got {num_gaussians!r}", path)
    seen: set[str] = set()
    table = bytearray()
    payloads: list[memoryview] = []
    for s in sections:
        if not isinstance(s.name, str) or not NAME_RE.fullmatch(s.name):
            raise SpkError(
                f"invalid section name {s.name!r} (1-{MAX_NAME} characters of A-Z a-z 0-9 _ . : / -)",
                path,
            )
        if s.name in seen:
            raise SpkError(f"duplicate section name '{s.name}'", path)
        seen.add(s.name)
        if not isinstance(s.codec, str) or not CODEC_RE.fullmatch(s.codec):
            raise SpkError(
                f"invalid codec {s.codec!r} for section '{s.name}' (1-{MAX_CODEC} characters of a-z 0-9 _ . -)",
                path,
            )
        try:
            payloads.append(memoryview(s.payload).cast("B"))
        except TypeError:
            raise SpkError(f"payload of section '{s.name}' is not bytes", path) from None
    table_len = sum(3 + len(s.name) + len(s.codec) + ENTRY_TAIL.size for s in sections)
    if len(meta_bytes) >= 1 << 32 or table_len >= 1 << 32 or len(sections) >= 1 << 32:
        raise SpkError("meta or section table too large", path)
    offset = align(HEADER_SIZE + len(meta_bytes) + table_len)
    layout: list[int] = []
    for s, p in zip(sections, payloads):
        offset = align(offset)
        layout.append(offset)
        name, codec = s.name.encode("ascii"), s.codec.encode("ascii")
        table += bytes([len(name)]) + name + bytes([len(codec)]) + codec
        table += ENTRY_TAIL.pack(FLAG_REQUIRED if s.required else 0, offset, len(p), zlib.crc32(p))
        offset += len(p)
    file_size = offset if sections else HEADER_SIZE + len(meta_bytes) + table_len
    if num_gaussians > GAUSSIANS_PER_BYTE * file_size:
        raise SpkError(
            f"num_gaussians {num_gaussians} is implausible for a {file_size}-byte file "
            f"(at most {GAUSSIANS_PER_BYTE} per byte)",
            path,
        )
    head = HEADER.pack(MAGIC, *FORMAT_VERSION, 0, len(meta_bytes), num_gaussians, len(sections), len(table))
    crc = zlib.crc32(table, zlib.crc32(meta_bytes, zlib.crc32(head)))
    try:
        with atomic_write(path, "wb") as f:
            f.write(head + struct.pack("<I", crc) + meta_bytes + table)
            pos = HEADER_SIZE + len(meta_bytes) + len(table)
            for start, p in zip(layout, payloads):
                f.write(bytes(start - pos))
                f.write(p)
                pos = start + len(p)
    except OSError as exc:
        raise SpkError(f"cannot write ({exc.strerror or exc})", path) from None
    return file_size


# --------------------------------------------------------------------------- reading


class SpkReader:
    """An open ``.spk`` file: header, meta and section table are read and validated on open;
    payloads are read (and checksum-verified) only when :meth:`read` asks for them.

    ``known_codecs``: codecs this reader can decode, e.g. the array-codec registry
    :data:`~splatpack.spk.arrays.ARRAY_CODECS` (a codec registered there later is known too).
    An optional section with another codec is listed in :attr:`skipped` (not in
    :attr:`sections`); a required one is refused. ``None`` accepts every codec.
    """

    def __init__(self, path: str | Path, known_codecs: Collection[str] | None = None):
        self.path = Path(path)
        self._f: BinaryIO | None = None
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):  # never block on a FIFO
                raise SpkError("not a regular file", self.path)
            self._f = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            self.file_size = os.fstat(self._f.fileno()).st_size
            self._open(known_codecs)
        except FileNotFoundError:
            self.close()
            raise SpkError("does not exist", self.path) from None
        except OSError as exc:
            self.close()
            raise SpkError(f"cannot read ({exc.strerror or exc})", self.path) from None
        except BaseException:
            self.close()
            raise

    # -- opening

    def _fail(self, problem: str) -> SpkError:
        return SpkError(problem, self.path)

    def _read_at(self, offset: int, n: int, what: str) -> bytes:
        assert self._f is not None
        self._f.seek(offset)
        data = self._f.read(n)  # unbuffered: loop over (rare) short reads
        while 0 < len(data) < n:
            more = self._f.read(n - len(data))
            if not more:
                break
            data += more
        if len(data) != n:
            raise self._fail(f"truncated {what} (file ended at byte {offset + len(data)})")
        return data

    def _check_zero(self, start: int, end: int, what: str) -> None:
        pos = start
        while pos < end:
            n = min(_CHUNK, end - pos)
            if any(self._read_at(pos, n, what)):
                raise self._fail(f"{what} is not zero (corrupt)")
            pos += n

    def _open(self, known_codecs: Collection[str] | None) -> None:
        size = self.file_size
        head = self._read_at(0, min(size, HEADER_SIZE), "header")
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            what = "empty file" if size == 0 else "bad magic"
            raise self._fail(f"not a .spk file ({what})")
        if len(head) >= 8:
            major, minor = struct.unpack_from("<HH", head, 4)
            if major != FORMAT_VERSION[0]:
                raise self._fail(
                    f"unsupported .spk format version {major}.{minor} (this splatpack reads "
                    f"{FORMAT_VERSION[0]}.x; a newer splatpack may read it)"
                )
        if len(head) < HEADER_SIZE:
            raise self._fail(f"truncated header ({size} bytes, a .spk header has {HEADER_SIZE})")
        (_, major, minor, flags, meta_len, num_g, num_sec, table_len) = HEADER.unpack_from(head)
        (header_crc,) = struct.unpack_from("<I", head, HEADER.size)
        self.version = (major, minor)
        self.flags = flags
        table_start = HEADER_SIZE + meta_len
        table_end = table_start + table_len
        if table_end > size:
            raise self._fail(
                f"truncated header: meta ({meta_len} bytes) and section table ({table_len} bytes) "
                f"extend past the end of the file ({size} bytes)"
            )
        if num_sec * MIN_ENTRY_SIZE > table_len:
            raise self._fail(f"{num_sec} sections cannot fit in a {table_len}-byte section table")
        body = self._read_at(HEADER_SIZE, meta_len + table_len, "header")
        crc = zlib.crc32(body, zlib.crc32(head[: HEADER.size]))
        if crc != header_crc:
            raise self._fail("header is corrupt (checksum mismatch)")
        if num_g > GAUSSIANS_PER_BYTE * size:
            raise self._fail(
                f"num_gaussians {num_g} is implausible for a {size}-byte file (at most {GAUSSIANS_PER_BYTE} per byte)"
            )
        self.num_gaussians = num_g
        try:
            meta = json.loads(body[:meta_len].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self._fail(f"meta is not valid UTF-8 JSON ({type(exc).__name__})") from None
        if not isinstance(meta, dict):
            raise self._fail(f"meta is a JSON {type(meta).__name__}, not an object")
        self.meta: dict[str, Any] = meta
        entries = self._parse_table(body[meta_len:], num_sec, table_start)
        self.sections: list[SectionInfo] = []
        self.skipped: list[SectionInfo] = []
        self._gap_end: dict[str, int] = {}
        for i, e in enumerate(entries):
            self._gap_end[e.name] = entries[i + 1].offset if i + 1 < len(entries) else size
            if e.offset + e.length > size:
                raise self._fail(
                    f"section '{e.name}' extends past the end of the file "
                    f"(bytes {e.offset}..{e.offset + e.length} of {size}; truncated?)"
                )
            if known_codecs is not None and e.codec not in known_codecs:
                if e.required:
                    raise self._fail(
                        f"required section '{e.name}' uses codec '{e.codec}' unknown to this "
                        "splatpack (written by a newer version?)"
                    )
                self.skipped.append(e)
            else:
                self.sections.append(e)
        self._check_count(meta_len + sum(e.length for e in entries))
        self._by_name = {e.name: e for e in self.sections}
        self._skipped_by_name = {e.name: e for e in self.skipped}
        first = entries[0].offset if entries else size
        self._check_zero(table_end, first, "padding after the section table")

    def _check_count(self, stored: int) -> None:
        """Refuse a ``num_gaussians`` above the Gaussian ceiling, or above what the meta and payloads
        (``stored`` bytes, zero padding not counted) can hold: every file :func:`write_spk` writes
        with more than :data:`~splatpack.core.limits.ALWAYS_PLAUSIBLE` Gaussians has at most
        :data:`GAUSSIANS_PER_BYTE` per byte of the file, hence well under :data:`GAUSSIANS_PER_STORED_BYTE`
        per stored byte."""
        degree = self.meta.get("sh_degree")
        degree = degree if type(degree) is int and 0 <= degree <= 3 else 3
        check_gaussians(
            self.num_gaussians,
            self.path,
            file_bytes=stored,
            per_byte=GAUSSIANS_PER_STORED_BYTE,
            sh_degree=degree,
            bytes_of="of meta and payload",
            error=SpkError,
        )

    def _parse_table(self, table: bytes, num_sec: int, table_end: int) -> list[SectionInfo]:
        table_end += len(table)
        pos = 0
        entries: list[SectionInfo] = []
        names: set[str] = set()
        prev_end = table_end
        prev_name = None
        for i in range(num_sec):
            try:
                name_len = table[pos]
                name_b = table[pos + 1 : pos + 1 + name_len]
                pos += 1 + name_len
                codec_len = table[pos]
                codec_b = table[pos + 1 : pos + 1 + codec_len]
                pos += 1 + codec_len
                flags, offset, length, crc = ENTRY_TAIL.unpack_from(table, pos)
                pos += ENTRY_TAIL.size
            except (IndexError, struct.error):
                raise self._fail(f"section table truncated in entry {i}") from None
            if len(name_b) != name_len or len(codec_b) != codec_len:
                raise self._fail(f"section table truncated in entry {i}")
            name = name_b.decode("latin-1")
            codec = codec_b.decode("latin-1")
            if not NAME_RE.fullmatch(name):
                raise self._fail(f"section table entry {i} has an invalid name {name!r}")
            if not CODEC_RE.fullmatch(codec):
                raise self._fail(f"section '{name}' has an invalid codec name {codec!r}")
            if name in names:
                raise self._fail(f"duplicate section '{name}'")
            names.add(name)
            if offset % ALIGN:
                raise self._fail(f"section '{name}' offset {offset} is not a multiple of {ALIGN}")
            if offset < prev_end:
                where = "the section table" if prev_name is None else f"section '{prev_name}'"
                raise self._fail(f"section '{name}' overlaps {where}")
            entries.append(SectionInfo(name, codec, offset, length, crc, bool(flags & FLAG_REQUIRED)))
            prev_end, prev_name = offset + length, name
        if pos != len(table):
            raise self._fail(f"section table has {len(table) - pos} unexpected trailing bytes")
        return entries

    # -- access

    def has(self, name: str) -> bool:
        """Whether a readable section ``name`` exists (skipped sections do not count)."""
        return name in self._by_name

    def info(self, name: str) -> SectionInfo:
        e = self._by_name.get(name)
        if e is not None:
            return e
        s = self._skipped_by_name.get(name)
        if s is not None:
            raise self._fail(f"section '{name}' uses codec '{s.codec}' unknown to this splatpack (skipped)")
        have = ", ".join(e.name for e in self.sections) or "none"
        raise self._fail(f"no section '{name}' (sections: {have})")

    def read(self, name: str) -> bytes:
        """Read one payload (and only it), verifying its checksum and the padding after it."""
        e = self.info(name)
        if self._f is None:
            raise self._fail("file is closed")
        try:
            data = self._read_at(e.offset, e.length, f"payload of section '{name}'")
            if zlib.crc32(data) != e.crc32:
                raise self._fail(f"section '{name}' is corrupt (checksum mismatch)")
            self._check_zero(e.offset + e.length, self._gap_end[name], f"padding after section '{name}'")
        except OSError as exc:
            raise self._fail(f"cannot read section '{name}' ({exc.strerror or exc})") from None
        return data

    def read_array(self, name: str, max_elements: int | None = None):
        """Read a section and decode it with the array codec its table entry names
        (:func:`splatpack.spk.arrays.decode_array`); a :class:`CodecError` becomes an :class:`SpkError`."""
        e = self.info(name)
        payload = self.read(name)
        try:
            return decode_array(payload, e.codec, name=name, max_elements=max_elements)
        except CodecError as exc:
            raise self._fail(str(exc)) from None

    def verify(self) -> None:
        """Read every section once, so that any corruption raises :class:`SpkError`."""
        for e in self.sections:
            self.read(e.name)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> SpkReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SpkReader({str(self.path)!r}, version={self.version}, "
            f"num_gaussians={self.num_gaussians}, sections={[e.name for e in self.sections]})"
        )


def read_spk_info(path: str | Path) -> dict[str, Any]:
    """Summary for ``splatpack info``: version, counts, meta and section sizes (no payload is read)."""
    with SpkReader(path) as r:
        return {
            "path": str(r.path),
            "version": f"{r.version[0]}.{r.version[1]}",
            "num_gaussians": r.num_gaussians,
            "meta": r.meta,
            "sections": [
                {"name": e.name, "codec": e.codec, "bytes": e.length, "required": e.required} for e in r.sections
            ],
            "total_bytes": r.file_size,
        }

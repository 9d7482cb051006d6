"""Array codecs for ``.spk`` section payloads: ``raw``, ``deflate`` and ``ans``.

Every payload starts with the same array header (all integers little-endian)::

    offset size  field
    0      1     u8  dtype code (see DTYPE_CODES: 1=u8 2=i8 3=u16 4=i16 5=u32 6=i32
                     7=u64 8=i64 9=f16 10=f32 11=f64)
    1      1     u8  ndim (0..8; the ``ans`` codec allows 1 or 2)
    2      6     reserved, must be zero
    8      8*ndim u64 shape (C order; each dimension <= 2**40)

``raw``: the header, then the elements, little-endian, C order. The header is 8 + 8*ndim
bytes, so the data starts 8-byte aligned inside an 8-byte-aligned ``.spk`` payload (a
JavaScript reader can view it with a typed array without copying).

``deflate``: zlib (RFC 1950) of the complete ``raw`` payload.

``ans``: lossless entropy coding of an integer array of shape ``[N]`` or ``[N, K]`` (u8,
i8, u16, i16, u32, i32) with one semi-static categorical model per column, coded with
constriction's stack ANS coder (32-bit words, 64-bit state, 24-bit probabilities). After the
array header, per column ``j = 0 .. K-1`` (``K = 1`` for 1-D arrays)::

    u8      mode   0 = constant column (or N == 0): every element equals ``min``
                   1 = dense counts, 2 = sparse counts
    varint  zigzag(min)            smallest value in the column (symbol s <-> min + s)
    mode 1: varint n               alphabet size, 2 <= n <= 65536
            n x varint count[s]    count[0] > 0, count[n-1] > 0, sum == N
    mode 2: varint m               number of symbols with a nonzero count, 2 <= m
            m x (varint gap, varint count)
                                   symbol = previous symbol + gap (first gap is 0, later
                                   gaps >= 1); count > 0; sum == N; n = last symbol + 1

then ``varint W`` (number of compressed words), zero padding to a multiple of 4 bytes
(counted from the start of the payload), and ``W`` little-endian u32 words; nothing
follows. Varints are unsigned LEB128 (at most 10 bytes, < 2**64); zigzag maps
``v -> 2v`` for ``v >= 0`` and ``-v -> 2v - 1``.

Model. For a column with counts ``c[0..n-1]`` (N = sum) the quantised model is exactly
constriction's ``Categorical(c.astype(float64), perfect=False)``: with ``P = 24``,
``scale = float64(2**P - n) / float64(N)`` and ``C_s = c[0] + ... + c[s-1]`` (exact
integers), the left cumulative of symbol ``s`` is ``floor(C_s * scale) + s`` (the product
in IEEE float64) and the right cumulative of ``n-1`` is ``2**P``; every symbol in the range
has a nonzero probability.

Stream. Non-constant columns are pushed on one ANS stack in reverse column order, each
column's symbols in reverse, so that a decoder pops column 0 first, in element order.
Decoding (stack semantics, words popped from the END of the word array): the initial
state is the last word (must be nonzero), then while words remain and ``state < 2**32``:
``state = state << 32 | next word from the end``. Per symbol: ``q = state & (2**24-1)``;
find ``s`` with ``left[s] <= q < left[s+1]``; ``state = (state >> 24) * (left[s+1] -
left[s]) + q - left[s]``; if ``state < 2**32`` and words remain, ``state = state << 32 |
next word from the end``. After the last symbol of the last coded column the state must
be 0 and no words may remain. ``tests/test_codecs.py`` holds a pure-Python reference
decoder that is checked against constriction, as a template for other implementations.

Every decode error is a :class:`CodecError` with a one-line message naming the array.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from splatpack.errors import SplatpackError

__all__ = [
    "ANS_DTYPES",
    "CODECS",
    "DEFAULT_MAX_ELEMENTS",
    "DTYPE_CODES",
    "CodecError",
    "decode_array",
    "encode_array",
]


class CodecError(SplatpackError):
    """An array cannot be encoded with the requested codec, or a payload cannot be decoded."""


CODECS: frozenset[str] = frozenset({"raw", "deflate", "ans"})

#: dtype code in the array header -> little-endian numpy dtype
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype("<u1"),
    2: np.dtype("<i1"),
    3: np.dtype("<u2"),
    4: np.dtype("<i2"),
    5: np.dtype("<u4"),
    6: np.dtype("<i4"),
    7: np.dtype("<u8"),
    8: np.dtype("<i8"),
    9: np.dtype("<f2"),
    10: np.dtype("<f4"),
    11: np.dtype("<f8"),
}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in DTYPE_CODES.items()}

#: dtypes the ``ans`` codec accepts
ANS_DTYPES = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4"))

MAX_NDIM = 8
MAX_DIM = 1 << 40
#: element limit used by :func:`decode_array` when the caller passes no ``max_elements``
DEFAULT_MAX_ELEMENTS = 1 << 28
ANS_PRECISION = 24
MAX_ALPHABET = 1 << 16

_MODE_CONSTANT, _MODE_DENSE, _MODE_SPARSE = 0, 1, 2


# --------------------------------------------------------------------------- helpers


def _dtype_code(dtype: np.dtype) -> int:
    code = _CODE_OF.get((dtype.kind, dtype.itemsize))
    if code is None:
        names = ", ".join(str(dt.newbyteorder("=")) for dt in DTYPE_CODES.values())
        raise CodecError(f"unsupported dtype {dtype} (supported: {names})")
    return code


def _array_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(f"<BB6x{len(shape)}Q", code, len(shape), *shape)


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


class _Reader:
    """Bounds-checked cursor over a payload; every failure is a :class:`CodecError`."""

    def __init__(self, data: bytes | memoryview, name: str, codec: str):
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.name = name
        self.codec = codec

    def fail(self, problem: str) -> CodecError:
        return CodecError(f"array '{self.name}' ({self.codec}): {problem}")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n > self.remaining:
            raise self.fail(f"payload truncated in {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = shift = 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise self.fail(f"payload truncated in {what}")
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value >= 1 << 64:
                    raise self.fail(f"{what} out of range")
                return value
            shift += 7
        raise self.fail(f"{what} is not a valid varint")


def _read_array_header(
    r: _Reader, max_elements: int | None
) -> tuple[np.dtype, tuple[int, ...], int]:
    code = r.u8("array header")
    ndim = r.u8("array header")
    if any(r.take(6, "array header")):
        raise r.fail("reserved header bytes are not zero")
    if code not in DTYPE_CODES:
        raise r.fail(f"unknown dtype code {code}")
    if ndim > MAX_NDIM:
        raise r.fail(f"ndim {ndim} exceeds {MAX_NDIM}")
    shape = struct.unpack(f"<{ndim}Q", r.take(8 * ndim, "array shape"))
    if any(d > MAX_DIM for d in shape):
        raise r.fail(f"shape {shape} has a dimension over 2**40")
    count = math.prod(shape)
    limit = DEFAULT_MAX_ELEMENTS if max_elements is None else max_elements
    if count > limit:
        raise r.fail(f"shape {shape} has {count} elements, more than the limit {limit}")
    return DTYPE_CODES[code], shape, count


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


# --------------------------------------------------------------------------- raw / deflate


def _encode_raw(arr: np.ndarray) -> bytes:
    code = _dtype_code(arr.dtype)
    if arr.ndim > MAX_NDIM:
        raise CodecError(f"arrays with more than {MAX_NDIM} dimensions are not supported")
    data = np.ascontiguousarray(arr, dtype=DTYPE_CODES[code])
    return _array_header(code, arr.shape) + data.tobytes()


def _decode_raw(payload: bytes, name: str, max_elements: int | None) -> np.ndarray:
    r = _Reader(payload, name, "raw")
    dtype, shape, count = _read_array_header(r, max_elements)
    expected = count * dtype.itemsize
    if r.remaining != expected:
        raise r.fail(
            f"payload holds {r.remaining} data bytes, shape {shape} of {dtype.newbyteorder('=')}"
            f" needs {expected}"
        )
    flat = np.frombuffer(r.data, dtype=dtype, count=count, offset=r.pos)
    return flat.astype(_native(dtype), copy=True).reshape(shape)


def _inflate_exact(d, pending: bytes, n: int, r: _Reader, what: str) -> tuple[bytes, bytes]:
    """Inflate exactly ``n`` bytes (never more); returns (output, unconsumed input)."""
    out = bytearray()
    while len(out) < n:
        try:
            chunk = d.decompress(pending, n - len(out))
        except zlib.error as exc:
            raise r.fail(f"corrupt deflate stream ({exc})") from None
        pending = d.unconsumed_tail
        out += chunk
        if not chunk and not pending:
            break
    if len(out) < n:
        raise r.fail(f"deflate stream ends early in {what}")
    return bytes(out), pending


def _decode_deflate(payload: bytes, name: str, max_elements: int | None) -> np.ndarray:
    r = _Reader(payload, name, "deflate")
    d = zlib.decompressobj()
    head, pending = _inflate_exact(d, bytes(payload), 8, r, "array header")
    ndim = head[1]
    if ndim > MAX_NDIM:
        raise r.fail(f"ndim {ndim} exceeds {MAX_NDIM}")
    shape_bytes, pending = _inflate_exact(d, pending, 8 * ndim, r, "array shape")
    hr = _Reader(head + shape_bytes, name, "deflate")
    dtype, shape, count = _read_array_header(hr, max_elements)
    expected = count * dtype.itemsize
    data, pending = _inflate_exact(d, pending, expected, r, "array data")
    try:
        extra = d.decompress(pending, 1)
    except zlib.error as exc:
        raise r.fail(f"corrupt deflate stream ({exc})") from None
    if extra or not d.eof or d.unused_data or d.unconsumed_tail:
        raise r.fail(f"deflate stream does not end after {expected} data bytes")
    flat = np.frombuffer(data, dtype=dtype, count=count)
    return flat.astype(_native(dtype), copy=True).reshape(shape)


# --------------------------------------------------------------------------- ans


def _categorical(counts: np.ndarray):
    import constriction

    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _encode_ans(arr: np.ndarray) -> bytes:
    from constriction import stream

    AnsCoder = stream.stack.AnsCoder  # noqa: N806

    dtype = arr.dtype
    if dtype.newbyteorder("=") not in ANS_DTYPES:
        raise CodecError(f"the ans codec supports u8, i8, u16, i16, u32 and i32 arrays, not {dtype}")
    if arr.ndim not in (1, 2):
        raise CodecError(f"the ans codec supports 1-D or 2-D arrays, not {arr.ndim}-D")
    cols = arr if arr.ndim == 2 else arr.reshape(-1, 1)
    n_rows, n_cols = cols.shape
    out = bytearray(_array_header(_dtype_code(dtype), arr.shape))
    coded: list[tuple[np.ndarray, np.ndarray]] = []  # (symbols, counts) per coded column
    for j in range(n_cols):
        col = cols[:, j]
        if n_rows == 0:
            out.append(_MODE_CONSTANT)
            _varint(0, out)
            continue
        lo, hi = int(col.min()), int(col.max())
        if lo == hi:
            out.append(_MODE_CONSTANT)
            _varint(_zigzag(lo), out)
            continue
        n = hi - lo + 1
        if n > MAX_ALPHABET:
            raise CodecError(
                f"column {j} spans {n} values (> {MAX_ALPHABET}); the ans codec cannot code it"
                " (use raw or deflate)"
            )
        symbols = (col.astype(np.int64) - lo).astype(np.int32)
        counts = np.bincount(symbols, minlength=n).astype(np.int64)
        dense = bytearray()
        for c in counts.tolist():
            _varint(c, dense)
        nz = np.flatnonzero(counts)
        sparse = bytearray()
        _varint(len(nz), sparse)
        prev = 0
        for s, c in zip(nz.tolist(), counts[nz].tolist()):
            _varint(s - prev, sparse)
            _varint(c, sparse)
            prev = s
        size_n = bytearray()
        _varint(n, size_n)
        if len(sparse) < len(size_n) + len(dense):
            out.append(_MODE_SPARSE)
            _varint(_zigzag(lo), out)
            out += sparse
        else:
            out.append(_MODE_DENSE)
            _varint(_zigzag(lo), out)
            out += size_n + dense
        coded.append((symbols, counts))
    coder = AnsCoder()
    for symbols, counts in reversed(coded):
        coder.encode_reverse(symbols, _categorical(counts))
    words = np.asarray(coder.get_compressed(), dtype=np.uint32)
    _varint(len(words), out)
    out += bytes(-len(out) % 4)
    out += words.astype("<u4", copy=False).tobytes()
    return bytes(out)


def _decode_ans(payload: bytes, name: str, max_elements: int | None) -> np.ndarray:
    from constriction import stream

    AnsCoder = stream.stack.AnsCoder  # noqa: N806

    r = _Reader(payload, name, "ans")
    dtype, shape, count = _read_array_header(r, max_elements)
    if dtype.newbyteorder("=") not in ANS_DTYPES:
        raise r.fail(f"dtype {dtype.newbyteorder('=')} is not allowed in an ans payload")
    if len(shape) not in (1, 2):
        raise r.fail(f"{len(shape)}-D shape is not allowed in an ans payload")
    n_rows = shape[0]
    n_cols = shape[1] if len(shape) == 2 else 1
    if n_cols > r.remaining:  # every column costs at least one header byte
        raise r.fail(f"payload too short for {n_cols} columns")
    info = np.iinfo(dtype)
    columns: list[tuple[int, int, np.ndarray | None]] = []  # (mode, min, counts)
    for j in range(n_cols):
        what = f"column {j} model"
        mode = r.u8(what)
        lo = _unzigzag(r.varint(what))
        if mode == _MODE_CONSTANT:
            if not info.min <= lo <= info.max:
                raise r.fail(f"column {j} value {lo} is out of range for {dtype}")
            if n_rows == 0 and lo != 0:
                raise r.fail(f"column {j} of an empty array has a nonzero value")
            columns.append((mode, lo, None))
            continue
        if n_rows == 0:
            raise r.fail(f"column {j} of an empty array has a model")
        if mode == _MODE_DENSE:
            n = r.varint(what)
            if not 2 <= n <= MAX_ALPHABET:
                raise r.fail(f"column {j} alphabet size {n} is outside 2..{MAX_ALPHABET}")
            if n > r.remaining:
                raise r.fail(f"payload truncated in {what}")
            counts = np.array([r.varint(what) for _ in range(n)], dtype=object)
            if counts[0] == 0 or counts[-1] == 0:
                raise r.fail(f"column {j} model has zero counts at the alphabet ends")
        elif mode == _MODE_SPARSE:
            m = r.varint(what)
            if not 2 <= m <= MAX_ALPHABET:
                raise r.fail(f"column {j} has {m} distinct symbols, outside 2..{MAX_ALPHABET}")
            if 2 * m > r.remaining:
                raise r.fail(f"payload truncated in {what}")
            pairs = [(r.varint(what), r.varint(what)) for _ in range(m)]
            if pairs[0][0] != 0 or any(g == 0 for g, _ in pairs[1:]):
                raise r.fail(f"column {j} model has invalid symbol gaps")
            symbols = np.cumsum([min(g, MAX_ALPHABET) for g, _ in pairs])
            if symbols[-1] >= MAX_ALPHABET:
                raise r.fail(f"column {j} alphabet exceeds {MAX_ALPHABET}")
            if any(c == 0 for _, c in pairs):
                raise r.fail(f"column {j} model lists a zero count")
            counts = np.zeros(int(symbols[-1]) + 1, dtype=object)
            counts[symbols] = [c for _, c in pairs]
        else:
            raise r.fail(f"column {j} has unknown model mode {mode}")
        if sum(counts) != n_rows:
            raise r.fail(f"column {j} symbol counts sum to {sum(counts)}, expected {n_rows}")
        n = len(counts)
        if lo < info.min or lo + n - 1 > info.max:
            raise r.fail(f"column {j} values {lo}..{lo + n - 1} are out of range for {dtype}")
        columns.append((mode, lo, counts.astype(np.int64)))
    n_words = r.varint("word count")
    r.take(-r.pos % 4, "padding")
    if r.remaining != 4 * n_words:
        raise r.fail(f"word count {n_words} does not match the {r.remaining} remaining bytes")
    coded = [c for c in columns if c[2] is not None]
    if not coded and n_words:
        raise r.fail("compressed words present but no column is coded")
    words = np.frombuffer(r.data, dtype="<u4", offset=r.pos).astype(np.uint32)
    out = np.empty((n_rows, n_cols), dtype=_native(dtype))
    try:
        coder = AnsCoder(words) if n_words else AnsCoder()
    except Exception as exc:  # constriction refuses e.g. a trailing zero word
        raise r.fail(f"invalid compressed data ({exc})") from None
    for j, (mode, lo, counts) in enumerate(columns):
        if counts is None:
            out[:, j] = lo
            continue
        try:
            symbols = coder.decode(_categorical(counts), n_rows)
        except Exception as exc:
            raise r.fail(f"cannot decode column {j} ({exc})") from None
        symbols = np.asarray(symbols)
        if not np.array_equal(np.bincount(symbols, minlength=len(counts)), counts):
            raise r.fail(f"column {j} does not decode to its recorded symbol counts (corrupt)")
        out[:, j] = symbols.astype(np.int64) + lo
    if coded and not coder.is_empty():
        raise r.fail("compressed data left over after the last column (corrupt)")
    return out.reshape(shape)


# --------------------------------------------------------------------------- public API


def encode_array(arr: np.ndarray, codec: str) -> bytes:
    """Encode ``arr`` as a section payload with ``codec`` (one of :data:`CODECS`).

    Raises :class:`CodecError` when the array does not suit the codec (e.g. ``ans`` for a
    float array or a column spanning more than 2**16 values); the caller then uses ``raw``.
    """
    arr = np.asarray(arr)
    if any(d > MAX_DIM for d in arr.shape):
        raise CodecError(f"array dimension over 2**40 in shape {arr.shape}")
    if codec == "raw":
        return _encode_raw(arr)
    if codec == "deflate":
        return zlib.compress(_encode_raw(arr), 6)
    if codec == "ans":
        return _encode_ans(arr)
    raise CodecError(f"unknown codec '{codec}' (known: {', '.join(sorted(CODECS))})")


def decode_array(
    payload: bytes | bytearray | memoryview,
    codec: str,
    name: str = "array",
    max_elements: int | None = None,
) -> np.ndarray:
    """Decode a payload written by :func:`encode_array` into a native-endian, writable array.

    ``max_elements`` bounds the element count before anything sized by the payload's header
    is allocated (default :data:`DEFAULT_MAX_ELEMENTS`); a ``.spk`` reader passes e.g.
    ``num_gaussians * columns``. Every problem raises :class:`CodecError` naming ``name``.
    """
    if codec == "raw":
        return _decode_raw(payload, name, max_elements)
    if codec == "deflate":
        return _decode_deflate(payload, name, max_elements)
    if codec == "ans":
        return _decode_ans(payload, name, max_elements)
    raise CodecError(f"array '{name}': unknown codec '{codec}' (known: {', '.join(sorted(CODECS))})")

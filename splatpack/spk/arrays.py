"""Array codecs for ``.spk`` section payloads: ``raw``, ``deflate``, ``ans`` and the image codecs
``jxl``, ``png`` and ``webp``.

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

Image codecs (``jxl``, ``png``, ``webp``): an 8- or 16-bit image [H, W] or [H, W, C]
(C = 1..4, H, W >= 1), coded with libjxl / libpng / libwebp through ``imagecodecs``. The
payload is the array header (dtype u8 or u16; ``webp``: u8 only) followed by exactly one image
file:

* ``jxl``: a JPEG XL codestream, bare (``FF 0A``) or in the ISOBMFF container with the
  codestream in a ``jxlc`` box (libjxl writes the container for more than 12 bits per sample,
  codestream level 10); ``bits`` significant bits per sample (u8: 1..8, u16: 9..16), returned
  unscaled. Lossless unless a Butteraugli ``distance`` > 0 is given (then values are within a
  few steps, with no bound);
* ``png``: 8-bit or 16-bit, grey / grey+alpha / RGB / RGBA for C = 1 / 2 / 3 / 4, ending with
  its ``IEND`` chunk;
* ``webp``: lossless, one ``VP8L`` chunk; C < 3 is padded with zero channels to RGB (the
  padding must decode to zero), C = 4 is RGBA.

The image's own width and height (and for PNG bit depth and colour type) must equal the array
header's. A decoder checks this from the image header *before* decoding, so a forged image
header cannot make an image library allocate more than the array header declares (which is
bounded by ``max_elements``).

Every decode error is a :class:`CodecError` with a one-line message naming the array.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from splatpack.core.errors import SplatpackError

__all__ = [
    "ANS_DTYPES",
    "CODECS",
    "DEFAULT_MAX_ELEMENTS",
    "DTYPE_CODES",
    "IMAGE_CODECS",
    "CodecError",
    "decode_array",
    "encode_array",
]


class CodecError(SplatpackError):
    """An array cannot be encoded with the requested codec, or a payload cannot be decoded."""


#: codecs whose payload is an array header followed by an image file (see the module docstring)
IMAGE_CODECS: frozenset[str] = frozenset({"jxl", "png", "webp"})
CODECS: frozenset[str] = frozenset({"raw", "deflate", "ans"}) | IMAGE_CODECS

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


#: an expected (shape, dtype) for :func:`decode_array`; either part may be None
_Expect = "tuple[tuple[int, ...] | None, np.dtype | None] | None"


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
    r: _Reader, max_elements: int | None, expect: _Expect = None
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
    if expect is not None:
        want_shape, want_dtype = expect
        if want_shape is not None and shape != want_shape:
            raise r.fail(f"shape {shape} differs from the expected {want_shape}")
        if want_dtype is not None and DTYPE_CODES[code] != want_dtype:
            raise r.fail(f"dtype {_native(DTYPE_CODES[code])} differs from the expected {_native(want_dtype)}")
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


def _decode_raw(payload: bytes, name: str, max_elements: int | None, expect: _Expect = None) -> np.ndarray:
    r = _Reader(payload, name, "raw")
    dtype, shape, count = _read_array_header(r, max_elements, expect)
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


def _decode_deflate(payload: bytes, name: str, max_elements: int | None, expect: _Expect = None) -> np.ndarray:
    r = _Reader(payload, name, "deflate")
    d = zlib.decompressobj()
    head, pending = _inflate_exact(d, bytes(payload), 8, r, "array header")
    ndim = head[1]
    if ndim > MAX_NDIM:
        raise r.fail(f"ndim {ndim} exceeds {MAX_NDIM}")
    shape_bytes, pending = _inflate_exact(d, pending, 8 * ndim, r, "array shape")
    hr = _Reader(head + shape_bytes, name, "deflate")
    dtype, shape, count = _read_array_header(hr, max_elements, expect)
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


def _decode_ans(payload: bytes, name: str, max_elements: int | None, expect: _Expect = None) -> np.ndarray:
    from constriction import stream

    AnsCoder = stream.stack.AnsCoder  # noqa: N806

    r = _Reader(payload, name, "ans")
    dtype, shape, count = _read_array_header(r, max_elements, expect)
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


# --------------------------------------------------------------------------- images: jxl, png, webp

_U8, _U16 = np.dtype("<u1"), np.dtype("<u2")
_IMAGE_DTYPES = {"jxl": (_U8, _U16), "png": (_U8, _U16), "webp": (_U8,)}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PNG_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # grey, grey+alpha, RGB, RGBA
_WEBP_MAX_SIDE = 16383
_JXL_RATIOS = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))
_IMAGE_PARAMS = {"jxl": {"bits", "distance", "effort"}, "png": {"level"}, "webp": {"level", "method"}}


def _imagecodecs(fail=CodecError):
    try:
        import imagecodecs
    except ImportError:
        raise fail(
            "the jxl, png and webp codecs need the 'imagecodecs' package (pip install imagecodecs)"
        ) from None
    return imagecodecs


def _image_geometry(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(H, W, C) of an image array shape [H, W] or [H, W, C] (C in 1..4, H, W >= 1), else None."""
    if len(shape) == 2:
        h, w, c = *shape, 1
    elif len(shape) == 3:
        h, w, c = shape
    else:
        return None
    return (h, w, c) if h >= 1 and w >= 1 and 1 <= c <= 4 else None


def _encode_image(arr: np.ndarray, codec: str, params: dict) -> bytes:
    dtype = _native(arr.dtype)
    if dtype not in _IMAGE_DTYPES[codec]:
        kinds = " or ".join(str(_native(d)) for d in _IMAGE_DTYPES[codec])
        raise CodecError(f"the {codec} codec codes {kinds} images, not {dtype}")
    geometry = _image_geometry(arr.shape)
    if geometry is None:
        raise CodecError(
            f"the {codec} codec codes [H, W] or [H, W, C] images (C = 1..4, H, W >= 1), not shape {arr.shape}"
        )
    unknown = set(params) - _IMAGE_PARAMS[codec]
    if unknown:
        known = sorted(_IMAGE_PARAMS[codec])
        raise CodecError(f"unknown parameters {sorted(unknown)} for codec '{codec}' (known: {known})")
    h, w, c = geometry
    img = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("=")).reshape((h, w, c) if c > 1 else (h, w))
    ic = _imagecodecs()
    if codec == "jxl":
        lo_bits = 1 if dtype.itemsize == 1 else 9
        bits = int(params.get("bits", 8 * dtype.itemsize))
        if not lo_bits <= bits <= 8 * dtype.itemsize:
            raise CodecError(f"jxl bits {bits} outside {lo_bits}..{8 * dtype.itemsize} for a {dtype} image")
        if img.size and int(img.max()) >> bits:
            raise CodecError(f"jxl image values exceed {bits} bits")
        distance = float(params.get("distance", 0.0))
        if not 0.0 <= distance <= 25.0:
            raise CodecError(f"jxl distance {distance} outside 0..25")
        effort = int(params.get("effort", 7))
        if not 1 <= effort <= 10:
            raise CodecError(f"jxl effort {effort} outside 1..10")
        kw = {"lossless": True} if distance == 0 else {"lossless": False, "distance": distance}
        data = ic.jpegxl_encode(img, effort=effort, bitspersample=bits, numthreads=1, **kw)
    elif codec == "png":
        data = ic.png_encode(img, level=int(params.get("level", 9)))
    else:
        if h > _WEBP_MAX_SIDE or w > _WEBP_MAX_SIDE:
            raise CodecError(f"webp images are at most {_WEBP_MAX_SIDE}x{_WEBP_MAX_SIDE}, not {h}x{w}")
        if c < 3:  # libwebp codes RGB(A): pad with zero channels
            img = np.concatenate([img.reshape(h, w, c), np.zeros((h, w, 3 - c), img.dtype)], axis=2)
        level, method = int(params.get("level", 100)), int(params.get("method", 6))
        data = ic.webp_encode(img, level=level, lossless=True, method=method)
    return _array_header(_dtype_code(dtype), arr.shape) + bytes(data)


_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def _jxl_codestream(data: bytes) -> bytes | None:
    """The start of the codestream: ``data`` itself when bare (``FF 0A``), else the content of the
    first ``jxlc`` (or ``jxlp``) box of an ISOBMFF container (ISO/IEC 18181-2); None if neither."""
    if data[:2] == b"\xff\x0a":
        return data
    if data[: len(_JXL_CONTAINER)] != _JXL_CONTAINER:
        return None
    pos = len(_JXL_CONTAINER)
    while pos + 8 <= len(data):  # every box is at least 8 bytes: at most len/8 iterations
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > len(data):
                return None
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < head or pos + size > len(data):
            return None
        if kind == b"jxlc":
            return data[pos + head : pos + size]
        if kind == b"jxlp":
            return data[pos + head + 4 : pos + size]
        pos += size
    return None


def _jxl_size(data: bytes) -> tuple[int, int] | None:
    """(ysize, xsize) from a JPEG XL codestream's SizeHeader (ISO/IEC 18181-1), or None."""
    data = _jxl_codestream(data)
    if data is None or data[:2] != b"\xff\x0a":
        return None
    head = data[2:12]  # a SizeHeader is at most 68 bits
    value, avail, pos = int.from_bytes(head, "little"), 8 * len(head), 0

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > avail:
            raise IndexError
        out = (value >> pos) & ((1 << n) - 1)
        pos += n
        return out

    def u32() -> int:  # U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))
        return take((9, 13, 18, 30)[take(2)]) + 1

    try:
        small = take(1)
        ysize = 8 * (take(5) + 1) if small else u32()
        ratio = take(3)
        if ratio == 0:
            xsize = 8 * (take(5) + 1) if small else u32()
        else:
            num, den = _JXL_RATIOS[ratio - 1]
            xsize = ysize * num // den
    except IndexError:
        return None
    return ysize, xsize


def _check_image_header(r: _Reader, data: bytes, codec: str, h: int, w: int, c: int, dtype: np.dtype) -> None:
    """Refuse an image whose own header disagrees with the array header, before decoding it."""
    if codec == "jxl":
        size = _jxl_size(data)
        if size is None:
            raise r.fail("not a JPEG XL image (no codestream with a valid size header)")
        got = size
    elif codec == "png":
        ihdr = data[8:16] == b"\x00\x00\x00\x0dIHDR"
        if len(data) < 33 + len(_PNG_IEND) or data[:8] != _PNG_SIGNATURE or not ihdr:
            raise r.fail("not a PNG image")
        width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
        got = (height, width)
        if (depth, colour) != (8 * dtype.itemsize, _PNG_COLOUR_TYPE[c]):
            raise r.fail(
                f"PNG bit depth {depth} / colour type {colour} does not match the array header "
                f"({8 * dtype.itemsize}-bit, {c} channels)"
            )
        if data[-len(_PNG_IEND):] != _PNG_IEND:
            raise r.fail("PNG image does not end with its IEND chunk (truncated or trailing bytes)")
    else:
        if len(data) < 25 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8L" or data[20] != 0x2F:
            raise r.fail("not a lossless WebP image (one VP8L chunk expected)")
        riff, chunk = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 16)[0]
        if riff + 8 != len(data) or 20 + chunk + (chunk & 1) != len(data):
            raise r.fail("WebP sizes do not match the payload (truncated or trailing bytes)")
        bits = struct.unpack_from("<I", data, 21)[0]
        got = (((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1)
    if got != (h, w):
        raise r.fail(f"image is {got[0]}x{got[1]}, the array header says {h}x{w}")


def _decode_image(
    payload, codec: str, name: str, max_elements: int | None, expect: _Expect = None
) -> np.ndarray:
    r = _Reader(payload, name, codec)
    dtype, shape, _ = _read_array_header(r, max_elements, expect)
    if dtype not in _IMAGE_DTYPES[codec]:
        raise r.fail(f"dtype {_native(dtype)} is not allowed in a {codec} payload")
    geometry = _image_geometry(shape)
    if geometry is None:
        raise r.fail(f"shape {shape} is not an image ([H, W] or [H, W, C], C = 1..4, H, W >= 1)")
    h, w, c = geometry
    data = bytes(r.data[r.pos :])
    _check_image_header(r, data, codec, h, w, c, dtype)
    ic = _imagecodecs(r.fail)
    n_out = max(c, 3) if codec == "webp" else c
    out = np.empty((h, w, n_out) if n_out > 1 else (h, w), _native(dtype))
    try:
        if codec == "jxl":
            img = ic.jpegxl_decode(data, index=0, numthreads=1, out=out)
        elif codec == "png":
            img = ic.png_decode(data, out=out)
        else:
            img = ic.webp_decode(data, hasalpha=c == 4, out=out)
    except MemoryError:
        raise r.fail("image too large to decode") from None
    except Exception as exc:  # the libraries' own errors (corrupt stream, wrong layout, ...)
        raise r.fail(f"corrupt image ({type(exc).__name__}: {exc})") from None
    img = np.asarray(img)
    if img.shape != out.shape or img.dtype != out.dtype:
        raise r.fail(f"image decodes to {img.shape} {img.dtype}, expected {out.shape} {out.dtype}")
    if n_out > c:
        if img[..., c:].any():
            raise r.fail("WebP padding channels are not zero (corrupt)")
        img = img[..., :c]
    return np.ascontiguousarray(img).reshape(shape)


# --------------------------------------------------------------------------- public API


def encode_array(arr: np.ndarray, codec: str, **params) -> bytes:
    """Encode ``arr`` as a section payload with ``codec`` (one of :data:`CODECS`).

    ``params`` are codec settings (only the image codecs take any): ``jxl``: ``bits``
    (significant bits per sample; default the dtype's), ``distance`` (0 = lossless, the default;
    > 0 a lossy Butteraugli distance, ~1 visually lossless), ``effort`` (1..10, default 7);
    ``png``: ``level`` (zlib level, default 9); ``webp``: ``level`` (0..100, default 100) and
    ``method`` (0..6, default 6), both trading encode time for size (always lossless).

    Raises :class:`CodecError` when the array does not suit the codec (e.g. ``ans`` for a
    float array or a column spanning more than 2**16 values); the caller then uses ``raw``.
    """
    arr = np.asarray(arr)
    if any(d > MAX_DIM for d in arr.shape):
        raise CodecError(f"array dimension over 2**40 in shape {arr.shape}")
    if codec in IMAGE_CODECS:
        return _encode_image(arr, codec, params)
    if codec in CODECS and params:
        raise CodecError(f"codec '{codec}' takes no parameters (got {sorted(params)})")
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
    *,
    shape: tuple[int, ...] | None = None,
    dtype=None,
) -> np.ndarray:
    """Decode a payload written by :func:`encode_array` into a native-endian, writable array.

    ``max_elements`` bounds the element count before anything sized by the payload's header
    is allocated (default :data:`DEFAULT_MAX_ELEMENTS`); a ``.spk`` reader passes e.g.
    ``num_gaussians * columns``. ``shape`` / ``dtype``, when given, must equal the payload's
    (checked from its header, before anything is decoded). Every problem raises
    :class:`CodecError` naming ``name``.
    """
    expect = None
    if shape is not None or dtype is not None:
        want_dtype = None if dtype is None else np.dtype(dtype).newbyteorder("<")
        expect = (None if shape is None else tuple(int(d) for d in shape), want_dtype)
    if codec == "raw":
        return _decode_raw(payload, name, max_elements, expect)
    if codec == "deflate":
        return _decode_deflate(payload, name, max_elements, expect)
    if codec == "ans":
        return _decode_ans(payload, name, max_elements, expect)
    if codec in IMAGE_CODECS:
        return _decode_image(payload, codec, name, max_elements, expect)
    raise CodecError(f"array '{name}': unknown codec '{codec}' (known: {', '.join(sorted(CODECS))})")

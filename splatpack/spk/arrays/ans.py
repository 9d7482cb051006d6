"""The ``ans`` array codec: lossless entropy coding of integer arrays with asymmetric numeral systems
(Duda, "Asymmetric numeral systems", arXiv:1311.2540) through constriction (Bamler, "Understanding
entropy coding with asymmetric numeral systems (ANS)", arXiv:2201.01741).

An integer array of shape ``[N]`` or ``[N, K]`` (u8, i8, u16, i16, u32, i32) is coded with one
semi-static categorical model per column, with constriction's stack ANS coder (32-bit words, 64-bit
state, 24-bit probabilities). After the array header, per column ``j = 0 .. K-1`` (``K = 1`` for
1-D arrays)::

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
follows. Varints and zigzag are defined in :mod:`splatpack.spk.arrays.header`.

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
be 0 and no words may remain. ``tests/spk/test_array_ans.py`` holds a pure-Python reference
decoder that is checked against constriction, as a template for other implementations.
"""

from __future__ import annotations

import constriction
import numpy as np

from splatpack.spk.arrays.base import CodecError, Expect, check_params
from splatpack.spk.arrays.header import (
    Reader,
    array_header,
    dtype_code,
    native,
    read_array_header,
    unzigzag,
    write_varint,
    zigzag,
)

#: dtypes the ``ans`` codec accepts
ANS_DTYPES = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4"))
ANS_PRECISION = 24
MAX_ALPHABET = 1 << 16

_MODE_CONSTANT, _MODE_DENSE, _MODE_SPARSE = 0, 1, 2


def _categorical(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _write_model(col: np.ndarray, j: int, out: bytearray) -> tuple[np.ndarray, np.ndarray] | None:
    """Append column ``j``'s model to ``out``; its (symbols, counts), or None for a constant column."""
    if len(col) == 0:
        out.append(_MODE_CONSTANT)
        write_varint(0, out)
        return None
    lo, hi = int(col.min()), int(col.max())
    if lo == hi:
        out.append(_MODE_CONSTANT)
        write_varint(zigzag(lo), out)
        return None
    n = hi - lo + 1
    if n > MAX_ALPHABET:
        raise CodecError(
            f"column {j} spans {n} values (> {MAX_ALPHABET}); the ans codec cannot code it (use raw or deflate)"
        )
    symbols = (col.astype(np.int64) - lo).astype(np.int32)
    counts = np.bincount(symbols, minlength=n).astype(np.int64)
    dense = bytearray()
    for c in counts.tolist():
        write_varint(c, dense)
    nz = np.flatnonzero(counts)
    sparse = bytearray()
    write_varint(len(nz), sparse)
    prev = 0
    for s, c in zip(nz.tolist(), counts[nz].tolist()):
        write_varint(s - prev, sparse)
        write_varint(c, sparse)
        prev = s
    size_n = bytearray()
    write_varint(n, size_n)
    if len(sparse) < len(size_n) + len(dense):
        out.append(_MODE_SPARSE)
        write_varint(zigzag(lo), out)
        out += sparse
    else:
        out.append(_MODE_DENSE)
        write_varint(zigzag(lo), out)
        out += size_n + dense
    return symbols, counts


def _read_model(r: Reader, j: int, n_rows: int, info: np.iinfo, dtype: np.dtype) -> tuple[int, np.ndarray | None]:
    """Column ``j``'s (min, counts) from the payload; counts is None for a constant column."""
    what = f"column {j} model"
    mode = r.u8(what)
    lo = unzigzag(r.varint(what))
    if mode == _MODE_CONSTANT:
        if not info.min <= lo <= info.max:
            raise r.fail(f"column {j} value {lo} is out of range for {dtype}")
        if n_rows == 0 and lo != 0:
            raise r.fail(f"column {j} of an empty array has a nonzero value")
        return lo, None
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
    return lo, counts.astype(np.int64)


class AnsCodec:
    name = "ans"

    def encode(self, arr: np.ndarray, **params) -> bytes:
        check_params(self.name, params)
        dtype = arr.dtype
        if native(dtype) not in ANS_DTYPES:
            raise CodecError(f"the ans codec supports u8, i8, u16, i16, u32 and i32 arrays, not {dtype}")
        if arr.ndim not in (1, 2):
            raise CodecError(f"the ans codec supports 1-D or 2-D arrays, not {arr.ndim}-D")
        cols = arr if arr.ndim == 2 else arr.reshape(-1, 1)
        out = bytearray(array_header(dtype_code(dtype), arr.shape))
        models = [_write_model(cols[:, j], j, out) for j in range(cols.shape[1])]
        coder = constriction.stream.stack.AnsCoder()
        for symbols, counts in reversed([m for m in models if m is not None]):
            coder.encode_reverse(symbols, _categorical(counts))
        words = np.asarray(coder.get_compressed(), dtype=np.uint32)
        write_varint(len(words), out)
        out += bytes(-len(out) % 4)
        out += words.astype("<u4", copy=False).tobytes()
        return bytes(out)

    def decode(self, payload, name: str, max_elements: int | None, expect: Expect = None) -> np.ndarray:
        r = Reader(payload, name, self.name)
        dtype, shape, _ = read_array_header(r, max_elements, expect)
        if native(dtype) not in ANS_DTYPES:
            raise r.fail(f"dtype {native(dtype)} is not allowed in an ans payload")
        if len(shape) not in (1, 2):
            raise r.fail(f"{len(shape)}-D shape is not allowed in an ans payload")
        n_rows = shape[0]
        n_cols = shape[1] if len(shape) == 2 else 1
        if n_cols > r.remaining:  # every column costs at least one header byte
            raise r.fail(f"payload too short for {n_cols} columns")
        info = np.iinfo(dtype)
        columns = [_read_model(r, j, n_rows, info, dtype) for j in range(n_cols)]  # (min, counts)
        n_words = r.varint("word count")
        r.take(-r.pos % 4, "padding")
        if r.remaining != 4 * n_words:
            raise r.fail(f"word count {n_words} does not match the {r.remaining} remaining bytes")
        coded = any(counts is not None for _, counts in columns)
        if not coded and n_words:
            raise r.fail("compressed words present but no column is coded")
        words = np.frombuffer(r.data, dtype="<u4", offset=r.pos).astype(np.uint32)
        out = np.empty((n_rows, n_cols), dtype=native(dtype))
        AnsCoder = constriction.stream.stack.AnsCoder
        try:
            coder = AnsCoder(words) if n_words else AnsCoder()
        except Exception as exc:  # constriction refuses e.g. a trailing zero word
            raise r.fail(f"invalid compressed data ({exc})") from None
        for j, (lo, counts) in enumerate(columns):
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

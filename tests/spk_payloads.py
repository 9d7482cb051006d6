"""Helpers shared by the array-codec tests (``tests/spk/test_array_*.py``): hypothesis settings,
hand-made payloads and the mutation fuzzer's inputs."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from splatpack.spk.arrays import ARRAY_CODECS, CodecError, decode_array, encode_array

FUZZ = settings(deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def smooth(h, w, c, top):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [np.sin(3 * x + 2 * y + k) for k in range(c)]
    img = np.stack(chans, -1) * 0.5 + 0.5
    return np.rint(img * top).astype(np.uint16 if top > 255 else np.uint8)


def header_bytes(dtype_code: int, shape) -> bytes:
    """An array header (see :mod:`splatpack.spk.arrays.header`)."""
    return struct.pack(f"<BB6x{len(shape)}Q", dtype_code, len(shape), *shape)


def ans_payload(shape, columns: list[bytes], words: list[int], code=1) -> bytes:
    """An ``ans`` payload from hand-written column models and words."""
    out = bytearray(struct.pack(f"<BB6x{len(shape)}Q", code, len(shape), *shape))
    for c in columns:
        out += c
    out.append(len(words))
    out += bytes(-len(out) % 4)
    out += struct.pack(f"<{len(words)}I", *words)
    return bytes(out)


def _fuzz_inputs():
    rng = np.random.default_rng(5)
    planes = np.zeros((60, 8), np.uint8)
    planes[:, :3] = rng.integers(0, 256, (60, 3))
    return {
        "raw": encode_array(rng.normal(size=(30, 3)).astype(np.float32), "raw"),
        "deflate": encode_array(rng.integers(0, 40, (50, 4)).astype(np.int16), "deflate"),
        "ans": encode_array(rng.geometric(0.1, (80, 6)).astype(np.uint16), "ans"),  # dense models
        "ans_planes": encode_array(planes, "ans"),
        "ans_sparse": encode_array((rng.geometric(0.3, 90) * 1000).astype(np.int32), "ans"),
        "jxl": encode_array(smooth(12, 10, 3, 63), "jxl", bits=6),
        "jxl16": encode_array(smooth(9, 11, 4, 16383), "jxl", bits=14),  # ISOBMFF container
        "png": encode_array(smooth(10, 9, 4, 4000), "png"),
        "webp": encode_array(smooth(11, 10, 2, 255), "webp"),
    }


FUZZ_INPUTS = _fuzz_inputs()


def decode_cleanly(payload: bytes, codec: str) -> None:
    """Decoding either succeeds within the element limit or raises a one-line CodecError."""
    try:
        arr = decode_array(payload, codec, name="fuzzed", max_elements=10_000)
    except CodecError as exc:
        msg = str(exc)
        assert msg.startswith(f"array 'fuzzed' ({codec}): ") and "\n" not in msg, msg
        return
    assert isinstance(arr, np.ndarray) and arr.size <= 10_000


@st.composite
def mutated(draw, key):
    data = bytearray(FUZZ_INPUTS[key])
    kind = draw(st.sampled_from(["flip", "set", "truncate", "append", "header"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "set":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    else:  # forge a header/shape word (shape fields are u64 at offsets 8, 16)
        at = draw(st.sampled_from([0, 1, 8, 16]))
        if at < 8:
            data[at] = draw(st.integers(0, 255))
        elif at + 8 <= len(data):
            value = draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**31, 2**40, 2**64 - 1])))
            data[at : at + 8] = struct.pack("<Q", value)
    return bytes(data)


class XorCodec:
    """A toy codec to register in ``ARRAY_CODECS``: the ``raw`` payload with every byte XOR 0x5A."""

    name = "xor"

    def encode(self, arr: np.ndarray, **params) -> bytes:
        return bytes(b ^ 0x5A for b in encode_array(arr, "raw", **params))

    def decode(self, payload, name, max_elements, expect=None) -> np.ndarray:
        return ARRAY_CODECS["raw"].decode(bytes(b ^ 0x5A for b in payload), name, max_elements, expect)

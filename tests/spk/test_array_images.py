"""The image array codecs ``jxl``, ``png`` and ``webp`` (:mod:`splatpack.spk.arrays.images` and the
codecs' modules): round trips, compression, refusals, header checks before decoding, fuzzing.

Hypothesis cases in this file (``max_examples``): round trips 80, mutated payloads 4 x 60 = 320.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spk_payloads import FUZZ, decode_cleanly, header_bytes, mutated, same, smooth

from splatpack.spk.arrays import DTYPE_CODES, IMAGE_CODECS, CodecError, decode_array, encode_array
from splatpack.spk.arrays.jxl import jxl_size


@st.composite
def images(draw):
    codec = draw(st.sampled_from(sorted(IMAGE_CODECS)))
    dtype = np.dtype(np.uint8) if codec == "webp" else draw(st.sampled_from([np.dtype(np.uint8), np.dtype(np.uint16)]))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    c = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (h, w) if c is None else (h, w, c)
    params = {}
    top = 8 * dtype.itemsize
    if codec == "jxl":
        params["bits"] = draw(st.integers(1 if top == 8 else 9, top))
        params["effort"] = draw(st.integers(1, 3))
        top = params["bits"]
    seed = draw(st.integers(0, 2**32 - 1))
    arr = np.random.default_rng(seed).integers(0, 1 << top, shape).astype(dtype)
    if draw(st.booleans()):  # smooth content too
        arr = (np.cumsum(np.ones(shape), axis=1) % (1 << top)).astype(dtype)
    return codec, arr, params


@settings(FUZZ, max_examples=80)
@given(case=images())
def test_image_round_trip(case):
    codec, arr, params = case
    payload = encode_array(arr, codec, **params)
    out = decode_array(payload, codec, max_elements=arr.size, shape=arr.shape, dtype=arr.dtype)
    assert same(out, arr) and out.flags.writeable
    assert struct.unpack_from(f"<BB6x{arr.ndim}Q", payload) == (_DTYPE_CODE[arr.dtype], arr.ndim, *arr.shape)


_DTYPE_CODE = {dt.newbyteorder("="): code for code, dt in DTYPE_CODES.items()}


def test_image_codecs_compress_smooth_images():
    img = smooth(64, 64, 3, 4095)
    raw = img.nbytes
    for codec, params in [("jxl", {"bits": 12}), ("png", {})]:
        assert len(encode_array(img, codec, **params)) < 0.5 * raw, codec
    img8 = smooth(64, 64, 3, 255)
    assert len(encode_array(img8, "webp")) < 0.5 * img8.nbytes


def test_image_encode_refusals():
    with pytest.raises(CodecError, match="webp codec codes uint8 images, not uint16"):
        encode_array(np.zeros((4, 4), np.uint16), "webp")
    with pytest.raises(CodecError, match=r"C = 1..4"):
        encode_array(np.zeros((4, 4, 5), np.uint8), "png")
    with pytest.raises(CodecError, match=r"C = 1..4"):
        encode_array(np.zeros((0, 4), np.uint8), "jxl")
    with pytest.raises(CodecError, match=r"jxl bits 12 outside 1..8"):
        encode_array(np.zeros((4, 4), np.uint8), "jxl", bits=12)
    with pytest.raises(CodecError, match="exceed 5 bits"):
        encode_array(np.full((4, 4), 32, np.uint8), "jxl", bits=5)
    with pytest.raises(CodecError, match="unknown parameters \\['distance'\\] for codec 'png'"):
        encode_array(np.zeros((4, 4), np.uint8), "png", distance=1.0)
    with pytest.raises(CodecError, match="webp images are at most"):
        encode_array(np.zeros((16384, 1), np.uint8), "webp")
    with pytest.raises(CodecError, match="codes uint8 or uint16 images, not float32"):
        encode_array(np.zeros((4, 4), np.float32), "jxl")


def test_image_decode_errors():
    import imagecodecs

    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    png = imagecodecs.png_encode(rgb)
    cases = [
        (header_bytes(1, (4, 5, 3)) + png, "png", r"image is 4x6, the array header says 4x5"),
        (
            header_bytes(3, (4, 6, 3)) + png,
            "png",
            r"PNG bit depth 8 / colour type 2 does not match the array header \(16-bit, 3 channels\)",
        ),
        (header_bytes(1, (4, 6, 4)) + png, "png", r"colour type 2 does not match .*4 channels"),
        (header_bytes(1, (4, 6, 3)) + png[:-1], "png", "does not end with its IEND chunk"),
        (header_bytes(1, (4, 6, 3)) + png + b"x", "png", "does not end with its IEND chunk"),
        (header_bytes(1, (4, 6, 3)) + b"GIF89a" + bytes(40), "png", "not a PNG image"),
        (header_bytes(10, (4, 6, 3)) + png, "png", "dtype float32 is not allowed in a png payload"),
        (header_bytes(1, (4, 6, 5)) + png, "png", r"shape \(4, 6, 5\) is not an image"),
        (header_bytes(1, (0, 6)) + png, "png", r"shape \(0, 6\) is not an image"),
        (
            header_bytes(3, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=True),
            "webp",
            "dtype uint16 is not allowed",
        ),
        (
            header_bytes(1, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=False, level=90),
            "webp",
            "not a lossless WebP image",
        ),
        (
            header_bytes(1, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=True) + b"xy",
            "webp",
            "WebP sizes do not match",
        ),
        (
            header_bytes(1, (4, 7, 3)) + imagecodecs.webp_encode(rgb, lossless=True),
            "webp",
            "image is 4x6, the array header says 4x7",
        ),
        (
            header_bytes(1, (4, 6)) + imagecodecs.webp_encode(rgb, lossless=True),
            "webp",
            "padding channels are not zero",
        ),
        (header_bytes(1, (4, 6, 3)) + b"\xff\x0a", "jxl", "not a JPEG XL image"),
        (
            header_bytes(1, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb[:3], lossless=True),
            "jxl",
            "image is 3x6, the array header says 4x6",
        ),
        (header_bytes(1, (4, 6)) + imagecodecs.jpegxl_encode(rgb, lossless=True), "jxl", r"corrupt image \(ValueError"),
        (header_bytes(3, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb, lossless=True), "jxl", "corrupt image"),
        (header_bytes(1, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb, lossless=True)[:-9], "jxl", "corrupt image"),
    ]
    for payload, codec, pattern in cases:
        with pytest.raises(CodecError, match=pattern) as exc:
            decode_array(payload, codec, name="img")
        assert str(exc.value).startswith(f"array 'img' ({codec}): ") and "\n" not in str(exc.value)


def _jxl_forged_size(side_minus_1: int) -> bytes:
    """A codestream whose SizeHeader claims a (side × side) image, and nothing else."""
    bits = [0]  # not small
    bits += [1, 1]  # U32 selector 3: BitsOffset(30, 1)
    bits += [(side_minus_1 >> i) & 1 for i in range(30)]
    bits += [1, 0, 0]  # ratio 1: xsize = ysize
    value = sum(b << i for i, b in enumerate(bits))
    return b"\xff\x0a" + value.to_bytes(8, "little") + bytes(64)


def test_forged_image_headers_allocate_nothing():
    """The image's own header is checked against the (bounded) array header before decoding."""
    assert jxl_size(_jxl_forged_size(2**30 - 1)) == (2**30, 2**30)
    png_head = bytearray(encode_array(np.zeros((4, 4), np.uint8), "png")[24:])
    png_head[16:24] = struct.pack(">II", 60000, 60000)
    webp = bytearray(encode_array(np.zeros((4, 4, 3), np.uint8), "webp")[32:])
    webp[21:25] = struct.pack("<I", 0x0FFFFFFF)  # 16384 x 16384
    cases = [
        (header_bytes(1, (4, 4)) + _jxl_forged_size(2**30 - 1), "jxl"),
        (header_bytes(1, (4, 4)) + bytes(png_head), "png"),
        (header_bytes(1, (4, 4, 3)) + bytes(webp), "webp"),
        (header_bytes(1, (2**20, 2**20, 3)) + _jxl_forged_size(2**20 - 1), "jxl"),  # over max_elements
    ]
    tracemalloc.start()
    try:
        for payload, codec in cases:
            with pytest.raises(CodecError, match=r"image is|more than the limit"):
                decode_array(payload, codec, max_elements=10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


@pytest.mark.parametrize("which", ["jxl", "jxl16", "png", "webp"])
@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_fuzz_mutated_images(which, data):
    decode_cleanly(data.draw(mutated(which)), which.rstrip("16"))


LIBPNG_CASES = """
import sys
import numpy as np
from splatpack.core import GaussianSet
from splatpack.formats import save_scene
from splatpack.spk.arrays import CodecError, decode_array
from splatpack.spk.container import SpkReader

gs = GaussianSet.random_in_box(500, np.full(3, -1.0), np.ones(3), sh_degree=0, seed=1)
with SpkReader(save_scene(gs, sys.argv[1], "spk", quality=6, image_codec="png", means_encoding="grid")) as r:
    payload = r.read("grid.means")
for back in range(60, 200, 3):
    p = bytearray(payload)
    p[-back] ^= 0x5A
    p[-back + 1] ^= 0xA5
    try:
        decode_array(bytes(p), "png")
    except CodecError:
        pass
"""


def test_libpngs_warnings_do_not_reach_stderr(tmp_path):
    """libpng prints 'PNG warning: IDAT: incorrect data check' on the process's stderr (file
    descriptor 2, past sys.stderr, through a C buffer) for some corrupt deflate streams; found by
    fuzzing a grid .spk coded with PNG, where 8 of these 47 two-byte corruptions of the
    positions' image printed it. Run as a process of its own, as the command line is: every
    decode fails with one error and nothing reaches stderr."""
    run = subprocess.run(
        [sys.executable, "-c", LIBPNG_CASES, str(tmp_path / "a.spk")], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""

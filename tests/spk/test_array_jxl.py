"""The ``jxl`` array codec (:mod:`splatpack.spk.arrays.jxl`): lossy coding, high bit depths in the
ISOBMFF container, the SizeHeader parser."""

from __future__ import annotations

import numpy as np
from spk_payloads import same, smooth

from splatpack.spk.arrays import decode_array, encode_array
from splatpack.spk.arrays.jxl import jxl_size


def test_jxl_lossy_and_high_bit_depths():
    img = smooth(64, 48, 3, 4095)
    lossless = encode_array(img, "jxl", bits=12)
    lossy = encode_array(img, "jxl", bits=12, distance=1.0)
    out = decode_array(lossy, "jxl")
    assert len(lossy) < len(lossless) and out.shape == img.shape and out.dtype == np.uint16
    assert np.abs(out.astype(int) - img).mean() < 0.01 * 4095
    assert same(decode_array(lossy, "jxl"), out)  # deterministic
    # more than 12 bits per sample: libjxl wraps the codestream (level 10) in the ISOBMFF container
    img16 = smooth(20, 30, 4, 65535)
    payload = encode_array(img16, "jxl", bits=16)
    assert payload[8 + 24 : 8 + 24 + 12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"
    assert jxl_size(payload[32:]) == (20, 30) and same(decode_array(payload, "jxl"), img16)


def test_jxl_size_header_parser():
    import imagecodecs

    for h, w in [
        (1, 1),
        (8, 8),
        (256, 256),
        (64, 77),
        (100, 120),
        (90, 120),
        (90, 160),
        (100, 125),
        (9, 18),
        (3000, 5),
        (5, 70000),
    ]:
        codestream = imagecodecs.jpegxl_encode(np.zeros((h, w), np.uint8), lossless=True, effort=1)
        assert jxl_size(codestream) == (h, w)
    assert jxl_size(b"\xff\x0a") is None and jxl_size(b"\x89PNG") is None

"""The grid-scene encoder (``splatpack.codecs.grid.encode``) and its round trips through the
decoder: every lossless mode decodes within half a quantisation step of the input.

The bound checked: in each attribute's coded domain (log-positions, SH coefficients,
log-scales, unit quaternions with w >= 0, opacity logits or alphas), channel c decodes within
Δ_c/2 = (hi_c − lo_c) / (2 (2^b − 1)) of the input, plus float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import (
    FIELDS,
    LOSSLESS,
    all_lossless,
    coded,
    raster_order,
    same,
    smooth_scene,
)

import splatpack.codecs.grid.encode as grid_encode
from splatpack.codecs.grid import (
    AttributeCoding,
    GridCodecConfig,
    encode_grid_scene,
    quantisation_aware,
    read_grid_scene,
    write_grid_scene,
)
from splatpack.codecs.grid.values import coded_values
from splatpack.compress.quantise import dequantise_channels, quantise_channels, unit_quats_w_positive
from splatpack.core import GaussianSet
from splatpack.core import frames as local_frames
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import canonical_gaussians
from splatpack.render.projection import covariance_3d
from splatpack.spk.container import SpkError, SpkReader


@pytest.mark.parametrize("codec", LOSSLESS)
@pytest.mark.parametrize("opacity_space", ["logit", "alpha"])
def test_round_trip_within_half_a_step(scene, grid, tmp, codec, opacity_space):
    cfg = all_lossless(codec, opacity_space=opacity_space)
    path = tmp / f"rt-{codec}-{opacity_space}.spk"
    size = write_grid_scene(path, scene, cfg, grid_index=grid)
    assert size == path.stat().st_size
    dec = read_grid_scene(path)
    ref = scene.subset(raster_order(grid))
    assert len(dec) == len(scene) and dec.sh_degree == 3
    for f in FIELDS:
        assert getattr(dec, f).shape == getattr(ref, f).shape and getattr(dec, f).dtype == torch.float32
    meta = SpkReader(path).meta
    want, got = coded(ref, opacity_space), coded(dec, opacity_space)
    got["quats"] = dec.quats.double().numpy()  # the decoder returns the dequantised quaternion as is
    if opacity_space == "alpha":
        got["opacities"] = torch.sigmoid(dec.opacities.double()).numpy()[:, None]
    for name, t in want.items():
        e = meta["attributes"][name]
        lo, hi = np.asarray(e["lo"], np.float32), np.asarray(e["hi"], np.float32)
        half_step = (hi.astype(np.float64) - lo) / (2 * ((1 << e["bits"]) - 1))
        bound = half_step * (1 + 1e-5) + 4 * np.finfo(np.float32).eps * (np.abs(t).max(0) + 1)
        err = np.abs(got[name] - t)
        assert (err <= bound).all(), (name, (err - bound).max())
        assert (err.max(0) > 0.2 * half_step).all() or e["bits"] >= 14, name  # the bound is not loose
    # world positions: x = sign(t)(e^|t| − 1), so |x̂ − x| <= e^{|t| + Δ/2} Δ/2
    t = want["means"]
    step = (np.asarray(meta["attributes"]["means"]["hi"]) - meta["attributes"]["means"]["lo"]) / (2**14 - 1)
    assert (
        np.abs(dec.means.double().numpy() - ref.means.double().numpy()) <= np.exp(np.abs(t) + step) * step / 2 + 1e-6
    ).all()


def test_lossless_modes_are_exact_on_their_quantised_values(scene, grid, tmp):
    """Every lossless codec decodes to exactly the encoder's dequantised values (bit for bit)."""
    ref = coded(scene.subset(raster_order(grid)))
    decoded = {}
    for codec in LOSSLESS:
        path = tmp / f"exact-{codec}.spk"
        write_grid_scene(path, scene, all_lossless(codec), grid_index=grid)
        decoded[codec] = dec = read_grid_scene(path)
        for name, bits in {"sh0": 8, "shN": 5, "scales": 6, "quats": 6, "opacities": 6}.items():
            q, lo, hi = quantise_channels(ref[name], bits)
            expect = dequantise_channels(q, lo, hi, bits)
            got = getattr(dec, name).numpy().reshape(expect.shape)
            assert got.dtype == np.float32 and got.tobytes() == expect.tobytes(), (codec, name)
    for codec in LOSSLESS[1:]:
        assert same(decoded[codec], decoded["jxl"]), codec


def test_decoding_is_deterministic_and_encoding_reproducible(scene, grid, tmp):
    cfg = GridCodecConfig(quats=AttributeCoding(6, "jxl", distance=1.0))  # lossy too
    a, b = tmp / "det-a.spk", tmp / "det-b.spk"
    write_grid_scene(a, scene, cfg, grid_index=grid)
    write_grid_scene(b, scene, cfg, grid_index=grid)
    assert a.read_bytes() == b.read_bytes()
    assert same(read_grid_scene(a), read_grid_scene(a))


def test_lossy_jxl(scene, grid, tmp):
    lossless = tmp / "lossless.spk"
    lossy = tmp / "lossy.spk"
    write_grid_scene(lossless, scene, GridCodecConfig(sh0=AttributeCoding(12)), grid_index=grid)
    write_grid_scene(lossy, scene, GridCodecConfig(sh0=AttributeCoding(12, "jxl", 1.0)), grid_index=grid)
    size = {p: SpkReader(p).info("grid.sh0").length for p in (lossless, lossy)}
    assert size[lossy] < 0.8 * size[lossless]
    ref = scene.subset(raster_order(grid)).sh0
    err = (read_grid_scene(lossy).sh0 - ref).abs()
    # lossy (no per-value bound: libjxl's VarDCT in XYB on a tiny 17x18 grid), but close on average
    assert float(err.mean()) < 0.03 * float(ref.max() - ref.min()), float(err.mean())


def test_tiny_scenes(tmp):
    for n in (1, 2, 5):
        gs = smooth_scene(n=n, seed=n)
        path = tmp / f"tiny-{n}.spk"
        write_grid_scene(path, gs)
        dec = read_grid_scene(path)
        assert len(dec) == n and dec.shN.shape == (n, 15, 3)
        assert torch.allclose(dec.means, gs.means, atol=1e-3)  # constant channels decode exactly


def test_smallest_three_quats(scene, grid, tmp_path, monkeypatch):
    """The ladder stores rotations as their smallest three components plus the index of the
    largest: each stored component within Δ/2, so the rotation within ~4.6Δ radians
    (Δ = (hi − lo)/(2^b − 1) ≤ √2/(2^b − 1)). Bytes are measured in benchmarks, not here."""
    q_in = unit_quats_w_positive(scene.quats.double().numpy())
    for bits in (6, 8):
        cfg = GridCodecConfig(quats=AttributeCoding(bits), quats_encoding="smallest-three")
        path = tmp_path / f"s3-{bits}.spk"
        write_grid_scene(path, scene, cfg, grid_index=grid)
        back = read_grid_scene(path)
        ref = q_in[grid.reshape(-1)[grid.reshape(-1) >= 0]]  # decoded in the grid's raster order
        q_out = back.quats.double().numpy()
        q_out /= np.linalg.norm(q_out, axis=1, keepdims=True)
        angle = 2 * np.arccos(np.clip(np.abs((ref * q_out).sum(1)), 0, 1))
        assert angle.max() <= 4.6 * np.sqrt(2) / ((1 << bits) - 1), (bits, angle.max())
    assert GridCodecConfig.from_quality(6).quats_encoding == "smallest-three"
    assert GridCodecConfig.from_quality("sog").quats_encoding == "components"
    with pytest.raises(SplatpackError, match="quats_encoding"):
        GridCodecConfig(quats_encoding="euler").validate()
    # a stored index over 3 is refused
    monkeypatch.setattr(grid_encode, "smallest_three", lambda q: (q[:, 1:], np.full(len(q), 4)))
    write_grid_scene(tmp_path / "bad.spk", scene, GridCodecConfig(quats_encoding="smallest-three"), grid_index=grid)
    with pytest.raises(SpkError, match="index over 3"):
        read_grid_scene(tmp_path / "bad.spk")


@pytest.mark.parametrize("codec", ["png", "webp"])
def test_browser_image_codec(scene, grid, tmp_path, codec):
    """``image_codec`` codes every grid (and the palette) with one browser-decodable codec,
    decoding to the same Gaussians as the JPEG XL default."""
    for q, sh_mode in ((2, "palette"), (6, "basis"), (8, "grid")):
        extra = {"sh_mode": sh_mode, "palette_size": 32, "palette_iterations": 3}
        cfg = GridCodecConfig.from_quality(q, image_codec=codec, **extra)
        sections, _ = encode_grid_scene(scene, cfg, grid_index=grid)
        tables = ("grid.empty", "grid.shN.basis")  # deflated arrays, not images
        images = [s for s in sections if s.name not in tables and not s.name.endswith(".low")]
        assert {s.codec for s in images} == {codec}
        assert {s.codec for s in sections if s.name.endswith(".low")} == {"raw"}  # packed low bits
        write_grid_scene(tmp_path / "b.spk", scene, cfg, grid_index=grid)
        ref = GridCodecConfig.from_quality(q, **extra)
        write_grid_scene(tmp_path / "j.spk", scene, ref, grid_index=grid)
        a, b = read_grid_scene(tmp_path / "b.spk"), read_grid_scene(tmp_path / "j.spk")
        for f in FIELDS:
            assert torch.equal(getattr(a, f), getattr(b, f)), f
    with pytest.raises(SplatpackError, match="image_codec"):
        GridCodecConfig.from_quality(6, image_codec="gif")


def test_invalid_inputs(scene, grid):
    with pytest.raises(SplatpackError, match="exactly once"):
        encode_grid_scene(scene, GridCodecConfig(), grid_index=np.where(grid == 0, 1, grid))
    with pytest.raises(SplatpackError, match="too large"):
        encode_grid_scene(scene, GridCodecConfig(), grid_index=np.pad(grid, ((0, 30), (0, 0)), constant_values=-1))
    with pytest.raises(SplatpackError, match="2-D integer"):
        encode_grid_scene(scene, GridCodecConfig(), grid_index=grid.astype(float))
    bad = smooth_scene(n=20)
    bad.means[3, 1] = float("nan")
    with pytest.raises(SplatpackError, match="'means' has non-finite values"):
        encode_grid_scene(bad, GridCodecConfig(sort=False))
    with pytest.raises(SplatpackError, match="empty scene"):
        encode_grid_scene(smooth_scene(n=5).subset(torch.arange(0)), GridCodecConfig())


def test_frame_distortion_is_the_decoded_covariance_error(scene, grid, tmp_path):
    """:func:`frame_distortion` is the mean relative squared Frobenius error of the covariances
    the file decodes to (here in the turned frames), and it falls as bits rise."""
    cfg = GridCodecConfig.from_quality(3, frames="turned")
    write_grid_scene(tmp_path / "t.spk", scene, cfg, grid_index=grid)
    dec = read_grid_scene(tmp_path / "t.spk")
    ref = scene.subset(raster_order(grid))
    cov_in = covariance_3d(ref.quats.double(), ref.scales.double().exp())
    cov = covariance_3d(dec.quats.double(), dec.scales.double().exp())
    measured = float((((cov - cov_in) ** 2).sum((1, 2)) / (cov_in**2).sum((1, 2))).mean())
    turned = coded_values(canonical_gaussians(scene, order_scales=False), cfg)
    assert grid_encode.frame_distortion(turned, cfg) == pytest.approx(measured, rel=1e-3)
    finer = GridCodecConfig.from_quality(8, frames="turned")
    assert grid_encode.frame_distortion(turned, finer) < grid_encode.frame_distortion(turned, cfg) / 4


def test_best_frames_by_rate_and_distortion(scene):
    """``frames="best"`` keeps the canonical frames when the bytes they cost beyond the turned ones
    are fewer than N·C·½·log₂(D_turned/D_canonical)/8, what the same error reduction costs in
    bits at 6.02 dB per bit: with equal errors it is the smaller file."""
    cfg = GridCodecConfig.from_quality(3)
    turned = coded_values(canonical_gaussians(scene, order_scales=False), cfg)
    canonical = coded_values(canonical_gaussians(scene), cfg)
    keep = grid_encode.keep_canonical
    assert keep(turned, turned, -1, cfg) and not keep(turned, turned, 0, cfg) and not keep(turned, turned, 1, cfg)
    rho = grid_encode.frame_distortion(turned, cfg) / grid_encode.frame_distortion(canonical, cfg)
    assert rho != 1.0
    worth = len(scene) * 6 * 0.5 * np.log2(rho) / 8
    assert keep(turned, canonical, int(np.floor(worth)) - 1, cfg)
    assert not keep(turned, canonical, int(np.ceil(worth)) + 1, cfg)


def test_frames(scene, grid, tmp_path):
    """``frames`` codes each Gaussian in another of its equivalent local frames
    (:mod:`splatpack.core.frames`): the decoded covariances are the input's within the
    quantisation whichever is chosen; Gaussians of one shape in random frames cost far fewer
    rotation and scale bytes canonical than as given; ``best`` keeps one of the two
    (:func:`test_best_frames_by_rate_and_distortion` says which)."""
    ref = scene.subset(raster_order(grid))
    cov_in = covariance_3d(ref.quats.double(), ref.scales.double().exp())
    for frames in ("stored", "turned", "canonical", "best"):
        cfg = GridCodecConfig(
            quats=AttributeCoding(10), scales=AttributeCoding(10), quats_encoding="smallest-three", frames=frames
        )
        write_grid_scene(tmp_path / "c.spk", scene, cfg, grid_index=grid)
        dec = read_grid_scene(tmp_path / "c.spk")
        chosen = SpkReader(tmp_path / "c.spk").meta["frames"]
        assert chosen == frames or (frames == "best" and chosen in ("turned", "canonical"))
        cov = covariance_3d(dec.quats.double(), dec.scales.double().exp())
        rel = ((cov - cov_in).flatten(1).norm(dim=1) / cov_in.flatten(1).norm(dim=1)).max()
        assert rel < 0.02, (frames, rel)
        s = dec.scales.double()
        assert bool((s[:, :-1] >= s[:, 1:] - 1e-3).all()) == (chosen == "canonical")  # decreasing, within a step
        if chosen != "stored":
            q = torch.nn.functional.normalize(dec.quats.double(), dim=-1)
            assert bool((q[:, 0] >= q[:, 1:].abs().max(1).values - 1e-2).all())  # |w| largest, within a step
    # one shape stored in random ones of its 24 equivalent frames (R0·P·T, scales permuted)
    rng = np.random.default_rng(3)
    n = 400
    which, turn = torch.from_numpy(rng.integers(0, 6, n)), torch.from_numpy(rng.integers(0, 4, n))
    r = local_frames.quat_multiply(local_frames._PERMUTATION_QUATS[which], local_frames._HALF_TURNS[turn])
    q0 = torch.nn.functional.normalize(torch.tensor([0.9, 0.2, -0.3, 0.1], dtype=torch.float64), dim=0)
    s0 = torch.log(torch.tensor([0.05, 0.02, 0.004], dtype=torch.float64))
    same_shape = GaussianSet(
        means=torch.tensor(rng.normal(size=(n, 3)), dtype=torch.float32),
        quats=local_frames.quat_multiply(q0.expand(n, 4), r).float(),
        scales=s0[local_frames._ORDERS[which]].float(),
        opacities=torch.zeros(n),
        sh0=torch.zeros(n, 1, 3),
        shN=torch.zeros(n, 0, 3),
    )
    cov = covariance_3d(same_shape.quats.double(), same_shape.scales.double().exp())
    assert torch.allclose(cov, cov[:1].expand(n, 3, 3), atol=1e-8)
    sizes = {}
    for frames in ("stored", "turned", "canonical", "best"):
        for name, gs in (("one shape", same_shape), ("scene", scene)):
            cfg = GridCodecConfig.from_quality(6, frames=frames)
            sections, _ = encode_grid_scene(
                gs, cfg, grid_index=np.arange(n).reshape(20, 20) if gs is same_shape else grid
            )
            sizes[name, frames] = sum(len(s.payload) for s in sections if s.name in ("grid.quats", "grid.scales"))
    assert sizes["one shape", "canonical"] < 0.6 * min(sizes["one shape", "stored"], sizes["one shape", "turned"]), (
        sizes
    )
    for name in ("one shape", "scene"):
        assert sizes[name, "best"] in (sizes[name, "turned"], sizes[name, "canonical"]), sizes
    assert GridCodecConfig.from_quality(6).frames == "best" and GridCodecConfig.from_quality("sog").frames == "stored"
    with pytest.raises(SplatpackError, match="frames"):
        GridCodecConfig(frames="yes").validate()
    with pytest.raises(SplatpackError, match="quantisation-aware"):
        quantisation_aware(
            *(getattr(scene, k) for k in ("means", "quats", "scales", "opacities", "sh0")),
            GridCodecConfig.from_quality(3),
        )

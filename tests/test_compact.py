"""Compact-3DGS training and its .spk file: masking, R-VQ, post-processing, determinism,
decompress (SH baking) and the info/decompress commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from splatpack.captures import load_capture
from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.codecs.compact import (
    dequantize,
    morton_decode,
    morton_encode,
    read_compact,
    render_compact,
    undelta_bytes,
    delta_bytes,
)
from splatpack.compress.masking import binary_mask, mask_loss, masked_out
from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig, codebook_usage, kmeans, nearest_code
from splatpack.formats.ply import load_ply
from splatpack.train import TrainConfig, Trainer, apply_overrides, load_config
from splatpack.train.config import CompactConfig

CONFIGS = __import__("pathlib").Path(__file__).parents[1] / "configs"


# ---- masking ------------------------------------------------------------------------------------


def test_binary_mask_is_hard_forward_soft_backward():
    m = torch.tensor([-10.0, -4.0, 0.0, 3.0], requires_grad=True)
    b = binary_mask(m, 0.01)
    assert b.tolist() == [0.0, 1.0, 1.0, 1.0]  # σ(−4) = 0.018 > 0.01
    b.sum().backward()
    s = torch.sigmoid(m.detach())
    assert torch.allclose(m.grad, s * (1 - s))
    assert masked_out(m, 0.01).tolist() == [True, False, False, False]
    assert torch.isclose(mask_loss(m), s.mean())


# ---- residual VQ --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ema", "simvq"])
def test_residual_vq_stages_reduce_error_and_decode_matches(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 4, generator=g)
    vq = ResidualVQ(4, ResidualVQConfig(num_stages=4, codebook_size=16, kind=kind))
    vq.init_kmeans(x, generator=g)
    books = vq.codebooks().detach()
    errs, r = [], x.clone()
    for s in range(4):  # each stage lowers the error
        r = r - books[s][nearest_code(r, books[s])]
        errs.append(float((r**2).mean()))
    assert all(b < a for a, b in zip(errs, errs[1:])) and errs[-1] < 0.5 * float((x**2).mean())
    before = vq.codebooks().detach().clone()  # EMA updates the codebooks after quantising
    out, idx, loss = vq(x.requires_grad_())
    xhat = ResidualVQ.decode(idx, before)
    assert torch.allclose(out.detach(), xhat, atol=1e-6)
    out.sum().backward()  # straight-through: the gradient reaches x unchanged
    assert torch.equal(x.grad, torch.ones_like(x))
    if kind == "simvq":
        loss.backward()
        assert vq.proj.grad is not None and vq.proj.grad.abs().sum() > 0
    assert len(codebook_usage(idx, 16)) == 4


def test_ema_codebook_tracks_its_data():
    torch.manual_seed(0)
    vq = ResidualVQ(2, ResidualVQConfig(num_stages=1, codebook_size=4, decay=0.5))
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    x = centres.repeat(250, 1) + 0.01 * torch.randn(1000, 2)
    vq.init_kmeans(x)
    for _ in range(20):
        vq(x + torch.tensor([1.0, 1.0]))  # the data moves; EMA codebooks follow it
    got = vq.codebooks()[0].sort(dim=0).values
    assert torch.allclose(got, (centres + 1).sort(dim=0).values, atol=0.05)


def test_kmeans_finds_clusters():
    torch.manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat(100, 1) + 0.1 * torch.randn(300, 2)
    c = kmeans(x, 3, 20, torch.Generator().manual_seed(3))
    d = torch.cdist(centres, c).min(1).values
    assert (d < 0.2).all()


# ---- Morton coding ------------------------------------------------------------------------------


def test_morton_round_trip_and_delta_bytes():
    rng = np.random.default_rng(0)
    for bits in (1, 10, 16, 21):
        q = rng.integers(0, 1 << bits, size=(5000, 3)).astype(np.uint64)
        codes = morton_encode(q)
        assert np.array_equal(morton_decode(codes).astype(np.uint64), q)
        s = np.sort(codes)
        nb = (3 * bits + 7) // 8
        assert np.array_equal(undelta_bytes(delta_bytes(s, nb)), s)
    # locality: Morton order of a 2×2×2 block is consecutive
    block = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], np.uint64)
    assert morton_encode(block).tolist() == list(range(8))


# ---- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory):
    root = make_synthetic_scene(tmp_path_factory.mktemp("syn") / "scene", width=48, height=48, n_train=10, n_test=3)
    return load_capture(root)


def compact_config(**kw) -> TrainConfig:
    cfg = load_config(CONFIGS / "compact.yaml")
    base = {
        "steps": 80, "init_random_points": 1500, "checkpoint_every": 40, "eval_lpips": False, "log_every": 10,
        "scale_schedule": False,
        "densify": {"refine_start": 10, "refine_every": 10, "reset_every": 1000, "refine_stop": 50},
        "compact": {"rvq": {"steps": 20, "vq": {"num_stages": 3, "codebook_size": 16}},
                    "masking": {"prune_every": 10},
                    "object": {"masking": {"lambda_mask": 0.01, "lr": 0.1},
                               "colour": {"lr": 1e-2, "milestones": [], "model": {"grid": {"log2_hashmap_size": 12}}}}},
    }  # fmt: skip
    cfg = apply_overrides(cfg, base)
    return apply_overrides(cfg, kw)


@pytest.fixture(scope="module")
def compact_run(tiny_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("compact")
    trainer = Trainer(tiny_capture, compact_config(), out)
    metrics = trainer.train()
    return trainer, metrics, out


def test_compact_training_writes_a_small_spk(compact_run):
    trainer, metrics, out = compact_run
    spk = out / "scene.spk"
    assert spk.is_file() and metrics["size_bytes"] == spk.stat().st_size
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["size_bytes"] == metrics["size_bytes"]
    assert metrics["mask_pruned"] > 50  # the mask removed Gaussians
    st = metrics["storage_bytes"]
    per_gaussian = sum(st[k] for k in ("position", "opacity", "scale", "rotation")) / metrics["num_gaussians"]
    assert per_gaussian < 248 / 10, st  # 248 B per Gaussian in a PLY
    assert set(metrics["storage_bytes"]) >= {"position", "opacity", "scale", "rotation", "colour", "other", "total"}
    assert len(metrics["codebook_usage"]["scale"]) == 3
    assert "sh0" not in trainer.params  # the colour field replaced SH
    from splatpack.metrics import psnr

    bg = sum(psnr(torch.ones_like(v.image), v.image) for v in trainer.test_views) / len(trainer.test_views)
    assert metrics["psnr"] > bg + 2.0, (metrics["psnr"], bg)
    # the decoded file is what was evaluated: within a small margin of the pre-post-processing model
    assert metrics["psnr"] > metrics["psnr_before_postprocess"] - 1.0


def test_decoding_is_deterministic_and_matches_the_model_in_memory(compact_run):
    trainer, _, out = compact_run
    a = read_compact(out / "scene.spk")
    b = read_compact(out / "scene.spk")
    for f in ("morton", "opacity_q", "scale_idx", "rot_idx", "scale_books", "rot_books", "hash_q"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    sa, sb = dequantize(a), dequantize(b)
    for f in ("means", "quats", "scales", "opacities"):
        assert torch.equal(getattr(sa, f), getattr(sb, f)), f
    # the post-processed model built in memory (no file) renders exactly like the decoded file
    code, _ = trainer.compact_code()
    mem = dequantize(code)
    v = trainer.test_views[0]
    img_mem = render_compact(mem, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    img_file = render_compact(sa, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    assert torch.equal(img_mem, img_file)


def test_evaluation_leaves_the_codebooks_alone(compact_run):
    trainer, _, _ = compact_run
    before = [trainer.vq_scale.codebooks().clone(), trainer.vq_rot.codebooks().clone()]
    trainer.evaluate(write_renders=False)
    assert torch.equal(before[0], trainer.vq_scale.codebooks()) and torch.equal(before[1], trainer.vq_rot.codebooks())
    assert trainer.vq_scale.training  # back in training mode


def test_info_and_decompress(compact_run, tmp_path):
    from splatpack.apps.cli import main
    from splatpack.apps.inspect import decompress, spk_info

    _, metrics, out = compact_run
    d = spk_info(out / "scene.spk")
    assert d["num_gaussians"] == metrics["num_gaussians"] and d["total_bytes"] == metrics["size_bytes"]
    assert sum(s["bytes"] for s in d["sections"]) <= d["total_bytes"]
    assert {s["name"] for s in d["sections"]} >= {"positions", "opacities", "scales.indices", "colour.hash.00", "colour.mlp"}
    r = decompress(out / "scene.spk", tmp_path / "baked.ply")
    gs = load_ply(tmp_path / "baked.ply")
    assert len(gs) == metrics["num_gaussians"] and gs.sh_degree == 3
    assert r["baked_vs_field_psnr"] > 30.0, r  # SH-3 reproduces the field's colours closely
    assert main(["info", str(out / "scene.spk"), "--json"]) == 0
    assert main(["decompress", str(out / "scene.spk"), "-o", str(tmp_path / "b2.ply")]) == 0


@pytest.mark.parametrize("fmt", ["ply", "splat", "spz", "sog"])
def test_export_compact_scene_to_each_format(compact_run, tmp_path, fmt):
    from splatpack.apps.cli import main
    from splatpack.formats import load_scene
    from splatpack.formats import load_scene

    _, metrics, out = compact_run
    ref = load_scene(out / "scene.spk")
    dst = tmp_path / f"scene.{fmt}"
    assert main(["export", str(out / "scene.spk"), "-o", str(dst)]) == 0
    back = load_scene(dst)
    assert len(back) == len(ref) == metrics["num_gaussians"]
    # same Gaussians within the format's quantisation (SOG reorders them: nearest neighbours)
    tol = 2e-3 * float(ref.means.abs().max()) + 1e-4
    d = torch.cdist(ref.means.double(), back.means.double())
    assert float(d.min(1).values.max()) < tol and float(d.min(0).values.max()) < tol, fmt
    # (.splat and SOG store 8-bit colour: compare in [0, 1])
    rgb_ref, rgb = (0.5 + 0.2820948 * ref.sh0[:, 0]).clamp(0, 1), (0.5 + 0.2820948 * back.sh0[:, 0]).clamp(0, 1)
    assert abs(float(rgb.mean()) - float(rgb_ref.mean())) < 0.02


def test_export_refuses_bad_input(tmp_path):
    from splatpack.apps.cli import main

    bad = tmp_path / "x.spk"
    bad.write_bytes(b"\x89SPK" + b"\0" * 10)
    assert main(["export", str(bad), "-o", str(tmp_path / "y.ply")]) == 2
    assert main(["export", str(tmp_path / "missing.ply"), "-o", str(tmp_path / "y.ply")]) == 2
    assert not (tmp_path / "y.ply").exists()


def test_compact_resume_is_exact(tiny_capture, tmp_path):
    cfg = compact_config(steps=40, compact={"rvq": {"steps": 15}}, densify={"refine_stop": 20})
    straight = Trainer(tiny_capture, cfg, tmp_path / "a")
    straight.train()
    paused = Trainer(tiny_capture, cfg, tmp_path / "b")
    assert paused.train(stop_at=30) is None  # inside the VQ phase
    resumed = Trainer(tiny_capture, cfg, tmp_path / "b")
    resumed.train(resume=True)
    assert (tmp_path / "a" / "scene.spk").read_bytes() == (tmp_path / "b" / "scene.spk").read_bytes()


def test_object_preset_is_picked_for_object_captures():
    cfg = load_config(CONFIGS / "compact.yaml").compact
    obj, scene = cfg.resolved(True), cfg.resolved(False)
    assert obj.masking.lambda_mask == 4e-3 and scene.masking.lambda_mask == 5e-4
    assert obj.colour.lr == 1e-3 and scene.colour.lr == 1e-2
    assert CompactConfig().enabled is False


# ---- compact files from synthetic streams (no training): round trip and bad input --------------


def synthetic_code(n: int = 300, seed: int = 0):
    from splatpack.compress.colour_field import ColourField, ColourFieldConfig
    from splatpack.codecs.compact import CodecConfig, pack_views, quantize_compact
    from splatpack.compress.hash_grid import HashGridConfig

    g = torch.Generator().manual_seed(seed)
    field = ColourField(ColourFieldConfig(grid=HashGridConfig(n_levels=4, log2_hashmap_size=10)))
    with torch.no_grad():
        field.hash_params.copy_(torch.randn(field.hash_params.shape, generator=g) * 0.3)
    books_s, books_r = torch.randn(3, 16, 3, generator=g) * 0.3, torch.randn(3, 16, 4, generator=g) * 0.3
    vm = torch.eye(4)
    vm[2, 3] = 3.0
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
    return quantize_compact(
        torch.randn(n, 3, generator=g), torch.rand(n, generator=g),
        torch.randint(0, 16, (n, 3), generator=g), torch.randint(0, 16, (n, 3), generator=g), books_s, books_r,
        CodecConfig(), field=field, meta={"scale_space": "log"}, views=pack_views([(vm, K, 32, 32)]),
    )  # fmt: skip


def test_synthetic_code_round_trips_bit_exactly(tmp_path):
    from splatpack.codecs.compact import write_compact

    code = synthetic_code()
    size = write_compact(tmp_path / "s.spk", code)
    assert size == (tmp_path / "s.spk").stat().st_size
    back = read_compact(tmp_path / "s.spk")
    for f in ("morton", "opacity_q", "scale_idx", "rot_idx", "scale_books", "rot_books", "hash_q", "views"):
        assert np.array_equal(getattr(code, f), getattr(back, f)), f
    assert all(np.array_equal(a, b) for a, b in zip(code.mlp, back.mlp))
    a, b = dequantize(code), dequantize(back)
    for f in ("means", "quats", "scales", "opacities"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert torch.equal(a.field.hash_params, b.field.hash_params)


def test_bad_compact_files_give_one_line_errors(tmp_path):
    """Truncated, bit-flipped and header-forged files: SplatpackError, one line, never a crash
    (hypothesis drives 300 mutations here; tests/test_spk.py fuzzes the container itself)."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    from splatpack.codecs.compact import write_compact
    from splatpack.core.errors import SplatpackError

    good = tmp_path / "good.spk"
    write_compact(good, synthetic_code())
    data = good.read_bytes()
    bad = tmp_path / "bad.spk"

    @settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        kind=st.sampled_from(["truncate", "flip", "forge"]),
        pos=st.integers(0, len(data) - 1),
        bit=st.integers(0, 7),
        value=st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 10**9]),
    )
    def check(kind, pos, bit, value):
        buf = bytearray(data)
        if kind == "truncate":
            buf = buf[:pos]
        elif kind == "flip":
            buf[pos] ^= 1 << bit
        else:  # forge a u32 in the fixed header (counts, lengths)
            off = min(pos, 31) & ~3
            buf[off : off + 4] = int(value % 2**32).to_bytes(4, "little")
        assume(bytes(buf) != data)
        bad.write_bytes(bytes(buf))
        with pytest.raises(SplatpackError) as e:
            dequantize(read_compact(bad))
        assert "\n" not in str(e.value) and str(bad) in str(e.value)

    check()


def test_cli_reports_a_corrupt_spk_in_one_line(tmp_path, capsys):
    from splatpack.apps.cli import main
    from splatpack.codecs.compact import write_compact

    p = tmp_path / "s.spk"
    write_compact(p, synthetic_code())
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0xFF
    p.write_bytes(bytes(raw))
    assert main(["decompress", str(p), "-o", str(tmp_path / "o.ply")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(p) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.ply").exists()
    assert main(["info", str(tmp_path / "missing.spk")]) == 2


def test_scene_overrides_merge_into_the_object_block():
    from splatpack.train.config import apply_overrides

    cfg = load_config(CONFIGS / "compact.yaml")
    cfg = apply_overrides(cfg, {"compact": {"object": {"masking": {"lr": 4e-3}}}})
    obj = cfg.compact.resolved(True)
    assert obj.masking.lr == 4e-3 and obj.masking.lambda_mask == 4e-3  # merged, not replaced
    assert obj.colour.model.grid.log2_hashmap_size == 16

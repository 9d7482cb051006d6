"""Neural colour field of Compact-3DGS: view-dependent colour from a hash grid and a tiny MLP.

Lee et al., "Compact 3D Gaussian Representation for Static Scenes", CVPR 2024, §3.2 (eq. 5):
instead of storing 48 SH coefficients per Gaussian, the colour of Gaussian ``i`` seen from
camera ``c`` is queried from a grid-based neural field::

    c_i(d) = MLP( HashGrid(contract(μ_i)) ⊕ SH(d_i) ),   d_i = (μ_i − o_c) / ‖μ_i − o_c‖

* ``contract`` maps the scene's axis-aligned box to ``[−1, 1]³`` and squashes the outside
  (``x ↦ (2 − 1/‖x‖)·x/‖x‖`` for ``‖x‖ > 1``, as in mip-NeRF 360 / nerfacc), then rescales to
  ``[0, 1]³`` for the hash grid (:func:`contract_to_unisphere`, Compact-3DGS'
  ``contract_to_unisphere``);
* ``HashGrid`` is the Instant-NGP multiresolution hash encoding
  (:class:`~splatpack.compress.hash_grid.HashGridEncoding`, tiny-cuda-nn layout);
* ``SH(d)`` is the degree-3 real SH basis (16 values, :func:`splatpack.core.sh.eval_sh_bases`);
* the MLP has ``hidden_layers`` ReLU layers of ``hidden`` units and a linear 3-channel output.

The output is the SH DC coefficient (what Compact-3DGS feeds to the rasteriser as ``shs`` with
degree 0): the renderer turns it into ``rgb = max(0.5 + SH_C0 · out, 0)``.

Gradients: the field is differentiated w.r.t. its table and MLP only. Means (and the view
directions) are detached inside :meth:`ColourField.forward` — the geometry is optimised by the
other losses. (Compact-3DGS lets a gradient reach the means through ``d_i``; it is tiny and we
drop it.)

Storage: :meth:`ColourField.state_for_export` gives the config, box, flat hash table and the MLP's
``(weight, bias)`` pairs; :meth:`ColourField.from_arrays` / :meth:`ColourField.from_export`
rebuild the field from those arrays (numpy or torch, any float dtype).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from splatpack.compress.hash_grid import HashGridBackend, HashGridConfig, HashGridEncoding
from splatpack.core.sh import eval_sh_bases, num_sh_bases

__all__ = ["ColourField", "ColourFieldConfig", "contract_to_unisphere", "contraction_box"]


@dataclass
class ColourFieldConfig:
    """Compact-3DGS colour field: ``grid`` (tcnn HashGrid), a ``hidden_layers × hidden`` ReLU MLP,
    view directions encoded with real SH up to ``dir_sh_degree``."""

    grid: HashGridConfig = field(default_factory=HashGridConfig)
    hidden: int = 64
    hidden_layers: int = 2
    dir_sh_degree: int = 3
    backend: HashGridBackend = "auto"

    @property
    def n_input_dims(self) -> int:
        return self.grid.n_output_dims + num_sh_bases(self.dir_sh_degree)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColourFieldConfig:
        d = dict(d)
        grid = d.pop("grid", {})
        return cls(grid=grid if isinstance(grid, HashGridConfig) else HashGridConfig(**grid), **d)


def contract_to_unisphere(x: Tensor, aabb_min: Tensor, aabb_max: Tensor) -> Tensor:
    """Scene contraction of Compact-3DGS / nerfacc: ``[N, 3]`` world points → ``[0, 1]³``.

    The box maps to ``[−1, 1]³``; points with ``‖x‖₂ > 1`` go to ``(2 − 1/‖x‖)·x/‖x‖`` (inside
    the radius-2 ball); finally ``x/4 + ½``. The unit ball lands in ``[0.25, 0.75]³``."""
    x = (x - aabb_min) / (aabb_max - aabb_min) * 2.0 - 1.0
    mag = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    safe = mag.clamp_min(1.0)  # only used where mag > 1
    x = torch.where(mag > 1.0, (2.0 - 1.0 / safe) * (x / safe), x)
    return x * 0.25 + 0.5


def contraction_box(means: Tensor, lo_q: float = 0.01, hi_q: float = 0.99, pad: float = 0.1) -> tuple[Tensor, Tensor]:
    """The box (lo [3], hi [3]) that :func:`contract_to_unisphere` maps to ``[−1, 1]³``, from the
    initial Gaussians ``means`` [N, 3]: their ``lo_q``–``hi_q`` percentile box (on at most about
    100k of them), widened by ``pad`` × its size on each side. Compact-3DGS fixes ``[−1, 1]³``; a
    data-driven box puts the capture's content, not its outliers, in the uncontracted region."""
    q = torch.quantile(means.float().cpu()[:: max(1, len(means) // 100_000)], torch.tensor([lo_q, hi_q]), dim=0)
    lo, hi = q[0], q[1]
    ext = (hi - lo).clamp_min(1e-6) * pad
    return lo - ext, hi + ext


_MLP_CHUNK = 8192  # rows per block: a block's activations stay in cache between layers


class _FusedMLP(torch.autograd.Function):
    """ReLU MLP on ``[enc ⊕ extra]`` with a hand-written, row-blocked backward (CPU fast path).

    Same maths as ``nn.Sequential(Linear, ReLU, …, Linear)`` on ``cat([enc, extra])`` but
    evaluated in blocks of ``_MLP_CHUNK`` rows, so each block's pre-activations and gradients
    stay in cache (the unblocked autograd version moves several times the memory and is slower
    on a CPU); ReLUs in place, no gradient for the ``extra`` (SH)
    columns. ``params`` = ``W_0, b_0, W_1, b_1, …`` (``Linear`` layout). Saves the inputs and
    the hidden activations ``[N, hidden]`` for the backward."""

    @staticmethod
    def forward(ctx, enc: Tensor, extra: Tensor, *params: Tensor) -> Tensor:  # type: ignore[override]
        n, n_enc = enc.shape
        enc, extra = enc.contiguous(), extra.contiguous()
        weights, biases = params[0::2], params[1::2]
        n_layers = len(weights)
        w0e_t = weights[0][:, :n_enc].t().contiguous()
        w0s_t = weights[0][:, n_enc:].t().contiguous()
        w_t = [None] + [w.t().contiguous() for w in weights[1:]]
        acts = [enc.new_empty(n, w.shape[0]) for w in weights[:-1]]  # hidden activations
        out = enc.new_empty(n, weights[-1].shape[0])
        for s in range(0, n, _MLP_CHUNK):
            e = min(s + _MLP_CHUNK, n)
            dst = acts[0][s:e] if n_layers > 1 else out[s:e]
            torch.addmm(biases[0], enc[s:e], w0e_t, out=dst)
            dst.addmm_(extra[s:e], w0s_t)
            for k in range(1, n_layers):
                dst.relu_()
                src, dst = dst, (acts[k][s:e] if k < n_layers - 1 else out[s:e])
                torch.addmm(biases[k], src, w_t[k], out=dst)
        ctx.save_for_backward(enc, extra, *acts, *weights)
        ctx.n_layers = n_layers
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        n_layers = ctx.n_layers
        saved = ctx.saved_tensors
        enc, extra = saved[0], saved[1]
        acts, weights = saved[2 : 1 + n_layers], saved[1 + n_layers :]
        n, n_enc = enc.shape
        needs = ctx.needs_input_grad
        gy = grad_out.contiguous()
        w0e = weights[0][:, :n_enc].contiguous()
        gw = [torch.zeros_like(w) for w in weights]
        gw0e = enc.new_zeros(weights[0].shape[0], n_enc)
        gw0s = enc.new_zeros(weights[0].shape[0], weights[0].shape[1] - n_enc)
        gb = [enc.new_zeros(w.shape[0]) for w in weights]
        g_enc = enc.new_empty(n, n_enc) if needs[0] else None
        for s in range(0, n, _MLP_CHUNK):
            e = min(s + _MLP_CHUNK, n)
            g = gy[s:e]
            for k in range(n_layers - 1, 0, -1):
                a = acts[k - 1][s:e]
                gw[k].addmm_(g.t(), a)
                gb[k].add_(g.sum(0))
                g = torch.ops.aten.threshold_backward(g @ weights[k], a, 0.0)  # ReLU': zero where a = 0
            gw0e.addmm_(g.t(), enc[s:e])
            gw0s.addmm_(g.t(), extra[s:e])
            gb[0].add_(g.sum(0))
            if g_enc is not None:
                torch.mm(g, w0e, out=g_enc[s:e])
        gw[0] = torch.cat([gw0e, gw0s], dim=1)
        grads: list[Tensor | None] = []
        for k in range(n_layers):
            grads += [gw[k] if needs[2 + 2 * k] else None, gb[k] if needs[3 + 2 * k] else None]
        return (g_enc, None, *grads)


class ColourField(nn.Module):
    """Compact-3DGS colour field: ``(means [N,3], dirs [N,3]) → SH DC coefficients [N,3]``.

    Args:
        cfg: field configuration (grid, MLP size, SH degree, hash-grid backend).
        aabb_min, aabb_max: the box mapped to ``[−1, 1]³`` by the contraction (Compact-3DGS uses
            ``[−1, 1]³`` in world units; use the scene's box if it is not normalised).
    """

    def __init__(
        self,
        cfg: ColourFieldConfig | None = None,
        aabb_min: Sequence[float] | Tensor = (-1.0, -1.0, -1.0),
        aabb_max: Sequence[float] | Tensor = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else ColourFieldConfig()
        lo = torch.as_tensor(aabb_min, dtype=torch.float32).detach().reshape(3).clone()
        hi = torch.as_tensor(aabb_max, dtype=torch.float32).detach().reshape(3).clone()
        if not bool((hi > lo).all()):
            raise ValueError(f"aabb_max {hi.tolist()} must exceed aabb_min {lo.tolist()} on every axis")
        self.register_buffer("aabb_min", lo)
        self.register_buffer("aabb_max", hi)
        self.encoding = HashGridEncoding(self.cfg.grid, backend=self.cfg.backend)
        dims = [self.cfg.n_input_dims] + [self.cfg.hidden] * self.cfg.hidden_layers + [3]
        layers: list[nn.Module] = []
        for k in range(len(dims) - 1):
            layers.append(nn.Linear(dims[k], dims[k + 1]))
            if k < len(dims) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(*layers)

    # -- evaluation -------------------------------------------------------------------------

    @staticmethod
    def view_dirs(means: Tensor, cam_center: Tensor) -> Tensor:
        """Unit directions from the camera centre ``[3]`` to the means ``[N, 3]`` (detached)."""
        return F.normalize(means.detach() - cam_center.detach().reshape(1, 3).to(means), dim=-1)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.mlp if isinstance(m, nn.Linear)]

    def forward(self, means: Tensor, dirs: Tensor) -> Tensor:
        """SH DC coefficients ``[N, 3]`` (float32) for Gaussians at ``means`` seen along ``dirs``.

        ``means`` and ``dirs`` are detached; ``dirs`` is normalised here (any length > 0)."""
        x = contract_to_unisphere(means.detach().to(torch.float32), self.aabb_min, self.aabb_max)
        enc = self.encoding(x)
        d = F.normalize(dirs.detach().to(torch.float32), dim=-1)
        sh = eval_sh_bases(self.cfg.dir_sh_degree, d)
        if enc.device.type == "cpu":
            params = [t for lin in self.linears() for t in (lin.weight, lin.bias)]
            return _FusedMLP.apply(enc, sh, *params)
        return self.mlp(torch.cat([enc, sh], dim=-1))

    def colours(self, means: Tensor, cam_center: Tensor) -> Tensor:
        """Convenience: DC coefficients for one camera centre."""
        return self(means, self.view_dirs(means, cam_center))

    # -- export / rebuild -------------------------------------------------------------------

    @property
    def hash_params(self) -> Tensor:
        """The flat float32 hash table (tinycudann ``Encoding.params`` layout)."""
        return self.encoding.params

    def mlp_weights(self) -> list[tuple[Tensor, Tensor]]:
        """The MLP as ``[(W [out, in], b [out]), …]``, first layer first (torch ``Linear`` layout)."""
        return [(lin.weight, lin.bias) for lin in self.linears()]

    def state_for_export(self) -> dict[str, Any]:
        """Everything the decoder needs, as detached CPU float32 tensors plus a plain-dict config:
        ``{"config", "aabb_min", "aabb_max", "hash_params", "mlp": [(W, b), …]}``."""
        return {
            "config": self.cfg.to_dict(),
            "aabb_min": self.aabb_min.detach().cpu().clone(),
            "aabb_max": self.aabb_max.detach().cpu().clone(),
            "hash_params": self.hash_params.detach().cpu().clone(),
            "mlp": [(w.detach().cpu().clone(), b.detach().cpu().clone()) for w, b in self.mlp_weights()],
        }

    @classmethod
    def from_arrays(
        cls,
        cfg: ColourFieldConfig,
        aabb_min: Any,
        aabb_max: Any,
        hash_params: Any,
        mlp: Sequence[tuple[Any, Any]],
    ) -> ColourField:
        """Rebuild a field from stored arrays (numpy or torch, any float dtype → float32)."""
        field_ = cls(cfg, _as_f32(aabb_min), _as_f32(aabb_max))
        table = _as_f32(hash_params).reshape(-1)
        if table.numel() != field_.hash_params.numel():
            raise ValueError(f"hash table has {table.numel()} values, config needs {field_.hash_params.numel()}")
        linears = field_.linears()
        if len(mlp) != len(linears):
            raise ValueError(f"{len(mlp)} MLP layers given, config has {len(linears)}")
        with torch.no_grad():
            field_.hash_params.copy_(table)
            for lin, (w, b) in zip(linears, mlp):
                w, b = _as_f32(w), _as_f32(b)
                if w.shape != lin.weight.shape or b.reshape(-1).shape != lin.bias.shape:
                    raise ValueError(f"MLP layer shape {tuple(w.shape)} ≠ {tuple(lin.weight.shape)}")
                lin.weight.copy_(w)
                lin.bias.copy_(b.reshape(-1))
        return field_

    @classmethod
    def from_export(cls, state: dict[str, Any], backend: HashGridBackend | None = None) -> ColourField:
        """Inverse of :meth:`state_for_export` (``backend`` overrides the stored one)."""
        cfg = ColourFieldConfig.from_dict(state["config"])
        if backend is not None:
            cfg.backend = backend
        return cls.from_arrays(cfg, state["aabb_min"], state["aabb_max"], state["hash_params"], state["mlp"])


def _as_f32(a: Any) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach().to("cpu", torch.float32)
    return torch.from_numpy(np.asarray(a, dtype=np.float32).copy())

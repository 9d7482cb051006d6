"""A trained generative model as one file: the grid layout, the channel statistics, the binary
autoencoder (:mod:`~splatpack.generative.bae`), the Bernoulli diffusion prior over its latents
(:mod:`~splatpack.generative.diffusion`), after Binary Latent Diffusion (Wang et al., CVPR 2023),
and optionally the prior's masked (absorbing-state) form over the same latents
(:mod:`~splatpack.generative.bitmodel`), which gives the per-bit probabilities that code the
latents losslessly (:mod:`splatpack.codecs.latent`); files without it predate it.

The file is ``torch.save`` of a dict holding only tensors and strings: ``format``, ``version``,
``config`` (JSON: the layout, the module configs, the schedule and a free-form ``info`` such as
the training objects), ``tensors`` (name → tensor; float16 when saved ``half``) and ``sha256``,
the digest of everything else (:func:`splatpack.core.digest.state_digest`). It is read with
``torch.load(weights_only=True)`` and refused, in one line, when the digest does not match; the
digest is the model's identity (:attr:`GenerativeModel.content_hash`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.atomic import atomic_write
from splatpack.core.digest import state_digest
from splatpack.generative.bae import BAEConfig, BinaryAutoencoder
from splatpack.generative.bitmodel import BitModel, BitModelConfig
from splatpack.generative.diffusion import BernoulliSchedule, Denoiser, DenoiserConfig, sample
from splatpack.generative.grids import ChannelStats, GridLayout, grid_to_gaussians

__all__ = ["FORMAT", "SHIPPED_MODEL", "VERSION", "GenerativeModel", "ModelConfig", "latent_coder_config"]

FORMAT = "splatpack-generative"
VERSION = 1
#: the model shipped with the package (trained on objects10k by ``splatpack prior train``)
SHIPPED_MODEL = Path(__file__).resolve().parent / "weights" / "objects10k.pt"


def latent_coder_config(bits: int, rank_groups: int = 4, hidden: int = 64, blocks: int = 4) -> BitModelConfig:
    """The masked prior over ``bits`` latent planes: the planes in ``rank_groups`` groups of
    consecutive channels × the four phases of 2×2 blocks (16 groups: a cell sees its
    neighbours of earlier phases and its own earlier channels)."""
    groups = max(1, min(rank_groups, bits))
    return BitModelConfig(tuple(k * groups // bits for k in range(bits)), 4, True, hidden, blocks)


@dataclass(frozen=True)
class ModelConfig:
    """The shapes of a model: its grid layout, BAE, denoiser, diffusion schedule and, if any,
    the masked prior that codes the latents (``coder``, planes = the BAE's latent bits)."""

    layout: GridLayout = field(default_factory=GridLayout)
    bae: BAEConfig = field(default_factory=BAEConfig)
    prior: DenoiserConfig = field(default_factory=DenoiserConfig)
    schedule: BernoulliSchedule = field(default_factory=BernoulliSchedule)
    coder: BitModelConfig | None = None

    def validate(self) -> ModelConfig:
        self.layout.validate()
        self.bae.validate()
        self.prior.validate()
        self.schedule.validate()
        if self.bae.channels != self.layout.channels:
            raise ValueError(f"the BAE reads {self.bae.channels} channels, the layout has {self.layout.channels}")
        f = self.bae.factor
        latent = (self.bae.latent_bits, self.layout.height // f, self.layout.width // f)
        if self.layout.height % f or self.layout.width % f:
            raise ValueError(f"a {self.layout.height}×{self.layout.width} grid does not divide by {f}")
        if (self.prior.bits, self.prior.height, self.prior.width) != latent:
            raise ValueError(f"the prior's latents {self.prior} do not match the BAE's {latent}")
        if self.coder is not None and self.coder.planes != self.bae.latent_bits:
            raise ValueError(f"the latent coder has {self.coder.planes} planes, the BAE {self.bae.latent_bits} bits")
        return self

    @classmethod
    def for_layout(
        cls,
        layout: GridLayout,
        bae: BAEConfig,
        prior: DenoiserConfig,
        schedule: BernoulliSchedule,
        coder: bool = True,
    ) -> ModelConfig:
        """``bae`` and ``prior`` with their channels and latent shape set from ``layout``; with
        ``coder``, the latent coder of :func:`latent_coder_config`."""
        bae = BAEConfig(**{**asdict(bae), "channels": layout.channels})
        f = bae.factor
        shape = {"bits": bae.latent_bits, "height": layout.height // f, "width": layout.width // f}
        coder_cfg = latent_coder_config(bae.latent_bits) if coder else None
        return cls(layout, bae, DenoiserConfig(**{**asdict(prior), **shape}), schedule, coder_cfg).validate()

    def to_dict(self) -> dict[str, Any]:
        out = {k: asdict(getattr(self, k)) for k in ("layout", "bae", "prior", "schedule")}
        return out | ({"coder": self.coder.to_dict()} if self.coder is not None else {})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        layout = dict(d["layout"])
        layout["up"] = tuple(layout["up"])
        return cls(
            GridLayout(**layout),
            BAEConfig(**d["bae"]),
            DenoiserConfig(**d["prior"]),
            BernoulliSchedule(**d["schedule"]),
            BitModelConfig.from_dict(d["coder"]) if d.get("coder") is not None else None,
        ).validate()


@dataclass
class GenerativeModel:
    """Layout, channel statistics, BAE, prior and latent coder (or None) of one trained model
    (evaluation mode)."""

    config: ModelConfig
    stats: ChannelStats
    bae: BinaryAutoencoder
    prior: Denoiser
    coder: BitModel | None = None
    info: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    @classmethod
    def create(cls, config: ModelConfig, stats: ChannelStats, info: dict[str, Any] | None = None) -> GenerativeModel:
        """A fresh (untrained) model of ``config``."""
        config.validate()
        coder = BitModel(config.coder) if config.coder is not None else None
        return cls(config, stats, BinaryAutoencoder(config.bae), Denoiser(config.prior), coder, dict(info or {}))

    def tensors(self) -> dict[str, Tensor]:
        out = {f"stats.{k}": v for k, v in self.stats.state_dict().items()}
        out.update({f"bae.{k}": v for k, v in self.bae.state_dict().items()})
        out.update({f"prior.{k}": v for k, v in self.prior.state_dict().items()})
        if self.coder is not None:
            out.update({f"coder.{k}": v for k, v in self.coder.state_dict().items()})
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    def state(self, half: bool = False) -> dict[str, Any]:
        """The file's dict (without its checksum); ``half`` stores float tensors as float16."""
        tensors = self.tensors()
        if half:
            tensors = {
                k: (v.half() if v.is_floating_point() and not k.startswith("stats.") else v) for k, v in tensors.items()
            }
        config = {**self.config.to_dict(), "info": self.info}
        return {"format": FORMAT, "version": VERSION, "config": json.dumps(config, sort_keys=True), "tensors": tensors}

    def save(self, path: str | Path, half: bool = False) -> str:
        """Write the model to ``path`` atomically; returns its content hash (SHA-256 hex)."""
        state = self.state(half)
        digest = state_digest(state)
        state["sha256"] = digest
        with atomic_write(path, "wb") as f:
            torch.save(state, f)
        self.content_hash = digest
        return digest

    @classmethod
    def load(cls, path: str | Path) -> GenerativeModel:
        """The model in ``path``; :class:`SplatpackError` (one line) for a missing, unreadable,
        corrupted or newer file."""
        path = Path(path)
        if not path.is_file():
            raise SplatpackError("model file does not exist", path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SplatpackError(f"not a splatpack generative model ({type(e).__name__}: {e})", path) from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise SplatpackError("not a splatpack generative model", path)
        stored = state.pop("sha256", None)
        if not isinstance(stored, str) or state_digest(state) != stored:
            raise SplatpackError("model contents do not match their SHA-256 (corrupted)", path)
        if not isinstance(state.get("version"), int) or state["version"] > VERSION:
            raise SplatpackError(
                f"model version {state.get('version')} is newer than this splatpack reads ({VERSION})", path
            )
        try:
            raw = json.loads(state["config"])
            config = ModelConfig.from_dict(raw)
            t = {k: v.float() if v.is_floating_point() else v for k, v in state["tensors"].items()}
            stats = ChannelStats(t["stats.mean"], t["stats.std"])
            model = cls.create(config, stats, raw.get("info", {}))
            model.bae.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("bae.")})
            model.prior.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("prior.")})
            if model.coder is not None:
                model.coder.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("coder.")})
        except Exception as e:
            raise SplatpackError(f"model does not match its config ({type(e).__name__}: {e})", path) from None
        model.content_hash = stored
        return model.eval()

    def eval(self) -> GenerativeModel:
        self.bae.eval()
        self.prior.eval()
        if self.coder is not None:
            self.coder.eval()
        return self

    @torch.no_grad()
    def decode(self, latents: Tensor) -> list[GaussianSet]:
        """The Gaussians (object frame) of binary latents [N, bits, h, w]."""
        grids = self.stats.restore(self.bae.decode(latents.float()))
        return [grid_to_gaussians(g, self.config.layout) for g in grids]

    @torch.no_grad()
    def reconstruct(self, grids: Tensor) -> list[GaussianSet]:
        """The Gaussians of grids [N, C, H, W] after encoding to binary latents and decoding."""
        return self.decode(self.bae.encode(self.stats.standardise(grids)))

    @torch.no_grad()
    def generate(self, count: int, steps: int = 16, temperature: float = 1.0, seed: int = 0) -> list[GaussianSet]:
        """``count`` new objects (object frame): latents sampled from the prior in ``steps``
        strided steps at ``temperature``, decoded by the BAE."""
        g = torch.Generator().manual_seed(seed)
        latents = sample(self.prior, self.config.schedule, count, steps, temperature, g)
        return self.decode(latents)

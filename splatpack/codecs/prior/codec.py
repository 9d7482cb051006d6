"""Grid scenes whose attribute images are coded under a learned coding model, behind the
scene-codec seam (``kind: prior-grid``): a value model (:mod:`.values`, the default) or a
bit-plane model (:mod:`.bitplanes`).

A file is a grid scene (:mod:`splatpack.codecs.grid`, quality "default") whose meta also holds
``prior``: the ``mode`` ("values" or "bitplanes"), the model's ``name`` (a model shipped in
``splatpack/generative/weights/``), its ``sha256`` and ``version``, the sections left to the grid
codec (``fallback``) and, for bit-planes, the order-0 planes (``static``). Decoding checks the
model against those, decodes the model's stream into the grid codec's images and reads the scene
with :func:`~splatpack.codecs.grid.decode_grid_scene`, so it gives the grid codec's Gaussians
exactly (raster order of the grid)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import FORMAT_KIND as GRID_KIND
from splatpack.codecs.grid import decode_grid_scene, encode_grid_scene
from splatpack.codecs.grid.config import MAX_SPARE
from splatpack.codecs.grid.decode import checked_int
from splatpack.codecs.prior.bitplanes import BITS_SECTION, decode_bitplanes, encode_bitplanes
from splatpack.codecs.prior.modelfile import DEFAULT_MODEL, LoadedCodingModel, load_coding_model, shipped_model_path
from splatpack.codecs.prior.training import grid_config
from splatpack.codecs.prior.values import VALUES_SECTION, decode_values_mode, encode_values_mode
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.validate import validate_gaussians
from splatpack.spk.arrays import CODECS
from splatpack.spk.container import Section, SpkError, SpkReader, write_spk

__all__ = ["FORMAT_KIND", "PRIOR_SCENE_CODEC", "PriorCodecConfig", "PriorSceneCodec", "transcode_to_grid"]

FORMAT_KIND = "prior-grid"
FORMAT_VERSION = 1
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class PriorCodecConfig:
    """``model``: the name of a shipped model, or the path of a model file (a file written with
    a model that is not shipped decodes only where that model is shipped under its name)."""

    model: str = DEFAULT_MODEL
    seed: int = 0  # PLAS seed of the grid codec


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> LoadedCodingModel:
    return load_coding_model(path)


def model_for(name_or_path: str, shipped_only: bool = False) -> LoadedCodingModel:
    """A shipped model by name (``values-v1``, ``bitplanes-v1``) or, unless ``shipped_only`` (a name read from
    a file), a model file by path (cached per file)."""
    path = Path(name_or_path)
    if shipped_only or (MODEL_NAME.fullmatch(name_or_path) and path.suffix != ".pt"):
        path = shipped_model_path(name_or_path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        shipped = ", ".join(
            sorted(p.stem for p in shipped_model_path().parent.glob("*.pt") if p.stem in _CODING_MODELS)
        )
        raise SplatpackError(f"no coding model '{name_or_path}' (shipped: {shipped})") from None
    return _load(str(path), mtime)


#: the shipped coding models (the weights folder also holds the generative model)
_CODING_MODELS = ("values-v1", "bitplanes-v1")
#: mode → (encoder, decoder, its stream section)
_MODES = {
    "values": (encode_values_mode, decode_values_mode, VALUES_SECTION),
    "bitplanes": (encode_bitplanes, decode_bitplanes, BITS_SECTION),
}


class PriorSceneCodec:
    """Grid scenes with learned lossless coding as a :class:`~splatpack.codecs.base.SceneCodec`."""

    kind = FORMAT_KIND

    def encode(self, gs, config: PriorCodecConfig | None = None, grid_index=None) -> EncodedScene:
        """The grid codec's quality "default" of ``gs``, its attribute images coded under the model."""
        config = config or PriorCodecConfig()
        validate_gaussians(gs)
        loaded = model_for(config.model)
        sections, meta = encode_grid_scene(gs, grid_config(seed=config.seed), grid_index)
        out, meta, entry, _ = _MODES[loaded.mode][0](sections, meta, loaded)
        meta = {**meta, "kind": FORMAT_KIND, "prior": {**entry, "format_version": FORMAT_VERSION}}
        return EncodedScene(out, meta, len(gs))

    def decode(self, reader) -> GaussianSet:
        return decode_grid_scene(self.grid_view(reader))

    def grid_view(self, reader) -> _GridView:
        """The open prior-grid file as the grid scene it codes (see :class:`_GridView`)."""
        m, n = reader.meta, reader.num_gaussians
        try:
            entry = m["prior"]
            if checked_int(entry.get("format_version"), 1, 1, "prior format version") != FORMAT_VERSION:
                raise ValueError("prior format version")
            h = checked_int(m["grid"]["height"], 1, 2 * n + MAX_SPARE, "grid height")
            w = checked_int(m["grid"]["width"], 1, 2 * n + MAX_SPARE, "grid width")
            if not n <= h * w <= 2 * n + MAX_SPARE:
                raise ValueError(f"a {h}x{w} grid does not fit {n} Gaussians")
            name = entry["model"]
            if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
                raise ValueError("model name")
            if entry.get("mode") not in _MODES:
                raise ValueError(f"coding mode {entry.get('mode')!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpkError(f"malformed prior-grid header ({type(exc).__name__}: {exc})", reader.path) from None
        try:
            loaded = model_for(name, shipped_only=True)
        except SplatpackError:
            raise SpkError(
                f"coded with coding model '{name}', which this splatpack does not have", reader.path
            ) from None
        if (
            entry.get("sha256") != loaded.sha256
            or entry.get("version") != loaded.version
            or entry["mode"] != loaded.mode
        ):
            raise SpkError(
                f"coded with coding model '{name}' (sha256 {str(entry.get('sha256'))[:12]}…, version "
                f"{entry.get('version')!r}); this splatpack's differs (sha256 {loaded.sha256[:12]}…, "
                f"version {loaded.version})",
                reader.path,
            )

        def get(section: str) -> Section:
            if not reader.has(section):
                raise SpkError(f"section '{section}' is missing", reader.path)
            return Section(section, reader.info(section).codec, reader.read(section))

        try:
            decoded = _MODES[loaded.mode][1](get, m, entry, loaded)
        except SpkError:
            raise
        except SplatpackError as exc:
            raise SpkError(str(exc), reader.path) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpkError(f"malformed prior-grid header ({type(exc).__name__}: {exc})", reader.path) from None
        return _GridView(reader, decoded)

    def gaussians(self, decoded: GaussianSet) -> GaussianSet:
        return decoded


class _GridView:
    """A prior-grid file seen as the grid scene it codes: the model-coded sections as ``ans``
    images (and their attributes' meta saying so), every other section as stored."""

    @dataclass(frozen=True)
    class _Info:
        codec: str

    def __init__(self, reader, decoded: dict[str, Section]):
        self._reader, self._decoded = reader, decoded
        self.decoded = tuple(decoded)
        meta: dict[str, Any] = {k: v for k, v in reader.meta.items() if k != "prior"}
        attrs = meta.get("attributes")
        if isinstance(attrs, dict):  # anything else is the grid decoder's to refuse
            attrs = dict(attrs)
            for name in decoded:
                key = name.split(".", 1)[1]
                if isinstance(attrs.get(key), dict):
                    attrs[key] = {**attrs[key], "codec": "ans"}
        self.meta = {**meta, "kind": GRID_KIND, "attributes": attrs}
        self.num_gaussians = reader.num_gaussians
        self.path = reader.path

    def has(self, name: str) -> bool:
        return name in self._decoded or self._reader.has(name)

    def info(self, name: str):
        return self._Info(self._decoded[name].codec) if name in self._decoded else self._reader.info(name)

    def read(self, name: str):
        return self._decoded[name].payload if name in self._decoded else self._reader.read(name)


PRIOR_SCENE_CODEC = PriorSceneCodec()


def transcode_to_grid(src: str | Path, dst: str | Path) -> int:
    """Write the prior-grid file ``src`` as the grid scene (``kind: sog-grid``) it codes, the model's
    images as ``ans`` sections: the same Gaussians, for readers without the model (the browser
    viewer). Returns the bytes written; a file that does not decode raises :class:`SpkError`."""
    with SpkReader(src, known_codecs=set(CODECS)) as reader:
        if reader.meta.get("kind") != FORMAT_KIND:
            raise SpkError(f"not a prior-grid scene (kind {reader.meta.get('kind')!r})", src)
        view = PRIOR_SCENE_CODEC.grid_view(reader)
        decode_grid_scene(view)  # checks every section before anything is written
        streams = {section for _, _, section in _MODES.values()}
        names = [s.name for s in reader.sections if s.name not in streams]
        names += [name for name in view.decoded if name not in names]
        sections = [Section(name, view.info(name).codec, bytes(view.read(name))) for name in names]
        return write_spk(dst, sections, meta=view.meta, num_gaussians=view.num_gaussians)

"""COLMAP sparse models (``cameras``, ``images``, ``points3D`` as ``.bin`` or ``.txt``).

Format: COLMAP's ``src/colmap/scene/reconstruction_io`` (https://colmap.github.io/format.html).
``images`` store the world-to-camera pose ``qvec`` (w, x, y, z) and ``tvec`` in OpenCV camera
axes; the camera-to-world matrix is its inverse. COLMAP 4 adds ``rigs.bin`` / ``frames.bin``
but keeps the classic ``images.bin`` layout with per-image poses, so those files are ignored.

The reader is plain ``struct``/numpy (no pycolmap) and checks every count against the bytes
left before allocating; truncated, corrupt or forged files raise :class:`CaptureError` naming
the file. Supported cameras: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV; distorted
ones give a :class:`Distortion` and are undistorted to the same ``K`` on load.

Image folder (first that exists and holds the model's first image name, preferring images that
already have the camera size ÷ ``downscale``): the ``images_dir`` argument, else the folder named
in ``<root>/splatpack_sfm.json`` (written by :func:`splatpack.captures.sfm.run_sfm`), else
``<root>/images_{downscale}``, ``<root>/images``, ``<root>/images_N``, and the same names in the
root's parent (e.g. ``fern/colmap_images_8`` → ``fern/images_8``). ``root`` is the capture folder
holding ``sparse/0/`` (or ``sparse/``), or the model folder itself.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatpack.captures.images import image_dirs, intrinsics_matrix, pick_image_dir, scaled_size, split_frames
from splatpack.captures.masks import find_mask
from splatpack.captures.types import Capture, Distortion, Frame
from splatpack.core.errors import CaptureError

# id -> (name, number of params); all COLMAP models, so that errors can name unsupported ones
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
_NUM_PARAMS = {name: n for name, n in CAMERA_MODELS.values()}


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def intrinsics(self, width: int, height: int) -> tuple[np.ndarray, Distortion | None]:
        """Pinhole ``K`` at ``width × height`` (scaled from the camera size) and the distortion."""
        p = self.params
        one_focal = self.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
        fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if one_focal else p[:4]
        sx, sy = width / self.width, height / self.height
        K = intrinsics_matrix(fx * sx, fy * sy, cx * sx, cy * sy)
        k = {"SIMPLE_RADIAL": p[3:4], "RADIAL": p[3:5], "OPENCV": p[4:8]}.get(self.model, p[:0])
        if not np.any(k):
            return K, None
        return K, Distortion(self.model, *map(float, k), K_src=K.copy())


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # w, x, y, z (world-to-camera rotation)
    tvec: np.ndarray
    camera_id: int
    name: str

    def camtoworld(self) -> np.ndarray:
        w, x, y, z = self.qvec / np.linalg.norm(self.qvec)
        R = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = R.T, -R.T @ self.tvec
        return c2w


def _camera(cid: int, model: str, width: int, height: int, params, path: Path) -> ColmapCamera:
    if model not in SUPPORTED_MODELS:
        raise CaptureError(
            f"unsupported camera model {model} (camera {cid}); supported: {', '.join(SUPPORTED_MODELS)}", path
        )
    params = np.asarray(params, dtype=np.float64)
    if not (0 < width < 1 << 20 and 0 < height < 1 << 20) or not np.all(np.isfinite(params)) or params[0] <= 0:
        raise CaptureError(f"corrupt camera {cid}: size {width}x{height}, params {params.tolist()}", path)
    return ColmapCamera(cid, model, int(width), int(height), params)


def _image(iid: int, q, t, cid: int, name: str, path: Path) -> ColmapImage:
    q, t = np.asarray(q, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if not (np.all(np.abs(q) < 1e8) and np.abs(q).max() > 1e-8 and np.all(np.isfinite(t)) and name):
        raise CaptureError(f"corrupt image {iid}: qvec {q.tolist()}, tvec {t.tolist()}, name {name!r}", path)
    return ColmapImage(iid, q, t, cid, name)


def _checked(xyz: np.ndarray, path: Path) -> np.ndarray:
    """float64 points as float32, rejecting non-finite or out-of-range coordinates."""
    if xyz.size and not (np.all(np.isfinite(xyz)) and np.abs(xyz).max() < 1e30):
        raise CaptureError("corrupt file: non-finite or huge point coordinates", path)
    return xyz.astype(np.float32)


# ---------------------------------------------------------------------------------- binary


class _Bin:
    """Bounds-checked little-endian reader over a whole file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.buf = path.read_bytes()
        except OSError as e:
            raise CaptureError(f"cannot read file: {e.strerror or e}", path) from None
        self.off = 0

    def left(self) -> int:
        return len(self.buf) - self.off

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if size > self.left():
            raise CaptureError(f"truncated file: needs {size} more bytes at offset {self.off}", self.path)
        self.off += size
        return struct.unpack_from("<" + fmt, self.buf, self.off - size)

    def count(self, min_record: int, what: str) -> int:
        (n,) = self.take("Q")
        if n * min_record > self.left():
            raise CaptureError(
                f"corrupt or truncated file: header claims {n} {what} but only {self.left()} bytes follow", self.path
            )
        return n

    def skip(self, n: int, record: int, what: str) -> None:
        if n * record > self.left():
            raise CaptureError(f"corrupt or truncated file: {n} {what} do not fit in {self.left()} bytes", self.path)
        self.off += n * record

    def cstring(self) -> str:
        end = self.buf.find(b"\0", self.off)
        if end < 0:
            raise CaptureError(f"truncated file: unterminated name at offset {self.off}", self.path)
        raw, self.off = self.buf[self.off : end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CaptureError(f"corrupt file: undecodable image name at offset {self.off}", self.path) from None

    def done(self) -> None:
        if self.left():
            raise CaptureError(f"corrupt file: {self.left()} unexpected bytes after the last record", self.path)


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    r, cams = _Bin(path), {}
    for _ in range(r.count(24, "cameras")):
        cid, mid, w, h = r.take("iiQQ")
        if mid not in CAMERA_MODELS:
            raise CaptureError(f"corrupt file or unknown camera model id {mid} (camera {cid})", path)
        model, n = CAMERA_MODELS[mid]
        params = r.take(f"{n}d")  # unsupported models are reported by name
        cams[cid] = _camera(cid, model, w, h, params, path)
    r.done()
    return cams


def _read_images_bin(path: Path) -> list[ColmapImage]:
    r, images = _Bin(path), []
    for _ in range(r.count(73, "images")):
        iid, *qt, cid = r.take("I7dI")
        name = r.cstring()
        (n2d,) = r.take("Q")
        r.skip(n2d, 24, "2D points")
        images.append(_image(iid, qt[:4], qt[4:], cid, name, path))
    r.done()
    return images


def _read_points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    r = _Bin(path)
    n = r.count(51, "points")
    buf, off, unpack = r.buf, r.off, struct.Struct("<Q3d3BdQ").unpack_from  # hot loop: no method calls
    xyz, rgb = [], []
    for i in range(n):
        if off + 51 > len(buf):
            raise CaptureError(f"truncated file: point {i} of {n} at offset {off}", path)
        _, x, y, z, cr, cg, cb, _err, track = unpack(buf, off)
        off += 51 + 8 * track
        if off > len(buf):
            raise CaptureError(f"corrupt or truncated file: track of {track} entries does not fit", path)
        xyz.append((x, y, z))
        rgb.append((cr, cg, cb))
    r.off = off
    r.done()
    return _checked(np.array(xyz, np.float64).reshape(-1, 3), path), np.array(rgb, np.uint8).reshape(-1, 3)


# ------------------------------------------------------------------------------------ text


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, tokens)`` of the non-comment lines, keeping empty ones (images.txt needs them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CaptureError(f"cannot read file: {e}", path) from None
    return [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if not ln.lstrip().startswith("#")]


def _parse(path: Path, lineno: int, what: str, fn):
    try:
        return fn()
    except (ValueError, IndexError, OverflowError) as e:
        raise CaptureError(f"line {lineno}: cannot parse {what} ({e})", path) from None


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for no, t in _lines(path):
        if not t:
            continue
        cid, model, w, h, params = _parse(
            path, no, "camera", lambda: (int(t[0]), t[1], int(t[2]), int(t[3]), [float(v) for v in t[4:]])
        )
        if model in SUPPORTED_MODELS and len(params) != _NUM_PARAMS[model]:
            raise CaptureError(f"line {no}: camera {cid} ({model}) needs {_NUM_PARAMS[model]} params", path)
        cams[cid] = _camera(cid, model, w, h, params, path)
    return cams


def _read_images_txt(path: Path) -> list[ColmapImage]:
    lines, images, i = _lines(path), [], 0
    while i < len(lines):
        no, t = lines[i]
        if not t:  # blank line where a header is expected
            i += 1
            continue

        def header():
            return int(t[0]), [float(v) for v in t[1:8]], int(t[8]), " ".join(t[9:])

        iid, qt, cid, name = _parse(path, no, "image", header)
        if len(qt) != 7:
            raise CaptureError(f"line {no}: cannot parse image (needs 10 fields)", path)
        images.append(_image(iid, qt[:4], qt[4:], cid, name, path))
        i += 2  # skip the 2D points line
    return images


def _read_points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [(no, t) for no, t in _lines(path) if t]
    xyz, rgb = np.empty((len(rows), 3), np.float64), np.empty((len(rows), 3), np.uint8)

    def row(t: list[str]) -> tuple[list[float], list[int]]:
        x, c = [float(v) for v in t[1:4]], [int(v) for v in t[4:7]]
        if len(c) != 3 or not all(0 <= v < 256 for v in c):
            raise ValueError("needs ID X Y Z R G B with colours in 0..255")
        return x, c

    for i, (no, t) in enumerate(rows):
        xyz[i], rgb[i] = _parse(path, no, "point", lambda: row(t))
    return _checked(xyz, path), rgb


# ---------------------------------------------------------------------------------- public


def _model_file(model_dir: Path, stem: str) -> Path:
    for suffix in (".bin", ".txt"):
        if (model_dir / f"{stem}{suffix}").is_file():
            return model_dir / f"{stem}{suffix}"
    raise CaptureError(f"missing {stem}.bin / {stem}.txt", model_dir)


def read_cameras(path: Path) -> dict[int, ColmapCamera]:
    return _read_cameras_bin(path) if path.suffix == ".bin" else _read_cameras_txt(path)


def read_images(path: Path) -> list[ColmapImage]:
    return _read_images_bin(path) if path.suffix == ".bin" else _read_images_txt(path)


def read_points3D(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SfM points: ``xyz float32 [P, 3]`` and ``rgb uint8 [P, 3]``."""
    return _read_points_bin(path) if path.suffix == ".bin" else _read_points_txt(path)


def read_model(model_dir: Path) -> tuple[dict[int, ColmapCamera], list[ColmapImage], np.ndarray, np.ndarray]:
    """Cameras, images and points of a model folder (``.bin`` preferred over ``.txt``)."""
    cams = read_cameras(_model_file(model_dir, "cameras"))
    images_file = _model_file(model_dir, "images")
    images = read_images(images_file)
    for im in images:
        if im.camera_id not in cams:
            raise CaptureError(f"image {im.name} refers to missing camera {im.camera_id}", images_file)
    return cams, images, *read_points3D(_model_file(model_dir, "points3D"))


def find_model(root: Path) -> tuple[Path, Path]:
    """``(capture root, model folder)`` for a capture folder or a model folder."""
    root = Path(root).absolute()
    for sub in ("sparse/0", "sparse", "."):
        d = root / sub
        if (d / "cameras.bin").is_file() or (d / "cameras.txt").is_file():
            if sub == "." and root.parent.name == "sparse":  # given <capture>/sparse/0 itself
                return root.parent.parent, root
            if sub == "." and root.name == "sparse":
                return root.parent, root
            return root, d
    raise CaptureError("no COLMAP model: looked for sparse/0/, sparse/ and ./ cameras.{bin,txt}", root)


def _hinted_images_dir(root: Path) -> list[Path]:
    """The images folder recorded by :func:`splatpack.captures.sfm.run_sfm` in ``splatpack_sfm.json``."""
    hint = root / "splatpack_sfm.json"
    if not hint.is_file():
        return []
    try:
        return [Path(json.loads(hint.read_text())["images_dir"])]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CaptureError(f"cannot read images_dir: {e}", hint) from None


def load_colmap(root: Path, downscale: int = 1, test_every: int = 8, images_dir: Path | None = None) -> Capture:
    """A COLMAP capture: frames sorted by image name, every ``test_every``-th one a test frame."""
    root, model_dir = find_model(Path(root))
    cams, images, xyz, rgb = read_model(model_dir)
    if not images:
        raise CaptureError("model has no images", model_dir)
    images.sort(key=lambda im: im.name)
    first = cams[images[0].camera_id]
    if images_dir is not None:
        candidates = [Path(images_dir)]
    else:
        candidates = _hinted_images_dir(root) + image_dirs(root, downscale) + image_dirs(root.parent, downscale)
    folder = pick_image_dir(candidates, (first.width, first.height), downscale, images[0].name, root)
    frames = []
    for im in images:
        cam, path = cams[im.camera_id], folder / im.name
        w, h = scaled_size(path, (cam.width, cam.height), downscale)
        K, dist = cam.intrinsics(w, h)
        frames.append(Frame(path, im.camtoworld(), K, w, h, dist, find_mask(path)))
    train, test = split_frames(frames, test_every, root)
    models = sorted({c.model for c in cams.values()})
    return Capture(
        root.name,
        "colmap",
        root,
        train,
        test,
        xyz,
        rgb,
        extra={"images_dir": str(folder), "model_dir": str(model_dir), "camera_models": models},
    )

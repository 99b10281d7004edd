#!/usr/bin/env bash
# The GPU check, for a fresh machine with an NVIDIA GPU (under 8 minutes, installs included):
#   benchmarks/gpu_check.sh [--dry-run] [--no-install] [--store DIR] [--out FILE] [-- GPU_CHECK_ARGS]
# 1. installs '.[gpu,client]' into .venv-gpu (PYTHON=... to use another interpreter, --no-install to skip);
# 2. fits nothing: uses --store, else $PSF_STORE, else the store shipped beside this script
#    (benchmarks/gpu_store: configs/ci.yml at kernel size 64), else fits configs/ci.yml (needs '.[train]');
# 3-5. runs python -m benchmarks.gpu_check: PSFs/s at batch 1 / 256 / 4096 through CUDA (and
#    TensorRT when present), GET /psf p50, max |diff| against the CPU provider, JSON to --out.
# --dry-run does all of it with the CPU provider in place of the GPU ones (and installs '.[serve,client]').
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=() INSTALL=1 STORE="${PSF_STORE:-}" OUT=bench_out/gpu_check.json PASS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=(--dry-run) ;;
        --no-install) INSTALL=0 ;;
        --store) STORE="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --) shift; PASS=("$@"); break ;;  # handed to python -m benchmarks.gpu_check (e.g. --min-time 0.1)
        *) echo "unknown argument $1: allowed are --dry-run, --no-install, --store DIR, --out FILE" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-.venv-gpu/bin/python}"
if [ "$INSTALL" = 1 ]; then
    [ -x "$PY" ] || python3 -m venv .venv-gpu
    EXTRA=gpu; [ ${#DRY[@]} -gt 0 ] && EXTRA=serve
    "$PY" -m pip install -q ".[$EXTRA,client]"
fi
if [ -z "$STORE" ]; then
    if [ -d benchmarks/gpu_store ]; then STORE=benchmarks/gpu_store; else
        STORE=.cache/gpu-check-store
        [ "$INSTALL" = 1 ] && "$PY" -m pip install -q ".[train]"
        "$PY" -m training.fit configs/ci.yml --store "$STORE" data.kernel_size=64
    fi
fi
exec "$PY" -m benchmarks.gpu_check --store "$STORE" --out "$OUT" "${DRY[@]}" "${PASS[@]}"

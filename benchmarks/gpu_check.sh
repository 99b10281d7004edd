#!/usr/bin/env bash
# The GPU check, for a fresh machine with an NVIDIA GPU:
#   benchmarks/gpu_check.sh [--dry-run] [--no-install] [--no-fit-speed] [--no-fit] [--store DIR] [--out FILE]
#                           [-- GPU_CHECK_ARGS]
# 1. installs '.[gpu,client]' into .venv-gpu (PYTHON=... to use another interpreter, --no-install to skip);
# 2. fits nothing: uses --store, else $PSF_STORE, else the store shipped beside this script
#    (benchmarks/gpu_store: configs/ci.yml at kernel size 64), else fits configs/ci.yml (with FIT_PYTHON);
# 3-5. runs python -m benchmarks.gpu_check: PSFs/s at batch 1 / 256 / 4096 through CUDA (and
#    TensorRT when present), GET /psf p50, max |diff| against the CPU provider, JSON to --out (under 8 minutes);
# 6. fit speed (python -m benchmarks.gpu_fit_speed, added to the same JSON under fit_speed): DeepLens PSFs
#    traced per second, training steps per second, and one quick-start fit end to end (--no-fit skips the
#    fit, --no-fit-speed the whole step). It needs torch and DeepLens: '.[train]' goes into its own
#    .venv-fit (FIT_PYTHON=... to use another interpreter), because '.[train]' brings the CPU onnxruntime,
#    which must not share an environment with onnxruntime-gpu. The torch download and the fit take minutes.
# --dry-run does all of it with the CPU in place of the GPU (installs '.[serve,client]'; the fit step runs
# configs/ci.yml for 20 steps instead of the quick-start).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=() INSTALL=1 STORE="${PSF_STORE:-}" OUT=bench_out/gpu_check.json PASS=() FIT_SPEED=1 FIT=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=(--dry-run) ;;
        --no-install) INSTALL=0 ;;
        --no-fit-speed) FIT_SPEED=0 ;;
        --no-fit) FIT=(--no-fit) ;;
        --store) STORE="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --) shift; PASS=("$@"); break ;;  # handed to python -m benchmarks.gpu_check (e.g. --min-time 0.1)
        *) echo "unknown argument $1: allowed are --dry-run, --no-install, --no-fit-speed, --no-fit, --store DIR," \
                "--out FILE" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-.venv-gpu/bin/python}"
FITPY="${FIT_PYTHON:-.venv-fit/bin/python}"
if [ "$INSTALL" = 1 ]; then
    [ -x "$PY" ] || python3 -m venv .venv-gpu
    EXTRA=gpu; [ ${#DRY[@]} -gt 0 ] && EXTRA=serve
    "$PY" -m pip install -q ".[$EXTRA,client]"
fi
fit_python() {  # the interpreter with '.[train]', installed on first use
    if [ "$INSTALL" = 1 ] && [ -z "${FIT_DONE:-}" ]; then
        [ -x "$FITPY" ] || python3 -m venv .venv-fit
        "$FITPY" -m pip install -q ".[train]"
        FIT_DONE=1
    fi
    [ -x "$FITPY" ] || { echo "no $FITPY: set FIT_PYTHON to an interpreter with '.[train]', or drop --no-install" >&2
                         exit 2; }
}
if [ "$FIT_SPEED" = 1 ]; then fit_python; fi  # before the measurements: a missing interpreter stops here
if [ -z "$STORE" ]; then
    if [ -d benchmarks/gpu_store ]; then STORE=benchmarks/gpu_store; else
        STORE=.cache/gpu-check-store
        fit_python
        "$FITPY" -m training.fit configs/ci.yml --store "$STORE" data.kernel_size=64
    fi
fi
"$PY" -m benchmarks.gpu_check --store "$STORE" --out "$OUT" "${DRY[@]}" "${PASS[@]}"
if [ "$FIT_SPEED" = 1 ]; then
    "$FITPY" -m benchmarks.gpu_fit_speed --out "$OUT" "${DRY[@]}" "${FIT[@]}"
fi

#!/usr/bin/env bash
# Issue 26 item 5 in one command on a lent GPU machine: `pytest -m gpu`, the probe-fitting ratio
# with --fit-device cuda, bench_gpu and the PCFG presets (gpu_pcfg), each under its own time
# limit (555 s together at most, plus the wheels' install), everything written under $OUT (the device tool's folder that
# comes back; default benchmarks/results/gpu_checks).
#
# Here first: bash scripts/device_prepare.sh   (wheels the image lacks, the fit's teacher checkpoint)
# Then with the device tool:
#   run(command="bash benchmarks/gpu_checks.sh", carry=[".device"], timeout_s=590)
# Steps can be named to run a subset: bash benchmarks/gpu_checks.sh fit bench_gpu
# (env pytest fit bench_gpu pcfg). GPU_CHECKS_CPU=1 runs the same steps in their tiny CPU forms
# (a check of this script and its commands here, not a measurement; pytest then skips its tests).
# DEVICE_DIR (default .device) holds the carried wheels and fit_exp; FIT_EXP overrides the latter.
#
# Afterwards, here: copy $OUT's gpu.json, gpu_pcfg.json and probe_fit_gpu.json into
# benchmarks/results/ and state the figures (docs/grids.md, docs/pcfg.md, docs/probe-sweep.md).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu_checks}"
mkdir -p "$OUT"
LOG="$OUT/gpu_checks.log"
PY="${PYTHON:-python3}"
[ -n "${PYTHON:-}" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python; }
CPU="${GPU_CHECKS_CPU:-0}"
SCRATCH="${TMPDIR:-/tmp}"  # the wheels' install and the PCFG runs (never under $OUT: its files come back)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(env pytest fit bench_gpu pcfg)

say() { echo "$*" | tee -a "$LOG"; }
run_step() {  # name limit_s command...
    local name=$1 limit=$2 start rc
    shift 2
    say "== $name (limit ${limit} s): $*"
    start=$(date +%s)
    PYTHONUNBUFFERED=1 timeout "$limit" "$@" 2>&1 | tee -a "$LOG" | tail -n 40
    rc=${PIPESTATUS[0]}
    say "== $name: rc $rc after $(($(date +%s) - start)) s$([ "$rc" = 124 ] && echo ' (time limit)')"
    [ "$rc" = 0 ] || FAILED=1
}
FAILED=0

: > "$LOG"
say "gpu_checks $(date -u +%FT%TZ) on ${HOSTNAME:-?}; steps: ${steps[*]}; cpu mode: $CPU"
DEVICE_DIR="${DEVICE_DIR:-.device}"  # what scripts/device_prepare.sh made (carried to the device)
if [ -d "$DEVICE_DIR/whl" ] && ls "$DEVICE_DIR"/whl/*.whl > /dev/null 2>&1; then
    # only the packages missing here: a carried wheel never replaces one the image has
    want=()
    for w in "$DEVICE_DIR"/whl/*.whl; do
        mod=$(basename "$w" | cut -d- -f1)
        "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$mod') is None)" 2> /dev/null \
            && continue
        want+=("$w")
    done
    if [ ${#want[@]} -gt 0 ]; then
        say "installing ${#want[@]} carried wheel(s) into $SCRATCH/gpu_checks_site: ${want[*]}"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SCRATCH/gpu_checks_site" "${want[@]}" 2>&1 | tee -a "$LOG"
        export PYTHONPATH="$SCRATCH/gpu_checks_site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
FIT_EXP="${FIT_EXP:-$DEVICE_DIR/fit_exp}"  # an experiment whose runs/teacher the fit reads

for s in "${steps[@]}"; do
    case "$s" in
    env)
        run_step env 45 "$PY" -c "
import platform, torch
print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda)
print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')
import transformer_lens, transformers, sklearn, einops
print('transformer_lens from', transformer_lens.__file__, '| transformers', transformers.__version__,
      '| scikit-learn', sklearn.__version__)
import curriculens, models.mlp, probes.sweep, training.engine
print('curriculens imports: ok')"
        ;;
    pytest)
        run_step pytest 140 "$PY" -m pytest -m gpu -q -p no:cacheprovider -p no:dash -rs \
            tests/training/test_optim.py tests/training/test_loop.py tests/probes/test_logreg.py \
            tests/probes/test_sweep.py tests/probes/tasks/pcfg/test_pcfg_probes.py
        ;;
    fit)
        if [ "$CPU" = 1 ]; then dev=cpu; else dev=cuda; fi
        if [ ! -d "$FIT_EXP/runs/teacher" ]; then  # never train the demo here: minutes of device time
            say "== fit: rc 2: no teacher run in $FIT_EXP (run scripts/device_prepare.sh first, or set FIT_EXP)"
            FAILED=1
            continue
        fi
        run_step fit 110 "$PY" -m benchmarks.bench_probe_sweep --skip-sweep --skip-extraction --fit-device "$dev" \
            --exp "$FIT_EXP" --out "$OUT/probe_fit_gpu.json"
        ;;
    bench_gpu)
        if [ "$CPU" = 1 ]; then
            run_step bench_gpu 110 "$PY" -m benchmarks.bench_gpu --tiny --device cpu --out "$OUT/gpu"
        else
            run_step bench_gpu 110 "$PY" -m benchmarks.bench_gpu --device cuda --teacher-steps 5000 \
                --student-steps 500 --out "$OUT/gpu"
        fi
        ;;
    pcfg)
        rm -rf "$SCRATCH/gpu_checks_pcfg"
        if [ "$CPU" = 1 ]; then
            run_step pcfg 150 "$PY" -m benchmarks.gpu_pcfg --device cpu --tiny --out "$SCRATCH/gpu_checks_pcfg" \
                --results "$OUT/gpu_pcfg"
        else
            run_step pcfg 150 "$PY" -m benchmarks.gpu_pcfg --device cuda --steps 60 --student-steps 20 \
                --save-every 20 --eval-every 20 --n-eval 1024 --out "$SCRATCH/gpu_checks_pcfg" --results "$OUT/gpu_pcfg"
        fi
        ;;
    *)
        say "unknown step $s (env pytest fit bench_gpu pcfg)"
        exit 2
        ;;
    esac
done
say "gpu_checks done $(date -u +%FT%TZ), $([ $FAILED = 0 ] && echo 'every step rc 0' || echo 'a step failed'); files: $(cd "$OUT" && ls | tr '\n' ' ')"
exit $FAILED

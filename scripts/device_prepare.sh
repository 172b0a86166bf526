#!/usr/bin/env bash
# Prepare here (a CPU machine with the package registries) what the one GPU command,
# benchmarks/gpu_checks.sh, needs on a lent device machine (which reaches no network):
#   .device/whl/      wheels of the packages that the device image lacks and curriculens imports
#                     (transformer-lens and what its import pulls: datasets, dill, multiprocess),
#                     for the image's Python 3.12, without their dependencies (the image has them)
#   .device/fit_exp/  the parity demo teacher's config, metrics and middle checkpoint: the probe
#                     fitting benchmark's real activations (2 MB; the demo is not retrained there)
# Then, with the device tool: run(command="bash benchmarks/gpu_checks.sh", carry=[".device"], timeout_s=590)
#
#   bash scripts/device_prepare.sh [TEACHER_RUN]
# TEACHER_RUN: a demo teacher run directory (EXP/runs/teacher of `curriculens demo`); without
# it the demo teacher is trained here first (`curriculens train-teacher`, about a minute).
# .device/ is git-ignored; re-running replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
WHEELS=(transformer-lens==4.3.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19)
teacher="${1:-}"
if [ -n "$teacher" ] && [ ! -f "$teacher/config.json" ]; then
    echo "error: $teacher is not a run directory (no config.json)" >&2
    exit 2
fi
tmp="$(mktemp -d .device.tmp.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$tmp/whl" "${WHEELS[@]}" \
    || { echo "error: pip could not download the wheels (offline?)" >&2; exit 1; }
if [ -z "$teacher" ]; then
    echo "training the parity demo teacher into $tmp/train (about a minute) ..."
    OMP_NUM_THREADS=1 "$PY" - "$tmp/train" <<'EOF'
import sys
from pathlib import Path

from training.plans import demo_plan, run_plan

out = Path(sys.argv[1])
teacher, _ = demo_plan("parity", "demo", out=str(out), seeds=range(1), device="cpu")
run_plan(out, teacher, lambda e, t: [])  # the teacher alone
EOF
    teacher="$tmp/train/runs/teacher"
fi
"$PY" - "$teacher" "$tmp/fit_exp/runs/teacher" <<'EOF'
import shutil
import sys
from pathlib import Path

from benchmarks.bench_probe_sweep import fit_checkpoint
from models.checkpoint import list_checkpoints

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
if not list_checkpoints(src):
    sys.exit(f"error: {src} has no checkpoint")
step, ckpt = fit_checkpoint(src)  # the one bench_fit reads
(dst / ckpt.parent.name).mkdir(parents=True)
for name in ("config.json", "metrics.jsonl", "done.json"):
    if (src / name).is_file():
        shutil.copy2(src / name, dst / name)
shutil.copytree(ckpt, dst / ckpt.parent.name / ckpt.name)
print(f"teacher checkpoint at step {step:,} from {src}")
EOF
rm -rf "$tmp/train"
rm -rf .device
mv "$tmp" .device
trap - EXIT
du -sh .device
ls .device/whl

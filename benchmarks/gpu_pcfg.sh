#!/usr/bin/env bash
# The one command to run on a GPU machine: the paper's PCFG presets (paper-bert, paper-gpt2) on
# cfg3b for a bounded number of steps; prints steps/s and the loss curves, writes
# benchmarks/results/gpu_pcfg.{json,txt}. Extra arguments go to benchmarks/gpu_pcfg.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
exec timeout 600 "$PY" -m benchmarks.gpu_pcfg --device cuda "$@"
